//! The output directory of one conversion: locking it, preparing it, writing into it, cleaning up
//! after a failure.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::atomic::{TempFile, is_temp_name, own_temp_marker};
use crate::chunk::{ChunkFile, ChunkWriter, Written};
use crate::error::{Error, Result, io_err};
use crate::metadata::ChannelMetadata;
use crate::name::{ChunkName, LOCAL_PREFIX};

/// Name of the lock file [`OutputDir::prepare`] creates in the directory and locks exclusively
/// (`File::try_lock`) while the [`OutputDir`] lives.
///
/// It is left behind when the [`OutputDir`] is dropped (only the lock is released): removing it
/// would let a run that opened the old file and a run that creates a new one both "hold" the lock.
/// It is not a conversion file: [`is_conversion_file_name`] rejects it, cleanup never removes it,
/// and [`crate::scan_output_dir`] ignores it.
pub const LOCK_FILE_NAME: &str = ".ts-processor.lock";

/// What [`OutputDir::prepare`] does with files of an earlier conversion found in the directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExistingOutput {
    /// Fail with [`Error::EarlierOutput`], naming them: two runs' files are never mixed.
    Refuse,
    /// Delete them first (a retried workflow step, or a user who asked to overwrite).
    Replace,
}

/// A directory that chunk and metadata files are written into, locked for one conversion.
///
/// [`OutputDir::prepare`] creates it, takes an exclusive lock on [`LOCK_FILE_NAME`] in it (a
/// second `OutputDir` for the same directory, in this process or another, fails with
/// [`Error::Locked`] until this one and all its clones are dropped), checks that it is writable
/// and applies the [`ExistingOutput`] policy. Every write goes through a temporary file with an
/// unpredictable name, created with `O_EXCL`/`O_NOFOLLOW` and renamed into place. After a failed
/// run, [`OutputDir::remove_files`] removes the files the caller names (the ones it planned to
/// write) and this process's leftover temporary files, and nothing else. No per-file state is
/// kept, so memory does not grow with the number of files.
///
/// Clones share the lock.
#[derive(Debug, Clone)]
pub struct OutputDir {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    removed_earlier: usize,
    /// The open lock file; the lock is released when it is closed (the last clone dropped).
    _lock: File,
}

impl OutputDir {
    /// Creates `path` if needed, locks it (see [`LOCK_FILE_NAME`]), checks that files can be
    /// created in it, and applies `existing` to files an earlier conversion left there (see
    /// [`is_conversion_file_name`]).
    ///
    /// # Errors
    ///
    /// [`Error::Locked`] at once (no waiting) if another `OutputDir` holds the directory;
    /// [`Error::EarlierOutput`] for [`ExistingOutput::Refuse`] and earlier files;
    /// [`Error::Io`] if the directory or lock file cannot be created or opened (a symlink at
    /// the lock file's name is refused, never followed) or the directory is not writable.
    pub fn prepare(path: impl Into<PathBuf>, existing: ExistingOutput) -> Result<Self> {
        let path = path.into();
        fs::create_dir_all(&path).map_err(io_err("create output directory", &path))?;
        let lock = lock_dir(&path)?;
        // Creating (and dropping, which removes) a temporary file proves the directory writable
        // before any work is done.
        drop(TempFile::create(&path, "write-check")?);

        let earlier = conversion_files(&path)?;
        let mut removed_earlier = 0;
        if let Some(first) = earlier.first() {
            match existing {
                ExistingOutput::Refuse => {
                    return Err(Error::EarlierOutput {
                        dir: path.clone(),
                        count: earlier.len(),
                        example: first
                            .file_name()
                            .unwrap_or_default()
                            .to_string_lossy()
                            .into_owned(),
                    });
                }
                // Safe while we hold the lock: no other conversion is writing here.
                ExistingOutput::Replace => removed_earlier = remove_earlier_output(&earlier)?,
            }
        }
        Ok(OutputDir {
            inner: Arc::new(Inner {
                path,
                removed_earlier,
                _lock: lock,
            }),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// How many files of an earlier conversion [`OutputDir::prepare`] removed.
    pub fn removed_earlier(&self) -> usize {
        self.inner.removed_earlier
    }

    /// Writes one whole chunk atomically with `writer` (see [`ChunkWriter::write`]).
    pub fn write_chunk(
        &self,
        writer: &mut ChunkWriter,
        name: &ChunkName,
        samples: &[f64],
    ) -> Result<Written> {
        writer.write(self.path(), name, samples)
    }

    /// Starts a chunk written piece by piece (see [`ChunkWriter::begin`]).
    pub fn begin_chunk(&self, writer: &ChunkWriter, name: &ChunkName) -> Result<ChunkFile> {
        writer.begin(self.path(), name)
    }

    /// Writes `channel-{index:05}.metadata.json` atomically.
    pub fn write_metadata(
        &self,
        channel_index: u32,
        metadata: &ChannelMetadata,
    ) -> Result<Written> {
        metadata.write_atomic(self.path(), channel_index)
    }

    /// The chunk, metadata and leftover temporary files now in the directory
    /// ([`is_conversion_file_name`]), sorted. While this `OutputDir` lives they are this run's:
    /// [`OutputDir::prepare`] refused or removed earlier ones and the lock keeps other runs out.
    pub fn conversion_files(&self) -> Result<Vec<PathBuf>> {
        conversion_files(self.path())
    }

    /// Removes what this run created, after a failure: the regular files directly in the
    /// directory named by `names` (the chunk and metadata names the run planned; absent ones are
    /// skipped), plus conversion temporary files this process left here
    /// (`.channel-….{pid}.….tmp`). Nothing else is touched, whatever its name, and no link is
    /// followed or removed. Returns how many files were removed.
    ///
    /// Every file is tried; the first failure (other than a file already gone) is returned. A
    /// name that is not a plain file name (a path) is such a failure.
    pub fn remove_files<N: AsRef<str>>(&self, names: impl IntoIterator<Item = N>) -> Result<usize> {
        let mut removed = 0;
        let mut first_error = None;
        let named = names.into_iter().map(|name| {
            let name = name.as_ref();
            let plain = Path::new(name).file_name().is_some_and(|n| n == name);
            (self.path().join(name), plain)
        });
        let own_temps = own_leftover_temp_files(self.path())?
            .into_iter()
            .map(|path| (path, true));
        for (path, plain) in named.chain(own_temps) {
            let outcome = if plain {
                remove_regular_file(&path)
            } else {
                Err(std::io::Error::other(
                    "not a file name in the output directory",
                ))
            };
            match outcome {
                Ok(true) => removed += 1,
                Ok(false) => {}
                Err(error) => {
                    first_error
                        .get_or_insert_with(|| io_err("remove file of this run", path)(error));
                }
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(removed),
        }
    }
}

/// Removes `path` if it is a regular file: `Ok(false)` when it is absent or not a regular file
/// (a link or directory planted there is left alone).
fn remove_regular_file(path: &Path) -> std::io::Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_file() => match fs::remove_file(path) {
            Ok(()) => Ok(true),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(error) => Err(error),
        },
        Ok(_) => Ok(false),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(error),
    }
}

/// Opens (creating it if needed, never through a symlink) and exclusively locks `dir`'s lock file.
fn lock_dir(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE_NAME);
    let mut options = File::options();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK);
    }
    let file = options
        .open(&path)
        .map_err(io_err("open lock file", &path))?;
    let is_file = file
        .metadata()
        .map_err(io_err("inspect lock file", &path))?
        .is_file();
    if !is_file {
        return Err(io_err("use lock file", &path)(std::io::Error::other(
            "not a regular file",
        )));
    }
    try_lock(&file, dir, &path)?;
    Ok(file)
}

/// An exclusive lock on the open file (`flock` on Unix), released when the file is closed.
fn try_lock(file: &File, dir: &Path, path: &Path) -> Result<()> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked {
            dir: dir.to_owned(),
        }),
        Err(std::fs::TryLockError::Error(error)) => Err(io_err("lock", path)(error)),
    }
}

/// Whether a file name is one a conversion writes: `channel-….bin.gz`, `channel-….metadata.json`,
/// or the temporary `.channel-….tmp` a killed run may leave behind. The lock file
/// ([`LOCK_FILE_NAME`]) and the write-check probe are not.
pub fn is_conversion_file_name(name: &str) -> bool {
    let ours = name.starts_with(LOCAL_PREFIX)
        && (name.ends_with(".bin.gz") || name.ends_with(".metadata.json"));
    ours || is_conversion_temp_name(name)
}

fn is_conversion_temp_name(name: &str) -> bool {
    is_temp_name(name)
        && name
            .strip_prefix('.')
            .is_some_and(|rest| rest.starts_with(LOCAL_PREFIX))
}

/// Whether `name` is a conversion temporary file this process created:
/// `.channel-….{our pid}.{random}.tmp`.
fn is_own_temp_name(name: &str, marker: &str) -> bool {
    is_conversion_temp_name(name)
        && name
            .strip_suffix(".tmp")
            .and_then(|stem| stem.rsplit_once('.'))
            .is_some_and(|(rest, _random)| format!("{rest}.").ends_with(marker))
}

/// Regular files directly inside `dir` whose names [`is_conversion_file_name`] accepts.
fn conversion_files(dir: &Path) -> Result<Vec<PathBuf>> {
    files_named(dir, is_conversion_file_name)
}

/// This process's conversion temporary files in `dir`.
fn own_leftover_temp_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let marker = own_temp_marker();
    files_named(dir, |name| is_own_temp_name(name, &marker))
}

/// Regular files (not symlinks) directly inside `dir` whose names `accept`, sorted.
fn files_named(dir: &Path, accept: impl Fn(&str) -> bool) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err("list output directory", dir))? {
        let entry = entry.map_err(io_err("list output directory", dir))?;
        let accepted = entry.file_name().to_str().is_some_and(&accept);
        if accepted && entry.file_type().is_ok_and(|t| t.is_file()) {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// Removes an earlier run's conversion files ([`ExistingOutput::Replace`]; the caller holds the
/// lock). Returns how many.
fn remove_earlier_output(files: &[PathBuf]) -> Result<usize> {
    for path in files {
        fs::remove_file(path).map_err(io_err("remove earlier output", path))?;
    }
    Ok(files.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_a_conversion_are_recognised() {
        for ours in [
            "channel-00000_1_2.bin.gz",
            "channel-00012.metadata.json",
            ".channel-00000_1_2.bin.gz.123.4.tmp",
            ".channel-00001.metadata.json.9.0.tmp",
            ".channel-00001.metadata.json.9.00ff00ff00ff00ff.tmp",
        ] {
            assert!(is_conversion_file_name(ours), "{ours}");
        }
        for other in [
            "keep.txt",
            "channel-00000.txt",
            ".write-check.1.0.tmp",
            "N:channel:abc_1_2.bin.gz",
            "xchannel-00000_1_2.bin.gz",
            LOCK_FILE_NAME,
        ] {
            assert!(!is_conversion_file_name(other), "{other}");
        }
    }

    #[test]
    fn own_temporary_files_are_told_by_the_pid() {
        let marker = ".123.";
        assert!(is_own_temp_name(
            ".channel-00000_1_2.bin.gz.123.00ff00ff00ff00ff.tmp",
            marker
        ));
        for other in [
            ".channel-00000_1_2.bin.gz.1234.00ff00ff00ff00ff.tmp",
            ".channel-00000_1_2.bin.gz.23.00ff00ff00ff00ff.tmp",
            ".channel-00000_1_2.bin.gz.00ff00ff00ff00ff.123.tmp",
            ".write-check.123.00ff00ff00ff00ff.tmp",
            "channel-00000_1_2.bin.gz",
        ] {
            assert!(!is_own_temp_name(other, marker), "{other}");
        }
    }
}
