//! Kernel timestamps (CLOCK_MONOTONIC, what `bpf_ktime_get_ns` returns) to wall-clock time.
//!
//! The offset is sampled once at start: a capture is short next to NTP slewing, and one
//! offset keeps durations and orderings inside a capture exact.

fn clock_ns(clock: libc::clockid_t) -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer to a timespec; both clocks always exist on Linux.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// Now on the clock the kernel programs stamp events with.
pub fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC) as u64
}

/// Now as UTC nanoseconds since the epoch.
pub fn realtime_ns() -> i64 {
    clock_ns(libc::CLOCK_REALTIME)
}

/// When the machine booted, as UTC nanoseconds: where `CLOCK_BOOTTIME`, on which the
/// kernel counts process starts, began.
pub fn boot_wall_ns() -> i64 {
    clock_ns(libc::CLOCK_REALTIME) - clock_ns(libc::CLOCK_BOOTTIME)
}

#[derive(Clone, Copy, Debug)]
pub struct WallClock {
    offset_ns: i64,
}

impl WallClock {
    /// Takes the tightest of a few samples, so that a preemption between the two clock
    /// reads does not skew every timestamp of the capture.
    pub fn sample() -> Self {
        let mut best: Option<(i64, i64)> = None;
        for _ in 0..5 {
            let m1 = clock_ns(libc::CLOCK_MONOTONIC);
            let r = clock_ns(libc::CLOCK_REALTIME);
            let m2 = clock_ns(libc::CLOCK_MONOTONIC);
            let gap = m2 - m1;
            let offset = r - (m1 + gap / 2);
            if best.is_none_or(|(g, _)| gap < g) {
                best = Some((gap, offset));
            }
        }
        Self {
            offset_ns: best.map_or(0, |(_, o)| o),
        }
    }

    #[cfg(test)]
    pub fn with_offset(offset_ns: i64) -> Self {
        Self { offset_ns }
    }

    pub fn to_wall_ns(self, monotonic_ns: u64) -> i64 {
        monotonic_ns as i64 + self.offset_ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_monotonic_now_to_wall_now() {
        let clock = WallClock::sample();
        let wall = clock.to_wall_ns(monotonic_ns());
        assert!((wall - realtime_ns()).abs() < 50_000_000);
    }
}
