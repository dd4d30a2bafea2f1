//! One syscall on its way from the kernel to a file: the kernel's record, the context
//! some calls carry, and what its fd referred to when it returned.
use std::sync::Arc;

use tracepost_common::{SchedTimes, SyscallEvent};

use crate::kernel::decode::Extra;

/// 128 bytes: a call is moved from the capture loop's chunk into the reorder window and
/// out to the columns, and up to 128 bytes a move is a few vector stores. At 136 bytes,
/// with the rarely used parts in two boxes, each move was a call to `memcpy`: six a call,
/// 6% of the writer's instructions on nginx (BENCHMARKS.md).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub event: SyscallEvent,
    pub fd_path: Option<Arc<str>>,
    /// Behind a pointer: most calls carry none, and calls are held by the hundred
    /// thousand. Shared: a call that names a path the capture has seen before shares
    /// that path's context ([`Context::path`]) rather than allocating its own, which
    /// the capture thread did and the writer thread freed, at about 350 instructions a
    /// call between them (BENCHMARKS.md).
    context: Option<Arc<Context>>,
}

/// What some calls carry besides the kernel's fixed record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context {
    extra: Option<Extra>,
    /// `record --sched`: where its time went.
    sched: Option<SchedTimes>,
}

impl Context {
    /// The context of a call that names `path`, whole, and nothing else: what the
    /// interner shares between the calls that name it.
    pub fn path(path: Arc<str>) -> Arc<Self> {
        Arc::new(Self {
            extra: Some(Extra::Path {
                path,
                truncated: false,
                target: None,
            }),
            sched: None,
        })
    }

    pub fn extra(&self) -> Option<&Extra> {
        self.extra.as_ref()
    }
}

impl Call {
    /// A call with the context its record carried.
    pub fn new(event: SyscallEvent, extra: Option<Extra>, sched: Option<SchedTimes>) -> Self {
        let context =
            (extra.is_some() || sched.is_some()).then(|| Arc::new(Context { extra, sched }));
        Self {
            event,
            fd_path: None,
            context,
        }
    }

    /// A call with a context shared with other calls.
    pub fn with_context(event: SyscallEvent, context: Arc<Context>) -> Self {
        Self {
            event,
            fd_path: None,
            context: Some(context),
        }
    }

    pub fn enter_ns(&self) -> u64 {
        self.event.enter_ns
    }

    /// The path, address or fd pair the kernel read for it.
    pub fn extra(&self) -> Option<&Extra> {
        self.context.as_ref()?.extra.as_ref()
    }

    /// `record --sched`: its split, when the scheduler's hooks saw it enter.
    pub fn sched(&self) -> Option<&SchedTimes> {
        self.context.as_ref()?.sched.as_ref()
    }
}

impl From<SyscallEvent> for Call {
    /// Built in place: through `new`, with its optional context, the getppid loop's
    /// capture thread spent a quarter of its samples in an out-of-line `Call::new`.
    #[inline]
    fn from(event: SyscallEvent) -> Self {
        Self {
            event,
            fd_path: None,
            context: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_is_moved_inline() {
        assert_eq!(size_of::<Call>(), 128);
    }
}
