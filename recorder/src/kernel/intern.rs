//! One shared string per path the kernel sends, for as long as it keeps recurring.
//!
//! A busy server names the same few files over and over (nginx opens and stats its one
//! file three times a request). Decoding each path into its own `String` was two heap
//! allocations per call in the capture thread and two frees in the writer thread, about a
//! tenth of the recorder's CPU on nginx (BENCHMARKS.md). Interned, a path that recurs costs
//! one hash of its bytes, and everything downstream (the fd table, the `path` and
//! `fd_path` columns) keys it by address instead of hashing it again. A call that names
//! it and nothing else shares one context too, so that it costs no allocation.
use std::{collections::HashMap, sync::Arc};

use crate::kernel::call::Context;

/// Past about this many bytes of distinct paths the table starts again. The traced
/// programs choose the paths, so nothing else bounds it; a path seen again after a reset
/// is interned afresh, which costs a second dictionary entry at most.
const MAX_BYTES: usize = 2 * 1024 * 1024;
/// What an entry holds besides its bytes, twice (the key and the string): the string's
/// and the context's allocations with their headers, the table's slot. So that a flood of
/// one-byte paths is bounded too.
const ENTRY_OVERHEAD: usize = size_of::<Context>() + 128;

/// A path's shared text, and the context of a call that names it and nothing else.
struct Entry {
    text: Arc<str>,
    context: Arc<Context>,
}

/// Paths by their raw bytes, as the kernel sent them. Seeded hashing: the traced
/// programs choose these bytes, and must not be able to make every lookup collide.
#[derive(Default)]
pub struct Interner {
    by_bytes: HashMap<Box<[u8]>, Entry, foldhash::quality::RandomState>,
    bytes: usize,
}

impl Interner {
    /// The shared text of `raw`. Bytes that are not UTF-8 are replaced, as everywhere
    /// else a path becomes text.
    pub fn intern(&mut self, raw: &[u8]) -> Arc<str> {
        match self.by_bytes.get(raw) {
            Some(known) => known.text.clone(),
            None => self.insert(raw).text.clone(),
        }
    }

    /// The shared context of a call that names `raw`, whole, and nothing else.
    pub fn context(&mut self, raw: &[u8]) -> Arc<Context> {
        match self.by_bytes.get(raw) {
            Some(known) => known.context.clone(),
            None => self.insert(raw).context.clone(),
        }
    }

    fn insert(&mut self, raw: &[u8]) -> &Entry {
        let cost = 2 * raw.len() + ENTRY_OVERHEAD;
        if self.bytes + cost > MAX_BYTES {
            self.by_bytes = HashMap::default();
            self.bytes = 0;
        }
        let text: Arc<str> = String::from_utf8_lossy(raw).into();
        let context = Context::path(text.clone());
        self.bytes += cost;
        self.by_bytes
            .entry(raw.into())
            .or_insert(Entry { text, context })
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_bytes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::decode::Extra;

    #[test]
    fn a_recurring_path_is_one_shared_string() {
        let mut paths = Interner::default();
        let a = paths.intern(b"/var/www/index.html");
        let b = paths.intern(b"/var/www/index.html");
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(&*a, "/var/www/index.html");
        let c = paths.intern(b"/etc/hosts");
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(&*paths.intern(b"bad\xffname"), "bad\u{fffd}name");
    }

    #[test]
    fn calls_that_name_the_same_path_share_one_context() {
        let mut paths = Interner::default();
        let a = paths.context(b"/var/www/index.html");
        let b = paths.context(b"/var/www/index.html");
        assert!(Arc::ptr_eq(&a, &b));
        let Some(Extra::Path {
            path, truncated, ..
        }) = a.extra()
        else {
            panic!("a path context: {a:?}");
        };
        assert!(!truncated);
        assert!(Arc::ptr_eq(path, &paths.intern(b"/var/www/index.html")));
        assert!(!Arc::ptr_eq(&a, &paths.context(b"/etc/hosts")));
    }

    #[test]
    fn distinct_paths_without_end_hold_a_bounded_table() {
        let mut paths = Interner::default();
        let first = paths.intern(b"/tmp/0");
        for i in 0..2_000_000u32 {
            paths.intern(format!("/tmp/{i}").as_bytes());
            assert!(paths.bytes <= MAX_BYTES);
        }
        assert!(paths.len() < 2_000_000);
        // Started again: still the same text, a new string, and the old one still valid.
        let again = paths.intern(b"/tmp/0");
        assert_eq!(first, again);
        assert!(!Arc::ptr_eq(&first, &again));
    }
}
