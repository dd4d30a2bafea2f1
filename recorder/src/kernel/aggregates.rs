//! Turns the kernel's running totals of unsent calls into per-interval rows.
//!
//! The kernel never resets a total; each sample is the difference from the previous one.
//! Reading and counting therefore never race, and the rows of all intervals add up to the
//! kernel's totals exactly, which is what lets a postmortem trust counts and errors whatever
//! happened to detail.
use std::collections::HashMap;

use tracepost_common::{
    AggregateKey, AggregateValue, LOST_COUNTERS, REASON_BELOW_MIN_DURATION, REASON_NOT_FAILED,
    REASON_RING_FULL, REASON_THREAD_TABLE_FULL, UNKEYED_BELOW_MIN_DURATION, UNKEYED_NOT_FAILED,
    UNKEYED_RING_FULL, UNKEYED_THREAD_TABLE_FULL,
};

use crate::kernel::bpf::{Aggregates, Lost};

/// One row of the `aggregates` table, before it becomes Arrow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AggregateRow {
    /// CLOCK_MONOTONIC, like the kernel's timestamps.
    pub start_ns: u64,
    pub end_ns: u64,
    /// `REASON_*`.
    pub reason: u8,
    /// `None` for calls the kernel could count but not group (its table was full).
    pub key: Option<AggregateKey>,
    pub calls: u64,
    pub total_ns: u64,
}

/// Which loss counters hold calls that have no aggregate key, and why.
const UNKEYED: [(u32, u8); 4] = [
    (UNKEYED_RING_FULL, REASON_RING_FULL),
    (UNKEYED_NOT_FAILED, REASON_NOT_FAILED),
    (UNKEYED_BELOW_MIN_DURATION, REASON_BELOW_MIN_DURATION),
    (UNKEYED_THREAD_TABLE_FULL, REASON_THREAD_TABLE_FULL),
];

/// Groups of the kernel's table where many may be needed: `--failed` and `--min-duration`
/// group every unsent call there, and `-a` groups the losses of every process on the host.
/// Groups of exited processes are pruned each interval; calls beyond the table are still
/// counted, ungrouped.
const GROUPS: u32 = 32768;
/// Groups where only the losses of the processes in scope (`-p`, a command) are grouped:
/// the calls the recorder could not take (a full staging area, a full thread table).
const LOSS_GROUPS: u32 = 4096;
/// Kernel memory the values may take, above `LOSS_GROUPS`: the table is preallocated with
/// a value per possible CPU per group, so at 64 CPUs `GROUPS` would be 32 MiB.
const VALUES_BUDGET: u64 = 16 << 20;

/// How many groups the kernel's table is made for. Allocating a value per CPU for each
/// group is most of what creating it costs: 32,768 groups took `record` 0.02 CPU-s more
/// to start than 4,096 on two CPUs (BENCHMARKS.md, "Late calls in a heap").
pub fn table_groups(many: bool, possible_cpus: u32) -> u32 {
    if !many {
        return LOSS_GROUPS;
    }
    let per_group = (size_of::<AggregateValue>() as u64) * u64::from(possible_cpus.max(1));
    (VALUES_BUDGET / per_group).clamp(u64::from(LOSS_GROUPS), u64::from(GROUPS)) as u32
}

pub struct Sampler {
    previous: HashMap<AggregateKey, AggregateValue>,
    previous_lost: Lost,
    last_ns: u64,
}

impl Sampler {
    pub fn new(now_ns: u64) -> Self {
        Self {
            previous: HashMap::new(),
            previous_lost: [0; LOST_COUNTERS as usize],
            last_ns: now_ns,
        }
    }

    /// The calls counted since the last sample. Groups of processes that have exited and
    /// counted nothing new are deleted from the kernel's table, so that a long capture of a
    /// busy host never fills it.
    pub fn sample(&mut self, map: &mut Aggregates, lost: Lost, now_ns: u64) -> Vec<AggregateRow> {
        let mut totals = Vec::new();
        for entry in map.iter() {
            // A key deleted between listing and lookup: nothing left to count.
            let Ok((key, per_cpu)) = entry else { continue };
            let mut sum = AggregateValue::default();
            for v in per_cpu.iter() {
                sum.calls += v.calls;
                sum.total_ns += v.total_ns;
            }
            totals.push((key, sum));
        }
        let mut rows = self.rows(totals.iter().copied(), lost, now_ns);
        let mut idle = Vec::new();
        for (key, sum) in totals {
            match self.previous.insert(key, sum) {
                Some(before) if before == sum => idle.push(key),
                _ => {}
            }
        }
        for key in idle {
            if !alive(key.pid) && map.remove(&key).is_ok() {
                self.previous.remove(&key);
            }
        }
        rows.sort_by_key(|r| (r.reason, r.key.map(|k| (k.pid, k.nr, k.errno, k.bucket))));
        rows
    }

    /// The differences from the previous sample, as rows.
    fn rows(
        &mut self,
        totals: impl Iterator<Item = (AggregateKey, AggregateValue)>,
        lost: Lost,
        now_ns: u64,
    ) -> Vec<AggregateRow> {
        let (start_ns, end_ns) = (self.last_ns, now_ns);
        self.last_ns = now_ns;
        let mut rows = Vec::new();
        for (key, sum) in totals {
            let before = self.previous.get(&key).copied().unwrap_or_default();
            let calls = sum.calls.saturating_sub(before.calls);
            if calls > 0 {
                rows.push(AggregateRow {
                    start_ns,
                    end_ns,
                    reason: key.reason,
                    key: Some(key),
                    calls,
                    total_ns: sum.total_ns.saturating_sub(before.total_ns),
                });
            }
        }
        for (index, reason) in UNKEYED {
            let i = index as usize;
            let calls = lost[i].saturating_sub(self.previous_lost[i]);
            if calls > 0 {
                rows.push(AggregateRow {
                    start_ns,
                    end_ns,
                    reason,
                    key: None,
                    calls,
                    total_ns: 0,
                });
            }
        }
        self.previous_lost = lost;
        rows
    }
}

/// Whether `pid` still exists (a zombie does: its calls may still be in flight to us).
fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shrinks_with_the_cpus_and_without_detail_filters() {
        assert_eq!(table_groups(false, 2), 4096);
        assert_eq!(table_groups(false, 512), 4096);
        assert_eq!(table_groups(true, 2), 32768);
        // 16 MiB of values: 16 bytes a CPU a group.
        assert_eq!(table_groups(true, 32), 32768);
        assert_eq!(table_groups(true, 64), 16384);
        assert_eq!(table_groups(true, 4096), 4096);
        assert_eq!(table_groups(true, 0), 32768);
    }

    fn key(pid: u32, errno: u16) -> AggregateKey {
        AggregateKey {
            pid,
            nr: 110,
            errno,
            bucket: 8,
            reason: REASON_RING_FULL,
        }
    }

    fn value(calls: u64) -> AggregateValue {
        AggregateValue {
            calls,
            total_ns: calls * 300,
        }
    }

    #[test]
    fn intervals_hold_differences_that_add_up_to_the_totals() {
        let mut s = Sampler::new(100);
        let mut lost = [0; LOST_COUNTERS as usize];
        let first = s.rows([(key(1, 0), value(5))].into_iter(), lost, 200);
        s.previous.insert(key(1, 0), value(5));
        assert_eq!(first.len(), 1);
        assert_eq!((first[0].start_ns, first[0].end_ns), (100, 200));
        assert_eq!((first[0].calls, first[0].total_ns), (5, 1500));

        lost[UNKEYED_RING_FULL as usize] = 3;
        let second = s.rows(
            [(key(1, 0), value(5)), (key(1, 4), value(2))].into_iter(),
            lost,
            300,
        );
        // The unchanged group has no row; the new group and the unkeyed calls do.
        assert_eq!(second.len(), 2);
        assert_eq!(second[0].key, Some(key(1, 4)));
        assert_eq!(second[0].calls, 2);
        assert_eq!(second[1].key, None);
        assert_eq!((second[1].reason, second[1].calls), (REASON_RING_FULL, 3));
        assert_eq!((second[1].start_ns, second[1].end_ns), (200, 300));

        let third = s.rows(std::iter::empty(), lost, 400);
        assert!(third.is_empty());
    }

    #[test]
    fn only_the_dead_are_pruned() {
        assert!(alive(std::process::id()));
        // Beyond the default pid_max, so never a live process.
        assert!(!alive(4_194_304 + 1));
    }
}
