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
