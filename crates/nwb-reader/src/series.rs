//! [`SeriesReader`]: streaming reads of one series (raw blocks across all channels), sample times
//! and contiguous segments.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use hdf5::Dataset;
use ndarray::{Array2, s};

use crate::block::{RawBlock, ScaledBlock};
use crate::error::{Error, Location, Result};
use crate::h5util::read_f64_range;
use crate::model::{RawDtype, SegmentReport, SeriesInfo, TimeBase};
use crate::stored::{ChunkLayout, StoredBlock};

/// Timestamps are scanned for gaps this many at a time, so memory does not grow with the file.
const TIMESTAMP_BATCH: u64 = 1 << 20;

/// Reads the samples and times of one series. Made by [`crate::NwbFile::open_series`].
pub struct SeriesReader {
    file: PathBuf,
    info: SeriesInfo,
    data: Dataset,
    timestamps: Option<Dataset>,
    t0: f64,
    /// How to read stored chunks, or why they cannot be decoded here.
    stored: std::result::Result<Arc<ChunkLayout>, String>,
}

impl SeriesReader {
    /// A reader of `data` (and `timestamps` for a timestamps time base) of the series `info` in
    /// `file`, whose reference time is `t0` seconds since the epoch.
    pub(crate) fn new(
        file: PathBuf,
        info: SeriesInfo,
        data: Dataset,
        timestamps: Option<Dataset>,
        t0: f64,
    ) -> Self {
        let stored = ChunkLayout::detect(&data, &info, file.clone()).map(Arc::new);
        Self {
            file,
            info,
            data,
            timestamps,
            t0,
            stored,
        }
    }

    /// What discovery found about the series.
    pub fn info(&self) -> &SeriesInfo {
        &self.info
    }

    /// [`Error::Hdf5`] at `object` of this series' file.
    fn err(&self, object: &str, action: &'static str, source: hdf5::Error) -> Error {
        Error::Hdf5 {
            at: Location {
                file: self.file.clone(),
                object: object.to_owned(),
            },
            action,
            source,
        }
    }

    /// The `timestamps` dataset's path, for errors.
    fn ts_path(&self) -> String {
        format!("{}/timestamps", self.info.path)
    }

    /// Absolute time of sample `i` in seconds since the epoch (spec "Time base"). A timestamp
    /// that is not finite, or `i` past the end, is an error.
    pub fn time_at(&self, i: u64) -> Result<f64> {
        if i >= self.info.num_samples {
            return Err(Error::invalid_at(
                &self.file,
                &self.info.path,
                format!(
                    "sample {i} is past the end ({} samples)",
                    self.info.num_samples
                ),
            ));
        }
        match (&self.info.time, &self.timestamps) {
            (
                TimeBase::Rate {
                    rate,
                    starting_time,
                },
                _,
            ) => Ok((starting_time + i as f64 / rate) + self.t0),
            (TimeBase::Timestamps { .. }, Some(ts)) => {
                let i = i as usize;
                let v = read_f64_range(ts, i, i + 1)
                    .map_err(|e| self.err(&self.ts_path(), "reading a timestamp", e))?;
                let t = v[0];
                if !t.is_finite() {
                    return Err(non_finite(&self.file, &self.ts_path(), i as u64, t));
                }
                Ok(t + self.t0)
            }
            (TimeBase::Timestamps { .. }, None) => unreachable!("open_series opens timestamps"),
        }
    }

    /// Contiguous segments (spec "Contiguous segments"): one for a rate; with timestamps a new
    /// segment wherever `t(i) - t(i-1) > 2 * (1 / rate)` or `t(i) <= t(i-1)`. The ranges of
    /// [`segments_report`](Self::segments_report), without its warning.
    pub fn segments(&self) -> Result<Vec<Range<u64>>> {
        Ok(self.segments_report()?.segments)
    }

    /// The contiguous segments with the first index where time stands still or goes back and
    /// how many there are, and a warning saying so. Timestamps are streamed in batches; one
    /// that is not finite is an error naming its index.
    pub fn segments_report(&self) -> Result<SegmentReport> {
        self.segments_in_batches(TIMESTAMP_BATCH)
    }

    /// [`segments_report`](Self::segments_report), reading `batch_len` timestamps at a time.
    fn segments_in_batches(&self, batch_len: u64) -> Result<SegmentReport> {
        let n = self.info.num_samples;
        let Some(ts) = &self.timestamps else {
            return Ok(SegmentReport {
                segments: std::iter::once(0..n).collect(),
                first_non_increasing: None,
                non_increasing: 0,
                warning: None,
            });
        };
        let mut splitter = GapSplitter::new(self.info.time.rate(), self.t0);
        let mut batch_start = 0u64;
        while batch_start < n {
            let batch_end = (batch_start + batch_len.max(1)).min(n);
            let batch = read_f64_range(ts, batch_start as usize, batch_end as usize)
                .map_err(|e| self.err(&self.ts_path(), "reading timestamps", e))?;
            splitter
                .push(batch.iter().copied())
                .map_err(|(i, t)| non_finite(&self.file, &self.ts_path(), i, t))?;
            batch_start = batch_end;
        }
        Ok(splitter.finish(&self.info.path))
    }

    /// Samples per block for about `target_bytes` of raw data, rounded up to whole chunks of a
    /// chunked dataset so every chunk is decompressed exactly once.
    pub fn preferred_block_len(&self, target_bytes: usize) -> u64 {
        let per_sample = (self.info.num_channels * self.info.dtype.size()).max(1) as u64;
        let mut len = (target_bytes as u64 / per_sample).max(1);
        if let Some(chunk) = &self.info.storage.chunk_shape {
            let rows = chunk.first().copied().unwrap_or(1).max(1);
            len = len.div_ceil(rows) * rows;
        }
        len.min(self.info.num_samples.max(1))
    }

    /// Reads samples `range` of every channel in the stored type.
    /// A range that is reversed or reaches past the end is an error.
    pub fn read_raw(&self, range: Range<u64>) -> Result<RawBlock> {
        self.check_range(&range)?;
        self.read_in_hdf5(range)
    }

    fn check_range(&self, range: &Range<u64>) -> Result<()> {
        if range.start > range.end || range.end > self.info.num_samples {
            return Err(Error::invalid_at(
                &self.file,
                &format!("{}/data", self.info.path),
                format!(
                    "cannot read samples {range:?}: the series has {}",
                    self.info.num_samples
                ),
            ));
        }
        Ok(())
    }

    /// `Ok` when [`read_stored`](Self::read_stored) can read this series: chunked, at most
    /// [`MAX_STORED_CHUNK_BYTES`](crate::MAX_STORED_CHUNK_BYTES) per chunk, stored in this
    /// machine's byte order, with no filters but deflate and shuffle. Otherwise why not; such
    /// series read through HDF5 with [`read_raw`](Self::read_raw).
    pub fn stored_chunks(&self) -> std::result::Result<(), &str> {
        self.stored.as_ref().map(|_| ()).map_err(String::as_str)
    }

    /// Reads samples `range` of every channel as the stored chunks that hold them, without
    /// decoding: [`StoredBlock::decode`] does that later, on any thread and in parallel. An error
    /// when [`stored_chunks`](Self::stored_chunks) is not `Ok`, or for a range as in
    /// [`read_raw`](Self::read_raw).
    pub fn read_stored(&self, range: Range<u64>) -> Result<StoredBlock> {
        self.check_range(&range)?;
        match &self.stored {
            Ok(layout) => layout.read(&self.data, range),
            Err(why) => Err(Error::invalid_at(
                &self.file,
                &format!("{}/data", self.info.path),
                format!("cannot read stored chunks: {why}"),
            )),
        }
    }

    fn read_in_hdf5(&self, range: Range<u64>) -> Result<RawBlock> {
        let (a, b) = (range.start as usize, range.end as usize);
        let two_d = self.info.shape.len() == 2;
        macro_rules! read {
            ($t:ty, $variant:ident) => {{
                let block: hdf5::Result<Array2<$t>> = if two_d {
                    self.data.read_slice_2d::<$t, _>(s![a..b, ..])
                } else {
                    self.data
                        .read_slice_1d::<$t, _>(s![a..b])
                        .map(|v| v.insert_axis(ndarray::Axis(1)))
                };
                RawBlock::$variant(block.map_err(|e| {
                    self.err(&format!("{}/data", self.info.path), "reading samples", e)
                })?)
            }};
        }
        Ok(match self.info.dtype {
            RawDtype::I8 => read!(i8, I8),
            RawDtype::I16 => read!(i16, I16),
            RawDtype::I32 => read!(i32, I32),
            RawDtype::I64 => read!(i64, I64),
            RawDtype::U8 => read!(u8, U8),
            RawDtype::U16 => read!(u16, U16),
            RawDtype::U32 => read!(u32, U32),
            RawDtype::U64 => read!(u64, U64),
            RawDtype::F32 => read!(f32, F32),
            RawDtype::F64 => read!(f64, F64),
        })
    }

    /// Reads samples `range` of every channel and scales them to microvolts into `out`, one
    /// vector per channel (buffers are reused between calls).
    pub fn read_scaled(&self, range: Range<u64>, out: &mut ScaledBlock) -> Result<()> {
        let start = range.start;
        let raw = self.read_raw(range)?;
        out.fill_from(start, &raw, &self.info.scaling);
        Ok(())
    }

    /// Blocks of `block_len` samples from the start to the end of the series.
    pub fn blocks(&self, block_len: u64) -> impl Iterator<Item = Result<(u64, RawBlock)>> + '_ {
        let n = self.info.num_samples;
        let step = block_len.max(1);
        (0..n.div_ceil(step)).map(move |i| {
            let a = i * step;
            self.read_raw(a..(a + step).min(n)).map(|b| (a, b))
        })
    }
}

/// The error for timestamp `i` of `object` being `t`, not a finite number.
fn non_finite(file: &std::path::Path, object: &str, i: u64, t: f64) -> Error {
    Error::invalid_at(
        file,
        object,
        format!("timestamp {i} is {t}, not a finite time"),
    )
}

/// Finds segment starts in a stream of relative timestamps (spec "Contiguous segments"), so that
/// batch boundaries cannot hide a gap or a step back.
struct GapSplitter {
    threshold: f64,
    t0: f64,
    prev: Option<f64>,
    index: u64,
    starts: Vec<u64>,
    first_non_increasing: Option<u64>,
    non_increasing: u64,
}

impl GapSplitter {
    fn new(rate: f64, t0: f64) -> Self {
        Self {
            threshold: 2.0 * (1.0 / rate),
            t0,
            prev: None,
            index: 0,
            starts: vec![0],
            first_non_increasing: None,
            non_increasing: 0,
        }
    }

    /// Feeds the next timestamps (relative to the reference time, as stored). A value that is
    /// not finite stops with `(index, value)`.
    fn push(
        &mut self,
        relative: impl IntoIterator<Item = f64>,
    ) -> std::result::Result<(), (u64, f64)> {
        for raw in relative {
            if !raw.is_finite() {
                return Err((self.index, raw));
            }
            // Differences of the absolute times, as the spec says (not of the stored values).
            let t = raw + self.t0;
            if let Some(p) = self.prev {
                if t <= p {
                    self.non_increasing += 1;
                    self.first_non_increasing.get_or_insert(self.index);
                    self.starts.push(self.index);
                } else if t - p > self.threshold {
                    self.starts.push(self.index);
                }
            }
            self.prev = Some(t);
            self.index += 1;
        }
        Ok(())
    }

    /// The segments of everything pushed; `series` names the series in the warning.
    fn finish(self, series: &str) -> SegmentReport {
        let n = self.index;
        let ends = self.starts.iter().skip(1).copied().chain([n]);
        let segments = self
            .starts
            .iter()
            .copied()
            .zip(ends)
            .map(|(a, b)| a..b)
            .collect();
        let warning = self.first_non_increasing.map(|i| {
            format!(
                "{series}: time stands still or goes back at sample {i} ({} sample(s) in all); \
                 each such sample starts a new segment",
                self.non_increasing
            )
        });
        SegmentReport {
            segments,
            first_non_increasing: self.first_non_increasing,
            non_increasing: self.non_increasing,
            warning,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(rate: f64, t0: f64, batches: &[&[f64]]) -> SegmentReport {
        let mut s = GapSplitter::new(rate, t0);
        for b in batches {
            s.push(b.iter().copied()).unwrap();
        }
        s.finish("/acquisition/S")
    }

    fn split(rate: f64, t0: f64, batches: &[&[f64]]) -> Vec<Range<u64>> {
        report(rate, t0, batches).segments
    }

    #[test]
    fn time_that_stands_still_or_goes_back_starts_a_segment() {
        let r = report(10.0, 0.0, &[&[0.0, 0.1, 0.1], &[0.05, 0.15, 0.25]]);
        assert_eq!(r.segments, vec![0..2, 2..3, 3..6]);
        assert_eq!(r.first_non_increasing, Some(2));
        assert_eq!(r.non_increasing, 2);
        let w = r.warning.unwrap();
        assert!(
            w.contains("/acquisition/S") && w.contains("sample 2") && w.contains("2 sample"),
            "{w}"
        );
        let clean = report(10.0, 0.0, &[&[0.0, 0.1]]);
        assert_eq!((clean.non_increasing, clean.warning), (0, None));
    }

    #[test]
    fn a_timestamp_that_is_not_finite_is_reported_with_its_index() {
        let mut s = GapSplitter::new(10.0, 0.0);
        s.push([0.0, 0.1]).unwrap();
        let e = s.push([0.2, f64::NAN]).unwrap_err();
        assert_eq!(e.0, 3);
        assert!(e.1.is_nan());
        let mut s = GapSplitter::new(10.0, 0.0);
        assert_eq!(s.push([f64::INFINITY]).unwrap_err(), (0, f64::INFINITY));
    }

    #[test]
    fn no_gap_is_one_segment() {
        assert_eq!(split(10.0, 0.0, &[&[0.0, 0.1, 0.2, 0.3]]), vec![0..4]);
    }

    #[test]
    fn a_gap_on_a_batch_boundary_is_found() {
        // Gap between index 2 (last of batch 1) and index 3 (first of batch 2).
        let batches: &[&[f64]] = &[&[0.0, 0.1, 0.2], &[5.0, 5.1], &[5.2]];
        assert_eq!(split(10.0, 0.0, batches), vec![0..3, 3..6]);
    }

    #[test]
    fn the_threshold_is_strictly_greater_than_two_periods() {
        // Rate 4 Hz: threshold 0.5 s (exact in binary). A jump of exactly 0.5 does not split,
        // 0.75 does.
        assert_eq!(
            split(4.0, 0.0, &[&[0.0, 0.25, 0.75, 1.5, 1.75]]),
            vec![0..3, 3..5]
        );
    }

    #[test]
    fn gaps_are_measured_on_absolute_times() {
        // At T0 = 1.7e9 s, 0.0 and 1e-7 become equal, and a relative jump of 0.25 s still
        // exceeds 2 / 10 Hz after adding T0.
        let t0 = 1.7e9;
        assert_eq!(
            split(10.0, t0, &[&[0.0, 0.1, 0.35, 0.45]]),
            vec![0..2, 2..4]
        );
    }

    #[test]
    fn several_gaps_and_single_sample_segments() {
        let batches: &[&[f64]] = &[&[0.0], &[10.0], &[20.0, 20.001], &[30.0]];
        assert_eq!(split(1000.0, 0.0, batches), vec![0..1, 1..2, 2..4, 4..5]);
    }

    #[test]
    fn streamed_segments_do_not_depend_on_the_batch_size() {
        // timestamps_gap.nwb: 100 samples at 1 kHz with a 5 s gap after sample 50 (testdata/README.md).
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/timestamps_gap.nwb"
        );
        let file = crate::NwbFile::open(path).unwrap();
        let info = file
            .discover(&crate::DiscoverOptions::default())
            .unwrap()
            .series
            .remove(0);
        let reader = file.open_series(&info).unwrap();
        for batch in [1, 2, 7, 49, 50, 51, 99, 100, 1 << 20] {
            assert_eq!(
                reader.segments_in_batches(batch).unwrap().segments,
                vec![0..50, 50..100],
                "batch {batch}"
            );
        }
    }
}
