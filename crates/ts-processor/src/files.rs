//! Finding the input file and preparing the output directory.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The one `*.nwb` entry (extension matched case-insensitively) directly inside `dir`.
/// Zero or several is an error that names what was found.
pub fn find_single_nwb(dir: &Path) -> Result<PathBuf> {
    let entries = fs::read_dir(dir)
        .with_context(|| format!("INPUT_DIR {}: cannot list the directory", dir.display()))?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("INPUT_DIR {}: cannot list", dir.display()))?;
        let path = entry.path();
        let is_nwb = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("nwb"));
        if is_nwb {
            found.push(path);
        }
    }
    found.sort();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => bail!(
            "INPUT_DIR {} holds no .nwb file (expected exactly one)",
            dir.display()
        ),
        n => bail!(
            "INPUT_DIR {} holds {n} .nwb files, expected exactly one: {}",
            dir.display(),
            found
                .iter()
                .filter_map(|p| p.file_name())
                .map(|n| n.to_string_lossy())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// What to do with chunk and metadata files that an earlier run left in the output directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExistingOutput {
    /// Stop with an error that names them (the CLI's default: never mix two runs' files).
    Refuse,
    /// Delete them first (`--overwrite`, and container mode, where a retried step must start clean).
    Replace,
}

/// Creates `dir` if needed, checks it is writable, and applies the existing-output policy.
/// Returns how many earlier files were removed.
pub fn prepare_output_dir(dir: &Path, policy: ExistingOutput) -> Result<usize> {
    fs::create_dir_all(dir)
        .with_context(|| format!("output directory {}: cannot create it", dir.display()))?;
    let probe = dir.join(format!(
        ".ts-processor-write-check.{}.tmp",
        std::process::id()
    ));
    fs::write(&probe, b"")
        .with_context(|| format!("output directory {}: not writable", dir.display()))?;
    let _ = fs::remove_file(&probe);

    let earlier = earlier_output_files(dir)?;
    if earlier.is_empty() {
        return Ok(0);
    }
    match policy {
        ExistingOutput::Refuse => bail!(
            "output directory {} already holds {} file(s) from an earlier conversion (e.g. {}); \
             pass --overwrite to replace them or choose another directory",
            dir.display(),
            earlier.len(),
            earlier[0].file_name().unwrap_or_default().to_string_lossy()
        ),
        ExistingOutput::Replace => {
            for path in &earlier {
                fs::remove_file(path)
                    .with_context(|| format!("cannot remove earlier output {}", path.display()))?;
            }
            Ok(earlier.len())
        }
    }
}

/// Our files, and temp files a killed run may have left, directly inside `dir`.
fn earlier_output_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let ours = name.starts_with("channel-")
            && (name.ends_with(".bin.gz") || name.ends_with(".metadata.json"));
        let leftover_temp = name.starts_with(".channel-") && name.ends_with(".tmp");
        if (ours || leftover_temp) && entry.file_type().is_ok_and(|t| t.is_file()) {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// Removes our chunk, metadata and temp files from `dir` (after a failed run: `prepare_output_dir`
/// made sure none of them predate this run).
pub fn remove_output_files(dir: &Path) -> Result<usize> {
    let files = earlier_output_files(dir)?;
    for path in &files {
        fs::remove_file(path).with_context(|| format!("cannot remove {}", path.display()))?;
    }
    Ok(files.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_nwb_is_found_case_insensitively() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("notes.txt"), "x").unwrap();
        fs::write(dir.path().join("Session.NWB"), "x").unwrap();
        assert_eq!(
            find_single_nwb(dir.path()).unwrap(),
            dir.path().join("Session.NWB")
        );
    }

    #[test]
    fn zero_or_two_nwb_files_are_errors_naming_them() {
        let dir = tempfile::tempdir().unwrap();
        let err = find_single_nwb(dir.path()).unwrap_err().to_string();
        assert!(err.contains("no .nwb file"), "{err}");
        fs::write(dir.path().join("a.nwb"), "x").unwrap();
        fs::write(dir.path().join("b.nwb"), "x").unwrap();
        let err = find_single_nwb(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("2 .nwb files") && err.contains("a.nwb, b.nwb"),
            "{err}"
        );
    }

    #[test]
    fn earlier_output_is_refused_or_replaced() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("channel-00000.metadata.json"), "{}").unwrap();
        fs::write(dir.path().join("channel-00000_1_2.bin.gz"), "").unwrap();
        fs::write(dir.path().join("keep.txt"), "").unwrap();
        let err = prepare_output_dir(dir.path(), ExistingOutput::Refuse).unwrap_err();
        assert!(err.to_string().contains("--overwrite"), "{err}");
        assert_eq!(
            prepare_output_dir(dir.path(), ExistingOutput::Replace).unwrap(),
            2
        );
        assert!(dir.path().join("keep.txt").exists());
        assert_eq!(
            prepare_output_dir(dir.path(), ExistingOutput::Refuse).unwrap(),
            0
        );
    }
}
