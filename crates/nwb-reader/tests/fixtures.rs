//! The reader against every fixture in `testdata/`. The expected facts come from
//! `testdata/expected/<name>.json`, which the fixture generator computed from the values it wrote
//! (per the conversion spec), not from this reader.

use std::path::{Path, PathBuf};

use nwb_reader::{
    DiscoverOptions, Error, NwbFile, RawBlock, ScaledBlock, SeriesInfo, SeriesReader, TimeBase,
};
use serde_json::Value;

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

fn expected_files() -> Vec<(String, Value)> {
    let dir = testdata().join("expected");
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter(|p| p.file_stem().is_some_and(|s| s != "bad"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            let json = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            (name, json)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(
        out.len() >= 30,
        "expected fixtures missing in {}",
        dir.display()
    );
    out
}

fn micros(t: f64) -> i64 {
    (t * 1e6).trunc() as i64
}

fn row_hex(reader: &SeriesReader, info: &SeriesInfo, row: u64) -> String {
    let block = reader.read_raw(row..row + 1).unwrap();
    let mut hex = String::new();
    let mut out = Vec::new();
    for k in 0..info.num_channels {
        block.scale_channel_into(k, &info.scaling, &mut out);
        assert_eq!(out.len(), 1);
        hex.push_str(&format!("{:016x}", out[0].to_bits()));
    }
    hex
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

fn check_series(name: &str, file: &NwbFile, info: &SeriesInfo, exp: &Value) {
    let ctx = format!("{name}: {}", info.path);
    assert_eq!(info.path, exp["path"].as_str().unwrap(), "{ctx}");
    assert_eq!(
        info.neurodata_type,
        exp["neurodata_type"].as_str().unwrap(),
        "{ctx}"
    );
    assert_eq!(
        info.dtype.to_string(),
        exp["dtype"].as_str().unwrap(),
        "{ctx}"
    );
    let shape: Vec<u64> = serde_json::from_value(exp["shape"].clone()).unwrap();
    assert_eq!(info.shape, shape, "{ctx}");
    assert_eq!(
        info.num_samples,
        exp["num_samples"].as_u64().unwrap(),
        "{ctx}"
    );
    assert_eq!(
        info.num_channels as u64,
        exp["num_channels"].as_u64().unwrap(),
        "{ctx}"
    );

    let rate = exp["rate"].as_f64().unwrap();
    match (&info.time, exp["time_base"].as_str().unwrap()) {
        (
            TimeBase::Rate {
                rate: r,
                starting_time,
            },
            "rate",
        ) => {
            assert_eq!(*r, rate, "{ctx}");
            assert_eq!(Some(*starting_time), exp["starting_time"].as_f64(), "{ctx}");
        }
        (
            TimeBase::Timestamps {
                rate: r,
                given_rate,
                ..
            },
            kind,
        ) => {
            assert_eq!(*r, rate, "{ctx}");
            assert_eq!(given_rate.is_some(), kind == "both", "{ctx}");
        }
        (other, kind) => panic!("{ctx}: time base {other:?}, expected {kind}"),
    }
    assert_eq!(info.time.rate(), rate, "{ctx}");

    let sc = &info.scaling;
    assert_eq!(
        sc.conversion,
        exp["conversion"].as_f64().unwrap_or(1.0),
        "{ctx}"
    );
    assert_eq!(sc.offset, exp["offset"].as_f64().unwrap_or(0.0), "{ctx}");
    let cc: Option<Vec<f64>> = serde_json::from_value(exp["channel_conversion"].clone()).unwrap();
    assert_eq!(sc.channel_conversion, cc, "{ctx}");
    assert_eq!(sc.unit.as_deref(), exp["stored_unit"].as_str(), "{ctx}");
    assert_eq!(
        sc.unit_factor,
        exp["unit_factor_to_uv"].as_f64().unwrap(),
        "{ctx}"
    );

    let rows: Vec<u64> = serde_json::from_value(exp["electrode_rows"].clone()).unwrap();
    let got_rows: Vec<u64> = info.channels.iter().map(|c| c.row).collect();
    assert_eq!(got_rows, rows, "{ctx}");
    let names: Vec<String> = info.channels.iter().map(|c| c.name.clone()).collect();
    assert_eq!(names, strings(&exp["channel_names"]), "{ctx}");
    let groups: Vec<String> = info.channels.iter().map(|c| c.group.clone()).collect();
    assert_eq!(groups, strings(&exp["groups"]), "{ctx}");

    let reader = file
        .open_series(info)
        .unwrap_or_else(|e| panic!("{ctx}: {e}"));
    let segments: Vec<[u64; 2]> = serde_json::from_value(exp["segments"].clone()).unwrap();
    let got: Vec<[u64; 2]> = reader
        .segments()
        .unwrap()
        .into_iter()
        .map(|r| [r.start, r.end])
        .collect();
    assert_eq!(got, segments, "{ctx}");
    let last = info.num_samples - 1;
    assert_eq!(
        micros(reader.time_at(0).unwrap()),
        exp["start_micros"].as_i64().unwrap(),
        "{ctx}"
    );
    assert_eq!(
        micros(reader.time_at(last).unwrap()),
        exp["end_micros"].as_i64().unwrap(),
        "{ctx}"
    );
    assert_eq!(
        row_hex(&reader, info, 0),
        exp["uv_first_row_f64be_hex"].as_str().unwrap(),
        "{ctx}: first row in µV"
    );
    assert_eq!(
        row_hex(&reader, info, last),
        exp["uv_last_row_f64be_hex"].as_str().unwrap(),
        "{ctx}: last row in µV"
    );
}

#[test]
fn every_good_fixture_matches_its_expected_facts() {
    for (name, exp) in expected_files() {
        let path = testdata().join(format!("{name}.nwb"));
        let file = NwbFile::open(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let reference = exp["timestamps_reference_time"]
            .as_str()
            .or(exp["session_start_time"].as_str())
            .unwrap();
        assert_eq!(file.reference_time().text, reference, "{name}");
        assert_eq!(
            file.reference_time().epoch_micros,
            exp["t0_micros"].as_i64().unwrap(),
            "{name}"
        );

        let default = file.discover(&DiscoverOptions::default()).unwrap();
        let expected_series = exp["series"].as_array().unwrap();
        let paths: Vec<&str> = default.series.iter().map(|s| s.path.as_str()).collect();
        let expected_paths: Vec<&str> = expected_series
            .iter()
            .map(|s| s["path"].as_str().unwrap())
            .collect();
        assert_eq!(paths, expected_paths, "{name}: default series, in order");
        for (info, e) in default.series.iter().zip(expected_series) {
            check_series(&name, &file, info, e);
        }
        let skipped: Vec<String> = default.skipped.iter().map(|s| s.path.clone()).collect();
        let mut expected_skipped = strings(&exp["skipped_spike_event_series"]);
        expected_skipped.sort();
        let mut sorted_skipped = skipped.clone();
        sorted_skipped.sort();
        assert_eq!(sorted_skipped, expected_skipped, "{name}: skipped");

        // With processing: the default series first, then the others in byte order of the path.
        let all = file
            .discover(&DiscoverOptions {
                include_processing: true,
            })
            .unwrap();
        let mut others: Vec<&Value> = exp["other_series"].as_array().unwrap().iter().collect();
        others.sort_by(|a, b| {
            let (a, b) = (a["path"].as_str().unwrap(), b["path"].as_str().unwrap());
            a.as_bytes().cmp(b.as_bytes())
        });
        let all_expected: Vec<&Value> = expected_series.iter().chain(others).collect();
        let all_paths: Vec<&str> = all.series.iter().map(|s| s.path.as_str()).collect();
        let all_expected_paths: Vec<&str> = all_expected
            .iter()
            .map(|s| s["path"].as_str().unwrap())
            .collect();
        assert_eq!(all_paths, all_expected_paths, "{name}: with processing");
        for (info, e) in all.series.iter().zip(all_expected) {
            check_series(&name, &file, info, e);
        }
    }
}

/// Reads the whole series at once, then in blocks of every size given, and checks that blocks,
/// `read_scaled` and single reads agree value for value.
fn blocks_agree(file: &str, block_lens: &[u64]) {
    let file = NwbFile::open(testdata().join(file)).unwrap();
    for info in file.discover(&DiscoverOptions::default()).unwrap().series {
        let reader = file.open_series(&info).unwrap();
        let whole = reader.read_raw(0..info.num_samples).unwrap();
        let mut expected = Vec::new();
        let mut scaled = ScaledBlock::new();
        for k in 0..info.num_channels {
            whole.scale_channel_into(k, &info.scaling, &mut expected);
            for &len in block_lens {
                let mut got = Vec::new();
                let mut via_blocks = Vec::new();
                for block in reader.blocks(len) {
                    let (start, block) = block.unwrap();
                    assert_eq!(start, got.len() as u64);
                    assert!(block.len() as u64 <= len);
                    let mut part = Vec::new();
                    block.scale_channel_into(k, &info.scaling, &mut part);
                    got.extend(part);
                    reader
                        .read_scaled(start..start + block.len() as u64, &mut scaled)
                        .unwrap();
                    assert_eq!(scaled.start, start);
                    via_blocks.extend_from_slice(scaled.channel(k));
                }
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&got),
                    bits(&expected),
                    "{} ch {k} len {len}",
                    info.path
                );
                assert_eq!(bits(&via_blocks), bits(&expected), "{} ch {k}", info.path);
            }
        }
    }
}

#[test]
fn block_reads_of_a_chunked_gzip_series_equal_one_whole_read() {
    blocks_agree(
        "gzip_shuffle_fletcher32.nwb",
        &[1, 999, 1000, 1001, 2500, 5000],
    );
}

#[test]
fn block_reads_of_1d_and_float32_series() {
    blocks_agree("one_dimensional.nwb", &[1, 7, 300]);
    blocks_agree("float32_data.nwb", &[3, 100]);
}

#[test]
fn storage_of_the_chunked_fixture_is_reported_and_blocks_are_chunk_aligned() {
    let file = NwbFile::open(testdata().join("gzip_shuffle_fletcher32.nwb")).unwrap();
    let info = file
        .discover(&DiscoverOptions::default())
        .unwrap()
        .series
        .remove(0);
    assert_eq!(info.storage.layout, "chunked");
    assert_eq!(info.storage.chunk_shape, Some(vec![1000, 4]));
    assert_eq!(info.storage.filters, ["shuffle", "gzip(4)", "fletcher32"]);
    assert_eq!(info.storage.external, None);
    let reader = file.open_series(&info).unwrap();
    // 8 bytes per sample (4 x int16): 1 KiB is 128 samples, rounded up to one chunk of 1000.
    assert_eq!(reader.preferred_block_len(1024), 1000);
    assert_eq!(reader.preferred_block_len(8 * 1500), 2000);
    // Never more than the series.
    assert_eq!(reader.preferred_block_len(1 << 30), 3000);

    let contiguous = NwbFile::open(testdata().join("rate_basic.nwb")).unwrap();
    let info = contiguous
        .discover(&DiscoverOptions::default())
        .unwrap()
        .series
        .remove(0);
    assert_eq!(info.storage.layout, "contiguous");
    assert_eq!(info.storage.chunk_shape, None);
    // 32 bytes per sample (4 x float64).
    assert_eq!(
        contiguous
            .open_series(&info)
            .unwrap()
            .preferred_block_len(320),
        10
    );
}

#[test]
fn external_link_data_reports_its_target() {
    let file = NwbFile::open(testdata().join("external_link_data.nwb")).unwrap();
    let info = file
        .discover(&DiscoverOptions::default())
        .unwrap()
        .series
        .remove(0);
    let external = info.storage.external.expect("data is an external link");
    assert!(external.contains("external_link_target.nwb"), "{external}");
}

#[test]
fn electrode_properties_include_other_columns() {
    let file = NwbFile::open(testdata().join("electrodes_columns.nwb")).unwrap();
    let info = file
        .discover(&DiscoverOptions::default())
        .unwrap()
        .series
        .remove(0);
    // Region [2, 0] into ids [100, 7, 42, 5].
    let ids: Vec<i64> = info.channels.iter().map(|c| c.id).collect();
    assert_eq!(ids, [42, 100]);
    let keys: Vec<&str> = info.channels[0]
        .properties
        .iter()
        .map(|(k, _)| k.as_str())
        .collect();
    for key in ["x", "y", "z", "imp", "reference", "location"] {
        assert!(keys.contains(&key), "{key} missing from {keys:?}");
    }
}

#[test]
fn spike_event_series_are_skipped_with_a_reason_and_listed_as_typed() {
    let file = NwbFile::open(testdata().join("spike_event_series.nwb")).unwrap();
    let d = file.discover(&DiscoverOptions::default()).unwrap();
    assert_eq!(d.skipped.len(), 2);
    for s in &d.skipped {
        assert_eq!(s.neurodata_type, "SpikeEventSeries");
        assert!(s.reason.contains("waveform"), "{}", s.reason);
    }
    assert!(d.typed_objects.contains(&(
        "/acquisition/SpikeEvents3D".into(),
        "SpikeEventSeries".into()
    )));
}

#[test]
fn raw_blocks_keep_the_stored_type() {
    let file = NwbFile::open(testdata().join("uint16_offset.nwb")).unwrap();
    let info = file
        .discover(&DiscoverOptions::default())
        .unwrap()
        .series
        .remove(0);
    let block = file.open_series(&info).unwrap().read_raw(10..20).unwrap();
    assert!(matches!(&block, RawBlock::U16(a) if a.dim() == (10, 4)));
    assert_eq!(block.channels(), 4);
}

// ---- files a reader must reject (testdata/expected/bad.json) ----

fn bad(name: &str) -> PathBuf {
    testdata().join("bad").join(name)
}

/// The error of opening, discovering and reading every series of `path`, if any.
fn first_error(path: &Path) -> Option<Error> {
    let file = match NwbFile::open(path) {
        Ok(f) => f,
        Err(e) => return Some(e),
    };
    let d = match file.discover(&DiscoverOptions::default()) {
        Ok(d) => d,
        Err(e) => return Some(e),
    };
    for info in &d.series {
        let result = file
            .open_series(info)
            .and_then(|r| r.read_raw(0..info.num_samples).map(drop));
        if let Err(e) = result {
            return Some(e);
        }
    }
    None
}

/// The message with the machine-specific directory replaced, for snapshots.
fn message(e: &Error) -> String {
    let dir = testdata().join("bad");
    e.to_string().replace(&format!("{}/", dir.display()), "")
}

#[test]
fn bad_files_fail_with_messages_that_name_file_object_and_expectation() {
    let cases = [
        ("neither_rate_nor_timestamps.nwb", "neither starting_time"),
        (
            "region_out_of_range.nwb",
            "row 4 is outside the electrodes table",
        ),
        ("region_length_mismatch.nwb", "has 3 entries; expected 4"),
        (
            "timestamps_length_mismatch.nwb",
            "has 99 values; expected 100",
        ),
        ("empty_data.nwb", "has no samples"),
        ("unknown_filter.nwb", "32015"),
        ("dangling_external_link.nwb", "dangling external link"),
        ("rank3_data.nwb", "rank 3"),
        ("not_nwb.h5", "not an NWB file"),
        ("not_hdf5.nwb", "not an HDF5 file"),
    ];
    let mut snapshot = String::new();
    for (file, needle) in cases {
        let e = first_error(&bad(file)).unwrap_or_else(|| panic!("{file} was accepted"));
        let msg = message(&e);
        assert!(
            msg.starts_with(file),
            "{file}: message does not name the file: {msg}"
        );
        assert!(msg.contains(needle), "{file}: {msg:?} lacks {needle:?}");
        snapshot.push_str(&format!("{file}\n  {msg}\n"));
    }
    insta::assert_snapshot!(snapshot);
}

#[test]
fn error_kinds_of_bad_files() {
    assert!(matches!(
        first_error(&bad("not_hdf5.nwb")),
        Some(Error::NotHdf5 { .. })
    ));
    assert!(matches!(
        first_error(&bad("not_nwb.h5")),
        Some(Error::NotNwb { .. })
    ));
    assert!(matches!(
        first_error(&bad("dangling_external_link.nwb")),
        Some(Error::DanglingLink { .. })
    ));
    assert!(matches!(
        first_error(&bad("unknown_filter.nwb")),
        Some(Error::FilterUnavailable { id: 32015, .. })
    ));
    // A truncated file has the signature but HDF5 cannot open or read it.
    let e = first_error(&bad("truncated.nwb")).expect("truncated file accepted");
    assert!(e.to_string().contains("truncated.nwb"), "{e}");
}

#[test]
fn files_without_series_list_their_typed_objects() {
    let file = NwbFile::open(bad("no_series.nwb")).unwrap();
    let d = file.discover(&DiscoverOptions::default()).unwrap();
    assert!(d.series.is_empty());
    assert!(
        d.typed_objects.iter().any(|(_, t)| t == "TimeSeries"),
        "{:?}",
        d.typed_objects
    );
    // The whole file is listed, in byte order of the path, without the cached specs.
    let file = NwbFile::open(testdata().join("rate_basic.nwb")).unwrap();
    let d = file.discover(&DiscoverOptions::default()).unwrap();
    let paths: Vec<&str> = d.typed_objects.iter().map(|(p, _)| p.as_str()).collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted);
    assert!(paths.iter().all(|p| !p.starts_with("/specifications")));
    assert!(
        d.typed_objects
            .iter()
            .any(|(p, _)| p == "/general/extracellular_ephys/electrodes"),
        "{paths:?}"
    );
    assert!(
        paths.contains(&"/acquisition/ElectricalSeries"),
        "{paths:?}"
    );

    // Without cached specs an unknown type is not a series, even with an ElectricalSeries body.
    let file = NwbFile::open(bad("no_specifications_unknown_type.nwb")).unwrap();
    let d = file
        .discover(&DiscoverOptions {
            include_processing: true,
        })
        .unwrap();
    assert!(d.series.is_empty());
    assert!(
        d.typed_objects
            .contains(&("/acquisition/mystery".into(), "MyMysterySeries".into())),
        "{:?}",
        d.typed_objects
    );
}

#[test]
fn zarr_directories_are_rejected_by_name_or_content() {
    let dir = tempfile::tempdir().unwrap();
    let named = dir.path().join("session.nwb.zarr");
    std::fs::create_dir(&named).unwrap();
    assert!(matches!(NwbFile::open(&named), Err(Error::Zarr { .. })));
    let plain = dir.path().join("session");
    std::fs::create_dir(&plain).unwrap();
    std::fs::write(plain.join(".zattrs"), "{}").unwrap();
    let e = NwbFile::open(&plain).err().expect("zarr dir accepted");
    assert!(matches!(e, Error::Zarr { .. }));
    assert!(e.to_string().contains("Zarr"), "{e}");
    assert!(matches!(NwbFile::open(dir.path()), Err(Error::Open { .. })));
    assert!(matches!(
        NwbFile::open(dir.path().join("missing.nwb")),
        Err(Error::Open { .. })
    ));
}
