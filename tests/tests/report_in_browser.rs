//! The HTML report of a real capture, seen in a real browser (Debian's `chromium`,
//! headless): nothing overflows the page at 1280 px or at a phone's 390 px, every chart is
//! an SVG with labelled ticks, and the page fetches and runs nothing. A screenshot is kept
//! in `target/tmp/report-1280.png` for whoever reads the test run.
use std::{
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::Value;
use tracepost_e2e::{analyze, bpf_available, record};

/// Lists what overflows, and each chart's text, as JSON in `<pre id="probe">`. It runs in a
/// copy of the report only: the report itself forbids scripts.
const PROBE: &str = r#"<script>
(function () {
  var width = Math.min(document.documentElement.clientWidth,
                       document.documentElement.getBoundingClientRect().width);
  var scrolls = function (e) {
    for (var a = e.parentElement; a; a = a.parentElement) {
      var o = getComputedStyle(a).overflowX;
      if (o === 'auto' || o === 'scroll') return true;
    }
    return false;
  };
  var over = [];
  document.querySelectorAll('body *').forEach(function (e) {
    var r = e.getBoundingClientRect();
    if (r.width > 0 && r.right > width + 0.5 && !scrolls(e)) {
      over.push(e.tagName + '.' + e.className + ' right=' + Math.round(r.right) + ': ' +
                (e.textContent || '').slice(0, 60));
    }
  });
  var charts = [];
  document.querySelectorAll('figure').forEach(function (f) {
    var svg = f.querySelector('svg');
    var box = svg ? svg.getBoundingClientRect() : null;
    charts.push({
      svg: !!svg,
      right: box ? box.right : 0,
      texts: svg ? Array.prototype.map.call(svg.querySelectorAll('text'),
                                            function (t) { return t.textContent.trim(); }) : [],
      points: svg ? Array.prototype.reduce.call(svg.querySelectorAll('polyline'),
        function (n, p) { return Math.max(n, p.points.numberOfItems); }, 0) : 0
    });
  });
  var pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = JSON.stringify({
    width: width,
    page_width: document.documentElement.scrollWidth,
    over: over,
    charts: charts
  });
  document.body.appendChild(pre);
})();
</script>"#;

fn chromium() -> Command {
    let mut c = Command::new("chromium");
    // As root, Chromium needs its sandbox off; it reads only our own local file.
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
    ]);
    c
}

/// The probe's findings for `page` laid out `width` px wide. Headless Chromium will not
/// make a window narrower than 500 px, so a phone's width is set on the root element: the
/// report has no media queries, so its layout is the same as in a viewport that wide.
fn probe(page: &str, dir: &Path, width: u32) -> Value {
    let mut copy = page
        .lines()
        .filter(|l| !l.contains("Content-Security-Policy"))
        .collect::<Vec<_>>()
        .join("\n");
    let narrow = if width < 500 {
        format!("<style>html{{width:{width}px}}</style>")
    } else {
        String::new()
    };
    copy = copy.replace("</body>", &format!("{narrow}{PROBE}</body>"));
    let file = dir.join(format!("probe-{width}.html"));
    std::fs::write(&file, copy).unwrap();
    let out = chromium()
        .arg(format!("--window-size={},900", width.max(500)))
        .arg("--dump-dom")
        .arg(format!("file://{}", file.display()))
        .output()
        .expect("chromium runs (dev/setup --test installs it)");
    assert!(out.status.success(), "{out:?}");
    let dom = String::from_utf8_lossy(&out.stdout);
    let start = dom.find("<pre id=\"probe\">").expect("the probe ran") + 16;
    let end = start + dom[start..].find("</pre>").unwrap();
    let json = dom[start..end]
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"))
}

fn is_time_tick(t: &str) -> bool {
    t == "+0" || (t.starts_with('+') && t[1..].chars().next().is_some_and(|c| c.is_ascii_digit()))
}

/// `10us`, `1ms`, `2s`: a round latency with its unit.
fn is_latency_tick(t: &str) -> bool {
    let digits = t.chars().take_while(|c| c.is_ascii_digit()).count();
    digits > 0 && ["ns", "us", "ms", "s"].contains(&&t[digits..])
}

fn is_count_tick(t: &str) -> bool {
    let number = t.trim_end_matches(['K', 'M', 'G']);
    !number.is_empty() && number.parse::<f64>().is_ok()
}

#[test]
fn the_html_report_reads_in_a_real_browser() {
    if !bpf_available("the_html_report_reads_in_a_real_browser") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let capture = tmp.path().join("c");
    // About 400 ms of work, errors and waiting, with a long command line that must wrap.
    let script = "for i in 1 2 3; do cat /etc/hostname >/dev/null; ls /nonexistent-file-$i 2>/dev/null; \
                  sleep 0.1; done; dd if=/dev/zero of=/dev/null bs=4k count=2000 2>/dev/null; \
                  : a-long-argument-that-has-no-spaces-so-that-a-narrow-page-must-break-it-somewhere-\
                  0123456789012345678901234567890123456789; exit 0";
    assert!(record(&capture, &["sh", "-c", script]).status.success());
    let html = tmp.path().join("report.html");
    let out = analyze(&[
        "report",
        capture.to_str().unwrap(),
        "-o",
        html.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let page = std::fs::read_to_string(&html).unwrap();

    // Self-contained: nothing to run or fetch, and a policy that makes the browser refuse
    // both should anything slip in.
    for never in [
        "<script", "src=", "href=", "url(", "@import", "<link", "<iframe",
    ] {
        assert!(!page.contains(never), "the report holds {never}");
    }
    assert!(page.contains(r#"content="default-src 'none'; style-src 'unsafe-inline'""#));

    for width in [1280, 390] {
        let p = probe(&page, tmp.path(), width);
        assert_eq!(p["width"].as_u64(), Some(u64::from(width)), "{p}");
        assert!(
            p["over"].as_array().unwrap().is_empty(),
            "at {width} px, these overflow the page: {:#}",
            p["over"]
        );
        assert!(
            p["page_width"].as_u64().unwrap() <= u64::from(width.max(500)),
            "at {width} px the page scrolls sideways: {p}"
        );
        let charts = p["charts"].as_array().unwrap();
        // The heatmap, calls and errors per second, and a histogram for each of the four
        // syscalls whose work took the most time.
        assert_eq!(charts.len(), 2 + 4, "{p}");
        for (i, c) in charts.iter().enumerate() {
            assert_eq!(c["svg"], true);
            assert!(c["right"].as_f64().unwrap() <= f64::from(width) + 0.5);
            let texts: Vec<&str> = c["texts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap())
                .collect();
            let count = |f: fn(&str) -> bool| texts.iter().filter(|t| f(t)).count();
            let title = texts[0];
            match i {
                0 => {
                    assert!(title.starts_with("Latency over time"), "{texts:?}");
                    assert!(count(is_time_tick) >= 4, "time ticks: {texts:?}");
                    assert!(count(is_latency_tick) >= 3, "latency ticks: {texts:?}");
                }
                1 => {
                    assert_eq!(title, "Calls and errors per second");
                    assert!(count(is_time_tick) >= 4, "time ticks: {texts:?}");
                    assert!(count(is_count_tick) >= 4, "count ticks: {texts:?}");
                    assert!(
                        texts.contains(&"calls") && texts.contains(&"errors"),
                        "legend"
                    );
                    // Bins fit the capture's length: 80 to 200 points per line.
                    let points = c["points"].as_u64().unwrap();
                    assert!((80..=201).contains(&points), "{points} points");
                }
                _ => {
                    assert!(
                        title.ends_with(" latency, calls that did work"),
                        "{texts:?}"
                    );
                    // Waiting is kept out of the histograms: `sh` waits for each child.
                    assert!(!title.starts_with("wait4"), "{texts:?}");
                    assert!(count(is_latency_tick) >= 3, "latency ticks: {texts:?}");
                    assert!(count(is_count_tick) >= 4, "count ticks: {texts:?}");
                }
            }
            // Both axes are labelled.
            let labels: &[&str] = match i {
                0 => &["time from ", "latency (log scale)"],
                1 => &["time from ", "per second"],
                _ => &["latency (log scale)", "calls"],
            };
            for l in labels {
                assert!(texts.iter().any(|t| t.starts_with(l)), "{l}: {texts:?}");
            }
        }
    }

    // The screenshot, for people reading the test run.
    let shot = screenshot_path();
    let out = chromium()
        .arg("--window-size=1280,2400")
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    assert_eq!(width, 1280);
    eprintln!("screenshot: {}", shot.display());
}

fn screenshot_path() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-1280.png")
}
