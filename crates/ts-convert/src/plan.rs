//! The conversion plan: which series, which output channels, and which chunk files, before any
//! sample is read (spec "Per series", "Chunks", "Files").

use std::ops::Range;

use nwb_reader::{DiscoverOptions, NwbFile, SeriesInfo, SkippedObject};
use ts_chunk_format::{ChannelMetadata, ChunkName, metadata_file_name};

use crate::error::{Error, Result};

/// What to convert and how to cut it (the settings that decide file names and contents).
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// Uncompressed MiB per chunk file (`CHUNK_SIZE_MB`); fractions allowed.
    pub chunk_size_mb: f64,
    /// Only series with these names or paths; empty means all.
    pub series: Vec<String>,
    /// Also series under `/processing` and inside LFP/FilteredEphys containers.
    pub include_processing: bool,
    /// The most chunk files a plan may have over all channels ([`Error::TooManyFiles`] beyond):
    /// a tiny chunk size or a file that declares absurd lengths fails before any work.
    pub max_files: u64,
}

/// [`Options::max_files`] by default: a 24-hour, 384-channel 30 kHz recording at 1 MiB chunks
/// needs about 7.6 million files, so this refuses only settings or files far beyond that.
pub const DEFAULT_MAX_FILES: u64 = 20_000_000;

impl Default for Options {
    fn default() -> Self {
        Options {
            chunk_size_mb: 1.0,
            series: Vec::new(),
            include_processing: false,
            max_files: DEFAULT_MAX_FILES,
        }
    }
}

/// Samples per chunk file: `floor(chunk_size_mb * 2^20 / 8)` (spec "Chunks").
pub fn chunk_samples(chunk_size_mb: f64) -> u64 {
    (chunk_size_mb * 1_048_576.0 / 8.0).floor() as u64
}

/// Microseconds for a file name or metadata field: truncation toward zero of `t * 1e6`, or
/// `None` when `t` is not finite or its microseconds do not fit an `i64` (spec "Values that cannot
/// be placed or named").
pub fn micros(t: f64) -> Option<i64> {
    let us = (t * 1e6).trunc();
    // ±2^63 are exactly representable; every value in [-2^63, 2^63) fits.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    (us.is_finite() && (-LIMIT..LIMIT).contains(&us)).then_some(us as i64)
}

/// Everything a conversion of one file will do, computed from the file's structure and times
/// without reading samples. Made by [`plan`]; carried out by [`crate::execute`].
#[non_exhaustive]
pub struct Plan<'f> {
    /// The file the plan reads from.
    pub file: &'f NwbFile,
    /// Samples per chunk file.
    pub chunk_samples: u64,
    /// The series to convert, in the spec's order, numbered consecutively.
    pub series: Vec<SeriesPlan>,
    /// Series deliberately left out (e.g. SpikeEventSeries), with the reason.
    pub skipped: Vec<SkippedObject>,
    /// Typed objects under /acquisition and /processing, `path (type)`: what an empty plan's
    /// error lists.
    containers: Vec<String>,
    include_processing: bool,
}

/// One series of a [`Plan`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SeriesPlan {
    /// What the reader found: channels, scaling, time base, storage.
    pub info: SeriesInfo,
    /// Output index of the series' first channel (indices run across series).
    pub first_channel: u32,
    /// Contiguous segments (sample ranges).
    pub segments: Vec<Range<u64>>,
    /// The chunk files of every channel: the same ranges and times for each.
    pub chunks: Vec<PlannedChunk>,
    /// Time of the first sample, µs since the epoch.
    pub start_us: i64,
    /// Time of the last sample, µs since the epoch.
    pub end_us: i64,
    /// Sampling rate written to the metadata, Hz.
    pub rate: f64,
    /// Largest jump between two segments, in seconds.
    pub largest_gap_s: Option<f64>,
    /// Set when time stands still or goes back somewhere (each such place starts a segment).
    pub segment_warning: Option<String>,
}

/// One chunk of a series: the same sample range and times for every channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedChunk {
    /// Samples `[start, end)` of the series.
    pub range: Range<u64>,
    /// Time of the first sample, µs since the epoch.
    pub start_us: i64,
    /// Time of the last sample, µs since the epoch.
    pub end_us: i64,
}

impl std::fmt::Debug for Plan<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("file", &self.file.path())
            .field("chunk_samples", &self.chunk_samples)
            .field("series", &self.series)
            .field("skipped", &self.skipped)
            .finish_non_exhaustive()
    }
}

impl Plan<'_> {
    /// An error when there is nothing to convert ([`Error::NoSeries`], listing what the file
    /// holds instead); [`crate::execute`] checks this first.
    pub fn ensure_series(&self) -> Result<()> {
        if self.series.is_empty() {
            return Err(Error::NoSeries {
                file: self.file.path().to_owned(),
                include_processing: self.include_processing,
                containers: self.containers.clone(),
            });
        }
        Ok(())
    }

    /// Output channels over all series.
    pub fn channels(&self) -> usize {
        self.series.iter().map(|s| s.info.num_channels).sum()
    }

    /// Chunk files over all channels.
    pub fn chunk_files(&self) -> u64 {
        self.series
            .iter()
            .map(|s| s.chunks.len() as u64 * s.info.num_channels as u64)
            .sum()
    }

    /// The name of every file the plan writes: each channel's chunks and metadata. Computed as
    /// they are iterated, so a cleanup needs no list of them.
    pub fn file_names(&self) -> impl Iterator<Item = String> + '_ {
        self.series.iter().flat_map(|series| {
            (0..series.info.num_channels).flat_map(move |k| {
                let chunks = series.chunks.iter();
                chunks
                    .map(move |chunk| series.chunk_name(k, chunk).to_string())
                    .chain(std::iter::once(metadata_file_name(series.channel_index(k))))
            })
        })
    }

    /// Bytes of raw samples over all series (what progress counts).
    pub fn raw_bytes(&self) -> u64 {
        self.series.iter().map(SeriesPlan::raw_bytes).sum()
    }
}

impl SeriesPlan {
    /// Output index of the series' channel `k` (its column in the data).
    pub fn channel_index(&self, k: usize) -> u32 {
        // `plan` checked that every index fits a u32.
        self.first_channel + k as u32
    }

    /// The file name of chunk `chunk` of channel `k`.
    pub fn chunk_name(&self, k: usize, chunk: &PlannedChunk) -> ChunkName {
        ChunkName::local(self.channel_index(k), chunk.start_us, chunk.end_us)
    }

    /// The metadata of channel `k`.
    pub fn metadata(&self, k: usize) -> ChannelMetadata {
        let channel = &self.info.channels[k];
        ChannelMetadata::continuous(
            channel.name.clone(),
            channel.group.clone(),
            self.start_us,
            self.end_us,
            self.rate,
        )
    }

    /// Bytes of raw samples in the series.
    pub fn raw_bytes(&self) -> u64 {
        self.info.num_samples * self.info.num_channels as u64 * self.info.dtype.size() as u64
    }
}

/// Plans the conversion of `file`: discovers the series, applies [`Options::series`], numbers the
/// channels, finds segments and cuts them into chunks. Reads structure and times, not samples.
/// A file without series gives an empty plan (see [`Plan::ensure_series`]); a name in
/// [`Options::series`] that matches no series is an error, and so are times that cannot be placed
/// (not finite, out of range), two chunks that would share a file name, and more than
/// [`Options::max_files`] files.
pub fn plan<'f>(file: &'f NwbFile, options: &Options) -> Result<Plan<'f>> {
    let chunk_len = chunk_samples(options.chunk_size_mb);
    if chunk_len == 0 {
        return Err(Error::ChunkTooSmall {
            chunk_size_mb: options.chunk_size_mb,
        });
    }
    let discovery = file.discover(&DiscoverOptions {
        include_processing: options.include_processing,
    })?;
    let selected = select_series(file, discovery.series, options)?;

    let mut series = Vec::with_capacity(selected.len());
    let mut first_channel = 0u32;
    let mut files = 0u64;
    for info in selected {
        let channels = u32::try_from(info.num_channels).ok();
        let Some(next) = channels.and_then(|n| first_channel.checked_add(n)) else {
            return Err(Error::TooManyChannels {
                file: file.path().to_owned(),
            });
        };
        let planned = plan_series(file, info, first_channel, chunk_len, options, &mut files)?;
        series.push(planned);
        first_channel = next;
    }
    // Only data containers help the user; devices and tables would drown them.
    let containers = discovery
        .typed_objects
        .iter()
        .filter(|(path, _)| path.starts_with("/acquisition/") || path.starts_with("/processing/"))
        .map(|(path, ty)| format!("{path} ({ty})"))
        .collect();
    Ok(Plan {
        file,
        chunk_samples: chunk_len,
        series,
        skipped: discovery.skipped,
        containers,
        include_processing: options.include_processing,
    })
}

/// Plans one series; `files` counts chunk files over the plan so far.
fn plan_series(
    file: &NwbFile,
    info: SeriesInfo,
    first_channel: u32,
    chunk_len: u64,
    options: &Options,
    files: &mut u64,
) -> Result<SeriesPlan> {
    let reader = file.open_series(&info)?;
    let report = reader.segments_report()?;
    let (segments, segment_warning) = (report.segments, report.warning);
    crate::isolation::heartbeat();

    // Count before allocating: the plan holds one entry per chunk.
    let per_channel = segments.iter().fold(0u64, |n, s| {
        n.saturating_add((s.end - s.start).div_ceil(chunk_len))
    });
    if per_channel > MAX_CHUNKS_PER_CHANNEL {
        return Err(Error::TooManyChunks {
            file: file.path().to_owned(),
            series: info.path.clone(),
            chunks: per_channel,
            limit: MAX_CHUNKS_PER_CHANNEL,
        });
    }
    *files = files.saturating_add(per_channel.saturating_mul(info.num_channels as u64));
    if *files > options.max_files {
        return Err(Error::TooManyFiles {
            file: file.path().to_owned(),
            series: info.path.clone(),
            files: *files,
            limit: options.max_files,
        });
    }

    let time_us = |i: u64| -> Result<i64> {
        let t = reader.time_at(i)?;
        micros(t).ok_or_else(|| Error::TimeOutOfRange {
            file: file.path().to_owned(),
            series: info.path.clone(),
            index: i,
            seconds: t,
        })
    };
    let mut chunks = Vec::with_capacity(usize::try_from(per_channel).unwrap_or(0));
    for segment in &segments {
        let mut a = segment.start;
        while a < segment.end {
            let b = a.saturating_add(chunk_len).min(segment.end);
            let chunk = PlannedChunk {
                range: a..b,
                start_us: time_us(a)?,
                end_us: time_us(b - 1)?,
            };
            chunks.push(chunk);
            a = b;
        }
    }
    if let Some((first, second)) = same_name(&chunks) {
        let chunk = &chunks[second];
        return Err(Error::DuplicateChunkName {
            file: file.path().to_owned(),
            series: info.path.clone(),
            name: ChunkName::local(first_channel, chunk.start_us, chunk.end_us).to_string(),
            first: chunks[first].range.start,
            second: chunk.range.start,
        });
    }

    let mut largest_gap_s: Option<f64> = None;
    for pair in segments.windows(2) {
        let gap = reader.time_at(pair[1].start)? - reader.time_at(pair[0].end - 1)?;
        largest_gap_s = Some(largest_gap_s.map_or(gap, |g| g.max(gap)));
    }
    let (start_us, end_us) = (time_us(0)?, time_us(info.num_samples - 1)?);
    if end_us < start_us {
        return Err(Error::EndsBeforeStart {
            file: file.path().to_owned(),
            series: info.path.clone(),
            start_us,
            end_us,
        });
    }
    Ok(SeriesPlan {
        start_us,
        end_us,
        rate: info.time.rate(),
        info,
        first_channel,
        segments,
        chunks,
        largest_gap_s,
        segment_warning,
    })
}

/// The most chunks one channel of a series may be cut into: the plan holds one entry per chunk,
/// so this bounds its memory (32 MiB of entries); a 30 kHz channel reaches it after about 90 days
/// at 1 MiB chunks.
pub const MAX_CHUNKS_PER_CHANNEL: u64 = 1 << 20;

/// Two chunks (indices, earlier first) whose times would give them one file name: times closer
/// than a microsecond, or time that went back over an earlier segment. Names only ever increase
/// when time does, so that check is one pass; otherwise the chunks are sorted by name (an index
/// of 4 bytes a chunk) and neighbours compared.
fn same_name(chunks: &[PlannedChunk]) -> Option<(usize, usize)> {
    let key = |c: &PlannedChunk| (c.start_us, c.end_us);
    let increasing = chunks.windows(2).all(|w| key(&w[0]) < key(&w[1]));
    if increasing {
        return None;
    }
    let mut order: Vec<u32> = (0..chunks.len() as u32).collect();
    order.sort_unstable_by_key(|&i| (key(&chunks[i as usize]), i));
    order.windows(2).find_map(|w| {
        let (a, b) = (w[0] as usize, w[1] as usize);
        (key(&chunks[a]) == key(&chunks[b])).then_some((a, b))
    })
}

/// The series to convert, in the spec's order, after the name filter.
fn select_series(
    file: &NwbFile,
    found: Vec<SeriesInfo>,
    options: &Options,
) -> Result<Vec<SeriesInfo>> {
    if found.is_empty() || options.series.is_empty() {
        return Ok(found);
    }
    let matches = |s: &SeriesInfo, wanted: &String| s.name == *wanted || s.path == *wanted;
    if let Some(wanted) = options
        .series
        .iter()
        .find(|w| !found.iter().any(|s| matches(s, w)))
    {
        return Err(Error::UnknownSeries {
            file: file.path().to_owned(),
            wanted: wanted.clone(),
            available: found.iter().map(|s| s.path.clone()).collect(),
        });
    }
    Ok(found
        .into_iter()
        .filter(|s| options.series.iter().any(|w| matches(s, w)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_truncates_toward_zero() {
        assert_eq!(micros(1.000_000_9), Some(1_000_000));
        assert_eq!(micros(-1.000_000_9), Some(-1_000_000));
        assert_eq!(micros(1_700_000_000.5), Some(1_700_000_000_500_000));
    }

    #[test]
    fn micros_refuses_what_does_not_fit() {
        for t in [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            9.3e12,
            -9.3e12,
            1e300,
        ] {
            assert_eq!(micros(t), None, "{t}");
        }
        assert_eq!(micros(9.2e12), Some(9_200_000_000_000_000_000));
    }

    fn chunk(start_us: i64, end_us: i64, at: u64) -> PlannedChunk {
        PlannedChunk {
            range: at..at + 1,
            start_us,
            end_us,
        }
    }

    #[test]
    fn same_names_are_found_in_order_or_not() {
        let increasing = [chunk(0, 5, 0), chunk(6, 9, 1), chunk(10, 12, 2)];
        assert_eq!(same_name(&increasing), None);
        let adjacent = [chunk(0, 5, 0), chunk(0, 5, 1)];
        assert_eq!(same_name(&adjacent), Some((0, 1)));
        // Time went back: a later segment repeats an earlier chunk's times.
        let back = [
            chunk(0, 5, 0),
            chunk(6, 9, 1),
            chunk(2, 3, 2),
            chunk(6, 9, 3),
        ];
        assert_eq!(same_name(&back), Some((1, 3)));
        let back_distinct = [
            chunk(0, 5, 0),
            chunk(6, 9, 1),
            chunk(2, 3, 2),
            chunk(6, 8, 3),
        ];
        assert_eq!(same_name(&back_distinct), None);
    }

    #[test]
    fn chunk_samples_follow_the_spec() {
        assert_eq!(chunk_samples(1.0), 131_072);
        assert_eq!(chunk_samples(0.5), 65_536);
        assert_eq!(chunk_samples(0.001), 131);
        assert_eq!(chunk_samples(0.000001), 0);
        // Absurdly large sizes saturate rather than wrap: one chunk per segment.
        assert_eq!(chunk_samples(1e300), u64::MAX);
    }
}
