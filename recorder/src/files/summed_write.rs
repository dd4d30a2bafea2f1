//! A file that keeps a running CRC-32 of what is written to it. Arrow's writer makes the
//! small tables' files (`processes`, `capture`, `aggregates`) without checksums in their
//! pages, so the sum of the bytes before the footer goes into the footer itself
//! ([`tracepost_schema::DATA_CHECKSUM_KEY`]), and `analyze` refuses a file that no longer
//! matches it instead of answering from a flipped bit.
use std::io::{self, Write};

use tracepost_schema::DataChecksum;

pub struct SummedWrite<W> {
    inner: W,
    hasher: crc32fast::Hasher,
    len: u64,
}

impl<W: Write> SummedWrite<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: crc32fast::Hasher::new(),
            len: 0,
        }
    }

    /// The sum of everything written so far.
    pub fn sum(&self) -> DataChecksum {
        DataChecksum {
            len: self.len,
            crc: self.hasher.clone().finalize(),
        }
    }

    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for SummedWrite<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sum_is_of_the_bytes_written_however_they_were_split() {
        let mut w = SummedWrite::new(Vec::new());
        w.write_all(b"1234").unwrap();
        w.write_all(b"").unwrap();
        w.write_all(b"56789").unwrap();
        assert_eq!(w.sum(), DataChecksum::of(b"123456789"));
        assert_eq!(w.into_inner(), b"123456789");
    }
}
