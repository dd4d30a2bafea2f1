//! Which calls wait for an event instead of doing work, written down once.
//!
//! A server spends most of its time in `epoll_wait` and a shell in `wait4`: ranked by time,
//! idle waiting crowds out the calls that did the work, which are what a postmortem looks
//! for. The report, the `waiting` canned query and anyone's SQL share this one rule
//! through the SQL function `is_waiting(syscall, arg1, fd_path, duration_ns)`.
use std::sync::Arc;

use datafusion::{
    arrow::{
        array::{Array, ArrayRef, AsArray, BooleanArray},
        compute::cast,
        datatypes::{DataType, Int64Type, UInt64Type},
    },
    error::Result,
    logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf},
};

/// Calls whose purpose is to wait: for a child, an fd to become ready, a timer, a signal,
/// a connection, a message or an I/O completion.
const WAIT_CALLS: &[&str] = &[
    "wait4",
    "waitid",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "poll",
    "ppoll",
    "select",
    "pselect6",
    "nanosleep",
    "clock_nanosleep",
    "pause",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "accept",
    "accept4",
    "msgrcv",
    "semop",
    "semtimedop",
    "mq_timedreceive",
    "io_getevents",
    "io_pgetevents",
    "futex_waitv",
    // The parent is suspended until its child calls execve or exits.
    "vfork",
    // The rest of a nanosleep, poll or futex wait that a stop (SIGSTOP, ^Z, a debugger
    // attaching) interrupted: the kernel resumes only waits this way (helper-90).
    "restart_syscall",
    // 32-bit (ia32) tasks' own names for the same waits, as the i386 table spells them.
    "waitpid",
    "_newselect",
    "clock_nanosleep_time64",
    "ppoll_time64",
    "pselect6_time64",
    "rt_sigtimedwait_time64",
    "semtimedop_time64",
    "mq_timedreceive_time64",
    "io_pgetevents_time64",
];

/// `futex` operations that wait (the low bits of `arg1`, without the private and clock
/// flags): WAIT, LOCK_PI, WAIT_BITSET, WAIT_REQUEUE_PI, LOCK_PI2. WAKE and the others
/// do work.
const FUTEX_WAIT_OPS: &[u64] = &[0, 6, 9, 11, 13];
const FUTEX_CMD_MASK: u64 = 0x7f;

/// Reads that wait for a peer or an event: on a pipe or FIFO, a socket, or an eventfd,
/// timerfd or signalfd. Such a read is counted as waiting when it blocked at least this long; a
/// quick one found data ready and did work.
const READ_CALLS: &[&str] = &["read", "readv", "recvfrom", "recvmsg", "recvmmsg"];
pub const BLOCKED_READ_NS: i64 = 1_000_000;

/// Whether one call was waiting for an event rather than working.
pub fn is_waiting(
    syscall: &str,
    arg1: u64,
    fd_path: Option<&str>,
    duration_ns: Option<i64>,
) -> bool {
    if WAIT_CALLS.contains(&syscall) {
        return true;
    }
    if syscall == "futex" || syscall == "futex_time64" {
        return FUTEX_WAIT_OPS.contains(&(arg1 & FUTEX_CMD_MASK));
    }
    if READ_CALLS.contains(&syscall) {
        let peer = fd_path.is_some_and(|p| {
            p.starts_with("pipe")
                || p.starts_with("socket:")
                || p.starts_with("anon_inode:")
                || (!p.starts_with('/') && p.contains(':'))
        });
        return peer && duration_ns.is_some_and(|d| d >= BLOCKED_READ_NS);
    }
    false
}

/// `is_waiting(syscall, arg1, fd_path, duration_ns)` for SQL.
pub fn udf() -> ScalarUDF {
    let fun = Arc::new(|args: &[ColumnarValue]| -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(args)?;
        let text = |a: &ArrayRef| cast(a, &DataType::Utf8);
        let (syscall, fd_path) = (text(&arrays[0])?, text(&arrays[2])?);
        let (syscall, fd_path) = (syscall.as_string::<i32>(), fd_path.as_string::<i32>());
        let arg1 = cast(&arrays[1], &DataType::UInt64)?;
        let arg1 = arg1.as_primitive::<UInt64Type>();
        let duration = cast(&arrays[3], &DataType::Int64)?;
        let duration = duration.as_primitive::<Int64Type>();
        let out: BooleanArray = (0..syscall.len())
            .map(|i| {
                syscall.is_valid(i).then(|| {
                    is_waiting(
                        syscall.value(i),
                        if arg1.is_valid(i) { arg1.value(i) } else { 0 },
                        fd_path.is_valid(i).then(|| fd_path.value(i)),
                        duration.is_valid(i).then(|| duration.value(i)),
                    )
                })
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out) as ArrayRef))
    });
    create_udf(
        "is_waiting",
        vec![
            DataType::Utf8,
            DataType::UInt64,
            DataType::Utf8,
            DataType::Int64,
        ],
        DataType::Boolean,
        Volatility::Immutable,
        fun,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_is_told_from_working() {
        for call in [
            "epoll_wait",
            "wait4",
            "clock_nanosleep",
            "accept4",
            "poll",
            "restart_syscall",
        ] {
            assert!(is_waiting(call, 0, None, Some(10)), "{call}");
        }
        for call in ["writev", "sendfile", "openat", "write", "mmap"] {
            assert!(!is_waiting(call, 0, None, Some(50_000_000)), "{call}");
        }
        // futex: FUTEX_WAIT_PRIVATE (128) and WAIT_BITSET with the clock flag wait; WAKE
        // (1, 129) works.
        assert!(is_waiting("futex", 128, None, Some(1)));
        assert!(is_waiting("futex", 9 | 128 | 256, None, Some(1)));
        assert!(!is_waiting("futex", 129, None, Some(1)));
        // Reads: a long one on a pipe or a socket waited for its peer; a file read, or a
        // quick socket read, worked.
        assert!(is_waiting("read", 0, Some("pipe"), Some(5_000_000)));
        assert!(is_waiting(
            "read",
            0,
            Some("fifo:/run/x.fifo"),
            Some(5_000_000)
        ));
        assert!(is_waiting(
            "recvfrom",
            0,
            Some("10.0.0.2:5432"),
            Some(2_000_000)
        ));
        assert!(!is_waiting("read", 0, Some("pipe"), Some(20_000)));
        assert!(!is_waiting(
            "read",
            0,
            Some("/var/log/x.log"),
            Some(50_000_000)
        ));
        assert!(is_waiting(
            "read",
            0,
            Some("anon_inode:[timerfd]"),
            Some(50_000_000)
        ));
        assert!(!is_waiting("read", 0, None, None));
    }
}
