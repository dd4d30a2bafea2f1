//! Asking the CPU for memory before it is read: where the recorder reads far from where
//! it last did (a record the traced program's CPU just wrote), it waits on that memory
//! otherwise.

/// Asks for the cache line at `at`.
#[inline(always)]
pub fn line(at: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing the program sees and cannot fault.
    unsafe {
        std::arch::x86_64::_mm_prefetch(at.cast(), std::arch::x86_64::_MM_HINT_T0)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}
