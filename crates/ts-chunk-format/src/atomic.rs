//! Temporary files in the target directory, renamed into place when complete.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::{Result, io_err};

/// Taken around creating and renaming entries. Writer threads mostly add entries to one
/// directory, whose lock the kernel holds for each; a thread waiting for it there spins (burning
/// the CPU time the other thread needs), while one waiting here sleeps.
static DIRECTORY_CHANGES: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn directory_change<R>(change: impl FnOnce() -> R) -> R {
    let _guard = DIRECTORY_CHANGES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    change()
}

/// A temporary file `.{final_name}.{pid}.{random}.tmp` next to its final path (`random`: 16 hex
/// digits from a fresh random `u64`, so the name cannot be predicted and planted in advance).
/// Removed on drop unless [`TempFile::commit`] renamed it into place.
#[derive(Debug)]
pub(crate) struct TempFile {
    temp_path: PathBuf,
    final_path: PathBuf,
    committed: bool,
}

impl TempFile {
    /// Creates the temporary file for `dir/final_name`. It must not exist yet (`O_CREAT|O_EXCL`,
    /// plus `O_NOFOLLOW` on Unix): a file or link planted under the name is an error, never
    /// followed or truncated. A name collision (practically impossible) is retried with a new name.
    pub(crate) fn create(dir: &Path, final_name: &str) -> Result<(TempFile, File)> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let temp_path = dir.join(temp_name(final_name));
            match directory_change(|| create_new_no_follow(&temp_path)) {
                Ok(file) => {
                    let temp = TempFile {
                        temp_path,
                        final_path: dir.join(final_name),
                        committed: false,
                    };
                    return Ok((temp, file));
                }
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists && attempts < 4 => {
                    continue;
                }
                Err(error) => return Err(io_err("create temporary file", &temp_path)(error)),
            }
        }
    }

    /// Renames the temporary file to its final name (replacing any file there) and returns the final
    /// path. The caller must have flushed and closed its handle.
    ///
    /// No fsync, for speed: while the machine stays up, a final name only ever shows a complete
    /// file; after an OS crash or power loss a just-renamed file may be empty or short, and the
    /// conversion has to be rerun (which it must be anyway after a failed run).
    pub(crate) fn commit(mut self) -> Result<PathBuf> {
        directory_change(|| std::fs::rename(&self.temp_path, &self.final_path))
            .map_err(io_err("rename temporary file into place", &self.final_path))?;
        self.committed = true;
        Ok(std::mem::take(&mut self.final_path))
    }

    pub(crate) fn temp_path(&self) -> &Path {
        &self.temp_path
    }

    /// The path [`TempFile::commit`] renames the file to.
    pub(crate) fn final_path(&self) -> &Path {
        &self.final_path
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: the file may already be gone; nothing useful to report from a drop.
            let _ = std::fs::remove_file(&self.temp_path);
        }
    }
}

/// `.{final_name}.{pid}.{random:016x}.tmp`.
fn temp_name(final_name: &str) -> String {
    format!(
        ".{final_name}{}{:016x}.tmp",
        own_temp_marker(),
        rand::random::<u64>()
    )
}

/// `.{pid}.`: the part of a temporary file name that says this process created it.
pub(crate) fn own_temp_marker() -> String {
    format!(".{}.", std::process::id())
}

/// Opens `path` for writing, creating it; fails if anything (a symlink included) is already there.
pub(crate) fn create_new_no_follow(path: &Path) -> std::io::Result<File> {
    let mut options = File::options();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
    }
    options.open(path)
}

/// Whether `name` is a temporary file name of ours (`.<something>.tmp`).
pub(crate) fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".tmp")
}
