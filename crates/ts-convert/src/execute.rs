//! Carrying out a [`Plan`]: read blocks, scale, encode, gzip and write every channel's chunks.
//!
//! One thread makes every HDF5 call (the library is serialised anyway) and reads blocks of samples
//! across all channels — for deflate/shuffle series as stored chunks, which it has the rayon pool
//! decode; a worker thread takes each block and, with the same pool, scales, encodes, gzips and
//! writes every channel's part of it in parallel. The bounded channel between them lets the next
//! block's read and decode overlap the current block's writes while keeping at most three blocks
//! in memory. A block may span chunk boundaries and a chunk may span blocks: each channel streams
//! into its current chunk file, so results do not depend on the block size or the thread count.

use std::ops::{ControlFlow, Range};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use nwb_reader::{RawBlock, Scaling, SeriesReader};
use rayon::prelude::*;
use tracing::{debug, info, warn};
use ts_chunk_format::{ChunkFile, ChunkWriter, OutputDir, Written};

use crate::error::{Error, Result};
use crate::plan::{Plan, PlannedChunk, SeriesPlan};

/// How a plan is carried out (none of this changes the output's names or samples).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecOptions {
    /// gzip level 0..=9 of the chunk files (0: stored blocks, as the original processor).
    pub compression_level: u32,
    /// Raw bytes to read from HDF5 per block, all channels together (memory is a small multiple).
    pub block_bytes: usize,
    /// Worker threads for scaling, encoding and writing; `None` uses one per core.
    pub threads: Option<usize>,
    /// Read series chunked with only deflate and shuffle as their stored chunks, decoded on the
    /// worker threads (the default). `false` reads everything through HDF5, where one core
    /// inflates; the output is the same either way.
    pub read_stored_chunks: bool,
}

impl Default for ExecOptions {
    fn default() -> Self {
        ExecOptions {
            compression_level: 0,
            block_bytes: 8 << 20,
            threads: None,
            read_stored_chunks: true,
        }
    }
}

/// How far [`execute`] got, passed to its progress callback after every block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Raw sample bytes converted so far.
    pub done_bytes: u64,
    /// Raw sample bytes of the whole plan ([`Plan::raw_bytes`]).
    pub total_bytes: u64,
}

/// What [`execute`] did.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Summary {
    /// Series converted.
    pub series: usize,
    /// Output channels written.
    pub channels: usize,
    /// Chunk files written.
    pub chunks: u64,
    /// Bytes of chunk files written.
    pub bytes_written: u64,
    /// Bytes of raw samples read.
    pub raw_bytes_read: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

impl std::fmt::Display for Summary {
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

/// Converts every series of `plan` into `out`, calling `on_progress` as blocks are done.
///
/// On failure every file of the plan in `out` is removed again (see
/// [`OutputDir::remove_files`]), so a failed run leaves nothing that looks like a complete
/// conversion.
pub fn execute(
    plan: &Plan<'_>,
    out: &OutputDir,
    options: &ExecOptions,
    on_progress: impl Fn(Progress) + Sync,
) -> Result<Summary> {
    execute_with_files(plan, out, options, on_progress, |_| {
        ControlFlow::Continue(())
    })
}

/// Like [`execute`], and also calls `on_file` with every chunk file as soon as it is complete
/// (renamed into place), so a caller can upload it while later chunks are still converting.
///
/// `on_file` runs on the worker threads; when it blocks (say, because uploads lag behind), the
/// conversion waits for it, which bounds how far conversion runs ahead. When it returns
/// `Break`, the conversion stops, removes its files as after any failure and returns
/// [`Error::Stopped`]. Channel metadata files are written after every chunk of their series
/// and are not passed to `on_file`.
pub fn execute_with_files(
    plan: &Plan<'_>,
    out: &OutputDir,
    options: &ExecOptions,
    on_progress: impl Fn(Progress) + Sync,
    on_file: impl Fn(&Written) -> ControlFlow<()> + Sync,
) -> Result<Summary> {
    let hooks = Hooks {
        on_progress: &on_progress,
        on_file: &on_file,
    };
    let result = execute_all(plan, out, options, &hooks);
    if result.is_err()
        && let Err(cleanup) = out.remove_files(plan.file_names())
    {
        warn!("could not clean up after the failure: {cleanup}");
    }
    result
}

/// The caller's callbacks.
struct Hooks<'a> {
    on_progress: &'a (dyn Fn(Progress) + Sync),
    on_file: &'a (dyn Fn(&Written) -> ControlFlow<()> + Sync),
}

fn execute_all(
    plan: &Plan<'_>,
    out: &OutputDir,
    options: &ExecOptions,
    hooks: &Hooks<'_>,
) -> Result<Summary> {
    let started = Instant::now();
    plan.ensure_series()?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.threads.unwrap_or(0))
        .thread_name(|i| format!("ts-writer-{i}"))
        .build()
        .map_err(Error::Threads)?;
    // One scratch space per worker thread (not per channel): memory stays flat with channels.
    let workspaces: Vec<Mutex<Workspace>> = (0..pool.current_num_threads())
        .map(|_| Mutex::new(Workspace::new(options.compression_level)))
        .collect();
    let progress = ProgressCounter {
        done: AtomicU64::new(0),
        total: plan.raw_bytes(),
        callback: hooks.on_progress,
    };
    let mut summary = Summary::default();
    for series in &plan.series {
        let job = SeriesJob {
            plan,
            series,
            reader: plan.file.open_series(&series.info)?,
            out,
            options,
            pool: &pool,
            workspaces: &workspaces,
            progress: &progress,
            on_file: hooks.on_file,
        };
        let (chunks, bytes_written) = job.run()?;
        summary.series += 1;
        summary.channels += series.info.num_channels;
        summary.chunks += chunks;
        summary.bytes_written += bytes_written;
        summary.raw_bytes_read += series.raw_bytes();
    }
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// Cumulative progress shared by the reader and writer threads.
struct ProgressCounter<'a> {
    done: AtomicU64,
    total: u64,
    callback: &'a (dyn Fn(Progress) + Sync),
}

impl ProgressCounter<'_> {
    fn advance(&self, bytes: u64) {
        let done = self.done.fetch_add(bytes, Ordering::Relaxed) + bytes;
        crate::isolation::heartbeat();
        (self.callback)(Progress {
            done_bytes: done,
            total_bytes: self.total,
        });
    }
}

/// Everything the conversion of one series needs.
struct SeriesJob<'a> {
    plan: &'a Plan<'a>,
    series: &'a SeriesPlan,
    reader: SeriesReader,
    out: &'a OutputDir,
    options: &'a ExecOptions,
    pool: &'a rayon::ThreadPool,
    workspaces: &'a [Mutex<Workspace>],
    progress: &'a ProgressCounter<'a>,
    on_file: &'a (dyn Fn(&Written) -> ControlFlow<()> + Sync),
}

impl SeriesJob<'_> {
    /// Converts the series; returns (chunk files, bytes written).
    fn run(&self) -> Result<(u64, u64)> {
        let info = &self.series.info;
        info!(
            series = %info.path,
            channels = info.num_channels,
            samples = info.num_samples,
            segments = self.series.segments.len(),
            chunks_per_channel = self.series.chunks.len(),
            rate = self.series.rate,
            "converting"
        );
        let mut sinks: Vec<ChannelSink> = (0..info.num_channels).map(ChannelSink::new).collect();
        let sample_bytes = info.num_channels as u64 * info.dtype.size() as u64;
        // Compressed chunks are decoded by the worker pool, not inside HDF5 (which would hold
        // its global lock and leave one core to inflate everything).
        let stored = match self.reader.stored_chunks() {
            Ok(()) if self.options.read_stored_chunks => {
                debug!(series = %info.path, "reading stored chunks, decoded in parallel");
                true
            }
            Ok(()) => false,
            Err(why) => {
                debug!(series = %info.path, "reading through HDF5: {why}");
                false
            }
        };
        let fallback_len = self.reader.preferred_block_len(self.options.block_bytes);
        let blocks = if stored && self.options.compression_level == 0 {
            // Blocks of whole HDF5 chunks, so none is read and inflated twice; chunk files
            // stream across blocks (an open level-0 file costs a handle and a CRC; at other
            // levels a compressor each, so there whole chunk files are kept in a block).
            fixed_blocks(info.num_samples, fallback_len)
        } else {
            plan_blocks(
                &self.series.chunks,
                info.num_samples,
                sample_bytes,
                self.options.block_bytes as u64,
                fallback_len,
            )
        };

        std::thread::scope(|scope| -> Result<()> {
            let (tx, rx) = crossbeam_channel::bounded::<(u64, Fetched)>(1);
            // Decoded blocks go back to the reader to be decoded into again (no fresh memory
            // to allocate and fault in for every block).
            let (spare_tx, spare_rx) = crossbeam_channel::bounded::<RawBlock>(1);
            let sinks = &mut sinks;
            let worker = scope.spawn(move || -> Result<()> {
                for (block_start, fetched) in rx {
                    let (block, reusable) = match fetched {
                        Fetched::Decoded(block) => (block, true),
                        // Every channel is scaled separately: with many channels, make each one
                        // contiguous first (one pass over the block instead of one per channel).
                        Fetched::Raw(block) if block.channels() > TRANSPOSE_ABOVE_CHANNELS => {
                            (block.into_channel_major(), false)
                        }
                        Fetched::Raw(block) => (block, false),
                    };
                    self.pool.install(|| {
                        sinks.par_iter_mut().try_for_each(|sink| {
                            let slot =
                                rayon::current_thread_index().unwrap_or(0) % self.workspaces.len();
                            let mut ws = self.workspaces[slot]
                                .lock()
                                .unwrap_or_else(|p| p.into_inner());
                            sink.consume(self, &block, block_start, &mut ws)
                        })
                    })?;
                    self.progress.advance(block.len() as u64 * sample_bytes);
                    if reusable {
                        let _ = spare_tx.try_send(block);
                    }
                }
                Ok(())
            });
            let mut read_error = None;
            for range in blocks {
                let pos = range.start;
                // Stored chunks are decoded here, on the pool, while the worker thread has the
                // pool write the previous block: the two stages overlap on every core.
                let fetched = if stored {
                    self.reader
                        .read_stored(range)
                        .and_then(|block| {
                            let spare = spare_rx.try_recv().ok();
                            self.pool.install(|| block.decode_reusing(spare))
                        })
                        .map(Fetched::Decoded)
                } else {
                    self.reader.read_raw(range).map(Fetched::Raw)
                };
                match fetched {
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

        let (mut chunks, mut bytes) = (0, 0);
        for sink in &sinks {
            if sink.next_chunk != self.series.chunks.len() {
                return Err(self.incomplete(sink));
            }
            let index = self.series.channel_index(sink.column);
            self.out
                .write_metadata(index, &self.series.metadata(sink.column))
                .map_err(|e| self.write_error(e))?;
            chunks += sink.chunks_written;
            bytes += sink.bytes_written;
        }
        Ok((chunks, bytes))
    }

    fn write_error(&self, source: ts_chunk_format::Error) -> Error {
        Error::Write {
            file: self.plan.file.path().to_owned(),
            series: self.series.info.path.clone(),
            source,
        }
    }

    fn incomplete(&self, sink: &ChannelSink) -> Error {
        Error::Incomplete {
            file: self.plan.file.path().to_owned(),
            series: self.series.info.path.clone(),
            channel: self.series.channel_index(sink.column),
            written: sink.next_chunk,
            planned: self.series.chunks.len(),
        }
    }
}

/// The blocks to read: whole chunks when a chunk of every channel fits the memory budget (each
/// chunk file is then written in one go), else `fallback_len` samples at a time (chunk files are
/// streamed across blocks).
fn plan_blocks(
    chunks: &[PlannedChunk],
    num_samples: u64,
    sample_bytes: u64,
    block_bytes: u64,
    fallback_len: u64,
) -> Vec<Range<u64>> {
    let budget = block_bytes.saturating_mul(4);
    let widest = chunks
        .iter()
        .map(|c| c.range.end - c.range.start)
        .max()
        .unwrap_or(0);
    let widest_bytes = widest.saturating_mul(sample_bytes);
    if widest > 0 && widest_bytes <= budget {
        let per_block = (budget / widest_bytes).max(1) as usize;
        return chunks
            .chunks(per_block)
            .map(|group| group[0].range.start..group[group.len() - 1].range.end)
            .collect();
    }
    fixed_blocks(num_samples, fallback_len)
}

/// Blocks of `len` samples (the last one shorter).
fn fixed_blocks(num_samples: u64, len: u64) -> Vec<Range<u64>> {
    let step = len.max(1);
    (0..num_samples.div_ceil(step))
        .map(|i| i * step..((i + 1) * step).min(num_samples))
        .collect()
}

/// A block as the reader thread hands it over.
enum Fetched {
    /// Read and decoded by HDF5 (row-major).
    Raw(RawBlock),
    /// Decoded from stored chunks by the pool (already channel-major).
    Decoded(RawBlock),
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
    /// The channel's column in the series data.
    column: usize,
    current: Option<ChunkFile>,
    next_chunk: usize,
    chunks_written: u64,
    bytes_written: u64,
}

impl ChannelSink {
    fn new(column: usize) -> Self {
        Self {
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
        job: &SeriesJob<'_>,
        block: &RawBlock,
        block_start: u64,
        ws: &mut Workspace,
    ) -> Result<()> {
        let chunks = &job.series.chunks;
        let scaling: &Scaling = &job.series.info.scaling;
        let block_end = block_start + block.len() as u64;
        let mut pos = block_start;
        while pos < block_end {
            let Some(chunk) = chunks.get(self.next_chunk) else {
                return Err(job.incomplete(self));
            };
            let until = block_end.min(chunk.range.end);
            let rows = (pos - block_start) as usize..(until - block_start) as usize;
            let name = || job.series.chunk_name(self.column, chunk);
            let mut finished = None;
            if self.current.is_none() && pos == chunk.range.start && until == chunk.range.end {
                block.scale_rows_into(self.column, rows, scaling, &mut ws.scaled);
                let written = job.out.write_chunk(&mut ws.writer, &name(), &ws.scaled);
                finished = Some(written.map_err(|e| job.write_error(e))?);
            } else {
                if self.current.is_none() {
                    let file = job.out.begin_chunk(&ws.writer, &name());
                    self.current = Some(file.map_err(|e| job.write_error(e))?);
                }
                if let Some(file) = &mut self.current {
                    for start in rows.clone().step_by(STREAM_PIECE) {
                        let piece = start..(start + STREAM_PIECE).min(rows.end);
                        block.scale_rows_into(self.column, piece, scaling, &mut ws.scaled);
                        file.append(&ws.scaled).map_err(|e| job.write_error(e))?;
                    }
                }
                if until == chunk.range.end
                    && let Some(file) = self.current.take()
                {
                    finished = Some(file.finish().map_err(|e| job.write_error(e))?);
                }
            }
            if let Some(written) = finished {
                if (job.on_file)(&written).is_break() {
                    return Err(Error::Stopped {
                        file: job.plan.file.path().to_owned(),
                    });
                }
                self.bytes_written += written.bytes;
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

    fn chunks(ranges: &[Range<u64>]) -> Vec<PlannedChunk> {
        ranges
            .iter()
            .map(|r| PlannedChunk {
                range: r.clone(),
                start_us: r.start as i64,
                end_us: r.end as i64 - 1,
            })
            .collect()
    }

    #[test]
    fn blocks_are_whole_chunks_within_budget_else_fixed_steps() {
        let plan = chunks(&[0..3, 3..6, 6..7, 7..10]);
        // Chunks of 3 samples x 2 bytes fit a budget of 4 x 3 bytes twice: two chunks per block.
        assert_eq!(plan_blocks(&plan, 10, 2, 3, 4), vec![0..6, 6..10]);
        // Too wide for the budget: fixed steps of the fallback length.
        assert_eq!(plan_blocks(&plan, 10, 100, 3, 4), vec![0..4, 4..8, 8..10]);
    }
}
