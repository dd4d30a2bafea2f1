//! The chains unwound so far, by call, until the writer takes each for its call's row.
use std::{collections::HashMap, sync::Arc};

/// Shared by the unwinder, which puts a call's chain in (the capture thread waits for it
/// before it hands on the call's record, unless the unwinder has fallen behind), and the
/// writer, which takes it when it writes the row.
#[derive(Default)]
pub struct Chains {
    /// By (tid, the call's entry time).
    by_call: HashMap<(u32, u64), Entry>,
    /// Each distinct chain once, and its id: the key its file's dictionary knows it by.
    ids: HashMap<Arc<str>, u64>,
    next_id: u64,
    /// The writer has written every row of calls that entered before this (monotonic ns),
    /// but those it holds back for the next file.
    rows_before: u64,
    /// Chains that came after the writer had passed their call, pruned before any row
    /// took them.
    pruned_late: u64,
}

/// One call's chain, until its row takes it.
struct Entry {
    id: u64,
    text: Arc<str>,
    /// When the call returned: what pruning goes by.
    exit_ns: u64,
    /// Whether the writer had already written the rows of calls that entered when this one
    /// did, when the chain came.
    after_row: bool,
}

/// Distinct chains remembered for ids; past it, they start over with new ids, so that
/// no id ever names two chains.
const MAX_DISTINCT: usize = 65536;

impl Chains {
    pub fn put(&mut self, tid: u32, enter_ns: u64, exit_ns: u64, chain: &str) {
        let entry = match self.ids.get_key_value(chain) {
            Some((text, id)) => (*id, text.clone()),
            None => {
                if self.ids.len() >= MAX_DISTINCT {
                    self.ids.clear();
                }
                let text: Arc<str> = chain.into();
                let id = self.next_id;
                self.next_id += 1;
                self.ids.insert(text.clone(), id);
                (id, text)
            }
        };
        let (id, text) = entry;
        let after_row = enter_ns < self.rows_before;
        self.by_call.insert(
            (tid, enter_ns),
            Entry {
                id,
                text,
                exit_ns,
                after_row,
            },
        );
    }

    /// The writer has written the rows of the calls that entered before `t`.
    pub fn rows_written_before(&mut self, t: u64) {
        self.rows_before = self.rows_before.max(t);
    }

    /// The chain of the call of `tid` that entered at `enter_ns`, with its id.
    pub fn take(&mut self, tid: u32, enter_ns: u64) -> Option<(u64, Arc<str>)> {
        self.by_call
            .remove(&(tid, enter_ns))
            .map(|e| (e.id, e.text))
    }

    /// Drops the chains of calls that returned before `before_ns`.
    pub fn prune(&mut self, before_ns: u64) {
        let mut late = 0;
        self.by_call.retain(|_, e| {
            let keep = e.exit_ns >= before_ns;
            late += u64::from(!keep && e.after_row);
            keep
        });
        self.pruned_late += late;
    }

    /// Chains that came after the writer had passed their call and that no row took. A
    /// chain no row took that came in time belongs to a call whose record was lost, which
    /// is counted as lost already.
    pub fn late(&self) -> u64 {
        self.pruned_late + self.by_call.values().filter(|e| e.after_row).count() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_is_taken_once_and_equal_chains_share_an_id() {
        let mut c = Chains::default();
        c.put(7, 100, 110, "main;f;read");
        c.put(8, 200, 210, "main;f;read");
        c.put(7, 300, 310, "main;g;write");
        let (a, text) = c.take(7, 100).unwrap();
        assert_eq!(&*text, "main;f;read");
        assert_eq!(c.take(8, 200).unwrap().0, a);
        assert_ne!(c.take(7, 300).unwrap().0, a);
        assert!(c.take(7, 100).is_none());
        // A long call is kept by its return, not its entry.
        c.put(9, 50, 55, "x");
        c.put(10, 20, 1000, "y");
        c.prune(60);
        assert!(c.take(9, 50).is_none());
        assert!(c.take(10, 20).is_some());
    }

    #[test]
    fn only_chains_that_came_after_their_row_are_late() {
        let mut c = Chains::default();
        // In time, and never taken: its call's record was lost, counted elsewhere.
        c.put(1, 100, 110, "a");
        c.rows_written_before(500);
        // After the writer passed it: late, unless a row held back for the next file
        // takes it.
        c.put(2, 200, 210, "b");
        c.put(3, 300, 310, "c");
        assert!(c.take(3, 300).is_some());
        c.put(4, 600, 610, "d");
        assert_eq!(c.late(), 1);
        c.prune(1000);
        assert_eq!(c.late(), 1);
    }
}
