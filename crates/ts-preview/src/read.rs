//! Reading one channel's samples inside a time window, decimated to min/max per pixel column.
//!
//! Chunks wholly outside the window are never opened. A chunk that overlaps it is decompressed as a
//! stream: samples before the window are skipped without being kept, and reading stops at the first
//! sample after it, so memory depends only on the number of pixel columns.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;
use ts_chunk_format::ScannedChunk;

use crate::error::{Error, Result};

/// Bytes decompressed per read.
const READ_BYTES: usize = 64 * 1024;

/// A channel's samples in the window, ready to draw. Times are µs after the preview's time origin.
#[derive(Debug, Default)]
pub(crate) struct Trace {
    /// Runs of points to connect; consecutive segments are separated by a gap, a NaN/infinite
    /// sample or a jump back in time.
    pub segments: Vec<Vec<(f64, f64)>>,
    /// Samples read inside the window (finite or not).
    pub samples: u64,
    /// Smallest and largest finite sample inside the window.
    pub range: Option<(f64, f64)>,
}

/// The window and the decimation grid.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    /// Start, µs after the time origin.
    pub start_us: f64,
    /// End (inclusive), µs after the time origin.
    pub end_us: f64,
    /// Pixel columns: each gets at most its minimum and maximum sample.
    pub columns: usize,
}

/// One channel's chunks, as found by the scan.
pub(crate) struct ChannelSource<'a> {
    /// Sorted by start time.
    pub chunks: &'a [ScannedChunk],
    /// The channel's sampling rate, Hz (positive, finite).
    pub rate: f64,
    /// The preview's time origin, µs since the Unix epoch.
    pub origin_us: i64,
}

/// µs after `origin` as f64, without overflowing for extreme names.
fn relative_us(t: i64, origin: i64) -> f64 {
    (i128::from(t) - i128::from(origin)) as f64
}

/// Reads the samples of `source` inside `window`.
pub(crate) fn read_window(source: &ChannelSource<'_>, window: &Window) -> Result<Trace> {
    let period_us = 1e6 / source.rate;
    let mut decimator = Decimator::new(window);
    let mut previous_end: Option<f64> = None;
    for chunk in source.chunks {
        let start = relative_us(chunk.name.start_us, source.origin_us);
        let end = relative_us(chunk.name.end_us, source.origin_us);
        // Do not connect across a jump of more than two sample periods, nor backwards in time.
        if let Some(previous) = previous_end
            && (start - previous > 2.0 * period_us || start <= previous)
        {
            decimator.break_segment();
        }
        previous_end = Some(previous_end.map_or(end, |p: f64| p.max(end)));
        if end < start || end < window.start_us {
            continue;
        }
        if start > window.end_us {
            break;
        }
        read_chunk_window(&chunk.path, start, period_us, window, &mut decimator)?;
    }
    Ok(decimator.finish())
}

/// Streams one chunk, passing the samples inside the window to `decimator`.
fn read_chunk_window(
    path: &Path,
    start_us: f64,
    period_us: f64,
    window: &Window,
    decimator: &mut Decimator,
) -> Result<()> {
    let chunk_err = |action| {
        move |source| Error::ChunkIo {
            action,
            path: path.to_owned(),
            source,
        }
    };
    let file = File::open(path).map_err(chunk_err("open"))?;
    let mut decoder = MultiGzDecoder::new(BufReader::new(file));

    // Skip the samples before the window (decompressed, not kept).
    let first = if window.start_us > start_us {
        ((window.start_us - start_us) / period_us).ceil() as u64
    } else {
        0
    };
    let skip_bytes = first.saturating_mul(8);
    let skipped = std::io::copy(&mut (&mut decoder).take(skip_bytes), &mut std::io::sink())
        .map_err(chunk_err("decompress"))?;
    if skipped < skip_bytes {
        // The chunk ends before the window starts (its name promised more samples).
        return check_length(path, skipped);
    }

    let mut buf = vec![0u8; READ_BYTES];
    let mut filled = 0usize;
    let mut index = first;
    let mut total = skipped;
    loop {
        let n = decoder
            .read(&mut buf[filled..])
            .map_err(chunk_err("decompress"))?;
        if n == 0 {
            return check_length(path, total + filled as u64);
        }
        filled += n;
        let words = filled / 8;
        for word in buf[..words * 8].chunks_exact(8) {
            let t = start_us + index as f64 * period_us;
            if t > window.end_us {
                return Ok(());
            }
            let mut be = [0u8; 8];
            be.copy_from_slice(word);
            decimator.push(t, f64::from_be_bytes(be));
            index += 1;
        }
        total += (words * 8) as u64;
        buf.copy_within(words * 8..filled, 0);
        filled -= words * 8;
    }
}

fn check_length(path: &Path, len: u64) -> Result<()> {
    if len.is_multiple_of(8) {
        Ok(())
    } else {
        Err(Error::ChunkLength {
            path: path.to_owned(),
            len,
        })
    }
}

/// One pixel column's extremes: (time, value) of its minimum and maximum.
#[derive(Debug, Clone, Copy)]
struct Column {
    index: usize,
    min: (f64, f64),
    max: (f64, f64),
}

/// Keeps at most the minimum and the maximum sample of each pixel column, per segment, so a trace
/// holds about two points per column whatever the number of samples.
struct Decimator {
    start_us: f64,
    span_us: f64,
    columns: usize,
    current: Option<Column>,
    /// Whether the last segment in `trace` is still being extended.
    open: bool,
    trace: Trace,
}

impl Decimator {
    fn new(window: &Window) -> Self {
        Decimator {
            start_us: window.start_us,
            span_us: (window.end_us - window.start_us).max(f64::MIN_POSITIVE),
            columns: window.columns.max(1),
            current: None,
            open: false,
            trace: Trace::default(),
        }
    }

    fn push(&mut self, t: f64, v: f64) {
        self.trace.samples += 1;
        if !v.is_finite() {
            self.break_segment();
            return;
        }
        self.trace.range = Some(match self.trace.range {
            None => (v, v),
            Some((lo, hi)) => (lo.min(v), hi.max(v)),
        });
        let column = (((t - self.start_us) / self.span_us) * self.columns as f64).floor();
        let column = (column.max(0.0) as usize).min(self.columns - 1);
        match &mut self.current {
            Some(c) if c.index == column => {
                if v < c.min.1 {
                    c.min = (t, v);
                }
                if v > c.max.1 {
                    c.max = (t, v);
                }
            }
            _ => {
                self.flush();
                self.current = Some(Column {
                    index: column,
                    min: (t, v),
                    max: (t, v),
                });
            }
        }
    }

    /// Ends the current segment: the next sample starts a new one.
    fn break_segment(&mut self) {
        self.flush();
        self.open = false;
    }

    fn flush(&mut self) {
        let Some(column) = self.current.take() else {
            return;
        };
        if !self.open {
            self.trace.segments.push(Vec::new());
            self.open = true;
        }
        let segment = self
            .trace
            .segments
            .last_mut()
            .unwrap_or_else(|| unreachable!("a segment was just opened"));
        let (a, b) = if column.min.0 <= column.max.0 {
            (column.min, column.max)
        } else {
            (column.max, column.min)
        };
        segment.push(a);
        if b != a {
            segment.push(b);
        }
    }

    fn finish(mut self) -> Trace {
        self.flush();
        self.trace
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(columns: usize) -> Window {
        Window {
            start_us: 0.0,
            end_us: 1000.0,
            columns,
        }
    }

    #[test]
    fn dense_samples_keep_min_and_max_per_column_in_time_order() {
        let mut d = Decimator::new(&window(2));
        for (t, v) in [(0.0, 1.0), (100.0, 5.0), (200.0, -3.0), (300.0, 2.0)] {
            d.push(t, v);
        }
        for (t, v) in [(600.0, 0.0), (700.0, -1.0)] {
            d.push(t, v);
        }
        let trace = d.finish();
        assert_eq!(trace.samples, 6);
        assert_eq!(trace.range, Some((-3.0, 5.0)));
        assert_eq!(
            trace.segments,
            vec![vec![
                (100.0, 5.0),
                (200.0, -3.0),
                (600.0, 0.0),
                (700.0, -1.0)
            ]]
        );
    }

    #[test]
    fn breaks_and_non_finite_samples_split_segments() {
        let mut d = Decimator::new(&window(1000));
        d.push(0.0, 1.0);
        d.push(1.0, 2.0);
        d.break_segment();
        d.push(5.0, 3.0);
        d.push(6.0, f64::NAN);
        d.push(7.0, 4.0);
        let trace = d.finish();
        assert_eq!(trace.samples, 5);
        assert_eq!(
            trace.segments,
            vec![
                vec![(0.0, 1.0), (1.0, 2.0)],
                vec![(5.0, 3.0)],
                vec![(7.0, 4.0)]
            ]
        );
    }

    #[test]
    fn points_stay_bounded_by_columns() {
        let mut d = Decimator::new(&window(10));
        for i in 0..100_000 {
            let t = i as f64 / 100.0;
            d.push(t, (t * 0.37).sin());
        }
        let trace = d.finish();
        assert_eq!(trace.samples, 100_000);
        assert!(trace.segments.iter().map(Vec::len).sum::<usize>() <= 20);
    }
}
