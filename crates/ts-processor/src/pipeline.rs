//! The conversion: NWB series in, chunk and metadata files out (spec "Per series" to "Files").
//!
//! One thread makes every HDF5 call (the library is serialised anyway) and reads blocks of samples
//! across all channels; a worker thread takes each block and, with rayon, scales, encodes, gzips and
//! writes every channel's part of it in parallel. The bounded channel between them lets the next
//! block's read overlap the current block's writes while keeping at most three blocks in memory.
//! A block may span chunk boundaries and a chunk may span blocks: each channel streams into its
//! current chunk file, so results do not depend on the block size or the thread count.

use std::ops::Range;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use nwb_reader::{DiscoverOptions, NwbFile, RawBlock, Scaling, SeriesInfo, TimeBase};
use rayon::prelude::*;
use tracing::{info, warn};
use ts_chunk_format::{ChannelMetadata, ChunkFile, ChunkName, ChunkWriter};

use crate::config::chunk_samples;
use crate::files::{ExistingOutput, prepare_output_dir, remove_output_files};
use crate::progress::Progress;

/// What a conversion is asked to do.
#[derive(Clone, Debug)]
pub struct ConvertOptions {
    /// Uncompressed MiB per chunk file (`CHUNK_SIZE_MB`).
    pub chunk_size_mb: f64,
    /// gzip level 0..=9 (0: stored blocks, as the original).
    pub compression_level: u32,
    /// Only series with these names or paths; empty means all.
    pub series: Vec<String>,
    /// Also convert series under /processing and inside LFP/FilteredEphys containers.
    pub include_processing: bool,
    /// Raw bytes to read from HDF5 per block (all channels together).
    pub block_bytes: usize,
    /// What to do with files of an earlier run in the output directory.
    pub existing_output: ExistingOutput,
    /// Worker threads for scaling/encoding/writing; `None` uses one per core.
    pub threads: Option<usize>,
}

impl Default for ConvertOptions {
    fn default() -> Self {
        Self {
            chunk_size_mb: 1.0,
            compression_level: 0,
            series: Vec::new(),
            include_processing: false,
            block_bytes: 8 << 20,
            existing_output: ExistingOutput::Refuse,
            threads: None,
        }
    }
}

/// Totals for the final summary line.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConvertSummary {
    pub series: usize,
    pub channels: usize,
    pub chunks: u64,
    pub bytes_written: u64,
    pub raw_bytes_read: u64,
    pub seconds: f64,
}

impl std::fmt::Display for ConvertSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mb = |b: u64| b as f64 / 1_048_576.0;
        write!(
            f,
            "converted {} series, {} channels into {} chunk files ({:.1} MiB written) \
             from {:.1} MiB of samples in {:.2} s ({:.1} MB/s)",
            self.series,
            self.channels,
            self.chunks,
            mb(self.bytes_written),
            mb(self.raw_bytes_read),
            self.seconds,
            self.raw_bytes_read as f64 / 1e6 / self.seconds.max(1e-9)
        )
    }
}

/// Converts every selected series of `input` into `out_dir`. On failure every file this run wrote
/// is removed again, so a failed run leaves nothing that looks like a complete conversion.
pub fn convert(
    input: &Path,
    out_dir: &Path,
    opts: &ConvertOptions,
    progress: &Progress,
) -> Result<ConvertSummary> {
    let started = Instant::now();
    let chunk_len = chunk_samples(opts.chunk_size_mb);
    if chunk_len == 0 {
        bail!(
            "chunk size {} MiB is smaller than one sample",
            opts.chunk_size_mb
        );
    }
    let file = NwbFile::open(input)?;
    let series = select_series(&file, opts)?;

    let removed = prepare_output_dir(out_dir, opts.existing_output)?;
    if removed > 0 {
        warn!(removed, dir = %out_dir.display(), "removed files of an earlier conversion");
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads.unwrap_or(0))
        .thread_name(|i| format!("ts-writer-{i}"))
        .build()
        .context("cannot start the worker threads")?;

    progress.set_total(series.iter().map(raw_bytes).sum());
    let mut summary = ConvertSummary::default();
    let mut first_channel = 0u32;
    for info in &series {
        let result = convert_series(
            &file,
            info,
            first_channel,
            chunk_len,
            opts,
            out_dir,
            &pool,
            progress,
        );
        match result {
            Ok(stats) => {
                summary.series += 1;
                summary.channels += info.num_channels;
                summary.chunks += stats.chunks;
                summary.bytes_written += stats.bytes_written;
                summary.raw_bytes_read += raw_bytes(info);
            }
            Err(err) => {
                if let Err(cleanup) = remove_output_files(out_dir) {
                    warn!("could not clean up after the failure: {cleanup:#}");
                }
                // Reader errors already name the file and object; others (writing) need both.
                if err.downcast_ref::<nwb_reader::Error>().is_some() {
                    return Err(err);
                }
                return Err(err.context(format!("{}: converting {}", input.display(), info.path)));
            }
        }
        first_channel += u32::try_from(info.num_channels).context("too many channels")?;
    }
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// The series to convert, in the spec's order, after the `--series` filter.
fn select_series(file: &NwbFile, opts: &ConvertOptions) -> Result<Vec<SeriesInfo>> {
    let discovery = file.discover(&DiscoverOptions {
        include_processing: opts.include_processing,
    })?;
    for skipped in &discovery.skipped {
        info!(
            series = %skipped.path,
            neurodata_type = %skipped.neurodata_type,
            "skipped: {}", skipped.reason
        );
    }
    if discovery.series.is_empty() {
        // Only data containers help the user; devices and tables would drown them.
        let found: Vec<String> = discovery
            .typed_objects
            .iter()
            .filter(|(path, _)| {
                path.starts_with("/acquisition/") || path.starts_with("/processing/")
            })
            .map(|(path, ty)| format!("{path} ({ty})"))
            .collect();
        bail!(
            "{}: no ElectricalSeries to convert{}; the file contains: {}",
            file.path().display(),
            if opts.include_processing {
                ""
            } else {
                " in /acquisition (try --include-processing)"
            },
            if found.is_empty() {
                "no typed objects under /acquisition or /processing".to_owned()
            } else {
                found.join(", ")
            }
        );
    }
    for series in &discovery.series {
        for warning in &series.warnings {
            warn!("{warning}");
        }
    }
    if opts.series.is_empty() {
        return Ok(discovery.series);
    }
    for wanted in &opts.series {
        if !discovery
            .series
            .iter()
            .any(|s| s.name == *wanted || s.path == *wanted)
        {
            let names: Vec<&str> = discovery.series.iter().map(|s| s.path.as_str()).collect();
            bail!(
                "{}: no series named {wanted:?}; the file has: {}",
                file.path().display(),
                names.join(", ")
            );
        }
    }
    Ok(discovery
        .series
        .into_iter()
        .filter(|s| opts.series.iter().any(|w| s.name == *w || s.path == *w))
        .collect())
}

/// Bytes of raw sample data in a series (for progress and throughput).
pub fn raw_bytes(info: &SeriesInfo) -> u64 {
    info.num_samples * info.num_channels as u64 * info.dtype.size() as u64
}

/// The sampling rate written to the metadata (spec "Time base").
pub fn series_rate(time: &TimeBase) -> f64 {
    match time {
        TimeBase::Rate { rate, .. } => *rate,
        TimeBase::Timestamps { rate, .. } => *rate,
    }
}

/// Microseconds for a file name or metadata field: truncation toward zero of `t * 1e6`.
pub fn micros(t: f64) -> i64 {
    (t * 1e6).trunc() as i64
}

/// One chunk of a series: the same sample range and times for every channel.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedChunk {
    pub range: Range<u64>,
    pub start_us: i64,
    pub end_us: i64,
}

/// Cuts each segment into chunks of `chunk_len` samples, the last one shorter (spec "Chunks").
pub fn plan_chunks(
    segments: &[Range<u64>],
    chunk_len: u64,
    mut time_at: impl FnMut(u64) -> Result<f64>,
) -> Result<Vec<PlannedChunk>> {
    let mut plan = Vec::new();
    for segment in segments {
        let mut a = segment.start;
        while a < segment.end {
            let b = (a + chunk_len).min(segment.end);
            plan.push(PlannedChunk {
                range: a..b,
                start_us: micros(time_at(a)?),
                end_us: micros(time_at(b - 1)?),
            });
            a = b;
        }
    }
    Ok(plan)
}

struct SeriesStats {
    chunks: u64,
    bytes_written: u64,
}

#[allow(clippy::too_many_arguments)]
fn convert_series(
    file: &NwbFile,
    info: &SeriesInfo,
    first_channel: u32,
    chunk_len: u64,
    opts: &ConvertOptions,
    out_dir: &Path,
    pool: &rayon::ThreadPool,
    progress: &Progress,
) -> Result<SeriesStats> {
    let reader = file.open_series(info)?;
    let n = info.num_samples;
    let segments = reader.segments()?;
    let plan = plan_chunks(&segments, chunk_len, |i| Ok(reader.time_at(i)?))?;
    let start_us = micros(reader.time_at(0)?);
    let end_us = micros(reader.time_at(n - 1)?);
    let rate = series_rate(&info.time);
    info!(
        series = %info.path,
        channels = info.num_channels,
        samples = n,
        segments = segments.len(),
        chunks_per_channel = plan.len(),
        rate,
        "converting"
    );

    let mut sinks: Vec<ChannelSink> = (0..info.num_channels)
        .map(|column| ChannelSink::new(first_channel + column as u32, column))
        .collect();
    let sample_bytes = info.num_channels as u64 * info.dtype.size() as u64;
    let blocks = plan_blocks(
        &plan,
        n,
        sample_bytes,
        opts.block_bytes as u64,
        reader.preferred_block_len(opts.block_bytes),
    );
    // One scratch space per worker thread (not per channel): memory stays flat with channels.
    let workspaces: Vec<Mutex<Workspace>> = (0..pool.current_num_threads())
        .map(|_| Mutex::new(Workspace::new(opts.compression_level)))
        .collect();

    std::thread::scope(|scope| -> Result<()> {
        let (tx, rx) = crossbeam_channel::bounded::<(u64, RawBlock)>(1);
        let plan = &plan;
        let scaling = &info.scaling;
        let sinks = &mut sinks;
        let workspaces = &workspaces;
        let worker = scope.spawn(move || -> Result<()> {
            for (block_start, block) in rx {
                // Every channel is scaled separately: with many channels, make each one
                // contiguous first (one pass over the block instead of one per channel).
                let block = if block.channels() > TRANSPOSE_ABOVE_CHANNELS {
                    block.into_channel_major()
                } else {
                    block
                };
                pool.install(|| {
                    sinks.par_iter_mut().try_for_each(|sink| {
                        let slot = rayon::current_thread_index().unwrap_or(0) % workspaces.len();
                        let mut ws = workspaces[slot].lock().unwrap_or_else(|p| p.into_inner());
                        sink.consume(&block, block_start, plan, scaling, out_dir, &mut ws)
                    })
                })?;
                progress.advance(block.len() as u64 * sample_bytes);
            }
            Ok(())
        });
        let mut read_error = None;
        for range in blocks {
            let pos = range.start;
            match reader.read_raw(range) {
                Ok(block) => {
                    if tx.send((pos, block)).is_err() {
                        break; // the worker stopped on an error; it reports it below
                    }
                }
                Err(err) => {
                    read_error = Some(err);
                    break;
                }
            }
        }
        drop(tx);
        match worker.join() {
            Ok(result) => result?,
            Err(panic) => std::panic::resume_unwind(panic),
        }
        match read_error {
            Some(err) => Err(err.into()),
            None => Ok(()),
        }
    })?;

    let mut stats = SeriesStats {
        chunks: 0,
        bytes_written: 0,
    };
    for (sink, channel) in sinks.iter().zip(&info.channels) {
        if sink.next_chunk != plan.len() {
            bail!(
                "channel {} ended after {} of {} chunks",
                sink.index,
                sink.next_chunk,
                plan.len()
            );
        }
        let metadata = ChannelMetadata::continuous(
            channel.name.clone(),
            channel.group.clone(),
            start_us,
            end_us,
            rate,
        );
        metadata.write_atomic(out_dir, sink.index)?;
        stats.chunks += sink.chunks_written;
        stats.bytes_written += sink.bytes_written;
    }
    Ok(stats)
}

/// The blocks to read: whole chunks when a chunk of every channel fits the memory budget (each
/// chunk file is then written in one go), else `fallback_len` samples at a time (chunk files are
/// streamed across blocks).
pub fn plan_blocks(
    plan: &[PlannedChunk],
    num_samples: u64,
    sample_bytes: u64,
    block_bytes: u64,
    fallback_len: u64,
) -> Vec<Range<u64>> {
    let budget = block_bytes.saturating_mul(4);
    let widest = plan
        .iter()
        .map(|c| c.range.end - c.range.start)
        .max()
        .unwrap_or(0);
    if widest > 0 && widest * sample_bytes <= budget {
        let per_block = (budget / (widest * sample_bytes)).max(1) as usize;
        return plan
            .chunks(per_block)
            .map(|group| group[0].range.start..group[group.len() - 1].range.end)
            .collect();
    }
    let step = fallback_len.max(1);
    (0..num_samples.div_ceil(step))
        .map(|i| i * step..((i + 1) * step).min(num_samples))
        .collect()
}

/// A worker thread's reusable buffers.
struct Workspace {
    writer: ChunkWriter,
    scaled: Vec<f64>,
}

impl Workspace {
    fn new(compression_level: u32) -> Self {
        Self {
            writer: ChunkWriter::new(compression_level),
            scaled: Vec::new(),
        }
    }
}

/// Up to this many channels, scaling straight from the row-major block costs no more memory
/// traffic than transposing it first.
const TRANSPOSE_ABOVE_CHANNELS: usize = 4;

/// Rows scaled at a time when a chunk file is streamed.
const STREAM_PIECE: usize = 8192;

/// One output channel: where its samples go and how far it got.
struct ChannelSink {
    index: u32,
    column: usize,
    current: Option<ChunkFile>,
    next_chunk: usize,
    chunks_written: u64,
    bytes_written: u64,
}

impl ChannelSink {
    fn new(index: u32, column: usize) -> Self {
        Self {
            index,
            column,
            current: None,
            next_chunk: 0,
            chunks_written: 0,
            bytes_written: 0,
        }
    }

    /// Scales this channel's column of `block` (which starts at sample `block_start`) and writes
    /// it to the chunk files it belongs to: a chunk wholly inside the block in one go, others
    /// streamed piece by piece and finished at their last sample.
    fn consume(
        &mut self,
        block: &RawBlock,
        block_start: u64,
        plan: &[PlannedChunk],
        scaling: &Scaling,
        dir: &Path,
        ws: &mut Workspace,
    ) -> Result<()> {
        let block_end = block_start + block.len() as u64;
        let mut pos = block_start;
        while pos < block_end {
            let chunk = plan
                .get(self.next_chunk)
                .context("more samples than the chunk plan covers")?;
            let until = block_end.min(chunk.range.end);
            let rows = (pos - block_start) as usize..(until - block_start) as usize;
            let name = || ChunkName::local(self.index, chunk.start_us, chunk.end_us);
            let mut finished = None;
            if self.current.is_none() && pos == chunk.range.start && until == chunk.range.end {
                block.scale_rows_into(self.column, rows, scaling, &mut ws.scaled);
                finished = Some(ws.writer.write(dir, &name(), &ws.scaled)?);
            } else {
                if self.current.is_none() {
                    self.current = Some(ws.writer.begin(dir, &name())?);
                }
                if let Some(file) = &mut self.current {
                    for start in rows.clone().step_by(STREAM_PIECE) {
                        let piece = start..(start + STREAM_PIECE).min(rows.end);
                        block.scale_rows_into(self.column, piece, scaling, &mut ws.scaled);
                        file.append(&ws.scaled)?;
                    }
                }
                if until == chunk.range.end {
                    if let Some(file) = self.current.take() {
                        finished = Some(file.finish()?);
                    }
                }
            }
            if let Some(path) = finished {
                self.bytes_written += std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                self.chunks_written += 1;
                self.next_chunk += 1;
            }
            pos = until;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_truncates_toward_zero() {
        assert_eq!(micros(1.000_000_9), 1_000_000);
        assert_eq!(micros(-1.000_000_9), -1_000_000);
        assert_eq!(micros(1_700_000_000.5), 1_700_000_000_500_000);
    }

    #[test]
    fn chunks_cut_each_segment_and_name_the_last_sample() {
        // 10 samples at 1 Hz from t=100 s, a gap after sample 6.
        let times = [
            100.0, 101.0, 102.0, 103.0, 104.0, 105.0, 106.0, 200.0, 201.0, 202.0,
        ];
        let plan = plan_chunks(&[0..7, 7..10], 3, |i| Ok(times[i as usize])).unwrap();
        let got: Vec<_> = plan
            .iter()
            .map(|c| (c.range.clone(), c.start_us, c.end_us))
            .collect();
        assert_eq!(
            got,
            vec![
                (0..3, 100_000_000, 102_000_000),
                (3..6, 103_000_000, 105_000_000),
                (6..7, 106_000_000, 106_000_000),
                (7..10, 200_000_000, 202_000_000),
            ]
        );
    }

    #[test]
    fn blocks_are_whole_chunks_within_budget_else_fixed_steps() {
        let plan = plan_chunks(&[0..7, 7..10], 3, |i| Ok(i as f64)).unwrap();
        // Chunks of 3 samples x 2 bytes fit a budget of 4 x 3 bytes twice: two chunks per block.
        assert_eq!(plan_blocks(&plan, 10, 2, 3, 4), vec![0..6, 6..10]);
        // Too wide for the budget: fixed steps of the fallback length.
        assert_eq!(plan_blocks(&plan, 10, 100, 3, 4), vec![0..4, 4..8, 8..10]);
    }
}
