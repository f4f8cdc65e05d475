//! Finding container mode's input file.

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
}
