//! Progress on long conversions: a bar on a terminal, a log line every 10 % otherwise.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::{ProgressBar, ProgressStyle};

/// Reports conversion progress to a person (bar) or a log (lines).
pub struct Progress {
    bar: Option<ProgressBar>,
    /// Last tenth reported as a log line (when there is no bar).
    logged_tenth: AtomicU64,
}

impl Progress {
    /// A bar when stderr is a terminal and logs are for people; log lines otherwise.
    pub fn new(allow_bar: bool) -> Self {
        let bar = (allow_bar && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        });
        Self {
            bar,
            logged_tenth: AtomicU64::new(0),
        }
    }

    /// Log lines only, never a bar (container mode).
    pub fn hidden() -> Self {
        Self::new(false)
    }

    /// `done` of `total` raw bytes are converted (cumulative; called from any thread).
    pub fn update(&self, done: u64, total: u64) {
        match &self.bar {
            Some(bar) => {
                bar.set_length(total);
                bar.set_position(done);
            }
            None => {
                let tenth = done.saturating_mul(10) / total.max(1);
                if tenth > self.logged_tenth.fetch_max(tenth, Ordering::Relaxed) && tenth < 10 {
                    tracing::info!("{}% of the samples converted", tenth * 10);
                }
            }
        }
    }

    /// Removes the bar, if any.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
