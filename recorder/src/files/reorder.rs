//! Restores entry-time order.
//!
//! The kernel sends a call when it returns, so records arrive ordered by exit time while the
//! table is ordered by entry time. Records are held until the watermark (now minus a lag)
//! passes their entry time; holding only that window keeps memory bounded by rate × lag,
//! not by the length of the capture. A call that blocked longer than the lag arrives after
//! its neighbours were written: the writer holds it back for the next file.

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, VecDeque, binary_heap::PeekMut},
};

use slab::Slab;

use crate::{
    files::block_queue::{BlockQueue, DrainFront},
    kernel::call::Call,
};

type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

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

/// The late calls, a queue for each thread, merged by a heap of the queues' heads.
///
/// One thread's calls never overlap, so its late calls arrive in entry order: each
/// queue is sorted as it fills, and only the queues' heads (a few dozen threads, not the
/// hundred thousand calls held) need ordering. A heap of every late call's key, each
/// call in a slot of its own, cost about 175 ns a late call on PostgreSQL, whose
/// backends block: the heap was deep, and every call taken was a read from anywhere in
/// the slots (BENCHMARKS.md).
#[derive(Default)]
struct Late {
    queues: Slab<ThreadQueue>,
    /// Which queue a thread's late calls wait in, while it has any.
    by_tid: HashMap<u32, usize>,
    /// Each queue's first call: its key, then the queue's slot. Oldest first: entry
    /// time, then the last to come first among equal times, as a sort of every call held
    /// gave them (so the files hold the same rows in the same order).
    heads: BinaryHeap<Reverse<(Key, usize)>>,
    /// Queues emptied, kept for their allocations, and how many calls they have room for.
    spare: Vec<ThreadQueue>,
    spare_calls: usize,
    arrivals: u64,
    len: usize,
}

/// Entry time, then arrival reversed.
type Key = (u64, u64);

/// One thread's late calls, in key order, and each one's arrival beside it: a call is
/// moved by whole cache lines only at 128 bytes ([`Call`]).
#[derive(Default)]
struct ThreadQueue {
    calls: VecDeque<Call>,
    arrivals: VecDeque<u64>,
}

impl ThreadQueue {
    fn key(&self, at: usize) -> Key {
        (self.calls[at].enter_ns(), self.arrivals[at])
    }
}

/// The spare queues hold room for at most this many calls (about 4 MiB): a queue emptied
/// that would go past it is dropped, so that bursts do not stay held for the whole
/// capture. PostgreSQL's backends empty and refill their queues at every take.
const SPARE_CALLS: usize = 32 * 1024;

impl Late {
    fn push(&mut self, call: Call) {
        let key = (call.enter_ns(), !self.arrivals);
        self.arrivals += 1;
        self.len += 1;
        let tid = call.event.tid;
        let slot = match self.by_tid.get(&tid) {
            Some(&slot) => slot,
            None => {
                let queue = self.spare.pop().unwrap_or_default();
                self.spare_calls -= queue.calls.capacity();
                let slot = self.queues.insert(queue);
                self.by_tid.insert(tid, slot);
                slot
            }
        };
        let queue = &mut self.queues[slot];
        let last = queue.calls.len().checked_sub(1);
        match last {
            None => {
                queue.calls.push_back(call);
                queue.arrivals.push_back(key.1);
                self.heads.push(Reverse((key, slot)));
            }
            Some(last) if queue.key(last) < key => {
                queue.calls.push_back(call);
                queue.arrivals.push_back(key.1);
            }
            Some(_) => {
                // Out of order within its thread: the thread moved to another CPU, whose
                // calls were handed on first. Rare; the call goes into its place.
                let (mut lo, mut hi) = (0, queue.calls.len());
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    if queue.key(mid) < key {
                        lo = mid + 1;
                    } else {
                        hi = mid;
                    }
                }
                let at = lo;
                queue.calls.insert(at, call);
                queue.arrivals.insert(at, key.1);
                if at == 0 {
                    self.heads.retain(|Reverse((_, s))| *s != slot);
                    self.heads.push(Reverse((key, slot)));
                }
            }
        }
    }

    /// The entry time of the oldest.
    fn oldest(&self) -> Option<u64> {
        self.heads.peek().map(|Reverse(((enter, _), _))| *enter)
    }

    fn pop(&mut self) -> Option<Call> {
        let mut head = self.heads.peek_mut()?;
        let Reverse((_, slot)) = *head;
        let queue = &mut self.queues[slot];
        let call = queue
            .calls
            .pop_front()
            .expect("a queue in the heap holds a call");
        queue.arrivals.pop_front();
        self.len -= 1;
        if queue.calls.is_empty() {
            PeekMut::pop(head);
            self.by_tid.remove(&call.event.tid);
            let queue = self.queues.remove(slot);
            let room = queue.calls.capacity();
            if self.spare_calls + room <= SPARE_CALLS {
                self.spare_calls += room;
                self.spare.push(queue);
            }
        } else {
            // The queue's next call replaces it at the top, and sinks to its place.
            *head = Reverse((queue.key(0), slot));
        }
        Some(call)
    }

    fn len(&self) -> usize {
        self.len
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

    /// The entry time of the earliest call held.
    pub fn oldest(&self) -> Option<u64> {
        let in_order = self.in_order.front().map(Call::enter_ns);
        in_order.into_iter().chain(self.late.oldest()).min()
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

    /// Steps of calls, a third of them late, with times that repeat often; `threads`
    /// threads issue them (0: each call its own thread).
    fn random_steps(threads: u64) -> Vec<(Vec<Call>, u64)> {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || next(&mut seed);
        let mut steps = Vec::new();
        let mut now = 1000;
        let mut count = 0;
        for step in 0..60 {
            let calls: Vec<Call> = (0..next() % 200)
                .map(|_| {
                    now += next() % 3;
                    count += 1;
                    let tid = if threads == 0 {
                        count
                    } else {
                        next() % threads
                    };
                    let enter = if next() % 3 == 0 {
                        now - next() % 400
                    } else {
                        now
                    };
                    call(enter, tid as u32)
                })
                .collect();
            let watermark = if step == 59 { u64::MAX } else { now - 150 };
            steps.push((calls, watermark));
        }
        steps
    }

    #[test]
    fn late_calls_leave_in_the_order_a_full_sort_gave() {
        // Five threads: one thread's late calls then often arrive out of their order, as
        // when it moved to a CPU whose calls were handed on first.
        for threads in [0, 5, 1] {
            let steps = random_steps(threads);
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
            // Emptied queues are kept within their bound, and counted right.
            let spare: usize = r.late.spare.iter().map(|q| q.calls.capacity()).sum();
            assert_eq!(spare, r.late.spare_calls);
            assert!(spare <= SPARE_CALLS);
            assert!(r.late.queues.is_empty() && r.late.by_tid.is_empty());
            let count: usize = steps.iter().map(|(calls, _)| calls.len()).sum();
            assert_eq!(got.len(), count, "{threads} threads");
            assert_eq!(got, takes_by_full_sort(&steps), "{threads} threads");
        }
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
