//! The chains unwound so far, by call, until the writer takes each for its call's row.
use std::{collections::HashMap, sync::Arc};

/// Shared by the unwinder, which puts a call's chain in (the capture thread waits for it
/// before it hands on the call's record, unless the unwinder has fallen behind), and the
/// writer, which takes it when it writes the row.
#[derive(Default)]
pub struct Chains {
    /// By (tid, the call's entry time): the chain's id, the chain, and the call's return.
    by_call: HashMap<(u32, u64), (u64, Arc<str>, u64)>,
    /// Each distinct chain once, and its id: the key its file's dictionary knows it by.
    ids: HashMap<Arc<str>, u64>,
    next_id: u64,
    /// Chains pruned before any row took them.
    pruned: u64,
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
        self.by_call
            .insert((tid, enter_ns), (entry.0, entry.1, exit_ns));
    }

    /// The chain of the call of `tid` that entered at `enter_ns`, with its id.
    pub fn take(&mut self, tid: u32, enter_ns: u64) -> Option<(u64, Arc<str>)> {
        self.by_call
            .remove(&(tid, enter_ns))
            .map(|(id, text, _)| (id, text))
    }

    /// Drops the chains of calls that returned before `before_ns`.
    pub fn prune(&mut self, before_ns: u64) {
        let before = self.by_call.len();
        self.by_call
            .retain(|_, (_, _, exit_ns)| *exit_ns >= before_ns);
        self.pruned += (before - self.by_call.len()) as u64;
    }

    /// Chains no row took: pruned, or still here. Once the writer has written every row,
    /// each came after its call's row (or the call's record was lost, which is counted
    /// apart).
    pub fn untaken(&self) -> u64 {
        self.pruned + self.by_call.len() as u64
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
        assert_eq!(c.untaken(), 1);
    }
}
