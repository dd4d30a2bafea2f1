//! The chains unwound so far, by call, until the writer takes each for its call's row.
use std::{collections::HashMap, sync::Arc};

/// Shared by the capture thread, which puts a call's chain in before it hands on the
/// call's record, and the writer, which takes it when it writes the row: the writer never
/// looks too early.
#[derive(Default)]
pub struct Chains {
    /// By (tid, the call's entry time), with the chain's id.
    by_call: HashMap<(u32, u64), (u64, Arc<str>)>,
    /// Each distinct chain once, and its id: the key its file's dictionary knows it by.
    ids: HashMap<Arc<str>, u64>,
    next_id: u64,
}

/// Distinct chains remembered for ids; past it, they start over with new ids, so that
/// no id ever names two chains.
const MAX_DISTINCT: usize = 65536;

impl Chains {
    pub fn put(&mut self, tid: u32, enter_ns: u64, chain: &str) {
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
        self.by_call.insert((tid, enter_ns), entry);
    }

    /// The chain of the call of `tid` that entered at `enter_ns`, with its id.
    pub fn take(&mut self, tid: u32, enter_ns: u64) -> Option<(u64, Arc<str>)> {
        self.by_call.remove(&(tid, enter_ns))
    }

    /// Drops the chains of calls that entered before `before_ns`.
    pub fn prune(&mut self, before_ns: u64) {
        self.by_call
            .retain(|(_, enter_ns), _| *enter_ns >= before_ns);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_is_taken_once_and_equal_chains_share_an_id() {
        let mut c = Chains::default();
        c.put(7, 100, "main;f;read");
        c.put(8, 200, "main;f;read");
        c.put(7, 300, "main;g;write");
        let (a, text) = c.take(7, 100).unwrap();
        assert_eq!(&*text, "main;f;read");
        assert_eq!(c.take(8, 200).unwrap().0, a);
        assert_ne!(c.take(7, 300).unwrap().0, a);
        assert!(c.take(7, 100).is_none());
        c.put(9, 50, "x");
        c.prune(60);
        assert!(c.take(9, 50).is_none());
    }
}
