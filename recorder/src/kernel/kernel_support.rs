//! What `record` needs from the running kernel, checked before anything is loaded.
//!
//! Without this, a kernel that lacks a feature answers with a verifier log or an `EINVAL`
//! from deep inside the loader, which tells the on-call engineer nothing. The checks probe
//! the kernel itself (as libbpf's and bpftool's feature probes do), not its version
//! number: distributions backport BPF features, so a version says little.
//!
//! The kernel's BTF is deliberately not on the list. The programs use no CO-RE
//! relocations: they read tracepoint records at offsets taken from tracefs, and syscall
//! arguments from `pt_regs`, whose layout is the architecture's ABI. Where the kernel has
//! BTF, the syscall hooks attach as BTF tracepoints, which read `pt_regs` more cheaply;
//! without it they attach as raw tracepoints. `record` runs with `/sys/kernel/btf/vmlinux`
//! hidden, and a test checks that it records the same calls.
use std::path::Path;

use aya::{
    maps::MapType,
    programs::ProgramType,
    sys::{BpfHelper, is_helper_supported, is_map_supported, is_program_supported},
};

/// One capability `record` cannot work without.
struct Need {
    /// What to call it in the error line.
    what: &'static str,
    /// The upstream release that brought it, to tell the reader how old is too old.
    since: &'static str,
    /// The option that needs it, if not every capture does. The programs branch on the
    /// option's load-time constant, and the verifier never checks a branch that a constant
    /// rules out, so a kernel without this can still record without the option.
    only_for: Option<CaptureOption>,
    check: Check,
}

/// A `record` option that needs more of the kernel than a plain capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureOption {
    Cgroup,
    Sched,
}

impl CaptureOption {
    fn flag(self) -> &'static str {
        match self {
            CaptureOption::Cgroup => "--cgroup",
            CaptureOption::Sched => "--sched",
        }
    }
}

enum Check {
    Map(MapType),
    Program(ProgramType),
    /// A helper, as called from the raw tracepoint programs.
    Helper(BpfHelper),
    /// An array map user space can `mmap`: the staging areas the programs write to.
    MmapableArray,
    /// A tracepoint, by its directory under tracefs' `events/`.
    Tracepoint(&'static str),
}

const NEEDS: &[Need] = &[
    Need {
        what: "raw tracepoint programs",
        since: "4.17",
        only_for: None,
        check: Check::Program(ProgramType::RawTracePoint),
    },
    Need {
        what: "tracepoint programs",
        since: "4.7",
        only_for: None,
        check: Check::Program(ProgramType::TracePoint),
    },
    Need {
        what: "memory-mappable BPF arrays (BPF_F_MMAPABLE)",
        since: "5.5",
        only_for: None,
        check: Check::MmapableArray,
    },
    Need {
        what: "per-CPU hash maps",
        since: "4.6",
        only_for: None,
        check: Check::Map(MapType::PerCpuHash),
    },
    Need {
        what: "the helper bpf_probe_read_user",
        since: "5.5",
        only_for: None,
        check: Check::Helper(BpfHelper::BPF_FUNC_probe_read_user),
    },
    Need {
        what: "the helper bpf_probe_read_user_str",
        since: "5.5",
        only_for: None,
        check: Check::Helper(BpfHelper::BPF_FUNC_probe_read_user_str),
    },
    Need {
        what: "the helper bpf_probe_read_kernel",
        since: "5.5",
        only_for: None,
        check: Check::Helper(BpfHelper::BPF_FUNC_probe_read_kernel),
    },
    Need {
        what: "the helper bpf_get_current_cgroup_id",
        since: "4.18",
        only_for: None,
        check: Check::Helper(BpfHelper::BPF_FUNC_get_current_cgroup_id),
    },
    Need {
        what: "the tracepoint cgroup/cgroup_attach_task",
        since: "4.13",
        only_for: Some(CaptureOption::Cgroup),
        check: Check::Tracepoint("cgroup/cgroup_attach_task"),
    },
    Need {
        what: "the helper bpf_get_current_ancestor_cgroup_id",
        // 5.7 brought it, but to tracing programs only in 5.14 (5.10 refuses it).
        since: "5.14",
        only_for: Some(CaptureOption::Cgroup),
        check: Check::Helper(BpfHelper::BPF_FUNC_get_current_ancestor_cgroup_id),
    },
    Need {
        what: "the syscall tracepoints raw_syscalls/sys_enter and sys_exit (CONFIG_FTRACE_SYSCALLS)",
        since: "3.7",
        only_for: None,
        check: Check::Tracepoint("raw_syscalls/sys_enter"),
    },
    Need {
        what: "the tracepoint sched/sched_process_exec",
        since: "3.4",
        only_for: None,
        check: Check::Tracepoint("sched/sched_process_exec"),
    },
    Need {
        what: "the tracepoint sched/sched_process_exit",
        since: "2.6.32",
        only_for: None,
        check: Check::Tracepoint("sched/sched_process_exit"),
    },
    Need {
        what: "the tracepoint task/task_newtask",
        since: "3.4",
        only_for: None,
        check: Check::Tracepoint("task/task_newtask"),
    },
    Need {
        what: "the tracepoint task/task_rename",
        since: "3.4",
        only_for: None,
        check: Check::Tracepoint("task/task_rename"),
    },
    Need {
        what: "the tracepoint sched/sched_switch",
        since: "2.6.28",
        only_for: Some(CaptureOption::Sched),
        check: Check::Tracepoint("sched/sched_switch"),
    },
    Need {
        what: "the tracepoint sched/sched_waking",
        since: "4.3",
        only_for: Some(CaptureOption::Sched),
        check: Check::Tracepoint("sched/sched_waking"),
    },
    Need {
        what: "the tracepoint sched/sched_wakeup",
        since: "2.6.28",
        only_for: Some(CaptureOption::Sched),
        check: Check::Tracepoint("sched/sched_wakeup"),
    },
    Need {
        what: "the tracepoint irq/irq_handler_entry",
        since: "2.6.30",
        only_for: Some(CaptureOption::Sched),
        check: Check::Tracepoint("irq/irq_handler_entry"),
    },
    Need {
        what: "the tracepoint irq/softirq_entry",
        since: "2.6.32",
        only_for: Some(CaptureOption::Sched),
        check: Check::Tracepoint("irq/softirq_entry"),
    },
    Need {
        what: "the tracepoint timer/hrtimer_expire_entry",
        since: "2.6.30",
        only_for: Some(CaptureOption::Sched),
        check: Check::Tracepoint("timer/hrtimer_expire_entry"),
    },
    Need {
        what: "the tracepoint timer/timer_expire_entry",
        since: "2.6.30",
        only_for: Some(CaptureOption::Sched),
        check: Check::Tracepoint("timer/timer_expire_entry"),
    },
];

/// The kernel lacks something `record` needs. Every missing piece is named at once, so
/// that one try tells the whole story.
#[derive(Debug, thiserror::Error)]
#[error("kernel {kernel} lacks what record needs: {}", .missing.join("; "))]
pub struct Unsupported {
    pub kernel: String,
    /// Each as "what (Linux N+)".
    pub missing: Vec<String>,
}

/// Probes the running kernel for every [`NEEDS`] entry. A probe that fails for an
/// unexpected reason does not count as missing: the loader then reports the real error,
/// rather than this refusing a host that might work.
/// `options` are this capture's options that need more than a plain capture.
pub fn check(tracefs: &Path, kernel: &str, options: &[CaptureOption]) -> Result<(), Unsupported> {
    judge(kernel, options, |check| match check {
        Check::Map(map) => is_map_supported(*map).ok(),
        Check::Program(program) => is_program_supported(*program).ok(),
        Check::Helper(helper) => is_helper_supported(ProgramType::RawTracePoint, *helper).ok(),
        Check::Tracepoint(event) => Some(tracefs.join("events").join(event).is_dir()),
        Check::MmapableArray => mmapable_array_supported(),
    })
}

/// Creates, then closes, a one-element array with `BPF_F_MMAPABLE`. A kernel without the
/// flag answers `EINVAL`; any other failure cannot tell.
fn mmapable_array_supported() -> Option<bool> {
    const BPF_MAP_CREATE: libc::c_long = 0;
    const BPF_MAP_TYPE_ARRAY: u32 = 2;
    const BPF_F_MMAPABLE: u32 = 1 << 10;
    // The head of `union bpf_attr` for BPF_MAP_CREATE: type, key and value size, entries,
    // flags. The kernel zero-fills what a shorter attribute leaves out.
    let attr: [u32; 5] = [BPF_MAP_TYPE_ARRAY, 4, 8, 1, BPF_F_MMAPABLE];
    // SAFETY: a valid pointer to an attribute of the size passed.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_MAP_CREATE,
            attr.as_ptr(),
            size_of_val(&attr) as libc::c_uint,
        )
    };
    if fd >= 0 {
        // SAFETY: the fd just created, closed once.
        unsafe { libc::close(fd as libc::c_int) };
        return Some(true);
    }
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::EINVAL) => Some(false),
        _ => None,
    }
}

/// The decision, apart from the probing: `probe` answers `Some(supported)`, or `None`
/// when it could not tell.
fn judge(
    kernel: &str,
    options: &[CaptureOption],
    probe: impl Fn(&Check) -> Option<bool>,
) -> Result<(), Unsupported> {
    let missing: Vec<String> = NEEDS
        .iter()
        .filter(|need| need.only_for.is_none_or(|option| options.contains(&option)))
        .filter(|need| probe(&need.check) == Some(false))
        .map(|need| match need.only_for {
            None => format!("{} (Linux {}+)", need.what, need.since),
            Some(option) => format!(
                "{} (Linux {}+), for {}",
                need.what,
                need.since,
                option.flag()
            ),
        })
        .collect();
    match missing.is_empty() {
        true => Ok(()),
        false => Err(Unsupported {
            kernel: kernel.to_string(),
            missing,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 5.4 kernel as the probes see it: no memory-mappable arrays, no user/kernel
    /// probe-read split, no ancestor cgroup helper for tracing.
    fn linux_5_4(check: &Check) -> Option<bool> {
        let missing = matches!(
            check,
            Check::MmapableArray
                | Check::Helper(
                    BpfHelper::BPF_FUNC_probe_read_user
                        | BpfHelper::BPF_FUNC_probe_read_user_str
                        | BpfHelper::BPF_FUNC_probe_read_kernel
                        | BpfHelper::BPF_FUNC_get_current_ancestor_cgroup_id,
                )
        );
        Some(!missing)
    }

    #[test]
    fn names_every_missing_piece_and_the_kernel() {
        let err = judge("5.4.0-150-generic", &[], linux_5_4).unwrap_err();
        assert_eq!(err.missing.len(), 4, "{err}");
        let line = err.to_string();
        assert!(line.starts_with("kernel 5.4.0-150-generic lacks what record needs: "));
        assert!(
            line.contains("memory-mappable BPF arrays (BPF_F_MMAPABLE) (Linux 5.5+)"),
            "{line}"
        );
        assert!(
            line.contains("the helper bpf_probe_read_user (Linux 5.5+)"),
            "{line}"
        );
        assert!(!line.contains('\n'));
        assert!(!line.contains("--cgroup"), "{line}");
        let err = judge("5.4.0-150-generic", &[CaptureOption::Cgroup], linux_5_4).unwrap_err();
        assert_eq!(err.missing.len(), 5, "{err}");
        assert!(
            err.to_string()
                .contains("bpf_get_current_ancestor_cgroup_id (Linux 5.14+), for --cgroup")
        );
    }

    #[test]
    fn a_missing_tracepoint_is_named() {
        let err = judge("6.1.0", &[], |check| {
            Some(!matches!(
                check,
                Check::Tracepoint("raw_syscalls/sys_enter")
            ))
        })
        .unwrap_err();
        assert_eq!(err.missing.len(), 1);
        assert!(err.missing[0].contains("CONFIG_FTRACE_SYSCALLS"));
    }

    #[test]
    fn an_inconclusive_probe_refuses_nothing() {
        assert!(judge("6.18.0", &[CaptureOption::Cgroup], |_| None).is_ok());
        assert!(judge("6.18.0", &[CaptureOption::Cgroup], |_| Some(true)).is_ok());
    }
}
