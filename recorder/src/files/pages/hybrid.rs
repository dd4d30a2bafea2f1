//! Parquet's RLE/bit-packed hybrid encoding, for dictionary indices (definition levels,
//! one bit each, have their own encoder in `levels`). Runs of one value become a count and the value; the rest is
//! bit-packed eight at a time. A literal group can only be cut at a multiple of eight
//! values, so a run that starts mid-group first fills the group.

/// Appends `values` encoded at `bit_width` bits each (at most 32) to `out`, without the
/// length prefix that some uses put in front.
pub fn encode(values: &[u32], bit_width: u8, out: &mut Vec<u8>) {
    debug_assert!(bit_width <= 32);
    let n = values.len();
    let mut literal_start = 0;
    // Where the next run may start: the end of the last one.
    let mut from = 0;
    // Every run of 8 or more covers a position that is 7 modulo 8, so only those are
    // looked at, two compares each where values differ from their neighbours: on nginx
    // most dictionary indices do, and looking at every value was a tenth of the writer's
    // instructions.
    let mut p = 7;
    while p < n {
        let v = values[p];
        // A run of 8 that covers p holds p-3..=p or p..=p+4: values that repeat only two or
        // three times (a process's few calls in a row) are passed over here, without
        // counting their run.
        let before = values[p - 3] == v && values[p - 2] == v && values[p - 1] == v;
        if !before
            && !values
                .get(p + 1..p + 5)
                .is_some_and(|next| next.iter().all(|&x| x == v))
        {
            p += 8;
            continue;
        }
        let start = p - values[from..p]
            .iter()
            .rev()
            .take_while(|&&x| x == v)
            .count();
        let end = p + 1 + values[p + 1..].iter().take_while(|&&x| x == v).count();
        if end - start >= 8 {
            // Fill the literal group first, so that the literals cut at a multiple of 8.
            let fill = (8 - (start - literal_start) % 8) % 8;
            if end - start - fill >= 8 {
                pack_literals(&values[literal_start..start + fill], bit_width, out);
                write_run(v, end - start - fill, bit_width, out);
                literal_start = end;
            }
            from = end;
            p = end | 7;
        } else {
            p += 8;
        }
    }
    pack_literals(&values[literal_start..], bit_width, out);
}

/// The bits an index needs to tell `count` values apart; at least 1, because some
/// readers reject a zero width.
pub fn bit_width_for(count: usize) -> u8 {
    let max = count.saturating_sub(1) as u32;
    (32 - max.leading_zeros()).max(1) as u8
}

fn write_run(value: u32, run: usize, bit_width: u8, out: &mut Vec<u8>) {
    varint((run as u64) << 1, out);
    let bytes = usize::from(bit_width).div_ceil(8);
    out.extend_from_slice(&value.to_le_bytes()[..bytes]);
}

/// Bit-packs `values`, padding the last group of 8 with zeros (only the last run of a
/// page may be padded: the reader stops at the page's value count).
fn pack_literals(values: &[u32], bit_width: u8, out: &mut Vec<u8>) {
    if values.is_empty() {
        return;
    }
    let groups = values.len().div_ceil(8);
    varint(((groups as u64) << 1) | 1, out);
    out.reserve(groups * usize::from(bit_width));
    let mut whole = values.chunks_exact(8);
    for group in &mut whole {
        pack_eight(group.try_into().expect("8 values"), bit_width, out);
    }
    let rest = whole.remainder();
    if !rest.is_empty() {
        pack_group(rest, bit_width, out);
    }
}

/// The last group of a literal run, fewer than 8 values: padded with zeros, as the
/// encoding pads it, and packed as a whole group.
fn pack_group(group: &[u32], width: u8, out: &mut Vec<u8>) {
    let mut eight = [0; 8];
    eight[..group.len()].copy_from_slice(group);
    pack_eight(&eight, width, out);
}

/// One group of 8 values. At the widths levels and most dictionaries use, the group is
/// built in one register and appended at once: packed a byte at a time, these groups were
/// a tenth of the recorder's CPU on nginx, whose paths and fds interleave with calls that
/// have none, so that few runs form. A fixed-size array, so that the loop is unrolled:
/// from a slice, the shift and its bounds were computed per value (BENCHMARKS.md).
#[inline(always)]
fn pack_eight(group: &[u32; 8], width: u8, out: &mut Vec<u8>) {
    let w = u32::from(width);
    if width <= 8 {
        let mut acc: u64 = 0;
        for (i, &v) in group.iter().enumerate() {
            acc |= u64::from(v) << (i as u32 * w);
        }
        append_prefix(&acc.to_le_bytes(), usize::from(width), out);
    } else if width <= 16 {
        // Two halves of four values: 64-bit shifts are one instruction, 128-bit ones many.
        let (mut lo, mut hi): (u64, u64) = (0, 0);
        for i in 0..4 {
            lo |= u64::from(group[i]) << (i as u32 * w);
            hi |= u64::from(group[i + 4]) << (i as u32 * w);
        }
        let acc = u128::from(lo) | (u128::from(hi) << (4 * w));
        append_prefix(&acc.to_le_bytes(), usize::from(width), out);
    } else {
        pack(group.iter().map(|&v| u64::from(v)), 8, width, out);
    }
}

/// Appends the first `len` bytes of `bytes`. Appending the whole fixed-size array and
/// cutting it back is a single store; a slice of variable length is a call to `memcpy`,
/// which cost more than the packing itself.
#[inline]
fn append_prefix<const N: usize>(bytes: &[u8; N], len: usize, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(bytes);
    out.truncate(start + len);
}

/// Packs `count` values at `width` bits each (at most 64), least significant bit first, as
/// both the hybrid's groups and the delta encoding's miniblocks lay them out; missing
/// values are zeros. `count * width` must be a multiple of 8.
pub fn pack(values: impl Iterator<Item = u64>, count: usize, width: u8, out: &mut Vec<u8>) {
    let width = u32::from(width);
    let mut values = values.fuse();
    let mut acc: u128 = 0;
    let mut bits = 0;
    // Whole 8-byte words as they fill: a byte at a time, each a push with its capacity
    // check, was half of the entry times' delta encoding.
    for _ in 0..count {
        acc |= u128::from(values.next().unwrap_or(0)) << bits;
        bits += width;
        if bits >= 64 {
            out.extend_from_slice(&(acc as u64).to_le_bytes());
            acc >>= 64;
            bits -= 64;
        }
    }
    append_prefix(&(acc as u64).to_le_bytes(), bits as usize / 8, out);
}

/// ULEB128, as Parquet's headers use.
pub fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    #[test]
    fn runs_and_literals_as_the_spec_lays_them_out() {
        // Nine 3s: one run (header 9<<1 = 18, value 3 in one byte).
        let mut out = Vec::new();
        encode(&[3; 9], 2, &mut out);
        assert_eq!(out, vec![18, 3]);
        // The spec's example: 0..7 at width 3 packs to 10001000 11000110 11111010.
        let mut out = Vec::new();
        encode(&[0, 1, 2, 3, 4, 5, 6, 7], 3, &mut out);
        assert_eq!(out, vec![3, 0b1000_1000, 0b1100_0110, 0b1111_1010]);
        assert_eq!(bit_width_for(1), 1);
        assert_eq!(bit_width_for(2), 1);
        assert_eq!(bit_width_for(3), 2);
        assert_eq!(bit_width_for(256), 8);
        assert_eq!(bit_width_for(257), 9);
    }

    #[test]
    fn a_group_packs_as_the_general_packer_does_at_every_width() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for width in 1..=32u8 {
            for len in 1..=8 {
                let group: Vec<u32> = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        (seed as u32) & (u32::MAX >> (32 - u32::from(width)))
                    })
                    .collect();
                let (mut fast, mut general) = (Vec::new(), Vec::new());
                pack_group(&group, width, &mut fast);
                pack(group.iter().map(|&v| u64::from(v)), 8, width, &mut general);
                assert_eq!(fast, general, "width {width}, {len} values");
                if let Ok(eight) = <&[u32; 8]>::try_from(&group[..]) {
                    let mut unrolled = Vec::new();
                    pack_eight(eight, width, &mut unrolled);
                    assert_eq!(unrolled, general, "width {width}, unrolled");
                }
            }
        }
    }

    /// The hybrid decoding, as the Parquet spec gives it.
    pub(in crate::files::pages) fn decode(mut bytes: &[u8], width: u8, count: usize) -> Vec<u32> {
        let mut out = Vec::new();
        let uleb = |bytes: &mut &[u8]| {
            let (mut v, mut shift) = (0u64, 0);
            loop {
                let b = bytes[0];
                *bytes = &bytes[1..];
                v |= u64::from(b & 0x7f) << shift;
                shift += 7;
                if b < 0x80 {
                    return v;
                }
            }
        };
        while out.len() < count {
            let header = uleb(&mut bytes);
            if header & 1 == 0 {
                let n = usize::from(width).div_ceil(8);
                let mut v = [0u8; 4];
                v[..n].copy_from_slice(&bytes[..n]);
                bytes = &bytes[n..];
                out.extend(std::iter::repeat_n(
                    u32::from_le_bytes(v),
                    (header >> 1) as usize,
                ));
            } else {
                let values = (header >> 1) as usize * 8;
                let (mut acc, mut bits) = (0u128, 0);
                for _ in 0..values {
                    while bits < u32::from(width) {
                        acc |= u128::from(bytes[0]) << bits;
                        bytes = &bytes[1..];
                        bits += 8;
                    }
                    out.push((acc & ((1u128 << width) - 1)) as u32);
                    acc >>= width;
                    bits -= u32::from(width);
                }
            }
        }
        out.truncate(count);
        out
    }

    /// Every value's run measured in turn: the plain way to find each run of 8 or more.
    fn reference(values: &[u32], width: u8) -> Vec<u8> {
        let mut out = Vec::new();
        let (mut literal_start, mut i) = (0, 0);
        while i < values.len() {
            let v = values[i];
            let run = values[i..].iter().take_while(|&&x| x == v).count();
            let fill = (8 - (i - literal_start) % 8) % 8;
            if run >= 8 && run - fill >= 8 {
                pack_literals(&values[literal_start..i + fill], width, &mut out);
                write_run(v, run - fill, width, &mut out);
                literal_start = i + run;
            }
            i += run;
        }
        pack_literals(&values[literal_start..], width, &mut out);
        out
    }

    #[test]
    fn runs_of_every_length_between_literals_decode_to_what_was_encoded() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for width in [1u8, 3, 8, 12, 17] {
            for _ in 0..200 {
                let mut values = Vec::new();
                while values.len() < 300 {
                    let v = next(1 << width.min(16)) as u32;
                    let len = match next(4) {
                        0 => 1 + next(30) as usize,
                        _ => 1,
                    };
                    values.extend(std::iter::repeat_n(v, len));
                }
                let mut out = Vec::new();
                encode(&values, width, &mut out);
                assert_eq!(decode(&out, width, values.len()), values, "width {width}");
                assert_eq!(out, reference(&values, width), "width {width}: runs missed");
            }
        }
    }

    #[test]
    fn packs_bit_by_bit_at_every_width_up_to_64() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for width in 0..=64u8 {
            let values: Vec<u64> = (0..32)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    if width == 0 {
                        0
                    } else {
                        seed >> (64 - u32::from(width))
                    }
                })
                .collect();
            // One bit at a time, least significant first.
            let mut expected = vec![0u8; 32 * usize::from(width) / 8];
            for (i, &v) in values.iter().enumerate() {
                for b in 0..usize::from(width) {
                    if v >> b & 1 == 1 {
                        let at = i * usize::from(width) + b;
                        expected[at / 8] |= 1 << (at % 8);
                    }
                }
            }
            let mut out = vec![0xAA];
            pack(values.iter().copied(), 32, width, &mut out);
            assert_eq!(out[1..], expected[..], "width {width}");
        }
    }
}
