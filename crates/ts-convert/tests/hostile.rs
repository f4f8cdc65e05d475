//! Values that cannot be placed or named (spec) and plans that would be absurd: each is a typed
//! error before any file is written. The inputs are fixtures with one attribute or value changed.

use std::path::{Path, PathBuf};

use ts_convert::{Error, ExecOptions, ExistingOutput, NwbFile, Options, OutputDir};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata")
        .join(name)
}

/// A copy of fixture `name` in `dir`, changed by `edit` (which gets the series group).
fn edited(dir: &Path, name: &str, edit: impl FnOnce(&hdf5::Group)) -> PathBuf {
    let path = dir.join(name);
    std::fs::copy(fixture(name), &path).unwrap();
    let file = hdf5::File::open_rw(&path).unwrap();
    edit(&file.group("acquisition/ElectricalSeries").unwrap());
    file.close().unwrap();
    path
}

fn set_rate(series: &hdf5::Group, rate: f64) {
    let st = series.dataset("starting_time").unwrap();
    st.attr("rate").unwrap().write_scalar(&rate).unwrap();
}

fn plan_error(path: &Path, options: &Options) -> Error {
    let file = NwbFile::open(path).unwrap();
    ts_convert::plan(&file, options).unwrap_err()
}

/// One sample per chunk file.
fn one_sample_chunks() -> Options {
    Options {
        chunk_size_mb: 8.0 / 1_048_576.0,
        ..Options::default()
    }
}

#[test]
fn chunks_closer_than_a_microsecond_are_an_error_not_an_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    // 4 MHz: four samples share each microsecond.
    let path = edited(dir.path(), "rate_basic.nwb", |s| set_rate(s, 4e6));
    let err = plan_error(&path, &one_sample_chunks());
    let Error::DuplicateChunkName {
        first,
        second,
        name,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!((*first, *second), (0, 1));
    assert!(name.starts_with("channel-00000_"), "{name}");
    assert!(err.to_string().contains("rate_basic.nwb"), "{err}");
}

#[test]
fn times_beyond_microsecond_range_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = edited(dir.path(), "rate_basic.nwb", |s| {
        s.dataset("starting_time")
            .unwrap()
            .write_scalar(&1e300)
            .unwrap();
    });
    let err = plan_error(&path, &Options::default());
    assert!(
        matches!(err, Error::TimeOutOfRange { index: 0, .. }),
        "{err:?}"
    );
}

#[test]
fn too_many_files_fail_before_anything_is_allocated_or_written() {
    // 100 samples x 4 channels at one sample per chunk: 400 files.
    let options = Options {
        max_files: 399,
        ..one_sample_chunks()
    };
    let err = plan_error(&fixture("rate_basic.nwb"), &options);
    let Error::TooManyFiles { files, limit, .. } = err else {
        panic!("{err:?}")
    };
    assert_eq!((files, limit), (400, 399));
    let options = Options {
        max_files: 400,
        ..one_sample_chunks()
    };
    let file = NwbFile::open(fixture("rate_basic.nwb")).unwrap();
    assert_eq!(
        ts_convert::plan(&file, &options).unwrap().chunk_files(),
        400
    );
}

#[test]
fn a_huge_chunk_size_is_one_chunk_per_segment() {
    let file = NwbFile::open(fixture("timestamps_gap.nwb")).unwrap();
    let options = Options {
        chunk_size_mb: 1e300,
        ..Options::default()
    };
    let plan = ts_convert::plan(&file, &options).unwrap();
    assert_eq!(plan.chunk_samples, u64::MAX);
    let ranges: Vec<_> = plan.series[0]
        .chunks
        .iter()
        .map(|c| c.range.clone())
        .collect();
    assert_eq!(ranges, [0..50, 50..100]);
    let dir = tempfile::tempdir().unwrap();
    let out = OutputDir::prepare(dir.path(), ExistingOutput::Refuse).unwrap();
    let summary = ts_convert::execute(&plan, &out, &ExecOptions::default(), |_| {}).unwrap();
    assert_eq!(summary.chunks, 8);
}

#[test]
fn a_series_that_ends_before_it_starts_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = edited(dir.path(), "timestamps_gap.nwb", |s| {
        let ts = s.dataset("timestamps").unwrap();
        let mut times: Vec<f64> = ts.read_raw().unwrap();
        let last = times.len() - 1;
        times[last] = times[0] - 1.0; // the last sample goes back before the first
        ts.write_raw(&times).unwrap();
    });
    let err = plan_error(&path, &Options::default());
    let Error::EndsBeforeStart {
        start_us, end_us, ..
    } = err
    else {
        panic!("{err:?}")
    };
    assert_eq!(start_us - end_us, 1_000_000);
}
