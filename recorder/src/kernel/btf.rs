//! The kernel's BTF, which the syscall hooks need to attach as BTF tracepoints.
use aya::Btf;

/// The kernel's BTF, or `None` when it has none (or hides it). aya's loader has parsed it
/// once already, for itself, and freed it; this second parse costs about 0.03 CPU-s at
/// start-up (BENCHMARKS.md), against 90 ns saved on every traced call.
pub fn kernel_btf() -> Option<Btf> {
    Btf::from_sys_fs().ok()
}

/// Hands the pages of the parsed BTF (and of the loader's copy) back to the kernel.
/// Parsed, it is thousands of small allocations; freed, they stay in the heap as holes
/// that the capture's buffers only partly reuse.
pub fn release_freed_heap() {
    // SAFETY: malloc_trim only returns free pages; it touches no live allocation.
    unsafe { libc::malloc_trim(0) };
}
