//! One syscall on its way from the kernel to a file: the kernel's record, the context
//! some calls carry, and what its fd referred to when it returned.
use std::sync::Arc;

use tracepost_common::{SchedTimes, SyscallEvent};

use crate::kernel::decode::Extra;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub event: SyscallEvent,
    /// Boxed: most calls carry none, and calls are held by the hundred thousand.
    pub extra: Option<Box<Extra>>,
    pub fd_path: Option<Arc<str>>,
    /// `record --sched`: where its time went. Boxed, so a plain capture's calls stay small.
    pub sched: Option<Box<SchedTimes>>,
}

impl Call {
    pub fn enter_ns(&self) -> u64 {
        self.event.enter_ns
    }
}

impl From<SyscallEvent> for Call {
    fn from(event: SyscallEvent) -> Self {
        Self {
            event,
            extra: None,
            fd_path: None,
            sched: None,
        }
    }
}
