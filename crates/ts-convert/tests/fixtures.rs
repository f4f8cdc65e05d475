//! Converts every good fixture through the library and checks the output against
//! `testdata/expected/*.json`, which the fixture generator derived from the values it wrote (not
//! from our reader), and against the spec's formulas for chunk boundaries and names.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use ts_chunk_format::{ChannelRef, read_chunk, scan_output_dir};
use ts_convert::{ExecOptions, ExistingOutput, NwbFile, Options, OutputDir, Summary};

/// Small chunks (0.0005 MiB = 65 samples) so every fixture is cut into several.
const CHUNK_MB: f64 = 0.0005;
const CHUNK_SAMPLES: u64 = 65;

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

fn convert_with(input: &Path, out: &Path, options: Options, exec: ExecOptions) -> Summary {
    let file = NwbFile::open(input).unwrap();
    let options = Options {
        chunk_size_mb: CHUNK_MB,
        ..options
    };
    let plan = ts_convert::plan(&file, &options).unwrap();
    assert_eq!(plan.chunk_samples, CHUNK_SAMPLES);
    let out = OutputDir::prepare(out, ExistingOutput::Refuse).unwrap();
    let last = std::sync::Mutex::new(None);
    let files = std::sync::Mutex::new(Vec::new());
    let summary = ts_convert::execute_with_files(
        &plan,
        &out,
        &exec,
        |p| {
            assert!(p.done_bytes <= p.total_bytes, "{p:?}");
            *last.lock().unwrap() = Some(p);
        },
        |written| {
            // Announced only once complete: in place, at its final size.
            let len = std::fs::metadata(&written.path).unwrap().len();
            assert_eq!(len, written.bytes, "{}", written.path.display());
            files.lock().unwrap().push(written.path.clone());
            std::ops::ControlFlow::Continue(())
        },
    );
    let summary = summary.unwrap_or_else(|e| panic!("{}: {e}", input.display()));
    // Every chunk file is announced exactly once, and nothing else is.
    let mut files = files.into_inner().unwrap();
    files.sort();
    let announced = files.len();
    files.dedup();
    assert_eq!(announced, files.len(), "a file was announced twice");
    assert_eq!(files.len() as u64, plan.chunk_files());
    assert_eq!(
        files
            .iter()
            .map(|f| f.metadata().unwrap().len())
            .sum::<u64>(),
        summary.bytes_written
    );
    // Progress ends at the plan's total; the summary agrees with the plan.
    let last = last.into_inner().unwrap().expect("progress reported");
    assert_eq!(last.done_bytes, plan.raw_bytes());
    assert_eq!(summary.chunks, plan.chunk_files());
    assert_eq!(summary.channels, plan.channels());
    summary
}

fn convert(input: &Path, out: &Path) -> Summary {
    convert_with(input, out, Options::default(), ExecOptions::default())
}

fn hex_f64s(hex: &str) -> Vec<u64> {
    (0..hex.len() / 16)
        .map(|i| u64::from_str_radix(&hex[i * 16..i * 16 + 16], 16).unwrap())
        .collect()
}

/// Checks one converted fixture against its expected facts.
fn check_fixture(name: &str, expected: &Value, out: &Path) {
    let scan = scan_output_dir(out).unwrap();
    assert!(
        scan.problems.is_empty(),
        "{name}: {:?}",
        scan.problems
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
    );
    let series = expected["series"].as_array().unwrap();
    let total: u64 = series
        .iter()
        .map(|s| s["num_channels"].as_u64().unwrap())
        .sum();
    assert_eq!(scan.channels.len() as u64, total, "{name}: channel count");

    for s in series {
        let first = s["first_channel_index"].as_u64().unwrap();
        let n = s["num_samples"].as_u64().unwrap();
        let c = s["num_channels"].as_u64().unwrap();
        let segments: Vec<(u64, u64)> = s["segments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r[0].as_u64().unwrap(), r[1].as_u64().unwrap()))
            .collect();
        // Spec "Chunks": each segment cut into CHUNK_SAMPLES pieces, the last one shorter.
        let mut ranges = Vec::new();
        for &(a, e) in &segments {
            let mut x = a;
            while x < e {
                ranges.push((x, (x + CHUNK_SAMPLES).min(e)));
                x = (x + CHUNK_SAMPLES).min(e);
            }
        }
        let first_row = hex_f64s(s["uv_first_row_f64be_hex"].as_str().unwrap());
        let last_row = hex_f64s(s["uv_last_row_f64be_hex"].as_str().unwrap());
        for k in 0..c {
            let index = (first + k) as u32;
            let channel = scan
                .channels
                .iter()
                .find(|ch| ch.channel == index)
                .unwrap_or_else(|| panic!("{name}: channel {index} missing"));
            let meta = channel.metadata.as_ref().unwrap();
            let ctx = format!("{name} {} channel {index}", s["path"]);
            assert_eq!(
                meta.name,
                s["channel_names"][k as usize].as_str().unwrap(),
                "{ctx}: name"
            );
            assert_eq!(
                meta.group,
                s["groups"][k as usize].as_str().unwrap(),
                "{ctx}: group"
            );
            assert_eq!(meta.rate, s["rate"].as_f64().unwrap(), "{ctx}: rate");
            assert_eq!(
                meta.start,
                s["start_micros"].as_i64().unwrap(),
                "{ctx}: start"
            );
            assert_eq!(meta.end, s["end_micros"].as_i64().unwrap(), "{ctx}: end");
            assert_eq!(
                (meta.unit.as_str(), meta.channel_type.as_str()),
                ("uV", "CONTINUOUS")
            );

            assert_eq!(channel.chunks.len(), ranges.len(), "{ctx}: chunk count");
            let mut samples = Vec::new();
            for (chunk, &(a, b)) in channel.chunks.iter().zip(&ranges) {
                assert_eq!(chunk.name.channel, ChannelRef::Index(index), "{ctx}");
                let values = read_chunk(&chunk.path).unwrap();
                assert_eq!(
                    values.len() as u64,
                    b - a,
                    "{ctx}: chunk {:?} length",
                    chunk.path
                );
                if s["time_base"] == "rate" {
                    // Spec "Time base": t(i) = (starting_time + i / rate) + T0.
                    let t0 = s["t0_micros"].as_i64().unwrap() as f64 / 1e6;
                    let st = s["starting_time"].as_f64().unwrap();
                    let rate = s["rate"].as_f64().unwrap();
                    let t = |i: u64| (((st + i as f64 / rate) + t0) * 1e6).trunc() as i64;
                    assert_eq!(
                        (chunk.name.start_us, chunk.name.end_us),
                        (t(a), t(b - 1)),
                        "{ctx}: chunk name"
                    );
                }
                samples.extend(values);
            }
            assert_eq!(samples.len() as u64, n, "{ctx}: samples");
            assert_eq!(
                channel.chunks[0].name.start_us, meta.start,
                "{ctx}: first chunk start"
            );
            assert_eq!(
                channel.chunks.last().unwrap().name.end_us,
                meta.end,
                "{ctx}: last chunk end"
            );
            assert_eq!(
                samples[0].to_bits(),
                first_row[k as usize],
                "{ctx}: first sample"
            );
            assert_eq!(
                samples[n as usize - 1].to_bits(),
                last_row[k as usize],
                "{ctx}: last sample"
            );
        }
    }
}

fn good_fixtures() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for entry in fs::read_dir(testdata().join("expected")).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        if stem == "bad" || !testdata().join(format!("{stem}.nwb")).exists() {
            continue;
        }
        let value: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        if value["series"].as_array().is_some_and(|s| !s.is_empty()) {
            out.push((stem, value));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(
        out.len() >= 30,
        "fixtures missing: run `cargo xtask fixtures`"
    );
    out
}

#[test]
fn every_good_fixture_converts_as_expected() {
    for (name, expected) in good_fixtures() {
        let dir = tempfile::tempdir().unwrap();
        convert(&testdata().join(format!("{name}.nwb")), dir.path());
        check_fixture(&name, &expected, dir.path());
    }
}

/// Every output file by name, with its decompressed content (or the JSON text).
fn snapshot_dir(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let content = if name.ends_with(".gz") {
                read_chunk(&p)
                    .unwrap()
                    .iter()
                    .flat_map(|v| v.to_be_bytes())
                    .collect()
            } else {
                fs::read(&p).unwrap()
            };
            (name, content)
        })
        .collect()
}

#[test]
fn output_does_not_depend_on_threads_block_size_or_compression() {
    for name in [
        "sample",
        "timestamps_gap",
        "gzip_shuffle_fletcher32",
        "two_series_subset",
    ] {
        let input = testdata().join(format!("{name}.nwb"));
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let one_thread = ExecOptions {
            threads: Some(1),
            ..ExecOptions::default()
        };
        convert_with(&input, a.path(), Options::default(), one_thread);
        let small_blocks = ExecOptions {
            threads: Some(3),
            block_bytes: 104, // 0.0001 MiB: chunks are streamed across blocks
            compression_level: 6,
            ..ExecOptions::default()
        };
        convert_with(&input, b.path(), Options::default(), small_blocks);
        // Stored chunks (sample.nwb's gzip+shuffle series) read through HDF5 instead.
        let c = tempfile::tempdir().unwrap();
        let through_hdf5 = ExecOptions {
            read_stored_chunks: false,
            ..ExecOptions::default()
        };
        convert_with(&input, c.path(), Options::default(), through_hdf5);
        let (sa, sb) = (snapshot_dir(a.path()), snapshot_dir(b.path()));
        assert_eq!(
            sa.keys().collect::<Vec<_>>(),
            sb.keys().collect::<Vec<_>>(),
            "{name}: names"
        );
        assert!(sa == sb, "{name}: contents differ");
        assert!(
            snapshot_dir(c.path()) == sa,
            "{name}: read through HDF5 differs"
        );
    }
}

#[test]
fn series_filter_and_processing() {
    let dir = tempfile::tempdir().unwrap();
    let only_b = Options {
        series: vec!["ElectricalSeriesB".to_owned()],
        ..Options::default()
    };
    convert_with(
        &testdata().join("two_series_subset.nwb"),
        dir.path(),
        only_b,
        ExecOptions::default(),
    );
    let scan = scan_output_dir(dir.path()).unwrap();
    // The filtered run numbers channels from 0.
    assert_eq!(
        scan.channels.iter().map(|c| c.channel).collect::<Vec<_>>(),
        vec![0, 1]
    );
    assert_eq!(scan.channels[0].metadata.as_ref().unwrap().rate, 500.0);

    let dir = tempfile::tempdir().unwrap();
    let processing = Options {
        include_processing: true,
        ..Options::default()
    };
    convert_with(
        &testdata().join("lfp_processing.nwb"),
        dir.path(),
        processing,
        ExecOptions::default(),
    );
    let expected: Value = serde_json::from_str(
        &fs::read_to_string(testdata().join("expected/lfp_processing.json")).unwrap(),
    )
    .unwrap();
    let channels = |key: &str| -> u64 {
        expected[key]
            .as_array()
            .map(|a| a.iter().map(|s| s["num_channels"].as_u64().unwrap()).sum())
            .unwrap_or(0)
    };
    let scan = scan_output_dir(dir.path()).unwrap();
    assert_eq!(
        scan.channels.len() as u64,
        channels("series") + channels("other_series")
    );
}
