//! Restores entry-time order.
//!
//! The kernel sends a call when it returns, so records arrive ordered by exit time while the
//! table is ordered by entry time. Records are held until the watermark (now minus a lag)
//! passes their entry time; holding only that window keeps memory bounded by rate × lag,
//! not by the length of the capture. A call that blocked longer than the lag arrives after
//! its neighbours were written: the writer holds it back for the next file.

use std::{cmp::Reverse, iter::Rev, vec::Drain};

use crate::kernel::call::Call;

/// Held newest first, so that the calls due are the tail and taking them moves nothing.
/// Taken from the front, the rest (a tenth of a second of calls) would move 20 times a
/// second; a deque instead spent a tenth of the writer's time making itself contiguous to
/// be sorted.
#[derive(Default)]
pub struct Reorder {
    pending: Vec<Call>,
}

impl Reorder {
    pub fn push(&mut self, events: impl IntoIterator<Item = Call>) {
        self.pending.extend(events);
    }

    pub fn push_one(&mut self, call: Call) {
        self.pending.push(call);
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Removes and yields, sorted by entry time, every record entered before `watermark`.
    pub fn take_before(&mut self, watermark: u64) -> Rev<Drain<'_, Call>> {
        // What was held is sorted, and arrivals are mostly in order: runs, which the sort
        // merges in near-linear time.
        self.pending.sort_by_key(|c| Reverse(c.enter_ns()));
        let split = self.pending.partition_point(|e| e.enter_ns() >= watermark);
        self.pending.drain(split..).rev()
    }

    /// Removes and yields everything, sorted: the capture is stopping.
    pub fn take_all(&mut self) -> Rev<Drain<'_, Call>> {
        self.take_before(u64::MAX)
    }
}

#[cfg(test)]
pub(crate) fn event(enter_ns: u64, tid: u32) -> tracepost_common::SyscallEvent {
    tracepost_common::SyscallEvent {
        enter_ns,
        duration_ns: 10,
        ret: 0,
        args: [0; 6],
        pid: tid,
        tid,
        nr: 39,
        flags: 0,
        comm: *b"test\0\0\0\0\0\0\0\0\0\0\0\0",
    }
}

/// A plain call, for tests.
#[cfg(test)]
pub(crate) fn call(enter_ns: u64, tid: u32) -> Call {
    event(enter_ns, tid).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_only_what_the_watermark_passed_in_entry_order() {
        let mut r = Reorder::default();
        r.push([call(30, 1), call(10, 2), call(50, 3), call(20, 4)]);
        let ready: Vec<u64> = r.take_before(31).map(|c| c.enter_ns()).collect();
        assert_eq!(ready, vec![10, 20, 30]);
        assert_eq!(r.len(), 1);
        r.push([call(40, 5)]);
        let rest: Vec<u64> = r.take_all().map(|c| c.enter_ns()).collect();
        assert_eq!(rest, vec![40, 50]);
        assert!(r.is_empty());
    }
}
