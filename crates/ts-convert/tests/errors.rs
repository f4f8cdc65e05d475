//! What the library reports, as typed errors, and that a failed `execute` leaves no file of ours.

use std::fs;
use std::path::{Path, PathBuf};

use ts_convert::{Error, ExecOptions, ExistingOutput, NwbFile, Options, OutputDir};

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata")
        .join(name)
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_file_without_series_plans_empty_and_refuses_to_execute() {
    let file = NwbFile::open(testdata("bad/no_series.nwb")).unwrap();
    let plan = ts_convert::plan(&file, &Options::default()).unwrap();
    assert!(plan.series.is_empty());
    let err = plan.ensure_series().unwrap_err();
    assert!(matches!(err, Error::NoSeries { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("no_series.nwb"), "{message}");
    assert!(message.contains("--include-processing"), "{message}");

    let dir = tempfile::tempdir().unwrap();
    let out = OutputDir::prepare(dir.path(), ExistingOutput::Refuse).unwrap();
    let err = ts_convert::execute(&plan, &out, &ExecOptions::default(), |_| {}).unwrap_err();
    assert!(matches!(err, Error::NoSeries { .. }), "{err:?}");
}

#[test]
fn an_unknown_series_name_lists_the_series() {
    let file = NwbFile::open(testdata("two_series_full.nwb")).unwrap();
    let options = Options {
        series: vec!["Nope".to_owned()],
        ..Options::default()
    };
    let err = ts_convert::plan(&file, &options).unwrap_err();
    let Error::UnknownSeries {
        wanted, available, ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(wanted, "Nope");
    assert_eq!(available.len(), 2, "{available:?}");
}

#[test]
fn a_chunk_smaller_than_a_sample_is_refused() {
    let file = NwbFile::open(testdata("rate_basic.nwb")).unwrap();
    let options = Options {
        chunk_size_mb: 1e-7,
        ..Options::default()
    };
    let err = ts_convert::plan(&file, &options).unwrap_err();
    assert!(matches!(err, Error::ChunkTooSmall { .. }), "{err:?}");
}

#[test]
fn a_series_that_cannot_be_read_fails_the_plan_with_the_reader_error() {
    // The data needs an HDF5 filter this library does not have: found before any file is written.
    let file = NwbFile::open(testdata("bad/unknown_filter.nwb")).unwrap();
    let err = ts_convert::plan(&file, &Options::default()).unwrap_err();
    assert!(matches!(err, Error::Read(_)), "{err:?}");
    assert!(err.to_string().contains("unknown_filter.nwb"), "{err}");
}

#[test]
fn a_write_failure_names_the_series_and_removes_what_was_written() {
    let file = NwbFile::open(testdata("two_series_full.nwb")).unwrap();
    let options = Options {
        chunk_size_mb: 0.0005,
        ..Options::default()
    };
    let plan = ts_convert::plan(&file, &options).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = OutputDir::prepare(dir.path(), ExistingOutput::Refuse).unwrap();
    // A directory where the second series' last chunk of its first channel must go: the rename
    // into place fails after many other files were written.
    let second = &plan.series[1];
    let blocked = second
        .chunk_name(0, second.chunks.last().unwrap())
        .to_string();
    fs::create_dir(dir.path().join(&blocked)).unwrap();
    fs::write(dir.path().join(&blocked).join("occupied"), "").unwrap();

    let err = ts_convert::execute(&plan, &out, &ExecOptions::default(), |_| {}).unwrap_err();
    let Error::Write { series, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(series, &second.info.path);
    let chain = std::iter::successors(Some(&err as &dyn std::error::Error), |e| e.source())
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(": ");
    assert!(chain.contains("two_series_full.nwb"), "{chain}");
    assert!(chain.contains(&blocked), "{chain}");
    // Only the planted directory (and the directory's lock file) is left: every chunk and
    // metadata file was removed.
    let left: Vec<String> = names(dir.path())
        .into_iter()
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    assert_eq!(left, [blocked]);
}
