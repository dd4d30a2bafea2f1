//! Restores entry-time order.
//!
//! The kernel sends a call when it returns, so records arrive ordered by exit time while the
//! table is ordered by entry time. Records are held until the watermark (now minus a lag)
//! passes their entry time; holding only that window keeps memory bounded by rate × lag,
//! not by the length of the capture. A call that blocked longer than the lag arrives after
//! its neighbours were written: the writer holds it back for the next file.

use std::{cmp::Reverse, collections::BinaryHeap};

use slab::Slab;

use crate::{
    files::block_queue::{BlockQueue, DrainFront},
    kernel::call::Call,
    prefetch,
};

/// Most calls arrive in entry order already: one thread's calls never overlap, so only a
/// call that blocked while other threads' calls returned arrives late. Those in order
/// wait in a queue and leave from its front, without being sorted or moved; only the late
/// ones are ordered. Sorting everything held (then a tenth of a second of 128-byte calls, 20
/// times a second) was the writer thread's largest cost on a busy single thread.
#[derive(Default)]
pub struct Reorder {
    /// Calls in entry order, oldest first.
    in_order: BlockQueue<Call>,
    /// Calls that entered before the newest of `in_order`.
    late: Late,
    /// The entry time of the newest of `in_order` while it holds any: calls join it in
    /// entry order and leave from its front, so its newest is the last that joined.
    newest: u64,
}

/// The late calls: each is moved into a slot when it comes and out when it is due, and
/// only its key is ordered, in a heap. Kept as one vector sorted at each take, the calls
/// held were merged again with every take's newcomers, 128 bytes a move; on PostgreSQL,
/// whose backends block, that merge was 4-9% of the writer's instructions, more the more
/// often the writer took (BENCHMARKS.md).
#[derive(Default)]
struct Late {
    calls: Slab<Call>,
    /// Oldest first: entry time, then the last to come first among equal times, as the
    /// sorted vector gave them (so the files hold the same rows in the same order); then
    /// the call's slot.
    keys: BinaryHeap<Reverse<(u64, u64, usize)>>,
    arrivals: u64,
}

impl Late {
    fn push(&mut self, call: Call) {
        let enter = call.enter_ns();
        let slot = self.calls.insert(call);
        self.keys.push(Reverse((enter, !self.arrivals, slot)));
        self.arrivals += 1;
    }

    /// The entry time of the oldest.
    fn oldest(&self) -> Option<u64> {
        self.keys.peek().map(|Reverse((enter, _, _))| *enter)
    }

    fn pop(&mut self) -> Option<Call> {
        let Reverse((_, _, slot)) = self.keys.pop()?;
        let call = self.calls.remove(slot);
        // The next to leave is anywhere in the slots: without asking for it now, each
        // call taken waited on memory, and on PostgreSQL the heap was no faster than the
        // sorted vector for all its fewer instructions (BENCHMARKS.md).
        match self.keys.peek() {
            Some(Reverse((_, _, next))) => prefetch::lines_of(&self.calls[*next]),
            // Every slot is free: start again from the first, so that the slots in use
            // stay few and close together.
            None => self.calls.clear(),
        }
        Some(call)
    }

    fn len(&self) -> usize {
        self.keys.len()
    }
}

impl Reorder {
    pub fn push(&mut self, events: impl IntoIterator<Item = Call>) {
        for call in events {
            self.push_one(call);
        }
    }

    #[inline(always)]
    pub fn push_one(&mut self, call: Call) {
        if !self.in_order.is_empty() && call.enter_ns() < self.newest {
            self.late.push(call);
        } else {
            self.newest = call.enter_ns();
            self.in_order.push_back(call);
        }
    }

    pub fn len(&self) -> usize {
        self.in_order.len() + self.late.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes and yields, sorted by entry time, every record entered before `watermark`.
    pub fn take_before(&mut self, watermark: u64) -> Due<'_> {
        let due = self.in_order.partition_point(|e| e.enter_ns() < watermark);
        Due {
            in_order: self.in_order.drain_front(due),
            late: &mut self.late,
            watermark,
        }
    }

    /// Removes and yields, sorted, at least the oldest `n` calls of those that arrived in
    /// order, and every late call that entered before them.
    pub fn take_oldest(&mut self, n: usize) -> Due<'_> {
        let watermark = match self.in_order.get(n) {
            Some(call) => call.enter_ns(),
            None => self
                .in_order
                .back()
                .map_or(0, |c| c.enter_ns().saturating_add(1)),
        };
        self.take_before(watermark)
    }

    /// Removes and yields everything, sorted: the capture is stopping.
    pub fn take_all(&mut self) -> Due<'_> {
        self.take_before(u64::MAX)
    }
}

/// The calls due, merged from the two sorted sources. The heads are compared where they
/// lie: `Peekable` moved each call into its peek slot and out again, and those
/// moves were a tenth of the writer's samples on nginx (BENCHMARKS.md). Late calls not
/// taken from it stay held.
pub struct Due<'a> {
    in_order: DrainFront<'a, Call>,
    late: &'a mut Late,
    watermark: u64,
}

impl Due<'_> {
    /// The entry time of the oldest late call, if it is due.
    #[inline]
    fn late_due(&self) -> Option<u64> {
        self.late.oldest().filter(|&enter| enter < self.watermark)
    }

    /// The calls due next that can be taken where they lie: those that arrived in order,
    /// up to the end of their block and the next late call. They leave by
    /// [`Self::skip_run`], not by being moved out one by one.
    pub fn run(&mut self) -> &[Call] {
        let late = self.late_due();
        let run = self.in_order.front_run();
        match late {
            // Ties go to the calls in order, as in `next`.
            Some(t) => &run[..run.partition_point(|c| c.enter_ns() <= t)],
            None => run,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.in_order.is_empty() && self.late_due().is_none()
    }

    /// Drops the first `n` calls of [`Self::run`]: they have been written.
    pub fn skip_run(&mut self, n: usize) {
        self.in_order.skip_run(n);
    }
}

impl Iterator for Due<'_> {
    type Item = Call;

    #[inline]
    fn next(&mut self) -> Option<Call> {
        let late_first = match (self.in_order.peek(), self.late_due()) {
            (Some(a), Some(t)) => t < a.enter_ns(),
            (None, late) => late.is_some(),
            (Some(_), None) => false,
        };
        if late_first {
            self.late.pop()
        } else {
            self.in_order.next()
        }
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

    #[test]
    fn late_calls_merge_into_their_place_among_those_in_order() {
        let mut r = Reorder::default();
        // 100..110 in order; 95, 103 and 99 late (they blocked while others returned).
        r.push((100..105).map(|t| call(t, 1)));
        r.push([call(95, 2), call(103, 3)]);
        r.push((105..110).map(|t| call(t, 1)));
        r.push([call(99, 4)]);
        let due: Vec<u64> = r.take_before(104).map(|c| c.enter_ns()).collect();
        assert_eq!(due, vec![95, 99, 100, 101, 102, 103, 103]);
        let rest: Vec<u64> = r.take_all().map(|c| c.enter_ns()).collect();
        assert_eq!(rest, vec![104, 105, 106, 107, 108, 109]);
    }

    /// xorshift64: the tests' arrivals, the same in every run.
    fn next(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    /// The window as it was before late calls were sorted a part at a time: everything
    /// held, sorted at each take by a stable sort of the calls themselves.
    fn takes_by_full_sort(steps: &[(Vec<Call>, u64)]) -> Vec<(u64, u32)> {
        let (mut in_order, mut late, mut newest) = (Vec::<Call>::new(), Vec::<Call>::new(), 0);
        let mut out = Vec::new();
        for (calls, watermark) in steps {
            for c in calls.iter().cloned() {
                if !in_order.is_empty() && c.enter_ns() < newest {
                    late.push(c);
                } else {
                    newest = c.enter_ns();
                    in_order.push(c);
                }
            }
            late.sort_by_key(|c| Reverse(c.enter_ns()));
            let split = late.partition_point(|c| c.enter_ns() >= *watermark);
            let due = in_order.partition_point(|c| c.enter_ns() < *watermark);
            let mut a: std::collections::VecDeque<Call> = in_order.drain(..due).collect();
            let mut b: Vec<Call> = late.drain(split..).collect();
            loop {
                let late_first = match (a.front(), b.last()) {
                    (Some(x), Some(y)) => y.enter_ns() < x.enter_ns(),
                    (None, y) => y.is_some(),
                    (Some(_), None) => false,
                };
                let next = if late_first { b.pop() } else { a.pop_front() };
                match next {
                    Some(c) => out.push((c.enter_ns(), c.event.tid)),
                    None => break,
                }
            }
        }
        out
    }

    #[test]
    fn late_calls_leave_in_the_order_a_full_sort_gave() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || next(&mut seed);
        let mut steps = Vec::new();
        let mut now = 1000;
        let mut tid = 0;
        for step in 0..60 {
            let calls: Vec<Call> = (0..next() % 200)
                .map(|_| {
                    now += next() % 3;
                    tid += 1;
                    // A third arrive late, entered up to 400 before; times repeat often.
                    let enter = if next() % 3 == 0 {
                        now - next() % 400
                    } else {
                        now
                    };
                    call(enter, tid)
                })
                .collect();
            let watermark = if step == 59 { u64::MAX } else { now - 150 };
            steps.push((calls, watermark));
        }
        let mut r = Reorder::default();
        let mut got = Vec::new();
        for (calls, watermark) in &steps {
            r.push(calls.iter().cloned());
            got.extend(
                r.take_before(*watermark)
                    .map(|c| (c.enter_ns(), c.event.tid)),
            );
        }
        assert!(r.is_empty());
        assert_eq!(got.len(), tid as usize);
        assert_eq!(got, takes_by_full_sort(&steps));
    }

    #[test]
    fn runs_stop_at_the_next_late_call() {
        let mut r = Reorder::default();
        r.push((100..110).map(|t| call(t, 1)));
        r.push([call(103, 2), call(107, 3)]);
        let mut due = r.take_before(109);
        let first: Vec<u64> = due.run().iter().map(Call::enter_ns).collect();
        assert_eq!(first, vec![100, 101, 102, 103]);
        due.skip_run(2);
        let order: Vec<u64> = due.by_ref().take(3).map(|c| c.enter_ns()).collect();
        assert_eq!(order, vec![102, 103, 103]);
        assert_eq!(due.run().len(), 4);
        let rest: Vec<u64> = due.map(|c| c.enter_ns()).collect();
        assert_eq!(rest, vec![104, 105, 106, 107, 107, 108]);
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn calls_not_taken_from_a_due_stay_held() {
        let mut r = Reorder::default();
        r.push((100..110).map(|t| call(t, 1)));
        r.push([call(101, 2), call(102, 3), call(107, 4)]);
        let first: Vec<(u64, u32)> = r
            .take_before(105)
            .take(2)
            .map(|c| (c.enter_ns(), c.event.tid))
            .collect();
        assert_eq!(first, vec![(100, 1), (101, 1)]);
        // Dropped part-way (a write error ends the writer so), the `Due` loses nothing:
        // the late calls it did not give stay held, as the calls in order do.
        let rest: Vec<(u64, u32)> = r.take_all().map(|c| (c.enter_ns(), c.event.tid)).collect();
        let mut expected = vec![(101, 2), (102, 1), (102, 3), (103, 1), (104, 1)];
        expected.extend([(105, 1), (106, 1), (107, 1), (107, 4), (108, 1), (109, 1)]);
        assert_eq!(rest, expected);
    }

    #[test]
    fn the_oldest_leave_first_with_the_late_calls_before_them() {
        let mut r = Reorder::default();
        r.push((100..110).map(|t| call(t, 1)));
        r.push([call(101, 2), call(107, 3)]);
        let due: Vec<u64> = r.take_oldest(3).map(|c| c.enter_ns()).collect();
        assert_eq!(due, vec![100, 101, 101, 102]);
        let due: Vec<u64> = r.take_oldest(100).map(|c| c.enter_ns()).collect();
        assert_eq!(due, vec![103, 104, 105, 106, 107, 107, 108, 109]);
        assert!(r.is_empty());
    }
}
