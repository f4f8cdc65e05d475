//! [`NwbFile`]: opening a file (HDF5 signature, NWB root attributes, reference time, cached type
//! hierarchy), its accessors and error helpers, and [`NwbFile::open_series`]. Discovery lives in
//! `discover`.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use hdf5::Group;

use crate::error::{Error, Location, Result};
use crate::h5util::{attr_string, attr_text, escape_utf8, read_first_text};
use crate::model::{SeriesInfo, TimeBase};
use crate::series::SeriesReader;
use crate::specs::TypeTree;
use crate::storage::filter_name;
use crate::time::{ReferenceTime, parse_iso8601_micros};

/// An open NWB file: made by [`NwbFile::open`], then [`discover`](NwbFile::discover) its series
/// and [`open_series`](NwbFile::open_series) to read one.
pub struct NwbFile {
    path: PathBuf,
    file: hdf5::File,
    nwb_version: String,
    reference_time: ReferenceTime,
    types: TypeTree,
}

const HDF5_SIGNATURE: &[u8; 8] = b"\x89HDF\r\n\x1a\n";

impl NwbFile {
    /// Opens `path` and checks that it is an NWB 2.x HDF5 file with a readable reference time.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let meta = fs::metadata(&path).map_err(|e| io_error(&path, &e))?;
        if meta.is_dir() {
            let zarr = path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("zarr"))
                || path.join(".zattrs").exists()
                || path.join(".zgroup").exists();
            if zarr {
                return Err(Error::Zarr { file: path });
            }
            return Err(Error::Open {
                file: path,
                reason: "is a directory, not a file".into(),
            });
        }
        // HDF5 would block forever on a FIFO and read garbage (or block) from a device.
        if let Some(kind) = not_regular(&meta.file_type()) {
            return Err(Error::Open {
                file: path,
                reason: format!("is {kind}, not a regular file"),
            });
        }
        if !has_hdf5_signature(&path, meta.len()).map_err(|e| io_error(&path, &e))? {
            return Err(Error::NotHdf5 { file: path });
        }
        if path.to_str().is_none() {
            return Err(Error::Open {
                file: path,
                reason: "its path is not valid UTF-8, which the HDF5 bindings cannot pass on \
                         (rename the file or its directory)"
                    .into(),
            });
        }
        // A 32 MiB chunk cache per dataset (default 1 MiB): blocks are cut at chunk-file
        // boundaries, not HDF5 chunk boundaries, and a compressed HDF5 chunk split between two
        // blocks must not be decompressed twice.
        let file = hdf5::File::with_options()
            .with_fapl(|p| p.chunk_cache(1021, 32 << 20, 1.0))
            .open(&path)
            .map_err(|e| Error::Open {
                file: path.clone(),
                reason: format!("HDF5 cannot open it (truncated or damaged?): {e}"),
            })?;
        let root: &Group = &file;
        let not_nwb = |reason: String| Error::NotNwb {
            file: path.clone(),
            reason,
        };
        let ndtype = attr_text(root, "neurodata_type").ok().flatten();
        if ndtype.as_deref() != Some(b"NWBFile".as_slice()) {
            return Err(not_nwb(match ndtype {
                Some(t) => format!(
                    "root neurodata_type is \"{}\", expected \"NWBFile\"",
                    escape_utf8(&t).0.escape_debug()
                ),
                None => "the root group has no neurodata_type attribute".into(),
            }));
        }
        let nwb_version = attr_string(root, "nwb_version")
            .ok()
            .flatten()
            .ok_or_else(|| not_nwb("the root group has no nwb_version attribute".into()))?;
        let time_name = ["timestamps_reference_time", "session_start_time"]
            .into_iter()
            .find(|n| root.link_exists(n))
            .ok_or_else(|| {
                not_nwb("neither timestamps_reference_time nor session_start_time exists".into())
            })?;
        let at = Location {
            file: path.clone(),
            object: format!("/{time_name}"),
        };
        let bytes = root
            .dataset(time_name)
            .and_then(|ds| read_first_text(&ds))
            .map_err(|source| Error::Hdf5 {
                at: at.clone(),
                action: "reading the reference time",
                source,
            })?
            .unwrap_or_default();
        let text = strict_utf8(bytes, &at, "the reference time")?;
        let epoch_micros = parse_iso8601_micros(&text).map_err(|why| Error::Invalid {
            at,
            what: format!("{text:?} is not an ISO 8601 time: {why}"),
        })?;
        let types = load_type_tree(&file);
        Ok(Self {
            path,
            file,
            nwb_version,
            reference_time: ReferenceTime {
                text: text.trim_matches(['\0', ' ']).to_owned(),
                epoch_micros,
            },
            types,
        })
    }

    /// The path the file was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The root `nwb_version` attribute, e.g. `2.7.0`.
    pub fn nwb_version(&self) -> &str {
        &self.nwb_version
    }

    /// `timestamps_reference_time`, else `session_start_time`.
    pub fn reference_time(&self) -> &ReferenceTime {
        &self.reference_time
    }

    /// The open HDF5 file.
    pub(crate) fn hdf5(&self) -> &hdf5::File {
        &self.file
    }

    /// The type hierarchy of the file's cached specs (or the built-in one).
    pub(crate) fn types(&self) -> &TypeTree {
        &self.types
    }

    /// `object` in this file, for errors.
    pub(crate) fn at(&self, object: &str) -> Location {
        Location {
            file: self.path.clone(),
            object: object.to_owned(),
        }
    }

    /// Turns an HDF5 error while doing `action` on `object` into [`Error::Hdf5`].
    pub(crate) fn h5<T>(
        &self,
        object: &str,
        action: &'static str,
        r: hdf5::Result<T>,
    ) -> Result<T> {
        r.map_err(|source| Error::Hdf5 {
            at: self.at(object),
            action,
            source,
        })
    }

    /// `bytes` as text, or [`Error::NotUtf8`] naming `object` and `what` (e.g. `attribute unit`).
    pub(crate) fn utf8(&self, object: &str, what: &str, bytes: Vec<u8>) -> Result<String> {
        strict_utf8(bytes, &self.at(object), what)
    }

    /// [`Error::Invalid`] at `object`.
    pub(crate) fn invalid(&self, object: &str, what: impl Into<String>) -> Error {
        Error::Invalid {
            at: self.at(object),
            what: what.into(),
        }
    }

    /// A reader for the samples and times of `info`.
    pub fn open_series(&self, info: &SeriesInfo) -> Result<SeriesReader> {
        let data_path = format!("{}/data", info.path);
        if let Some(&id) = info.storage.missing_filters.first() {
            return Err(Error::FilterUnavailable {
                at: self.at(&data_path),
                id,
                name: filter_name(id),
            });
        }
        let group = self.h5(
            &info.path,
            "opening the series",
            self.file.group(&info.path),
        )?;
        let data = self.h5(&data_path, "opening data", group.dataset("data"))?;
        let timestamps = match info.time {
            TimeBase::Timestamps { .. } => Some(self.h5(
                &info.path,
                "opening timestamps",
                group.dataset("timestamps"),
            )?),
            TimeBase::Rate { .. } => None,
        };
        Ok(SeriesReader::new(
            self.path.clone(),
            info.clone(),
            data,
            timestamps,
            self.reference_time.seconds(),
        ))
    }
}

/// `bytes` as text, or [`Error::NotUtf8`] at `at` naming `what`.
fn strict_utf8(bytes: Vec<u8>, at: &Location, what: &str) -> Result<String> {
    String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        Error::NotUtf8 {
            at: at.clone(),
            what: what.to_owned(),
            offset,
            byte: e.as_bytes()[offset],
        }
    })
}

/// [`Error::Open`] with the OS's reason (permission denied, missing, ...), so that a file that
/// cannot be read is never reported as "not an HDF5 file".
fn io_error(path: &Path, e: &std::io::Error) -> Error {
    Error::Open {
        file: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// What a path that is neither a directory nor a regular file is, e.g. `a FIFO`.
fn not_regular(kind: &fs::FileType) -> Option<&'static str> {
    if kind.is_file() {
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return Some("a FIFO (named pipe)");
        }
        if kind.is_socket() {
            return Some("a socket");
        }
        if kind.is_char_device() {
            return Some("a character device");
        }
        if kind.is_block_device() {
            return Some("a block device");
        }
    }
    Some("not a regular file")
}

/// Whether an HDF5 superblock signature sits at offset 0, 512, 1024, ... within `len` bytes.
/// Opening the file fails with the OS's error (e.g. permission denied); a short read is `false`.
fn has_hdf5_signature(path: &Path, len: u64) -> std::io::Result<bool> {
    let mut f = fs::File::open(path)?;
    let mut sig = [0u8; 8];
    // The superblock sits at 0, 512, 1024, 2048, ... (after an optional user block).
    let mut offset = 0u64;
    while offset + 8 <= len {
        use std::io::Seek;
        if f.seek(std::io::SeekFrom::Start(offset)).is_err() || f.read_exact(&mut sig).is_err() {
            return Ok(false);
        }
        if &sig == HDF5_SIGNATURE {
            return Ok(true);
        }
        offset = if offset == 0 { 512 } else { offset * 2 };
    }
    Ok(false)
}

/// The cached specs' type hierarchy, or the built-in one when the file caches none.
fn load_type_tree(file: &hdf5::File) -> TypeTree {
    let mut tree = TypeTree::builtin();
    let Ok(specs) = file.group("specifications") else {
        return tree;
    };
    for namespace in specs.member_names().unwrap_or_default() {
        let Ok(ns_group) = specs.group(&namespace) else {
            continue;
        };
        let mut versions = ns_group.member_names().unwrap_or_default();
        // hdmf loads the last version in byte order of the names.
        versions.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        let Some(version) = versions.last() else {
            continue;
        };
        let Ok(v_group) = ns_group.group(version) else {
            continue;
        };
        for source in v_group.member_names().unwrap_or_default() {
            if source == "namespace" {
                continue;
            }
            let text = v_group.dataset(&source).and_then(|d| read_first_text(&d));
            if let Ok(Some(json)) = text
                && let Ok(json) = String::from_utf8(json)
            {
                let _ = tree.add_schema_json(&namespace, &json);
            }
        }
    }
    tree
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_file_reports_the_os_error_not_not_hdf5() {
        // Tests run as root, so EACCES cannot be produced on disk: check the mapping.
        let path = Path::new("/data/secret.nwb");
        let e = io_error(
            path,
            &std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        );
        assert!(matches!(e, Error::Open { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(msg.starts_with("/data/secret.nwb: cannot open: "), "{msg}");
        assert!(
            msg.to_ascii_lowercase().contains("permission denied"),
            "{msg}"
        );
        // And the signature check passes the OS error on instead of answering "no".
        assert!(has_hdf5_signature(Path::new("/nonexistent/x.nwb"), 100).is_err());
    }
}
