//! Streaming reads of one series: raw blocks across all channels, scaling, times and segments.

use std::ops::Range;
use std::path::PathBuf;

use hdf5::Dataset;
use ndarray::{Array2, s};

use crate::error::{Error, Location, Result};
use crate::file::{RawDtype, Scaling, SeriesInfo, TimeBase};

/// Timestamps are scanned for gaps this many at a time, so memory does not grow with the file.
const TIMESTAMP_BATCH: u64 = 1 << 20;

/// Reads the samples and times of one series. Made by [`crate::NwbFile::open_series`].
pub struct SeriesReader {
    file: PathBuf,
    info: SeriesInfo,
    data: Dataset,
    timestamps: Option<Dataset>,
    t0: f64,
}

/// Samples `[start, end)` of every channel in the stored type: shape `(samples, channels)`.
#[derive(Debug, Clone)]
pub enum RawBlock {
    I8(Array2<i8>),
    I16(Array2<i16>),
    I32(Array2<i32>),
    I64(Array2<i64>),
    U8(Array2<u8>),
    U16(Array2<u16>),
    U32(Array2<u32>),
    U64(Array2<u64>),
    F32(Array2<f32>),
    F64(Array2<f64>),
}

/// A raw value widened to f64 as the spec says (`x` widened first).
trait Widen: Copy {
    fn widen(self) -> f64;
}

macro_rules! widen {
    ($($t:ty),*) => {$(impl Widen for $t { #[inline] fn widen(self) -> f64 { self as f64 } })*};
}
widen!(i8, i16, i32, i64, u8, u16, u32, u64, f32, f64);

macro_rules! each_block {
    ($block:expr, $a:ident => $body:expr) => {
        match $block {
            RawBlock::I8($a) => $body,
            RawBlock::I16($a) => $body,
            RawBlock::I32($a) => $body,
            RawBlock::I64($a) => $body,
            RawBlock::U8($a) => $body,
            RawBlock::U16($a) => $body,
            RawBlock::U32($a) => $body,
            RawBlock::U64($a) => $body,
            RawBlock::F32($a) => $body,
            RawBlock::F64($a) => $body,
        }
    };
}

impl RawBlock {
    /// Number of samples (rows).
    pub fn len(&self) -> usize {
        each_block!(self, a => a.nrows())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of channels (columns).
    pub fn channels(&self) -> usize {
        each_block!(self, a => a.ncols())
    }

    /// Replaces `out` with channel `k`'s samples in microvolts (spec "Sample values").
    pub fn scale_channel_into(&self, k: usize, scaling: &Scaling, out: &mut Vec<f64>) {
        self.scale_rows_into(k, 0..self.len(), scaling, out);
    }

    /// Replaces `out` with microvolts of channel `k`, rows `rows` of this block.
    pub fn scale_rows_into(
        &self,
        k: usize,
        rows: Range<usize>,
        scaling: &Scaling,
        out: &mut Vec<f64>,
    ) {
        let factor = scaling.channel_factor(k);
        let (offset, unit) = (scaling.offset, scaling.unit_factor);
        out.clear();
        each_block!(self, a => {
            out.extend(a.slice(s![rows, k]).iter().map(|&x| ((x.widen() * factor) + offset) * unit))
        })
    }
}

impl SeriesReader {
    pub(crate) fn new(
        file: PathBuf,
        info: SeriesInfo,
        data: Dataset,
        timestamps: Option<Dataset>,
        t0: f64,
    ) -> Self {
        Self {
            file,
            info,
            data,
            timestamps,
            t0,
        }
    }

    pub fn info(&self) -> &SeriesInfo {
        &self.info
    }

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

    /// Absolute time of sample `i` in seconds since the epoch (spec "Time base").
    pub fn time_at(&self, i: u64) -> Result<f64> {
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
                let v = ts.read_slice_1d::<f64, _>(s![i..i + 1]).map_err(|e| {
                    self.err(
                        &format!("{}/timestamps", self.info.path),
                        "reading a timestamp",
                        e,
                    )
                })?;
                Ok(v[0] + self.t0)
            }
            (TimeBase::Timestamps { .. }, None) => unreachable!("open_series opens timestamps"),
        }
    }

    /// Contiguous segments (spec "Contiguous segments"): one for a rate; with timestamps a new
    /// segment wherever `t(i) - t(i-1) > 2 * (1 / rate)`. Timestamps are streamed in batches.
    pub fn segments(&self) -> Result<Vec<Range<u64>>> {
        let n = self.info.num_samples;
        let Some(ts) = &self.timestamps else {
            return Ok(std::iter::once(0..n).collect());
        };
        let threshold = 2.0 * (1.0 / self.info.time.rate());
        let mut starts = vec![0u64];
        let mut prev: Option<f64> = None;
        let mut batch_start = 0u64;
        while batch_start < n {
            let batch_end = (batch_start + TIMESTAMP_BATCH).min(n);
            let batch = ts
                .read_slice_1d::<f64, _>(s![batch_start as usize..batch_end as usize])
                .map_err(|e| {
                    self.err(
                        &format!("{}/timestamps", self.info.path),
                        "reading timestamps",
                        e,
                    )
                })?;
            for (j, &raw) in batch.iter().enumerate() {
                let t = raw + self.t0;
                if let Some(p) = prev {
                    if t - p > threshold {
                        starts.push(batch_start + j as u64);
                    }
                }
                prev = Some(t);
            }
            batch_start = batch_end;
        }
        let mut ends: Vec<u64> = starts.iter().skip(1).copied().collect();
        ends.push(n);
        Ok(starts.into_iter().zip(ends).map(|(a, b)| a..b).collect())
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
    pub fn read_raw(&self, range: Range<u64>) -> Result<RawBlock> {
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
