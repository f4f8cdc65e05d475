//! `ts-processor preview`: converts `testdata/sample.nwb`, then draws it.

use std::path::Path;

mod common;
use common::{processor, testdata};

/// Width and height from a PNG's IHDR chunk, after checking the signature.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert!(
        bytes.len() > 5_000,
        "{}: only {} bytes",
        path.display(),
        bytes.len()
    );
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", path.display());
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

fn run(args: &[&str]) -> (bool, String, String) {
    let output = processor("warn").args(args).output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn preview_of_the_converted_sample() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let input = testdata().join("sample.nwb");
    let (ok, _, stderr) = run(&[
        "convert",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "convert failed: {stderr}");

    // Default: the first 8 channels (the 30 kHz AP band, 2 s), all of their time.
    let png = dir.path().join("preview.png");
    let (ok, stdout, stderr) = run(&[
        "preview",
        out.to_str().unwrap(),
        "-o",
        png.to_str().unwrap(),
    ]);
    assert!(ok, "preview failed: {stderr}");
    assert_eq!(png_size(&png), (1200, 800));
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout.starts_with(
            "drew 8 channels (0..8) from 0.000 s to 2.000 s after 2024-03-15 07:30:00.123 UTC into "
        ) && stdout.contains("preview.png (1200x800)"),
        "{stdout}"
    );

    // The LF channels, one second of them, another size.
    let lf = dir.path().join("lf.png");
    let (ok, stdout, stderr) = run(&[
        "preview",
        out.to_str().unwrap(),
        "-o",
        lf.to_str().unwrap(),
        "--channels",
        "8..12",
        "--from",
        "0.5",
        "--seconds",
        "1",
        "--width",
        "800",
        "--height",
        "400",
    ]);
    assert!(ok, "preview failed: {stderr}");
    assert_eq!(png_size(&lf), (800, 400));
    assert!(
        stdout.starts_with("drew 4 channels (8..12) from 0.500 s to 1.500 s after "),
        "{stdout}"
    );
}

#[test]
fn preview_errors_exit_non_zero_with_one_message() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("p.png");
    let (ok, stdout, stderr) = run(&[
        "preview",
        dir.path().to_str().unwrap(),
        "-o",
        png.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.starts_with("error: output directory ") && stderr.contains("holds no channels"),
        "{stderr}"
    );
    assert!(!png.exists());

    let (ok, _, stderr) = run(&[
        "preview",
        dir.path().to_str().unwrap(),
        "-o",
        png.to_str().unwrap(),
        "--channels",
        "5..2",
    ]);
    assert!(!ok);
    assert!(stderr.contains("invalid channel range"), "{stderr}");
}
