//! What `record` needs from the kernel, and what it does not.
use std::process::{Command, Stdio};

use tracepost_e2e::{bin, bpf_available, build_program, calls_and_errors, record};

/// The kernel's BTF is not needed (many hosts lack it: CONFIG_DEBUG_INFO_BTF is off in
/// older distribution kernels). With /sys/kernel/btf/vmlinux hidden by a bind mount in a
/// private mount namespace, `record` records the same calls as with it.
#[test]
fn records_the_same_without_the_kernels_btf() {
    if !bpf_available("records_the_same_without_the_kernels_btf") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let exe = build_program(tmp.path(), "ground_truth");
    let exe = exe.to_str().unwrap();
    let with = tmp.path().join("with-btf");
    let without = tmp.path().join("without-btf");
    assert_eq!(record(&with, &[exe]).status.code(), Some(7));

    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        // Proves the BTF is gone (reading /dev/null gives nothing), then runs record.
        .arg(
            "mount --bind /dev/null /sys/kernel/btf/vmlinux && \
             test ! -s /sys/kernel/btf/vmlinux && exec \"$0\" \"$@\"",
        )
        .arg(bin("record"))
        .args(["-q", "-o"])
        .arg(&without)
        .args(["--", exe])
        .stdin(Stdio::null())
        .output()
        .expect("run unshare");
    assert_eq!(
        out.status.code(),
        Some(7),
        "record without BTF: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (a, b) = (calls_and_errors(&with, ""), calls_and_errors(&without, ""));
    assert!(a.contains_key("getppid"), "{a:?}");
    assert_eq!(a, b, "with BTF, then without");
}

/// Where the kernel has BTF, the syscall hooks are BTF tracepoints, which cost less per call
/// than raw ones (BENCHMARKS.md): a fallback to the raw hooks would record the same calls,
/// so only this catches it. The traced command lists the programs `record` holds open.
#[test]
fn syscall_hooks_are_btf_tracepoints_where_the_kernel_has_btf() {
    if !bpf_available("syscall_hooks_are_btf_tracepoints_where_the_kernel_has_btf") {
        return;
    }
    assert!(
        std::path::Path::new("/sys/kernel/btf/vmlinux").exists(),
        "this check needs a kernel with BTF, as the test machines have"
    );
    let tmp = tempfile::tempdir().unwrap();
    let out = record(
        &tmp.path().join("cap"),
        // record opens and closes other fds meanwhile: one listed may be gone when read.
        &[
            "sh",
            "-c",
            "cat /proc/$PPID/fdinfo/* 2>/dev/null | grep '^prog_type'",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let types: Vec<u32> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
        .collect();
    // BPF_PROG_TYPE_TRACING (BTF tracepoints) and BPF_PROG_TYPE_RAW_TRACEPOINT.
    let count = |t: u32| types.iter().filter(|&&x| x == t).count();
    assert_eq!(
        count(26),
        2,
        "sys_enter and sys_exit as BTF tracepoints: {types:?}"
    );
    assert_eq!(
        count(17),
        2,
        "sched_process_exit and _exec as raw tracepoints: {types:?}"
    );
}
