//! The kernel's BTF, which the syscall hooks need to attach as BTF tracepoints.
use aya::Btf;

/// The kernel's BTF, or `None` when it has none (or hides it). aya's loader has parsed it
/// once already, for itself, and freed it; this second parse costs about 0.03 CPU-s at
/// start-up (BENCHMARKS.md), against 90 ns saved on every traced call.
pub fn kernel_btf() -> Option<Btf> {
    Btf::from_sys_fs().ok()
}

/// Where `exit_code` sits in this kernel's `struct task_struct`, in bytes; `None` without
/// BTF. The BTF is mapped and only `task_struct` is looked up: about 3 ms, where btf-rs's
/// default full parse took 0.16-0.20 s and 40 MiB.
pub fn task_exit_code_offset() -> Option<u32> {
    use btf_rs::{Backend, Btf, Type};
    let btf = Btf::from_file_with_backend("/sys/kernel/btf/vmlinux", Backend::Mmap).ok()?;
    let types = btf.resolve_types_by_name("task_struct").ok()?;
    types.into_iter().find_map(|t| match t {
        Type::Struct(s) => s
            .members
            .iter()
            .find(|m| btf.resolve_name(*m).is_ok_and(|n| n == "exit_code"))
            .filter(|m| m.bitfield_size().unwrap_or(0) == 0 && m.bit_offset() % 8 == 0)
            .map(|m| m.bit_offset() / 8),
        _ => None,
    })
}

/// Hands the pages of the parsed BTF (and of the loader's copy) back to the kernel.
/// Parsed, it is thousands of small allocations; freed, they stay in the heap as holes
/// that the capture's buffers only partly reuse.
pub fn release_freed_heap() {
    // SAFETY: malloc_trim only returns free pages; it touches no live allocation.
    unsafe { libc::malloc_trim(0) };
}
