//! The crate's single error type.

use std::path::PathBuf;

/// Everything that can go wrong in this crate. Every message names the file (or the text) concerned
/// and what was expected.
///
/// A variant with an underlying error exposes it through [`std::error::Error::source`] and does not
/// repeat it in its own message: show the whole chain (e.g. `anyhow`'s `{:#}`) to see it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O error, with the file it concerned and what we were doing.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What we were doing, e.g. "create temporary file".
        action: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A chunk file name that does not follow `channel-{index}_{startUs}_{endUs}.bin.gz` or
    /// `N:channel:<uuid>_{startUs}_{endUs}.bin.gz`.
    #[error("invalid chunk file name {text:?}: {problem}")]
    InvalidChunkName {
        /// The name as given.
        text: String,
        /// What was wrong and what was expected instead.
        problem: String,
    },

    /// A channel metadata file that is not the expected JSON object.
    #[error("invalid channel metadata JSON in {}", path.display())]
    InvalidMetadata {
        /// The metadata file (or the origin given to [`crate::ChannelMetadata::from_json`]).
        path: PathBuf,
        /// The JSON error, with line and column.
        #[source]
        source: serde_json::Error,
    },

    /// Sample bytes whose length is not a multiple of 8 (in memory, no file involved).
    #[error("sample bytes have length {len}, expected a multiple of 8 (big-endian float64 values)")]
    SampleBytesLength {
        /// The byte count.
        len: usize,
    },

    /// A chunk file whose decompressed payload length is not a multiple of 8.
    #[error(
        "chunk file {} decompresses to {len} bytes, expected a multiple of 8 (big-endian float64 values)",
        path.display()
    )]
    ChunkLength {
        /// The chunk file.
        path: PathBuf,
        /// The decompressed byte count.
        len: usize,
    },

    /// [`crate::OutputDir::prepare`] with [`crate::ExistingOutput::Refuse`] found files of an
    /// earlier conversion.
    #[error(
        "output directory {} already holds {count} file(s) from an earlier conversion (e.g. {example})",
        dir.display()
    )]
    EarlierOutput {
        /// The output directory.
        dir: std::path::PathBuf,
        /// How many of our files it holds.
        count: usize,
        /// One of their names.
        example: String,
    },

    /// [`crate::OutputDir::prepare`] found the directory locked by another live
    /// [`crate::OutputDir`] (another conversion, in this process or another one).
    #[error(
        "output directory {} is in use by another conversion (it holds the lock on {})",
        dir.display(),
        crate::LOCK_FILE_NAME
    )]
    Locked {
        /// The output directory.
        dir: PathBuf,
    },

    /// A gzip compression level outside 0..=9.
    #[error("invalid gzip compression level {level}: expected 0..=9")]
    InvalidCompressionLevel {
        /// The level given.
        level: u32,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// `error` and its sources, joined by `: ` (for messages kept as plain strings).
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Wraps an I/O error with the path and action, for `map_err`.
pub(crate) fn io_err(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io {
        action,
        path,
        source,
    }
}
