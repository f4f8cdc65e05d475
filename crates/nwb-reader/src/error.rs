//! The one error type of the crate. Every message names the file, the HDF5 object and what was
//! expected, so a caller can print it as it is.

use std::path::PathBuf;

/// Where a problem is: the file and the HDF5 object path inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub object: String,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.object)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: cannot open: {reason}", file.display())]
    Open { file: PathBuf, reason: String },
    #[error("{}: not an HDF5 file (no HDF5 signature)", file.display())]
    NotHdf5 { file: PathBuf },
    #[error("{}: is a Zarr NWB directory; only HDF5 NWB files are supported", file.display())]
    Zarr { file: PathBuf },
    #[error("{}: not an NWB file ({reason})", file.display())]
    NotNwb { file: PathBuf, reason: String },
    #[error("{at}: {what}")]
    Invalid { at: Location, what: String },
    #[error("{at}: HDF5 error while {action}: {source}")]
    Hdf5 {
        at: Location,
        action: &'static str,
        #[source]
        source: hdf5::Error,
    },
    #[error(
        "{at}: cannot decode the data: it is compressed with HDF5 filter {id} ({name}), which this HDF5 library does not have"
    )]
    FilterUnavailable {
        at: Location,
        id: u32,
        name: &'static str,
    },
    #[error("{at}: dangling external link to {target}")]
    DanglingLink { at: Location, target: String },
}

pub type Result<T> = std::result::Result<T, Error>;
