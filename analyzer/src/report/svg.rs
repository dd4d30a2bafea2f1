//! Drawing the report's charts as SVG with plotters: text and shapes only, no scripts and
//! nothing fetched, so the page opens the same anywhere, attached to a ticket included.
//! Where ticks fall and how they read is [`axes`](super::axes)'s business; this file only
//! draws what it is given.
use std::ops::Range;

use anyhow::{Result, anyhow};
use plotters::{
    coord::ranged1d::{DefaultFormatting, KeyPointHint},
    prelude::*,
};

use super::{
    axes,
    chart_data::{Chart, TimeAxis},
};

const SIZE: (u32, u32) = (1100, 280);
const FONT: &str = "sans-serif";
const BLUE: RGBColor = RGBColor(0x2c, 0x7f, 0xb8);
const RED: RGBColor = RGBColor(0xc0, 0x39, 0x2b);

/// An axis whose ticks are given, linear or logarithmic: plotters' own choice of ticks
/// knows neither clock units nor round latencies.
struct Axis {
    range: Range<f64>,
    ticks: Vec<f64>,
    log: bool,
}

impl Axis {
    fn linear(hi: f64, ticks: Vec<f64>) -> Self {
        Self {
            range: 0.0..hi.max(f64::MIN_POSITIVE),
            ticks,
            log: false,
        }
    }

    /// A latency axis holding `lo..hi` ns, widened to whole decades.
    fn latency(lo: u64, hi: u64) -> Self {
        let (lo, hi) = axes::log_range(lo, hi);
        Self {
            range: lo as f64..hi as f64,
            ticks: axes::log_ticks(lo, hi)
                .into_iter()
                .map(|t| t as f64)
                .collect(),
            log: true,
        }
    }

    fn time(t: &TimeAxis) -> Self {
        let ticks = axes::time_ticks(t.span_ns);
        let end = (t.bins as u64 * t.bin_ns).max(t.span_ns) as f64;
        Self::linear(end, ticks.into_iter().map(|t| t as f64).collect())
    }

    fn scale(&self, v: f64) -> f64 {
        if self.log { v.max(1.0).log10() } else { v }
    }
}

impl Ranged for Axis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let (a, b) = (self.scale(self.range.start), self.scale(self.range.end));
        let f = (self.scale(*v) - a) / (b - a);
        limit.0 + (f * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, _: H) -> Vec<f64> {
        self.ticks.clone()
    }

    fn range(&self) -> Range<f64> {
        self.range.clone()
    }
}

pub fn draw(chart: &Chart) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        let drawn = match chart {
            Chart::Heatmap { title, time, cells } => heatmap(&root, title, time, cells),
            Chart::Rates {
                title,
                time,
                series,
            } => rates(&root, title, time, series),
            Chart::Histogram { title, buckets } => histogram(&root, title, buckets),
        };
        drawn.map_err(|e| anyhow!("cannot draw a chart: {e}"))?;
        root.present()
            .map_err(|e| anyhow!("cannot draw a chart: {e}"))?;
    }
    Ok(svg)
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;
type Drawn = std::result::Result<(), Box<dyn std::error::Error>>;

fn frame<'a, 'b>(
    root: &'a Area<'b>,
    title: &str,
    x: Axis,
    y: Axis,
) -> std::result::Result<Plot<'a, 'b>, Box<dyn std::error::Error>> {
    root.fill(&WHITE)?;
    Ok(ChartBuilder::on(root)
        .caption(title, (FONT, 17))
        .margin(10)
        // Room for the last tick's label past the plot's right edge.
        .margin_right(36)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(x, y)?)
}

type Plot<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<Axis, Axis>>;

/// An axis's description, and how its tick values read.
type AxisText<'a> = (&'a str, fn(f64) -> String);

/// Axis descriptions, tick labels and fonts, the same on every chart; `grid` draws light
/// lines at the y ticks (the heatmap's cells would hide them).
fn mesh(chart: &mut Plot, x: AxisText, y: AxisText, grid: bool) -> Drawn {
    let (x_label, y_label) = (|v: &f64| (x.1)(*v), |v: &f64| (y.1)(*v));
    let mut mesh = chart.configure_mesh();
    if grid {
        mesh.disable_x_mesh()
            .light_line_style(WHITE)
            .bold_line_style(RGBColor(0xe4, 0xe4, 0xe4));
    } else {
        mesh.disable_mesh();
    }
    mesh.x_desc(x.0)
        .y_desc(y.0)
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_label)
        .axis_desc_style((FONT, 14))
        .label_style((FONT, 12))
        .draw()?;
    Ok(())
}

fn time_label(v: f64) -> String {
    axes::time_label(v as u64)
}

fn latency_label(v: f64) -> String {
    axes::duration_label(v as u64)
}

/// The bounds of log2 bucket `b` in ns.
fn bucket_bounds(b: u32) -> (u64, u64) {
    (1u64 << b.min(62), 1u64 << (b + 1).min(63))
}

fn latency_axis<'a>(buckets: impl Iterator<Item = &'a u32> + Clone) -> Axis {
    let lo = buckets.clone().min().copied().unwrap_or(0);
    let hi = buckets.max().copied().unwrap_or(0);
    Axis::latency(bucket_bounds(lo).0, bucket_bounds(hi).1)
}

/// From the axis's start, which is the first recorded call's time or the start of the
/// first interval the kernel counted calls in, whichever is earlier: "since the first
/// call" was wrong for the second (a `--min-duration` capture's).
fn time_desc(t: &TimeAxis) -> String {
    format!(
        "time from {} ({} per bin)",
        t.start,
        axes::duration_label(t.bin_ns)
    )
}

fn heatmap(root: &Area, title: &str, time: &TimeAxis, cells: &[(usize, u32, u64)]) -> Drawn {
    let y = latency_axis(cells.iter().map(|c| &c.1));
    let mut chart = frame(root, title, Axis::time(time), y)?;
    mesh(
        &mut chart,
        (&time_desc(time), time_label),
        ("latency (log scale)", latency_label),
        false,
    )?;
    let max = cells.iter().map(|c| c.2).max().unwrap_or(1).max(1) as f64;
    let bin = time.bin_ns as f64;
    chart.draw_series(cells.iter().map(|&(b, bucket, calls)| {
        // Log shading: a handful of slow calls stays visible beside millions of fast ones.
        let shade = (calls as f64).ln_1p() / max.ln_1p();
        let (lo, hi) = bucket_bounds(bucket);
        Rectangle::new(
            [
                (b as f64 * bin, lo as f64),
                ((b + 1) as f64 * bin, hi as f64),
            ],
            RED.mix(0.1 + 0.9 * shade).filled(),
        )
    }))?;
    Ok(())
}

fn rates(root: &Area, title: &str, time: &TimeAxis, series: &[(String, Vec<f64>)]) -> Drawn {
    let max = series
        .iter()
        .flat_map(|s| s.1.iter().copied())
        .fold(0.0, f64::max);
    // Headroom for the legend, in the upper right, above the lines.
    let (ticks, top) = axes::count_ticks(max * 1.2);
    let mut chart = frame(root, title, Axis::time(time), Axis::linear(top, ticks))?;
    mesh(
        &mut chart,
        (&time_desc(time), time_label),
        ("per second", axes::count_label),
        true,
    )?;
    let bin = time.bin_ns as f64;
    for ((name, values), colour) in series.iter().zip([BLUE, RED]) {
        let style = ShapeStyle::from(colour).stroke_width(2);
        chart
            .draw_series(LineSeries::new(
                values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| ((i as f64 + 0.5) * bin, *v)),
                style,
            ))?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FONT, 13))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(0xbb, 0xbb, 0xbb))
        .draw()?;
    Ok(())
}

fn histogram(root: &Area, title: &str, buckets: &[(u32, u64)]) -> Drawn {
    let x = latency_axis(buckets.iter().map(|b| &b.0));
    let max = buckets.iter().map(|b| b.1).max().unwrap_or(0) as f64;
    let (ticks, top) = axes::count_ticks(max);
    let mut chart = frame(root, title, x, Axis::linear(top, ticks))?;
    mesh(
        &mut chart,
        ("latency (log scale)", latency_label),
        ("calls", axes::count_label),
        true,
    )?;
    chart.draw_series(buckets.iter().map(|&(b, calls)| {
        let (lo, hi) = bucket_bounds(b);
        Rectangle::new([(lo as f64, 0.0), (hi as f64, calls as f64)], BLUE.filled())
    }))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time() -> TimeAxis {
        TimeAxis {
            span_ns: 1_200_000_000,
            bin_ns: 10_000_000,
            bins: 121,
            start: "2026-12-01 10:00:00 UTC".into(),
        }
    }

    /// The text of every `<text>` element, in order.
    fn texts(svg: &str) -> Vec<String> {
        svg.split("<text")
            .skip(1)
            .map(|t| {
                let body = &t[t.find('>').unwrap() + 1..t.find("</text>").unwrap()];
                body.trim().to_string()
            })
            .collect()
    }

    #[test]
    fn charts_carry_their_title_labelled_ticks_and_legend() {
        let heat = draw(&Chart::Heatmap {
            title: "Latency over time".into(),
            time: time(),
            // 1 us, 1 ms, and a call of nine minutes, which must be drawn at nine minutes.
            cells: vec![(0, 10, 5), (120, 20, 1), (60, 39, 1)],
        })
        .unwrap();
        let t = texts(&heat);
        assert!(t.contains(&"Latency over time".to_string()), "{t:?}");
        for tick in [
            "+0",
            "+200ms",
            "+1s 200ms",
            "1us",
            "10us",
            "1ms",
            "10ms",
            "10m",
            "1h",
        ] {
            assert!(t.contains(&tick.to_string()), "{tick} missing from {t:?}");
        }
        assert_eq!(
            heat.matches("<rect").count(),
            1 + 3,
            "background and three cells"
        );

        let rates = draw(&Chart::Rates {
            title: "Calls".into(),
            time: time(),
            series: vec![
                ("calls".into(), vec![1200.0, 100.0]),
                ("errors".into(), vec![0.0, 100.0]),
            ],
        })
        .unwrap();
        let t = texts(&rates);
        for label in ["calls", "errors", "per second", "0", "1.6K"] {
            assert!(t.contains(&label.to_string()), "{label} missing from {t:?}");
        }

        let hist = draw(&Chart::Histogram {
            title: "read <latency>".into(),
            buckets: vec![(3, 7), (12, 1)],
        })
        .unwrap();
        assert!(hist.contains("read &lt;latency&gt;"), "titles are escaped");
        let t = texts(&hist);
        for label in ["1ns", "10ns", "1us", "10us", "calls", "0", "7"] {
            assert!(t.contains(&label.to_string()), "{label} missing from {t:?}");
        }
        for svg in [heat, rates, hist] {
            assert!(!svg.contains("<script") && !svg.contains("href"));
        }
    }
}
