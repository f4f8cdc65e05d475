//! The one error type of the crate. Every message names the file, the HDF5 object and what was
//! expected, so a caller can print it as it is.

use std::path::PathBuf;

/// Where a problem is: the file and the HDF5 object path inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file as it was opened.
    pub file: PathBuf,
    /// The HDF5 path of the object, e.g. `/acquisition/ElectricalSeries/data`.
    pub object: String,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.object)
    }
}

/// Everything that can go wrong reading an NWB file; the message names the file and object.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The path cannot be opened as a file (missing, unreadable, a directory, or HDF5 refuses it).
    #[error("{}: cannot open: {reason}", file.display())]
    Open {
        /// The path given.
        file: PathBuf,
        /// Why, from the OS or HDF5.
        reason: String,
    },
    /// The file has no HDF5 signature at any superblock offset.
    #[error("{}: not an HDF5 file (no HDF5 signature)", file.display())]
    NotHdf5 {
        /// The path given.
        file: PathBuf,
    },
    /// The path is a Zarr NWB directory, which is not supported.
    #[error("{}: is a Zarr NWB directory; only HDF5 NWB files are supported", file.display())]
    Zarr {
        /// The path given.
        file: PathBuf,
    },
    /// An HDF5 file that is not NWB 2.x (root type, version or reference time missing).
    #[error("{}: not an NWB file ({reason})", file.display())]
    NotNwb {
        /// The path given.
        file: PathBuf,
        /// What is missing or wrong.
        reason: String,
    },
    /// An object breaks the spec's rules (shape, lengths, rates, references, ...).
    #[error("{at}: {what}")]
    Invalid {
        /// The offending object.
        at: Location,
        /// What is wrong, as a sentence fragment after the object.
        what: String,
    },
    /// The HDF5 library failed on an object. The message does not repeat the HDF5 error: it is
    /// the [`source`](std::error::Error::source), so `{:#}` chains print it once.
    #[error("{at}: HDF5 error while {action}")]
    Hdf5 {
        /// The object being read.
        at: Location,
        /// What the reader was doing, e.g. `reading samples`.
        action: &'static str,
        /// The HDF5 library's error.
        #[source]
        source: hdf5::Error,
    },
    /// `data` uses a filter this HDF5 library cannot decode.
    #[error(
        "{at}: cannot decode the data: it is compressed with HDF5 filter {id} ({name}), which this HDF5 library does not have"
    )]
    FilterUnavailable {
        /// The `data` dataset.
        at: Location,
        /// The HDF5 filter id.
        id: u32,
        /// The filter's registered name, or `unregistered`.
        name: &'static str,
    },
    /// Text that must be UTF-8 (a unit, the reference time) is not. Names and groups of channels
    /// are never this error: their invalid bytes are written as `\xNN`.
    #[error("{at}: {what} is not valid UTF-8 (byte 0x{byte:02X} at offset {offset})")]
    NotUtf8 {
        /// The object holding the text.
        at: Location,
        /// Which text, e.g. `attribute unit` or `the value`.
        what: String,
        /// Offset of the first invalid byte.
        offset: usize,
        /// The first invalid byte.
        byte: u8,
    },
    /// The file exceeds a safety limit of the reader (nesting depth or number of objects walked),
    /// as a hostile or damaged file can (hard links back to an ancestor, exponential link trees).
    #[error("{at}: {what}")]
    LimitExceeded {
        /// Where the walk stopped.
        at: Location,
        /// Which limit, and its value.
        what: String,
    },
    /// `data` is an external link whose target file or object cannot be opened.
    #[error("{at}: dangling external link to {target}")]
    DanglingLink {
        /// The link.
        at: Location,
        /// `file:object` the link points to.
        target: String,
    },
}

impl Error {
    /// [`Error::Invalid`] at `object` of `file`.
    pub(crate) fn invalid_at(
        file: &std::path::Path,
        object: &str,
        what: impl Into<String>,
    ) -> Self {
        Error::Invalid {
            at: Location {
                file: file.to_path_buf(),
                object: object.to_owned(),
            },
            what: what.into(),
        }
    }
}

/// `std::result::Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hdf5_errors_do_not_repeat_their_source_in_the_message() {
        let e = Error::Hdf5 {
            at: Location {
                file: "f.nwb".into(),
                object: "/acquisition/S/data".into(),
            },
            action: "reading samples",
            source: hdf5::Error::from("the-hdf5-text"),
        };
        assert_eq!(
            e.to_string(),
            "f.nwb: /acquisition/S/data: HDF5 error while reading samples"
        );
        let source = std::error::Error::source(&e).unwrap().to_string();
        assert!(source.contains("the-hdf5-text"), "{source}");
    }
}
