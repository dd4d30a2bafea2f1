//! Asking the CPU for memory before it is read: the two places the recorder reads far
//! from where it last did (a record the traced program's CPU just wrote, a late call
//! held in a slot) wait on that memory otherwise.

/// Asks for the cache lines of `value`, the last byte's included: a value aligned to less
/// than a line spans one line more than its size alone says. A prefetch reads nothing the
/// program sees and never faults, whatever the address.
#[inline(always)]
pub fn lines_of<T>(value: *const T) {
    let at = value.cast::<u8>();
    let mut offset = 0;
    while offset < size_of::<T>() {
        line(at.wrapping_add(offset));
        offset += 64;
    }
    line(at.wrapping_add(size_of::<T>().saturating_sub(1)));
}

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
