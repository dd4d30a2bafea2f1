//! Where a chart's bins and ticks fall. A capture lasts anything from 100 ms to days, and
//! latencies span nanoseconds to minutes: bins and ticks are chosen from round steps so
//! that every chart has a readable number of each, labelled in round values with units.

/// Round durations, in ns, that bins and ticks step by: 1-2-5 up to a second, then the
/// clock's own units (15 s, 30 s, 1 min, ... 1 day), then 1-2-5 days.
const STEPS_NS: &[u64] = &{
    const S: u64 = 1_000_000_000;
    const M: u64 = 60 * S;
    const H: u64 = 60 * M;
    const D: u64 = 24 * H;
    [
        1,
        2,
        5,
        10,
        20,
        50,
        100,
        200,
        500,
        1_000,
        2_000,
        5_000,
        10_000,
        20_000,
        50_000,
        100_000,
        200_000,
        500_000,
        1_000_000,
        2_000_000,
        5_000_000,
        10_000_000,
        20_000_000,
        50_000_000,
        100_000_000,
        200_000_000,
        500_000_000,
        S,
        2 * S,
        5 * S,
        10 * S,
        15 * S,
        30 * S,
        M,
        2 * M,
        5 * M,
        10 * M,
        15 * M,
        30 * M,
        H,
        2 * H,
        3 * H,
        6 * H,
        12 * H,
        D,
        2 * D,
        5 * D,
        10 * D,
        20 * D,
        50 * D,
        100 * D,
    ]
};

/// At most this many bins across a time chart; the round steps are at most 2.5 apart, so a
/// capture of any length gets between 80 and 200 of them (one, for a single instant).
pub const MAX_BINS: u64 = 200;
/// At most this many intervals between time ticks, so at least four ticks (0 included).
const MAX_TICK_INTERVALS: u64 = 8;

/// The smallest round step that cuts `span_ns` into at most `parts` parts.
fn step_for(span_ns: u64, parts: u64) -> u64 {
    STEPS_NS
        .iter()
        .copied()
        .find(|s| span_ns.div_ceil(*s) <= parts)
        .unwrap_or_else(|| span_ns.div_ceil(parts).max(1))
}

/// The bin width for a time chart over `span_ns`.
pub fn bin_ns(span_ns: u64) -> u64 {
    step_for(span_ns, MAX_BINS)
}

/// Ticks from 0 to `span_ns`, in ns since the start, at a round step.
pub fn time_ticks(span_ns: u64) -> Vec<u64> {
    let step = step_for(span_ns.max(1), MAX_TICK_INTERVALS);
    (0..=span_ns / step).map(|k| k * step).collect()
}

/// A time tick as a distance from the start: `+0`, `+500ms`, `+1m 30s`, `+2d`.
pub fn time_label(ns: u64) -> String {
    if ns == 0 {
        return "+0".into();
    }
    format!("+{}", duration_label(ns))
}

/// A round duration without a zero decimal: `10us`, `1.5ms`, `2s`, `1h 30m`.
pub fn duration_label(ns: u64) -> String {
    crate::udfs::format_duration(ns.min(i64::MAX as u64) as i64).replace(".0", "")
}

/// The labelled steps of a logarithmic latency axis, in ns: powers of ten up to a second,
/// then the clock's round units, which powers of ten are not past a second (`100s` is
/// `1m 40s`).
const DECADES_NS: &[u64] = &{
    const S: u64 = 1_000_000_000;
    [
        1,
        10,
        100,
        1_000,
        10_000,
        100_000,
        1_000_000,
        10_000_000,
        100_000_000,
        S,
        10 * S,
        60 * S,
        600 * S,
        3_600 * S,
        36_000 * S,
        86_400 * S,
        864_000 * S,
        8_640_000 * S,
        86_400_000 * S,
        864_000_000 * S,
        8_640_000_000 * S,
    ]
};

/// Ticks for a logarithmic latency axis from `lo` to `hi` ns: the [`DECADES_NS`] between,
/// with 2 and 5 times them when there are too few to read the axis by.
pub fn log_ticks(lo: u64, hi: u64) -> Vec<u64> {
    let ticks = |mults: &[u64]| -> Vec<u64> {
        DECADES_NS
            .iter()
            .flat_map(|d| mults.iter().filter_map(move |m| d.checked_mul(*m)))
            .filter(|v| (lo..=hi).contains(v))
            .collect()
    };
    let decades = ticks(&[1]);
    if decades.len() >= 3 {
        return decades;
    }
    let mut all = ticks(&[1, 2, 5]);
    all.sort_unstable();
    all.dedup();
    all
}

/// The range of a log latency axis that holds `lo..hi` ns, widened to [`DECADES_NS`] so
/// that it starts and ends on a labelled tick.
pub fn log_range(lo: u64, hi: u64) -> (u64, u64) {
    let last = *DECADES_NS.last().expect("decades");
    let lo = DECADES_NS
        .iter()
        .copied()
        .rfind(|d| *d <= lo.max(1))
        .unwrap_or(1);
    let hi = DECADES_NS
        .iter()
        .copied()
        .find(|d| *d >= hi && *d > lo)
        .unwrap_or(last.max(hi));
    (lo, hi)
}

/// Ticks for a count axis from 0 to at least `max`: a 1-2-5 step, four to eight intervals.
/// Returns the ticks and the top of the axis (the last tick).
pub fn count_ticks(max: f64) -> (Vec<f64>, f64) {
    let max = max.max(1.0);
    let mut step = 10f64.powf((max / 8.0).log10().floor()).max(1.0);
    for m in [1.0, 2.0, 5.0, 10.0, 20.0, 50.0] {
        let s = step * m;
        if (max / s).ceil() <= 8.0 {
            step = s;
            break;
        }
    }
    let intervals = ((max / step).ceil() as u64).max(4);
    let ticks: Vec<f64> = (0..=intervals).map(|k| k as f64 * step).collect();
    let top = *ticks.last().expect("at least five ticks");
    (ticks, top)
}

/// A count as people say it: `950`, `12K`, `1.5M`.
pub fn count_label(v: f64) -> String {
    let (scaled, unit) = match v.abs() {
        a if a >= 1e9 => (v / 1e9, "G"),
        a if a >= 1e6 => (v / 1e6, "M"),
        a if a >= 1e3 => (v / 1e3, "K"),
        _ => (v, ""),
    };
    let text = format!("{scaled:.1}");
    let text = text.strip_suffix(".0").unwrap_or(&text);
    format!("{text}{unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const S: u64 = 1_000 * MS;

    #[test]
    fn any_capture_length_gets_50_to_200_bins_and_at_least_four_ticks() {
        // From 100 ms to 100 days, and odd lengths between.
        let mut span = 100 * MS;
        while span <= 100 * 86_400 * S {
            let bins = span.div_ceil(bin_ns(span));
            assert!((50..=200).contains(&bins), "{span} ns: {bins} bins");
            let ticks = time_ticks(span);
            assert!((4..=9).contains(&ticks.len()), "{span} ns: {ticks:?}");
            assert!(*ticks.last().unwrap() <= span);
            span = span * 13 / 10 + 7;
        }
    }

    #[test]
    fn a_capture_of_one_microsecond_still_gets_ticks() {
        let ticks: Vec<String> = time_ticks(1_000).into_iter().map(time_label).collect();
        assert_eq!(
            ticks,
            ["+0", "+200ns", "+400ns", "+600ns", "+800ns", "+1us"]
        );
        assert_eq!(bin_ns(1_000), 5);
    }

    #[test]
    fn ticks_are_round_and_labelled_with_units() {
        // The 1.2 s capture that used to get two points.
        assert_eq!(bin_ns(1_200 * MS), 10 * MS);
        let labels: Vec<String> = time_ticks(1_200 * MS).into_iter().map(time_label).collect();
        assert_eq!(
            labels,
            [
                "+0",
                "+200ms",
                "+400ms",
                "+600ms",
                "+800ms",
                "+1s",
                "+1s 200ms"
            ]
        );
        let labels: Vec<String> = time_ticks(3 * 3_600 * S + 17 * S)
            .into_iter()
            .map(time_label)
            .collect();
        assert_eq!(
            labels,
            ["+0", "+30m", "+1h", "+1h 30m", "+2h", "+2h 30m", "+3h"]
        );
        assert_eq!(duration_label(10_000), "10us");
        assert_eq!(duration_label(100 * MS), "100ms");
    }

    #[test]
    fn log_axes_tick_at_powers_of_ten_or_1_2_5() {
        assert_eq!(log_range(300, 2_000_000), (100, 10_000_000));
        assert_eq!(log_range(0, 0), (1, 10));
        let t = log_ticks(100, 10_000_000);
        assert_eq!(t, [100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000]);
        let labels: Vec<String> = t.iter().map(|v| duration_label(*v)).collect();
        assert_eq!(labels, ["100ns", "1us", "10us", "100us", "1ms", "10ms"]);
        // One decade: too few powers, so 2 and 5 times them as well.
        assert_eq!(log_ticks(1_000, 10_000), [1_000, 2_000, 5_000, 10_000]);
        // Past a second, the clock's units: a 40 s sleep and a 10-minute call.
        let (lo, hi) = log_range(1_000, 40 * S);
        assert_eq!(hi, 60 * S);
        let labels: Vec<String> = log_ticks(lo, hi).into_iter().map(duration_label).collect();
        assert_eq!(
            labels,
            [
                "1us", "10us", "100us", "1ms", "10ms", "100ms", "1s", "10s", "1m"
            ]
        );
        let (lo, hi) = log_range(10 * S, 600 * S + 1);
        assert_eq!((lo, hi), (10 * S, 3_600 * S));
        let labels: Vec<String> = log_ticks(lo, hi).into_iter().map(duration_label).collect();
        assert_eq!(labels, ["10s", "1m", "10m", "1h"]);
    }

    #[test]
    fn count_axes_have_four_to_eight_round_intervals() {
        for max in [1.0, 3.0, 7.0, 10.0, 99.0, 1234.0, 5e6, 7.3e9] {
            let (ticks, top) = count_ticks(max);
            assert!(top >= max, "{max}: {ticks:?}");
            assert!((5..=9).contains(&ticks.len()), "{max}: {ticks:?}");
        }
        assert_eq!(
            count_ticks(1234.0).0,
            [0.0, 200.0, 400.0, 600.0, 800.0, 1000.0, 1200.0, 1400.0]
        );
        assert_eq!(count_label(12_000.0), "12K");
        assert_eq!(count_label(1_500_000.0), "1.5M");
        assert_eq!(count_label(950.0), "950");
    }
}
