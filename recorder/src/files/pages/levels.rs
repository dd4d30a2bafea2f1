//! Definition levels kept as bits. A flat column's level is one bit, present or null, and
//! at width 1 a bit-packed group of the hybrid encoding is eight levels, least
//! significant first: exactly a byte of a bitmap. So a page's levels are encoded by
//! copying bytes and measuring runs of whole bytes. Kept as a `u32` a level and packed
//! eight at a time, they were a third of the hybrid encoder's instructions on PostgreSQL
//! (BENCHMARKS.md).
use super::hybrid::varint;

/// Whole bytes of equal levels that make a run: one byte alone stays a literal, since a
/// run costs two bytes where the literal costs one.
const RUN_BYTES: usize = 2;

#[derive(Default)]
pub struct Levels {
    /// Whole words of levels, little-endian.
    bytes: Vec<u8>,
    /// The word being filled, and how many of its bits are levels.
    current: u64,
    used: u32,
}

impl Levels {
    #[inline]
    pub fn push(&mut self, present: bool) {
        self.current |= u64::from(present) << self.used;
        self.used += 1;
        if self.used == 64 {
            self.spill();
        }
    }

    /// Appends a block of levels; the word being filled stays in a register.
    #[inline]
    pub fn extend(&mut self, levels: impl Iterator<Item = bool>) {
        let (mut current, mut used) = (self.current, self.used);
        for present in levels {
            current |= u64::from(present) << used;
            used += 1;
            if used == 64 {
                self.bytes.extend_from_slice(&current.to_le_bytes());
                (current, used) = (0, 0);
            }
        }
        (self.current, self.used) = (current, used);
    }

    fn spill(&mut self) {
        self.bytes.extend_from_slice(&self.current.to_le_bytes());
        self.current = 0;
        self.used = 0;
    }

    pub fn len(&self) -> usize {
        self.bytes.len() * 8 + self.used as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends the levels' hybrid encoding at width 1 to `out`, and empties them.
    pub fn encode_and_clear(&mut self, out: &mut Vec<u8>) {
        let count = self.len();
        let partial = self.used as usize % 8;
        // The levels of the word being filled, padded with zero bits to a whole byte.
        let tail = (self.used as usize).div_ceil(8);
        self.bytes
            .extend_from_slice(&self.current.to_le_bytes()[..tail]);
        encode(&self.bytes, count, partial, out);
        self.bytes.clear();
        self.current = 0;
        self.used = 0;
    }
}

/// Encodes `count` levels held in `bytes`, the last byte holding only `partial` of them if
/// `partial` is not 0.
fn encode(bytes: &[u8], count: usize, partial: usize, out: &mut Vec<u8>) {
    if count == 0 {
        return;
    }
    let whole = if partial == 0 {
        bytes.len()
    } else {
        bytes.len() - 1
    };
    let mut literal_start = 0;
    let mut i = 0;
    while i < whole {
        let b = bytes[i];
        if b != 0 && b != 0xFF {
            i += 1;
            continue;
        }
        let end = i + bytes[i..whole].iter().take_while(|&&x| x == b).count();
        let mut levels = (end - i) * 8;
        // A run to the last whole byte takes in the last levels if they are the same.
        let takes_tail = end == whole && partial != 0 && {
            let mask = (1u8 << partial) - 1;
            bytes[whole] & mask == b & mask
        };
        if takes_tail {
            levels += partial;
        }
        if end - i >= RUN_BYTES || takes_tail {
            literals(&bytes[literal_start..i], out);
            varint((levels as u64) << 1, out);
            out.push(b & 1);
            literal_start = if takes_tail { bytes.len() } else { end };
        }
        i = end;
    }
    // The last literal group may be padded: a reader stops at the page's value count.
    literals(&bytes[literal_start..], out);
}

/// Bit-packed groups, a byte each.
fn literals(groups: &[u8], out: &mut Vec<u8>) {
    if !groups.is_empty() {
        varint(((groups.len() as u64) << 1) | 1, out);
        out.extend_from_slice(groups);
    }
}

#[cfg(test)]
mod tests {
    use super::super::hybrid::tests::decode;
    use super::*;

    fn levels_of(bits: &[bool], by_block: bool) -> Levels {
        let mut levels = Levels::default();
        if by_block {
            levels.extend(bits.iter().copied());
        } else {
            for &b in bits {
                levels.push(b);
            }
        }
        levels
    }

    #[test]
    fn runs_and_literals_decode_to_the_levels_at_every_length() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for round in 0..2000 {
            let mut bits = Vec::new();
            let target = next(400) as usize;
            while bits.len() < target {
                let v = next(2) == 1;
                let len = match next(3) {
                    0 => 1 + next(90) as usize,
                    _ => 1,
                };
                bits.extend(std::iter::repeat_n(v, len));
            }
            bits.truncate(target);
            let mut levels = levels_of(&bits, round % 2 == 0);
            assert_eq!(levels.len(), bits.len());
            let mut out = Vec::new();
            levels.encode_and_clear(&mut out);
            assert!(levels.is_empty());
            let want: Vec<u32> = bits.iter().map(|&b| u32::from(b)).collect();
            assert_eq!(decode(&out, 1, bits.len()), want, "{bits:?}");
        }
    }

    #[test]
    fn all_present_is_one_run_and_mixed_bytes_are_copied() {
        let mut levels = levels_of(&[true; 100], true);
        let mut out = Vec::new();
        levels.encode_and_clear(&mut out);
        // 100 levels of 1: header 100 << 1 = 200 (two bytes of ULEB128), then the value.
        assert_eq!(out, vec![0xC8, 0x01, 1]);

        let bits: Vec<bool> = (0..16).map(|i| i % 3 == 0).collect();
        let mut levels = levels_of(&bits, false);
        let mut out = Vec::new();
        levels.encode_and_clear(&mut out);
        // Two groups, header (2 << 1) | 1, then the bitmap's two bytes.
        assert_eq!(out, vec![5, 0b0100_1001, 0b1001_0010]);
    }
}
