//! Temporary files in the target directory, renamed into place when complete.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Result, io_err};

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A temporary file `.{final_name}.{pid}.{counter}.tmp` next to its final path. Removed on drop
/// unless [`TempFile::commit`] renamed it into place.
#[derive(Debug)]
pub(crate) struct TempFile {
    temp_path: PathBuf,
    final_path: PathBuf,
    committed: bool,
}

impl TempFile {
    /// Creates (truncating) the temporary file for `dir/final_name`.
    pub(crate) fn create(dir: &Path, final_name: &str) -> Result<(TempFile, File)> {
        let counter = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp_path = dir.join(format!(
            ".{final_name}.{}.{counter}.tmp",
            std::process::id()
        ));
        let file = File::create(&temp_path).map_err(io_err("create temporary file", &temp_path))?;
        let temp = TempFile {
            temp_path,
            final_path: dir.join(final_name),
            committed: false,
        };
        Ok((temp, file))
    }

    /// Renames the temporary file to its final name (replacing any file there) and returns the final
    /// path. The caller must have flushed and closed its handle.
    ///
    /// No fsync, for speed: while the machine stays up, a final name only ever shows a complete
    /// file; after an OS crash or power loss a just-renamed file may be empty or short, and the
    /// conversion has to be rerun (which it must be anyway after a failed run).
    pub(crate) fn commit(mut self) -> Result<PathBuf> {
        std::fs::rename(&self.temp_path, &self.final_path)
            .map_err(io_err("rename temporary file into place", &self.final_path))?;
        self.committed = true;
        Ok(std::mem::take(&mut self.final_path))
    }

    pub(crate) fn temp_path(&self) -> &Path {
        &self.temp_path
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

/// Whether `name` is a temporary file name of ours (`.<something>.tmp`).
pub(crate) fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".tmp")
}
