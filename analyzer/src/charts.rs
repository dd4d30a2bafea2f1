//! Inline SVG charts for the HTML report: no scripts, no fetches, so the file opens the same
//! anywhere, including attached to a ticket.
use std::fmt::Write as _;

const W: f64 = 900.0;
const H: f64 = 220.0;
const PAD_L: f64 = 60.0;
const PAD_B: f64 = 28.0;

/// Text for HTML and SVG.
pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn frame(title: &str, body: &str, x_label: &str, y_label: &str) -> String {
    format!(
        r##"<figure><figcaption>{t}</figcaption><svg viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{t}">
<rect x="{PAD_L}" y="4" width="{pw}" height="{ph}" fill="#fafafa" stroke="#ccc"/>
{body}
<text x="{cx}" y="{ty}" font-size="11" text-anchor="middle">{x}</text>
<text x="12" y="{cy}" font-size="11" text-anchor="middle" transform="rotate(-90 12 {cy})">{y}</text>
</svg></figure>
"##,
        t = escape(title),
        pw = W - PAD_L - 8.0,
        ph = H - PAD_B - 4.0,
        cx = PAD_L + (W - PAD_L) / 2.0,
        ty = H - 6.0,
        cy = (H - PAD_B) / 2.0,
        x = escape(x_label),
        y = escape(y_label),
    )
}

/// Per-second series as lines (calls, errors), each with its own colour and a shared y axis.
pub fn lines(title: &str, x_label: &str, series: &[(&str, &str, Vec<f64>)]) -> String {
    let n = series.iter().map(|s| s.2.len()).max().unwrap_or(0);
    let max = series
        .iter()
        .flat_map(|s| s.2.iter().copied())
        .fold(0.0f64, f64::max)
        .max(1.0);
    let (pw, ph) = (W - PAD_L - 8.0, H - PAD_B - 8.0);
    let x = |i: usize| {
        PAD_L
            + if n > 1 {
                pw * i as f64 / (n - 1) as f64
            } else {
                pw / 2.0
            }
    };
    let y = |v: f64| 4.0 + ph - ph * v / max;
    let mut body = String::new();
    for (k, (name, colour, values)) in series.iter().enumerate() {
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v)))
            .collect();
        let _ = writeln!(
            body,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{}"/>"#,
            points.join(" ")
        );
        let _ = writeln!(
            body,
            r#"<text x="{:.0}" y="{:.0}" font-size="11" fill="{colour}">{}</text>"#,
            PAD_L + 8.0 + 90.0 * k as f64,
            16.0,
            escape(name)
        );
    }
    let _ = writeln!(
        body,
        r#"<text x="{:.0}" y="12" font-size="10" text-anchor="end">{max:.0}</text><text x="{:.0}" y="{:.0}" font-size="10" text-anchor="end">0</text>"#,
        PAD_L - 4.0,
        PAD_L - 4.0,
        H - PAD_B
    );
    frame(title, &body, x_label, "per second")
}

/// Latency over time: columns are time, rows are log2 latency buckets, darker is more calls.
pub fn heatmap(title: &str, x_label: &str, columns: &[Vec<u64>], buckets: usize) -> String {
    let (pw, ph) = (W - PAD_L - 8.0, H - PAD_B - 8.0);
    let max = columns
        .iter()
        .flat_map(|c| c.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let cw = pw / columns.len().max(1) as f64;
    let rh = ph / buckets.max(1) as f64;
    let mut body = String::new();
    for (i, col) in columns.iter().enumerate() {
        for (b, &count) in col.iter().enumerate() {
            if count == 0 {
                continue;
            }
            // Log scale: a handful of slow calls stay visible beside millions of fast ones.
            let shade = (count as f64).ln_1p() / max.ln_1p();
            let _ = writeln!(
                body,
                r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#c0392b" fill-opacity="{:.2}"><title>{count} calls, {}</title></rect>"##,
                PAD_L + cw * i as f64,
                4.0 + ph - rh * (b + 1) as f64,
                cw.max(1.0),
                rh,
                0.1 + 0.9 * shade,
                bucket_label(b)
            );
        }
    }
    for b in (0..buckets).step_by(5) {
        let _ = writeln!(
            body,
            r#"<text x="{:.0}" y="{:.0}" font-size="10" text-anchor="end">{}</text>"#,
            PAD_L - 4.0,
            4.0 + ph - rh * b as f64,
            bucket_label(b)
        );
    }
    frame(title, &body, x_label, "latency")
}

/// Calls per log2 latency bucket.
pub fn histogram(title: &str, counts: &[u64]) -> String {
    let (pw, ph) = (W - PAD_L - 8.0, H - PAD_B - 8.0);
    let max = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let bw = pw / counts.len().max(1) as f64;
    let mut body = String::new();
    for (b, &count) in counts.iter().enumerate() {
        let h = ph * count as f64 / max;
        let _ = writeln!(
            body,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#2c7fb8"><title>{count} calls, {}</title></rect>"##,
            PAD_L + bw * b as f64 + 1.0,
            4.0 + ph - h,
            (bw - 2.0).max(1.0),
            h,
            bucket_label(b)
        );
        if b % 4 == 0 {
            let _ = writeln!(
                body,
                r#"<text x="{:.0}" y="{:.0}" font-size="10" text-anchor="middle">{}</text>"#,
                PAD_L + bw * b as f64 + bw / 2.0,
                H - PAD_B + 12.0,
                bucket_label(b)
            );
        }
    }
    frame(title, &body, "latency (log2 buckets)", "calls")
}

/// The lower bound of log2 bucket `b`, as a duration.
fn bucket_label(b: usize) -> String {
    crate::udfs::format_duration(1i64 << b.min(62))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_self_contained_svg() {
        let svg = histogram("read <latency>", &[0, 3, 10, 1]);
        assert!(svg.contains("<svg") && svg.contains("read &lt;latency&gt;"));
        assert!(!svg.contains("http://") || svg.contains("xmlns"));
        let h = heatmap("h", "time", &[vec![1, 0, 2], vec![0, 5, 0]], 3);
        assert_eq!(h.matches("<rect").count(), 1 + 3);
        let l = lines("l", "time", &[("calls", "#000", vec![1.0, 2.0, 3.0])]);
        assert!(l.contains("polyline"));
    }
}
