//! NWB fixture files written with the `hdf5` crate, following pynwb's layout.
//!
//! `cargo xtask fixtures [--out DIR] [--check]` writes every fixture of `catalog::all()` plus
//! `expected/<name>.json` (facts computed from the values written, not read back) and the
//! README table. `--check` regenerates into a temporary directory and compares bytes.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

pub mod builder;
mod catalog;
mod expected;
mod readme;
mod specs;

/// Options of `cargo xtask fixtures`.
#[derive(clap::Args)]
pub struct FixturesArgs {
    /// Output directory [default: the workspace's testdata/].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Regenerate into a temporary directory and fail if anything differs from `--out`.
    #[arg(long)]
    check: bool,
}

pub fn run(args: &FixturesArgs) -> Result<()> {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata"));
    if args.check {
        let tmp = std::env::temp_dir().join(format!("nwb-fixtures-check-{}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        generate(&tmp)?;
        let diffs = compare_dirs(&tmp, &out)?;
        let _ = fs::remove_dir_all(&tmp);
        if !diffs.is_empty() {
            bail!(
                "{} fixture file(s) differ from a fresh build (run `cargo xtask fixtures`):\n  {}",
                diffs.len(),
                diffs.join("\n  ")
            );
        }
        println!("fixtures in {} are up to date", out.display());
        Ok(())
    } else {
        generate(&out)?;
        println!("fixtures written to {}", out.display());
        Ok(())
    }
}

/// Writes every fixture, its expected JSON and the README into `out`.
fn generate(out: &Path) -> Result<()> {
    fs::create_dir_all(out.join("bad"))?;
    fs::create_dir_all(out.join("expected"))?;
    let mut rows = vec![];
    for f in catalog::all() {
        let path = out.join(f.file);
        let tmp = path.with_extension("tmp");
        let _ = fs::remove_file(&tmp);
        let context = || format!("building {}", f.file);
        let written = match f.build {
            catalog::Build::Good(build) => Some(build(&tmp).with_context(context)?),
            catalog::Build::Bad(build) => {
                build(&tmp).with_context(context)?;
                None
            }
        };
        fs::rename(&tmp, &path)?;
        let facts = written.map(|w| expected::facts(&w));
        if let Some(facts) = &facts {
            let name = f.file.trim_end_matches(".nwb");
            let text = serde_json::to_string_pretty(facts)? + "\n";
            write_atomic(
                &out.join("expected").join(format!("{name}.json")),
                text.as_bytes(),
            )?;
        }
        rows.push((f, facts));
    }
    // Bad files: the error kind a reader must report, and what pynwb 4.2 does with the file.
    let bad: serde_json::Map<String, serde_json::Value> = rows
        .iter()
        .filter_map(|(f, _)| {
            let error = f.error?;
            Some((
                f.file.to_string(),
                serde_json::json!({ "error": error, "pynwb": f.pynwb }),
            ))
        })
        .collect();
    let text = serde_json::to_string_pretty(&bad)? + "\n";
    write_atomic(&out.join("expected").join("bad.json"), text.as_bytes())?;
    write_atomic(&out.join("README.md"), readme::render(&rows).as_bytes())?;
    Ok(())
}

pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, bytes)?;
    fs::rename(&tmp, path)?;
    Ok(())
}

/// Relative paths of files that differ or exist on one side only.
fn compare_dirs(fresh: &Path, committed: &Path) -> Result<Vec<String>> {
    let mut a = list_files(fresh, fresh)?;
    let mut b = list_files(committed, committed)?;
    a.sort();
    b.sort();
    let mut diffs = vec![];
    for rel in &a {
        if !b.contains(rel) {
            diffs.push(format!("{} (missing)", rel.display()));
        } else if fs::read(fresh.join(rel))? != fs::read(committed.join(rel))? {
            diffs.push(format!("{} (content differs)", rel.display()));
        }
    }
    for rel in b.iter().filter(|r| !a.contains(r)) {
        diffs.push(format!("{} (not produced by the generator)", rel.display()));
    }
    Ok(diffs)
}

fn list_files(root: &Path, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = vec![];
    for e in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let p = e?.path();
        if p.is_dir() {
            out.extend(list_files(root, &p)?);
        } else {
            out.push(p.strip_prefix(root)?.to_path_buf());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-fixtures-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn two_runs_write_identical_bytes() {
        let (a, b) = (scratch("a"), scratch("b"));
        generate(&a).unwrap();
        generate(&b).unwrap();
        let diffs = compare_dirs(&a, &b).unwrap();
        assert!(diffs.is_empty(), "non-deterministic output: {diffs:?}");
        // Every catalog entry produced its file, and every good one its expected JSON.
        for f in catalog::all() {
            assert!(a.join(f.file).is_file(), "{} missing", f.file);
            let json = a.join("expected").join(f.file.replace(".nwb", ".json"));
            assert_eq!(json.is_file(), f.error.is_none(), "{}", json.display());
        }
        let bad: serde_json::Value =
            serde_json::from_slice(&fs::read(a.join("expected/bad.json")).unwrap()).unwrap();
        for f in catalog::all().iter().filter(|f| f.error.is_some()) {
            assert_eq!(bad[f.file]["error"], f.error.unwrap(), "{}", f.file);
        }
        fs::remove_dir_all(&a).unwrap();
        fs::remove_dir_all(&b).unwrap();
    }

    #[test]
    fn compare_dirs_reports_changed_missing_and_extra_files() {
        let (a, b) = (scratch("cmp-a"), scratch("cmp-b"));
        fs::create_dir_all(&a).unwrap();
        fs::create_dir_all(&b).unwrap();
        fs::write(a.join("same"), "x").unwrap();
        fs::write(b.join("same"), "x").unwrap();
        fs::write(a.join("changed"), "1").unwrap();
        fs::write(b.join("changed"), "2").unwrap();
        fs::write(a.join("only_fresh"), "").unwrap();
        fs::write(b.join("only_committed"), "").unwrap();
        let mut diffs = compare_dirs(&a, &b).unwrap();
        diffs.sort();
        assert_eq!(
            diffs,
            [
                "changed (content differs)",
                "only_committed (not produced by the generator)",
                "only_fresh (missing)"
            ]
        );
        fs::remove_dir_all(&a).unwrap();
        fs::remove_dir_all(&b).unwrap();
    }
}
