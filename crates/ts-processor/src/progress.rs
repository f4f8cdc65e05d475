//! Progress on long conversions: a bar on a terminal, a log line every 10 % otherwise.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress {
    bar: Option<ProgressBar>,
    total: AtomicU64,
    done: AtomicU64,
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
            total: AtomicU64::new(0),
            done: AtomicU64::new(0),
            logged_tenth: AtomicU64::new(0),
        }
    }

    /// No output at all (library-style callers and tests).
    pub fn hidden() -> Self {
        Self::new(false)
    }

    pub fn set_total(&self, bytes: u64) {
        self.total.store(bytes, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.set_length(bytes);
        }
    }

    pub fn advance(&self, bytes: u64) {
        let done = self.done.fetch_add(bytes, Ordering::Relaxed) + bytes;
        match &self.bar {
            Some(bar) => bar.set_position(done),
            None => {
                let total = self.total.load(Ordering::Relaxed).max(1);
                let tenth = done.saturating_mul(10) / total;
                if tenth > self.logged_tenth.fetch_max(tenth, Ordering::Relaxed) && tenth < 10 {
                    tracing::info!("{}% of the samples converted", tenth * 10);
                }
            }
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
