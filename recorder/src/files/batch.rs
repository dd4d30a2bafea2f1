//! Kernel records to Arrow: `syscalls` batches from events, `aggregates` batches from
//! sampled totals.
use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use arrow_array::{
    ArrayRef, RecordBatch,
    builder::{BooleanBuilder, Int32Builder, Int64Builder, StringBuilder},
    types::TimestampMicrosecondType,
};
use arrow_schema::ArrowError;
use tracepost_common::{
    BUCKET_UNKNOWN, ERRNO_UNKNOWN, NO_STACK, REASON_BELOW_MIN_DURATION, REASON_NOT_FAILED,
    REASON_RING_FULL, SyscallEvent,
};
use tracepost_schema::{aggregates, ts_value};

use crate::{
    kernel::aggregates::AggregateRow, kernel::clock::WallClock,
    kernel::kernel_stacks::KernelStacks, kernel::names, kernel::syscall_table::ArgTable,
    user_stacks::chains::Chains,
};

/// Builds batches. Holds what is reused across batches (the name table).
#[derive(Clone)]
pub struct BatchBuilder {
    clock: WallClock,
    names: names::SyscallNames,
    args: Arc<ArgTable>,
    /// `record --stacks`. Shared by every file's columns, which run on the writer thread
    /// only: the lock is never contended.
    stacks: Option<Arc<Mutex<KernelStacks>>>,
    /// `record --stacks`: the user-space chains the capture thread unwound, and
    /// `--stack-min`: shorter calls have none, and are not looked up.
    chains: Option<(Arc<Mutex<Chains>>, u64)>,
}

impl BatchBuilder {
    pub fn new(clock: WallClock) -> Self {
        Self {
            clock,
            names: names::SyscallNames::new(),
            args: Arc::new(ArgTable::new()),
            stacks: None,
            chains: None,
        }
    }

    /// With `record --stacks`: rows carry the user-space chain that made their call.
    pub fn with_user_stacks(mut self, chains: Option<Arc<Mutex<Chains>>>, min: Duration) -> Self {
        let min_ns = u64::try_from(min.as_nanos()).unwrap_or(u64::MAX);
        self.chains = chains.map(|c| (c, min_ns));
        self
    }

    /// The user-space chain of the call `e`, with its id. Taken: each call's row is
    /// written once.
    pub fn user_stack(&self, e: &SyscallEvent) -> Option<(u64, Arc<str>)> {
        let (chains, min_ns) = self.chains.as_ref()?;
        if e.duration_ns < *min_ns {
            return None;
        }
        chains.lock().ok()?.take(e.tid, e.enter_ns)
    }

    /// The rows of calls that entered before `t` (monotonic ns) are written: a chain that
    /// comes for one of them now is late ([`Chains::late`]).
    pub fn rows_written_before(&self, t: u64) {
        if let Some((chains, _)) = &self.chains
            && let Ok(mut c) = chains.lock()
        {
            c.rows_written_before(t);
        }
    }

    /// With `record --stacks`: rows name the kernel stack where their call blocked.
    pub fn with_stacks(mut self, stacks: Option<KernelStacks>) -> Self {
        self.stacks = stacks.map(|s| Arc::new(Mutex::new(s)));
        self
    }

    /// The kernel stack of a call that took `duration_ns` and blocked longest at `id`.
    pub fn kernel_stack(&self, id: i32, duration_ns: u64) -> Option<Arc<str>> {
        // Most calls never block: no lock for them.
        if id == NO_STACK {
            return None;
        }
        let stacks = self.stacks.as_ref()?;
        // A writer that panicked while holding it has ended the capture already.
        let mut stacks = stacks.lock().ok()?;
        stacks.text(id, duration_ns)
    }

    /// The per-syscall argument table the batches use, for stages before them.
    pub fn arg_table(&self) -> Arc<ArgTable> {
        self.args.clone()
    }

    pub fn clock(&self) -> WallClock {
        self.clock
    }

    pub fn names(&self) -> &names::SyscallNames {
        &self.names
    }

    pub fn args(&self) -> &ArgTable {
        &self.args
    }

    /// The Arrow batch of `calls`, as the table's files held them before the page writer:
    /// the oracle that the page writer's files must read back as.
    #[cfg(test)]
    pub fn build(
        &self,
        calls: &[crate::kernel::call::Call],
        sched: bool,
    ) -> Result<RecordBatch, ArrowError> {
        use arrow_array::builder::UInt64Builder;
        use tracepost_common::FLAG_NO_RETURN;
        use tracepost_schema::syscalls;

        use crate::kernel::decode::Extra;

        let n = calls.len();
        let mut ts =
            arrow_array::builder::PrimitiveBuilder::<TimestampMicrosecondType>::with_capacity(n)
                .with_timezone("UTC");
        let mut ts_ns = Int64Builder::with_capacity(n);
        let mut duration = Int64Builder::with_capacity(n);
        let mut pid = Int32Builder::with_capacity(n);
        let mut tid = Int32Builder::with_capacity(n);
        let mut comm = StringBuilder::with_capacity(n, n * 8);
        let mut syscall = StringBuilder::with_capacity(n, n * 8);
        let mut nr = Int32Builder::with_capacity(n);
        let mut ret = Int64Builder::with_capacity(n);
        let mut errno = StringBuilder::with_capacity(n, n);
        let mut args: [UInt64Builder; 6] = std::array::from_fn(|_| UInt64Builder::with_capacity(n));
        let mut path = StringBuilder::new();
        let mut path_truncated = BooleanBuilder::with_capacity(n);
        let mut addr = StringBuilder::new();
        let mut fd = Int32Builder::with_capacity(n);
        let mut fd_path = StringBuilder::new();
        let mut bytes = Int64Builder::with_capacity(n);
        let mut oncpu = Int64Builder::with_capacity(n);
        let mut runq = Int64Builder::with_capacity(n);
        let mut blocked = Int64Builder::with_capacity(n);
        let mut woken = Int64Builder::with_capacity(n);
        let mut waker_pid = Int32Builder::with_capacity(n);
        let mut waker_tid = Int32Builder::with_capacity(n);
        let mut waker_comm = StringBuilder::new();
        let mut waker_syscall = StringBuilder::new();
        let mut waker_kind = StringBuilder::new();
        let mut kernel_stack = StringBuilder::new();
        let mut user_stack = StringBuilder::new();

        for call in calls {
            let e = &call.event;
            let wall_ns = self.clock.to_wall_ns(e.enter_ns);
            ts.append_value(ts_value(wall_ns));
            ts_ns.append_value(wall_ns);
            if e.flags & FLAG_NO_RETURN != 0 {
                duration.append_null();
                ret.append_null();
                errno.append_null();
            } else {
                duration.append_value(e.duration_ns as i64);
                ret.append_value(e.ret);
                match names::errno_of(e.ret) {
                    Some(code) => errno.append_value(names::errno_name(code)),
                    None => errno.append_null(),
                }
            }
            pid.append_value(e.pid as i32);
            tid.append_value(e.tid as i32);
            comm.append_value(comm_str(&e.comm));
            syscall.append_value(self.names.get(e.nr));
            nr.append_value(e.nr as i32);
            for (builder, value) in args.iter_mut().zip(e.args) {
                builder.append_value(value);
            }
            match call.extra() {
                Some(Extra::Path {
                    path: p, truncated, ..
                }) => {
                    path.append_value(p);
                    path_truncated.append_value(*truncated);
                    addr.append_null();
                }
                Some(Extra::Addr(a)) => {
                    path.append_null();
                    path_truncated.append_null();
                    addr.append_value(a);
                }
                _ => {
                    path.append_null();
                    path_truncated.append_null();
                    addr.append_null();
                }
            }
            fd.append_option(self.args.fd_of(call));
            fd_path.append_option(call.fd_path.as_deref());
            let returned = e.flags & FLAG_NO_RETURN == 0;
            bytes.append_option(returned.then(|| self.args.bytes(e.nr, e.ret)).flatten());
            let t = call.sched();
            oncpu.append_option(t.map(|t| t.oncpu_ns as i64));
            runq.append_option(t.map(|t| t.runq_ns as i64));
            blocked.append_option(t.map(|t| t.blocked_ns as i64));
            let kind = t.and_then(|t| names::waker_kind(t.waker_kind));
            let waker = t.filter(|t| kind.is_some() && t.waker_tid != 0);
            waker_kind.append_option(kind);
            woken.append_option(
                t.filter(|_| kind.is_some())
                    .map(|t| self.clock.to_wall_ns(t.woken_ns)),
            );
            waker_pid.append_option(waker.map(|t| t.waker_pid as i32));
            waker_tid.append_option(waker.map(|t| t.waker_tid as i32));
            waker_comm.append_option(waker.map(|t| comm_str(&t.waker_comm)));
            waker_syscall.append_option(
                waker
                    .filter(|t| t.waker_nr != tracepost_common::NO_SYSCALL)
                    .map(|t| self.names.get(t.waker_nr)),
            );
            kernel_stack
                .append_option(t.and_then(|t| self.kernel_stack(t.blocked_stack, e.duration_ns)));
            user_stack.append_option(t.and_then(|_| self.user_stack(e)).map(|(_, text)| text));
        }

        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(ts.finish()),
            Arc::new(ts_ns.finish()),
            Arc::new(duration.finish()),
            Arc::new(pid.finish()),
            Arc::new(tid.finish()),
            Arc::new(comm.finish()),
            Arc::new(syscall.finish()),
            Arc::new(nr.finish()),
            Arc::new(ret.finish()),
            Arc::new(errno.finish()),
        ];
        columns.extend(args.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
        columns.extend([
            Arc::new(path.finish()) as ArrayRef,
            Arc::new(path_truncated.finish()),
            Arc::new(addr.finish()),
            Arc::new(fd.finish()),
            Arc::new(fd_path.finish()),
            Arc::new(bytes.finish()),
        ]);
        if sched {
            columns.extend([
                Arc::new(oncpu.finish()) as ArrayRef,
                Arc::new(runq.finish()),
                Arc::new(blocked.finish()),
                Arc::new(woken.finish()),
                Arc::new(waker_pid.finish()),
                Arc::new(waker_tid.finish()),
                Arc::new(waker_comm.finish()),
                Arc::new(waker_syscall.finish()),
                Arc::new(waker_kind.finish()),
                Arc::new(kernel_stack.finish()),
                Arc::new(user_stack.finish()),
            ]);
        }
        RecordBatch::try_new(syscalls::file_schema(sched), columns)
    }
}

impl BatchBuilder {
    pub fn build_aggregates(&self, rows: &[AggregateRow]) -> Result<RecordBatch, ArrowError> {
        let n = rows.len();
        let ts = || {
            arrow_array::builder::PrimitiveBuilder::<TimestampMicrosecondType>::with_capacity(n)
                .with_timezone("UTC")
        };
        let (mut start, mut end) = (ts(), ts());
        let mut reason = StringBuilder::with_capacity(n, n * 16);
        let mut pid = Int32Builder::with_capacity(n);
        let mut syscall = StringBuilder::with_capacity(n, n * 8);
        let mut nr = Int32Builder::with_capacity(n);
        let mut errno = StringBuilder::with_capacity(n, n);
        let mut failed = BooleanBuilder::with_capacity(n);
        let mut bucket = Int32Builder::with_capacity(n);
        let mut calls = Int64Builder::with_capacity(n);
        let mut total = Int64Builder::with_capacity(n);
        for r in rows {
            start.append_value(ts_value(self.clock.to_wall_ns(r.start_ns)));
            end.append_value(ts_value(self.clock.to_wall_ns(r.end_ns)));
            reason.append_value(match r.reason {
                REASON_RING_FULL => aggregates::RING_FULL,
                REASON_BELOW_MIN_DURATION => aggregates::BELOW_MIN_DURATION,
                REASON_NOT_FAILED => aggregates::NOT_FAILED,
                _ => aggregates::THREAD_TABLE_FULL,
            });
            calls.append_value(r.calls as i64);
            let Some(k) = r.key else {
                pid.append_null();
                syscall.append_null();
                nr.append_null();
                errno.append_null();
                failed.append_null();
                bucket.append_null();
                total.append_null();
                continue;
            };
            pid.append_value(k.pid as i32);
            syscall.append_value(self.names.get(k.nr));
            nr.append_value(k.nr as i32);
            match k.errno {
                ERRNO_UNKNOWN => {
                    errno.append_null();
                    failed.append_null();
                }
                0 => {
                    errno.append_null();
                    failed.append_value(false);
                }
                e => {
                    errno.append_value(names::errno_name(i32::from(e)));
                    failed.append_value(true);
                }
            }
            if k.bucket == BUCKET_UNKNOWN {
                bucket.append_null();
                total.append_null();
            } else {
                bucket.append_value(i32::from(k.bucket));
                total.append_value(r.total_ns as i64);
            }
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(start.finish()),
            Arc::new(end.finish()),
            Arc::new(reason.finish()),
            Arc::new(pid.finish()),
            Arc::new(syscall.finish()),
            Arc::new(nr.finish()),
            Arc::new(errno.finish()),
            Arc::new(failed.finish()),
            Arc::new(bucket.finish()),
            Arc::new(calls.finish()),
            Arc::new(total.finish()),
        ];
        RecordBatch::try_new(aggregates::schema(), columns)
    }
}

/// The kernel's comm is NUL-padded and not guaranteed UTF-8 (a thread can name itself
/// anything); invalid bytes become U+FFFD rather than failing the batch.
pub fn comm_str(comm: &[u8]) -> std::borrow::Cow<'_, str> {
    let len = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
    String::from_utf8_lossy(&comm[..len])
}

#[cfg(test)]
mod tests {
    use arrow_array::{Array, Int64Array, StringArray, TimestampMicrosecondArray};

    use tracepost_common::FLAG_NO_RETURN;
    use tracepost_schema::syscalls;

    use super::*;
    use crate::files::reorder::event;

    #[test]
    fn maps_events_to_the_contract_columns() {
        let b = BatchBuilder::new(WallClock::with_offset(1_000));
        let mut failed = event(5, 7);
        failed.nr = 257; // openat
        failed.ret = -2;
        let mut exit = event(6, 7);
        exit.nr = 231;
        exit.flags = FLAG_NO_RETURN;
        exit.comm = *b"0123456789abcdef";
        let batch = b.build(&[failed.into(), exit.into()], false).unwrap();
        assert_eq!(batch.schema(), syscalls::file_schema(false));
        let col = |name: &str| batch.column_by_name(name).unwrap().clone();
        let ts = col("ts");
        let ts = ts
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .unwrap();
        assert_eq!(ts.value(0), 1);
        let ts_ns = col("ts_ns");
        let ts_ns = ts_ns.as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(ts_ns.value(0), 1_005);
        let syscall = col("syscall");
        let syscall = syscall.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(syscall.value(0), "openat");
        assert_eq!(syscall.value(1), "exit_group");
        let errno = col("errno");
        let errno = errno.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(errno.value(0), "ENOENT");
        assert!(errno.is_null(1));
        let ret = col("ret");
        let ret = ret.as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(ret.value(0), -2);
        assert!(ret.is_null(1));
        assert!(col("duration_ns").is_null(1));
        let comm = col("comm");
        let comm = comm.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(comm.value(0), "test");
        // A full 16-byte comm has no NUL terminator.
        assert_eq!(comm.value(1), "0123456789abcdef");
    }
}
