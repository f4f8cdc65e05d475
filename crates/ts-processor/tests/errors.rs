//! Bad inputs and bad settings: one clear error line, a non-zero exit, and no file that looks
//! complete left behind.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::processor;

fn bin() -> Command {
    processor("warn")
}

fn testdata(name: &str) -> PathBuf {
    common::testdata().join(name)
}

/// The error line (the one line of stderr that starts with "error:").
fn error_line(out: &Output) -> String {
    assert!(!out.status.success(), "expected a failure, got success");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(
        lines.len(),
        1,
        "expected exactly one error line in:\n{stderr}"
    );
    lines[0].to_owned()
}

/// No chunk or metadata file (complete-looking or temporary) in `dir`.
fn assert_no_output(dir: &Path) {
    if !dir.exists() {
        return;
    }
    let names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("channel-"))
        .collect();
    assert!(names.is_empty(), "left behind: {names:?}");
}

fn convert(input: &Path, out: &Path) -> Output {
    bin()
        .arg("convert")
        .arg(input)
        .arg("-o")
        .arg(out)
        .output()
        .unwrap()
}

#[test]
fn not_hdf5() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("notes.nwb");
    fs::write(&input, "this is not an HDF5 file\n").unwrap();
    let out = dir.path().join("out");
    let line = error_line(&convert(&input, &out));
    assert!(line.contains("notes.nwb"), "{line}");
    assert_no_output(&out);
}

#[test]
fn missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let line = error_line(&convert(&dir.path().join("absent.nwb"), &out));
    assert!(line.contains("absent.nwb"), "{line}");
}

#[test]
fn truncated_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = fs::read(testdata("rate_basic.nwb")).unwrap();
    let input = dir.path().join("truncated.nwb");
    fs::write(&input, &good[..good.len() / 2]).unwrap();
    let out = dir.path().join("out");
    let line = error_line(&convert(&input, &out));
    assert!(line.contains("truncated.nwb"), "{line}");
    assert_no_output(&out);
}

#[test]
fn unwritable_output_directory() {
    let dir = tempfile::tempdir().unwrap();
    // A path below a regular file cannot be created, even by root.
    let blocker = dir.path().join("file");
    fs::write(&blocker, "").unwrap();
    let out = blocker.join("out");
    let line = error_line(&convert(&testdata("rate_basic.nwb"), &out));
    assert!(line.contains("output directory"), "{line}");
}

#[test]
fn earlier_output_is_refused_without_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let first = convert(&testdata("rate_basic.nwb"), &out);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let line = error_line(&convert(&testdata("rate_basic.nwb"), &out));
    assert!(line.contains("--overwrite"), "{line}");
    let again = bin()
        .arg("convert")
        .arg(testdata("rate_basic.nwb"))
        .arg("-o")
        .arg(&out)
        .arg("--overwrite")
        .output()
        .unwrap();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}

#[test]
fn container_mode_needs_exactly_one_nwb() {
    let input = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let run = || {
        bin()
            .env("INPUT_DIR", input.path())
            .env("OUTPUT_DIR", out.path())
            .output()
            .unwrap()
    };
    let line = error_line(&run());
    assert!(line.contains("no .nwb file"), "{line}");

    fs::copy(testdata("rate_basic.nwb"), input.path().join("a.nwb")).unwrap();
    fs::copy(testdata("rate_basic.nwb"), input.path().join("b.NWB")).unwrap();
    let line = error_line(&run());
    assert!(line.contains("a.nwb") && line.contains("b.NWB"), "{line}");
    assert_no_output(out.path());
}

#[test]
fn container_mode_names_missing_variables() {
    let out = bin().env("OUTPUT_DIR", "/tmp").output().unwrap();
    let line = error_line(&out);
    assert!(line.contains("INPUT_DIR"), "{line}");
}

#[test]
fn bad_chunk_size_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .arg("convert")
        .arg(testdata("rate_basic.nwb"))
        .arg("-o")
        .arg(dir.path())
        .args(["--chunk-size-mb", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "clap usage errors exit with 2");
    assert!(String::from_utf8_lossy(&out.stderr).contains("chunk size"));
}

#[test]
fn every_bad_fixture_fails_cleanly() {
    let expected: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(testdata("expected/bad.json")).unwrap()).unwrap();
    let mut lines = Vec::new();
    for (file, _) in expected.as_object().unwrap() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let output = bin()
            .current_dir(testdata(""))
            .arg("convert")
            .arg(file)
            .arg("-o")
            .arg(&out)
            .output()
            .unwrap();
        let line = error_line(&output);
        let file_name = Path::new(file).file_name().unwrap().to_string_lossy();
        assert!(line.contains(&*file_name), "{file}: {line}");
        assert_no_output(&out);
        lines.push(format!("{file}: {line}"));
    }
    // The messages themselves, reviewed by eye when they change.
    insta::assert_snapshot!("bad_fixture_errors", lines.join("\n"));
}

#[test]
fn json_logs_carry_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("plain.nwb");
    fs::write(&input, "not hdf5").unwrap();
    let out = bin()
        .env("LOG_FORMAT", "json")
        .arg("convert")
        .arg(&input)
        .arg("-o")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let events: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let last = events.last().expect("an error event");
    assert_eq!(last["level"], "ERROR");
    assert!(
        last["fields"]["error"]
            .as_str()
            .unwrap()
            .contains("plain.nwb"),
        "{last}"
    );
}
