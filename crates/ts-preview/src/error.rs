//! The crate's single error type.

use std::ops::Range;
use std::path::PathBuf;

/// Everything that can go wrong while rendering a preview. Every message names the directory or
/// file concerned and what was expected.
///
/// A variant with an underlying error exposes it through [`std::error::Error::source`] and does not
/// repeat it in its own message: show the whole chain (e.g. `anyhow`'s `{:#}`) to see it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The output directory could not be listed.
    #[error("cannot scan output directory {}", dir.display())]
    Scan {
        /// The directory.
        dir: PathBuf,
        /// The underlying error.
        #[source]
        source: ts_chunk_format::Error,
    },

    /// The directory holds no channel (no `channel-NNNNN.metadata.json` and no chunk file).
    #[error(
        "output directory {} holds no channels (no channel-NNNNN.metadata.json or chunk files)",
        dir.display()
    )]
    NoChannels {
        /// The directory.
        dir: PathBuf,
    },

    /// An empty channel range such as `3..3`.
    #[error("channel range {}..{} is empty", requested.start, requested.end)]
    EmptyChannelRange {
        /// The range given.
        requested: Range<u32>,
    },

    /// More channels requested than a preview draws.
    #[error(
        "channel range {}..{} asks for {count} channels; a preview draws at most {max}",
        requested.start, requested.end
    )]
    TooManyChannels {
        /// The range given.
        requested: Range<u32>,
        /// How many channels it covers.
        count: u64,
        /// The limit ([`crate::MAX_CHANNELS`]).
        max: u32,
    },

    /// Requested channels that the directory does not hold.
    #[error(
        "output directory {} has no channel {} (requested {}..{}; present: {present})",
        dir.display(),
        crate::format_channel_list(missing),
        requested.start,
        requested.end
    )]
    ChannelsNotPresent {
        /// The directory.
        dir: PathBuf,
        /// The range given.
        requested: Range<u32>,
        /// The requested channels that are missing.
        missing: Vec<u32>,
        /// The channels present, e.g. `0..4` or `0, 2, 5`.
        present: String,
    },

    /// A channel to draw has chunks but no metadata file (its name, group and rate are needed).
    #[error(
        "channel {channel} in {} has no metadata file channel-{channel:05}.metadata.json",
        dir.display()
    )]
    MissingMetadata {
        /// The directory.
        dir: PathBuf,
        /// The channel.
        channel: u32,
    },

    /// A channel's metadata file could not be read or parsed.
    #[error("cannot use the metadata of channel {channel}")]
    Metadata {
        /// The channel.
        channel: u32,
        /// The underlying error (it names the file).
        #[source]
        source: ts_chunk_format::Error,
    },

    /// A metadata file whose sampling rate is not a positive finite number.
    #[error("metadata file {} has sampling rate {rate}, expected a positive number of Hz", path.display())]
    InvalidRate {
        /// The metadata file.
        path: PathBuf,
        /// The rate found.
        rate: f64,
    },

    /// A start (`from_s`) or length (`seconds`) that is not usable.
    #[error("invalid time window: {problem}")]
    InvalidWindow {
        /// What is wrong and what was expected.
        problem: String,
    },

    /// A start after the end of the recording.
    #[error(
        "the window starts {from_s} s after the first sample, but the recording in {} lasts {duration_s} s",
        dir.display()
    )]
    WindowAfterEnd {
        /// The directory.
        dir: PathBuf,
        /// The start requested, seconds after the first sample.
        from_s: f64,
        /// The time from the first to the last sample of the chosen channels, in seconds.
        duration_s: f64,
    },

    /// An image size outside the supported range, or too small for the rows to draw.
    #[error("invalid image size {width}x{height}: {problem}")]
    InvalidSize {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// What is wrong and what was expected.
        problem: String,
    },

    /// A channel range given as text (e.g. on the command line) that cannot be parsed.
    #[error("invalid channel range {text:?}: {problem}")]
    InvalidChannelRange {
        /// The text given.
        text: String,
        /// What was wrong and what was expected.
        problem: String,
    },

    /// A chunk file that could not be opened or decompressed.
    #[error("cannot {action} chunk file {}", path.display())]
    ChunkIo {
        /// What we were doing: "open" or "decompress".
        action: &'static str,
        /// The chunk file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A chunk file whose decompressed payload is not a whole number of float64 samples.
    #[error(
        "chunk file {} decompresses to {len} bytes, expected a multiple of 8 (big-endian float64 values)",
        path.display()
    )]
    ChunkLength {
        /// The chunk file.
        path: PathBuf,
        /// The decompressed byte count.
        len: u64,
    },

    /// The bundled font could not be loaded (a build problem, not an input problem).
    #[error("cannot load the bundled font {name}")]
    Font {
        /// The font's file name.
        name: &'static str,
    },

    /// Drawing failed.
    #[error("cannot draw the preview for {}: {message}", png.display())]
    Draw {
        /// The PNG file being made.
        png: PathBuf,
        /// What the plotting library reported.
        message: String,
    },

    /// The PNG file could not be written.
    #[error("cannot {action} {}", path.display())]
    WritePng {
        /// What we were doing, e.g. "create temporary file".
        action: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The PNG encoder failed.
    #[error("cannot encode PNG {}", path.display())]
    EncodePng {
        /// The file being written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: png::EncodingError,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
