//! What the engineer sees while a capture runs: a live status line on a terminal, and a
//! warning whenever calls are being lost, terminal or not.
use std::{
    io::IsTerminal,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytesize::ByteSize;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Counters the writer thread updates and the capture loop reads.
#[derive(Debug, Default)]
pub struct Counters {
    pub rows: AtomicU64,
    pub bytes: AtomicU64,
    pub files: AtomicU64,
    /// Files `--max-size` deleted, and their rows (an earlier run's too): known to the
    /// session even when the writer fails afterwards.
    pub deleted_files: AtomicU64,
    pub deleted_rows: AtomicU64,
}

impl Counters {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn add_rows(&self, n: u64) {
        self.rows.fetch_add(n, Ordering::Relaxed);
    }

    pub fn add_file(&self, bytes: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.files.fetch_add(1, Ordering::Relaxed);
    }

    /// A file `--max-size` deleted, of this run or of an earlier one.
    pub fn count_deleted(&self, rows: u64) {
        self.deleted_files.fetch_add(1, Ordering::Relaxed);
        self.deleted_rows.fetch_add(rows, Ordering::Relaxed);
    }

    /// Flight-recorder mode deleted a file: the status line shows what is on disk.
    pub fn remove_file(&self, bytes: u64, rows: u64) {
        self.bytes.fetch_sub(bytes, Ordering::Relaxed);
        self.files.fetch_sub(1, Ordering::Relaxed);
        self.rows.fetch_sub(rows, Ordering::Relaxed);
    }
}

/// How often the status line and loss warnings refresh.
const REFRESH: Duration = Duration::from_millis(250);
const WARN_EVERY: Duration = Duration::from_secs(1);

pub struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
    last_refresh: Instant,
    last_warn: Instant,
    warned_lost: [u64; 2],
}

impl Progress {
    /// A status line only when stderr is a terminal and not `quiet`.
    pub fn new(quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {elapsed} {msg}").expect("valid template"),
            );
            bar
        });
        let now = Instant::now();
        Self {
            bar,
            started: now,
            last_refresh: now - REFRESH,
            last_warn: now - WARN_EVERY,
            warned_lost: [0; 2],
        }
    }

    /// Cheap to call every loop iteration: it does work at most every 250 ms. `lost`
    /// (`[ring full, thread table full]`) is asked for only then, since reading it walks
    /// per-CPU map values.
    pub fn tick(&mut self, events: u64, counters: &Counters, lost: impl FnOnce() -> [u64; 2]) {
        let now = Instant::now();
        if now - self.last_refresh < REFRESH {
            return;
        }
        self.last_refresh = now;
        let lost_by_cause = lost();
        if lost_by_cause != self.warned_lost && now - self.last_warn >= WARN_EVERY {
            let [ring, table] = lost_by_cause;
            let [warned_ring, warned_table] = self.warned_lost;
            if ring > warned_ring {
                self.warn(&format!(
                    "warning: {ring} syscalls lost so far ({} since the last warning): the buffer \
                     is full; a larger --buffer-size or a narrower target helps",
                    ring - warned_ring
                ));
            }
            if table > warned_table {
                self.warn(&format!(
                    "warning: {table} syscalls or threads lost so far ({} since the last \
                     warning): the thread table is full",
                    table - warned_table
                ));
            }
            self.warned_lost = lost_by_cause;
            self.last_warn = now;
        }
        let lost: u64 = lost_by_cause.iter().sum();
        if let Some(bar) = &self.bar {
            let secs = self.started.elapsed().as_secs_f64().max(1e-3);
            bar.set_message(format!(
                "{events} events ({:.0}/s), {lost} lost, {} written in {} file(s)",
                events as f64 / secs,
                ByteSize(counters.bytes.load(Ordering::Relaxed)),
                counters.files.load(Ordering::Relaxed),
            ));
            bar.tick();
        }
    }

    fn warn(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| crate::say!("{line}")),
            None => crate::say!("{line}"),
        }
    }

    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
