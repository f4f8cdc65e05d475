//! The crate's error type: reader and format errors, plus what planning and executing can add.

use std::path::PathBuf;

/// Everything that can stop a conversion. Every message names the input file or the setting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading the NWB file failed (the reader's error names the file and object).
    #[error(transparent)]
    Read(#[from] nwb_reader::Error),

    /// Writing an output file failed.
    #[error("{}: converting {series}", file.display())]
    Write {
        /// The input file.
        file: PathBuf,
        /// The series being converted.
        series: String,
        /// What went wrong in the output directory.
        #[source]
        source: ts_chunk_format::Error,
    },

    /// The caller's `on_file` callback asked to stop
    /// ([`execute_with_files`](crate::execute_with_files)); the caller knows why.
    #[error("{}: the conversion was stopped by its caller", file.display())]
    Stopped {
        /// The input file.
        file: PathBuf,
    },

    /// The chunk size gives less than one sample per chunk file.
    #[error("chunk size {chunk_size_mb:?} MiB is smaller than one 8-byte sample")]
    ChunkTooSmall {
        /// The chunk size asked for.
        chunk_size_mb: f64,
    },

    /// The file holds no series to convert.
    #[error(
        "{}: no ElectricalSeries to convert{}; the file contains: {}",
        file.display(),
        if *include_processing { "" } else { " in /acquisition (try --include-processing)" },
        if containers.is_empty() {
            "no typed objects under /acquisition or /processing".to_owned()
        } else {
            containers.join(", ")
        }
    )]
    NoSeries {
        /// The input file.
        file: PathBuf,
        /// Whether /processing was searched too.
        include_processing: bool,
        /// Typed objects under /acquisition and /processing, as `path (type)`.
        containers: Vec<String>,
    },

    /// A series asked for by name is not in the file.
    #[error("{}: no series named {wanted:?}; the file has: {}", file.display(), available.join(", "))]
    UnknownSeries {
        /// The input file.
        file: PathBuf,
        /// The name or path asked for.
        wanted: String,
        /// The paths of the series the file has.
        available: Vec<String>,
    },

    /// More output channels than a channel index can number.
    #[error("{}: more than {} channels", file.display(), u32::MAX)]
    TooManyChannels {
        /// The input file.
        file: PathBuf,
    },

    /// The plan would write more files than [`crate::Options::max_files`] allows.
    #[error(
        "{}: {series} would need {files} chunk files, more than the limit of {limit}; \
         use a larger chunk size (CHUNK_SIZE_MB / --chunk-size-mb) or raise the limit \
         (MAX_OUTPUT_FILES / --max-files)",
        file.display()
    )]
    TooManyFiles {
        /// The input file.
        file: PathBuf,
        /// The series whose chunks crossed the limit.
        series: String,
        /// Chunk files counted up to and including this series.
        files: u64,
        /// The limit.
        limit: u64,
    },

    /// A series would be cut into more chunks per channel than a plan holds
    /// ([`crate::MAX_CHUNKS_PER_CHANNEL`]).
    #[error(
        "{}: {series} would be cut into {chunks} chunks per channel, more than the limit of \
         {limit}; use a larger chunk size (CHUNK_SIZE_MB / --chunk-size-mb)",
        file.display()
    )]
    TooManyChunks {
        /// The input file.
        file: PathBuf,
        /// The series.
        series: String,
        /// Chunks per channel.
        chunks: u64,
        /// The limit.
        limit: u64,
    },

    /// A sample's time is not finite or its microseconds do not fit a signed 64-bit integer.
    #[error(
        "{}: {series}: the time of sample {index} ({seconds} s) cannot be placed: \
         not finite or beyond the range of microsecond timestamps",
        file.display()
    )]
    TimeOutOfRange {
        /// The input file.
        file: PathBuf,
        /// The series.
        series: String,
        /// The sample index.
        index: u64,
        /// Its time in seconds since the epoch.
        seconds: f64,
    },

    /// Two chunks of one channel would get the same file name (times closer than a microsecond,
    /// or repeated), so the later would overwrite the earlier.
    #[error(
        "{}: {series}: the chunks starting at samples {first} and {second} would both be named \
         {name} (their times are the same to the microsecond); nothing was written",
        file.display()
    )]
    DuplicateChunkName {
        /// The input file.
        file: PathBuf,
        /// The series.
        series: String,
        /// The file name both would get (for the series' first channel).
        name: String,
        /// First sample of the earlier chunk.
        first: u64,
        /// First sample of the later chunk.
        second: u64,
    },

    /// The last sample's time is before the first sample's.
    #[error(
        "{}: {series}: the last sample ({end_us} µs) is earlier than the first ({start_us} µs)",
        file.display()
    )]
    EndsBeforeStart {
        /// The input file.
        file: PathBuf,
        /// The series.
        series: String,
        /// Time of the first sample, µs since the epoch.
        start_us: i64,
        /// Time of the last sample, µs since the epoch.
        end_us: i64,
    },

    /// The worker threads could not be started.
    #[error("cannot start the worker threads")]
    Threads(#[source] rayon::ThreadPoolBuildError),

    /// A channel's chunk files did not come out as planned (a bug, reported rather than hidden).
    #[error("{}: converting {series}: channel {channel} wrote {written} of {planned} chunk files", file.display())]
    Incomplete {
        /// The input file.
        file: PathBuf,
        /// The series being converted.
        series: String,
        /// The output channel index.
        channel: u32,
        /// Chunk files written.
        written: usize,
        /// Chunk files planned.
        planned: usize,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
