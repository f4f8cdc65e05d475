//! The binary's outputs: container mode writes what `convert` writes, and `inspect`'s reports.
//! (The conversion itself is tested through the library, in `crates/ts-convert/tests`.)

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde_json::Value;
use ts_chunk_format::read_chunk;

/// Small chunks (0.0005 MiB = 65 samples) so every fixture is cut into several.
const CHUNK_MB: &str = "0.0005";

mod common;
use common::{processor, testdata};

fn convert(input: &Path, out: &Path) {
    let output = processor("warn")
        .arg("convert")
        .arg(input)
        .arg("-o")
        .arg(out)
        .args(["--chunk-size-mb", CHUNK_MB])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}: {}",
        input.display(),
        String::from_utf8_lossy(&output.stderr)
    );
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
fn container_mode_matches_the_cli() {
    let input = tempfile::tempdir().unwrap();
    fs::copy(
        testdata().join("sample.nwb"),
        input.path().join("Recording.NWB"),
    )
    .unwrap();
    let container_out = tempfile::tempdir().unwrap();
    // An earlier attempt's leftovers are replaced in container mode.
    fs::write(
        container_out.path().join("channel-00099_1_2.bin.gz"),
        b"stale",
    )
    .unwrap();
    let status = processor("warn")
        .env("INPUT_DIR", input.path())
        .env("OUTPUT_DIR", container_out.path())
        .env("CHUNK_SIZE_MB", CHUNK_MB)
        .env("ENVIRONMENT", "local")
        .status()
        .unwrap();
    assert!(status.success());
    let cli_out = tempfile::tempdir().unwrap();
    convert(&testdata().join("sample.nwb"), cli_out.path());
    assert!(snapshot_dir(container_out.path()) == snapshot_dir(cli_out.path()));
}

#[test]
fn inspect_json_describes_the_sample() {
    let output = processor("warn")
        .current_dir(testdata())
        .args(["inspect", "--json", "sample.nwb"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    insta::assert_json_snapshot!("inspect_sample", report);
}

#[test]
fn inspect_text_of_the_sample() {
    let output = processor("warn")
        .current_dir(testdata())
        .args(["inspect", "sample.nwb"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    insta::assert_snapshot!(
        "inspect_sample_text",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn container_mode_takes_paths_verbatim() {
    use std::os::unix::ffi::OsStrExt;
    let root = tempfile::tempdir().unwrap();
    let input = root.path().join("in");
    // Output paths need not be UTF-8.
    let out = root.path().join(std::ffi::OsStr::from_bytes(b"out-\xfe"));
    fs::create_dir(&input).unwrap();
    fs::copy(testdata().join("sample.nwb"), input.join("s.nwb")).unwrap();
    let output = processor("warn")
        .env("INPUT_DIR", &input)
        .env("OUTPUT_DIR", &out)
        .env("CHUNK_SIZE_MB", "1e15") // far beyond the data: one chunk per channel
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let cli_out = tempfile::tempdir().unwrap();
    let status = processor("warn")
        .arg("convert")
        .arg(testdata().join("sample.nwb"))
        .arg("-o")
        .arg(cli_out.path())
        .args(["--chunk-size-mb", "1e15"])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(snapshot_dir(&out) == snapshot_dir(cli_out.path()));

    // An input path that is not UTF-8 is found, then refused with the reason (the HDF5
    // bindings take UTF-8 paths only), not reported as missing.
    let odd = root.path().join(std::ffi::OsStr::from_bytes(b"in-\xff"));
    fs::rename(&input, &odd).unwrap();
    let output = processor("warn")
        .env("INPUT_DIR", &odd)
        .env("OUTPUT_DIR", root.path().join("out2"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not valid UTF-8"), "{stderr}");
}
