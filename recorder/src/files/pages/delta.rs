//! Parquet's DELTA_BINARY_PACKED encoding, for the entry times: rows are sorted by them,
//! so the deltas between neighbours take a few bits each.
use super::hybrid::{pack, varint};

const BLOCK: usize = 128;
const MINIBLOCKS: usize = 4;
const MINIBLOCK: usize = BLOCK / MINIBLOCKS;

/// Appends `values` to `out`.
pub fn encode(values: &[i64], out: &mut Vec<u8>) {
    varint(BLOCK as u64, out);
    varint(MINIBLOCKS as u64, out);
    varint(values.len() as u64, out);
    varint(zigzag(values.first().copied().unwrap_or(0)), out);
    let mut deltas = [0u64; BLOCK];
    let mut prev = values.first().copied().unwrap_or(0);
    for block in values.get(1..).unwrap_or(&[]).chunks(BLOCK) {
        let mut min = i64::MAX;
        for (d, &v) in deltas.iter_mut().zip(block) {
            let delta = v.wrapping_sub(prev);
            prev = v;
            min = min.min(delta);
            *d = delta as u64;
        }
        varint(zigzag(min), out);
        for d in &mut deltas[..block.len()] {
            *d = d.wrapping_sub(min as u64);
        }
        let used = block.len().div_ceil(MINIBLOCK);
        let mut widths = [0u8; MINIBLOCKS];
        for (m, width) in widths.iter_mut().enumerate().take(used) {
            let end = ((m + 1) * MINIBLOCK).min(block.len());
            let or = deltas[m * MINIBLOCK..end].iter().fold(0, |a, &d| a | d);
            *width = (64 - or.leading_zeros()) as u8;
        }
        out.extend_from_slice(&widths);
        for (m, &width) in widths.iter().enumerate().take(used) {
            let end = ((m + 1) * MINIBLOCK).min(block.len());
            pack(
                deltas[m * MINIBLOCK..end].iter().copied(),
                MINIBLOCK,
                width,
                out,
            );
        }
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_a_constant_step() {
        let mut out = Vec::new();
        encode(&[7, 9, 11], &mut out);
        // block 128 (2 bytes), 4 miniblocks, 3 values, first 7 zigzagged = 14; then the
        // block: min delta 2 zigzagged = 4, widths all 0, no packed bytes.
        assert_eq!(out, vec![0x80, 0x01, 4, 3, 14, 4, 0, 0, 0, 0]);
    }
}
