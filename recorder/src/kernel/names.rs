//! Syscall and errno names, from the `syscalls` crate's per-architecture tables.
use std::borrow::Cow;

use syscalls::{Errno, Sysno};
use tracepost_common::{COMPAT_BASE, MAX_SYSCALL_NR};

/// The kernel's error returns are -4095..=-1 for every syscall (strace uses the same rule).
const MAX_ERRNO: i64 = 4095;

/// Name of syscall `nr` in this architecture's table, or `syscall_<nr>` for a number the
/// table does not know (a newer kernel than the crate). A 32-bit (ia32) task's call, which
/// the programs number from [`COMPAT_BASE`], is named from the i386 table, as strace names
/// them: `mmap2`, `_llseek`, `clock_nanosleep_time64`; `ia32_syscall_<nr>` for one it does
/// not know.
pub fn syscall_name(nr: u32) -> Cow<'static, str> {
    if let Some(i386) = nr.checked_sub(COMPAT_BASE).filter(|_| nr < MAX_SYSCALL_NR) {
        return match syscalls::x86::Sysno::new(i386 as usize) {
            Some(sysno) => Cow::Borrowed(sysno.name()),
            None => Cow::Owned(format!("ia32_syscall_{i386}")),
        };
    }
    match Sysno::new(nr as usize) {
        Some(sysno) => Cow::Borrowed(sysno.name()),
        None => Cow::Owned(format!("syscall_{nr}")),
    }
}

/// Each ia32 call (numbered from [`COMPAT_BASE`]) that has an x86_64 call of the same name,
/// with that call: their arguments agree, so what the recorder knows of one (`-e`, which
/// names x86_64 calls; a path argument; bytes returned) holds for the other.
pub fn ia32_twins() -> impl Iterator<Item = (u32, Sysno)> {
    (COMPAT_BASE..MAX_SYSCALL_NR).filter_map(|nr| {
        let i386 = syscalls::x86::Sysno::new((nr - COMPAT_BASE) as usize)?;
        Some((nr, i386.name().parse().ok()?))
    })
}

/// The errno of a raw return value, or `None` when the call succeeded.
pub fn errno_of(ret: i64) -> Option<i32> {
    (-MAX_ERRNO..=-1).contains(&ret).then_some(-ret as i32)
}

/// `ENOENT` and so on. Kernel-internal codes that leak to tracers (`ERESTARTSYS` = 512 and
/// friends) have no libc name; they are spelled as strace spells them.
pub fn errno_name(errno: i32) -> Cow<'static, str> {
    if let Some(name) = Errno::new(errno).name() {
        return Cow::Borrowed(name);
    }
    Cow::Borrowed(match errno {
        512 => "ERESTARTSYS",
        513 => "ERESTARTNOINTR",
        514 => "ERESTARTNOHAND",
        515 => "ENOIOCTLCMD",
        516 => "ERESTART_RESTARTBLOCK",
        _ => return Cow::Owned(format!("E{errno}")),
    })
}

/// The `waker_kind` of a kernel `WAKER_*` value; `None` when the call was never woken.
pub fn waker_kind(kind: u32) -> Option<&'static str> {
    use tracepost_common as k;
    use tracepost_schema::syscalls as s;
    match kind {
        k::WAKER_THREAD => Some(s::WAKER_THREAD),
        k::WAKER_SOFTIRQ => Some(s::WAKER_SOFTIRQ),
        k::WAKER_IRQ => Some(s::WAKER_IRQ),
        k::WAKER_TIMER => Some(s::WAKER_TIMER),
        _ => None,
    }
}

/// Names indexed by number, built once: the writer names every row.
#[derive(Clone)]
pub struct SyscallNames {
    names: Vec<Cow<'static, str>>,
}

impl SyscallNames {
    pub fn new() -> Self {
        Self {
            names: (0..MAX_SYSCALL_NR).map(syscall_name).collect(),
        }
    }

    pub fn get(&self, nr: u32) -> Cow<'static, str> {
        match self.names.get(nr as usize) {
            Some(name) => name.clone(),
            None => syscall_name(nr),
        }
    }
}

impl Default for SyscallNames {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    #[test]
    fn x86_64_syscall_names() {
        assert_eq!(syscall_name(0), "read");
        assert_eq!(syscall_name(59), "execve");
        assert_eq!(syscall_name(110), "getppid");
        assert_eq!(syscall_name(230), "clock_nanosleep");
        assert_eq!(syscall_name(231), "exit_group");
        assert_eq!(syscall_name(257), "openat");
        assert_eq!(syscall_name(100_000), "syscall_100000");
        let table = SyscallNames::new();
        assert_eq!(table.get(257), "openat");
        assert_eq!(table.get(5000), "syscall_5000");
    }

    /// An ia32 task's numbers are i386's: 3 is `read` there, not `close`.
    #[test]
    fn ia32_calls_are_named_from_the_i386_table() {
        assert_eq!(syscall_name(COMPAT_BASE + 3), "read");
        assert_eq!(syscall_name(COMPAT_BASE + 6), "close");
        assert_eq!(syscall_name(COMPAT_BASE + 5), "open");
        assert_eq!(syscall_name(COMPAT_BASE + 407), "clock_nanosleep_time64");
        assert_eq!(syscall_name(COMPAT_BASE + 1000), "ia32_syscall_1000");
        assert_eq!(SyscallNames::new().get(COMPAT_BASE + 3), "read");
        let twins: std::collections::HashMap<u32, Sysno> = ia32_twins().collect();
        assert_eq!(twins.get(&(COMPAT_BASE + 3)), Some(&Sysno::read));
        assert_eq!(twins.get(&(COMPAT_BASE + 5)), Some(&Sysno::open));
        assert_eq!(twins.get(&(COMPAT_BASE + 192)), None); // mmap2
        assert!(twins.keys().all(|&nr| nr >= COMPAT_BASE));
    }

    #[test]
    fn errno_from_return_values() {
        assert_eq!(errno_of(-2), Some(2));
        assert_eq!(errno_of(-4095), Some(4095));
        assert_eq!(errno_of(0), None);
        assert_eq!(errno_of(4096), None);
        // An mmap address in the top half is not an error.
        assert_eq!(errno_of(-4096), None);
    }

    #[test]
    fn errno_names() {
        assert_eq!(errno_name(libc::ENOENT), "ENOENT");
        assert_eq!(errno_name(libc::EEXIST), "EEXIST");
        assert_eq!(errno_name(libc::EBADF), "EBADF");
        assert_eq!(errno_name(512), "ERESTARTSYS");
        assert_eq!(errno_name(4000), "E4000");
    }
}
