//! Output directory scanning.

use std::path::Path;

use ts_chunk_format::{ChannelMetadata, ChunkName, ChunkWriter, ScanProblem, scan_output_dir};

const UUID: &str = "0b1d3c55-5a2e-4f5e-9c1a-7d2b8e4f6a10";

fn chunk(dir: &Path, channel: u32, start: i64, end: i64) {
    ChunkWriter::new(0)
        .write(dir, &ChunkName::local(channel, start, end), &[1.0, 2.0])
        .unwrap();
}

fn metadata(dir: &Path, channel: u32) {
    ChannelMetadata::continuous(format!("CH{channel}"), "g", 0, 1_000, 1000.0)
        .write_atomic(dir, channel)
        .unwrap();
}

#[test]
fn a_clean_directory_has_no_problems() {
    let dir = tempfile::tempdir().unwrap();
    for channel in [2, 0, 1] {
        metadata(dir.path(), channel);
        // Written out of order; the scan sorts by start.
        chunk(dir.path(), channel, 2_000, 2_999);
        chunk(dir.path(), channel, -1_000, 999);
        chunk(dir.path(), channel, 1_000, 1_999);
    }
    std::fs::write(dir.path().join("notes.txt"), "unrelated").unwrap();
    std::fs::create_dir(dir.path().join("channel-00009_0_1.bin.gz")).unwrap(); // a directory: ignored

    let scan = scan_output_dir(dir.path()).unwrap();
    assert_eq!(scan.problems, []);
    let indices: Vec<u32> = scan.channels.iter().map(|c| c.channel).collect();
    assert_eq!(indices, [0, 1, 2]);
    for channel in &scan.channels {
        assert_eq!(
            channel.metadata.as_ref().unwrap().name,
            format!("CH{}", channel.channel)
        );
        assert_eq!(
            channel.metadata_path.as_deref(),
            Some(
                dir.path()
                    .join(format!("channel-{:05}.metadata.json", channel.channel))
                    .as_path()
            )
        );
        let starts: Vec<i64> = channel.chunks.iter().map(|c| c.name.start_us).collect();
        assert_eq!(starts, [-1_000, 1_000, 2_000]);
        for chunk in &channel.chunks {
            assert_eq!(chunk.path, dir.path().join(chunk.name.to_string()));
            assert_eq!(
                chunk.size_bytes,
                std::fs::metadata(&chunk.path).unwrap().len()
            );
        }
    }
}

#[test]
fn every_problem_kind_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 0: fine.
    metadata(d, 0);
    chunk(d, 0, 0, 999);
    // 1: metadata without chunks.
    metadata(d, 1);
    // 2: orphan chunks.
    chunk(d, 2, 1_000, 1_999);
    chunk(d, 2, 0, 999);
    // 3: overlaps: touching end/start, and a chunk nested in a long one.
    metadata(d, 3);
    chunk(d, 3, 0, 10_000);
    chunk(d, 3, 2_000, 2_999);
    chunk(d, 3, 10_000, 10_500);
    chunk(d, 3, 10_501, 11_000);
    // 4: invalid metadata JSON (the chunk is still listed).
    std::fs::write(d.join("channel-00004.metadata.json"), r#"{"name":"x"}"#).unwrap();
    chunk(d, 4, 0, 1);
    // 5: end before start.
    metadata(d, 5);
    chunk(d, 5, 10, 5);
    // Names that look like ours but are not valid here.
    std::fs::write(d.join("channel-00006_0.bin.gz"), b"").unwrap();
    std::fs::write(d.join("channel-00006.metadata.json.bak"), b"").unwrap();
    std::fs::write(d.join(format!("N:channel:{UUID}_0_1.bin.gz")), b"").unwrap();
    // A leftover temporary file.
    std::fs::write(d.join(".channel-00000_0_999.bin.gz.123.0.tmp"), b"").unwrap();

    let scan = scan_output_dir(d).unwrap();

    let indices: Vec<u32> = scan.channels.iter().map(|c| c.channel).collect();
    assert_eq!(indices, [0, 1, 2, 3, 4, 5]);
    let channel4 = &scan.channels[4];
    assert!(channel4.metadata_path.is_some() && channel4.metadata.is_none());
    assert_eq!(channel4.chunks.len(), 1);

    let kinds: Vec<&str> = scan
        .problems
        .iter()
        .map(|p| match p {
            ScanProblem::OrphanChunks { .. } => "orphan",
            ScanProblem::MetadataWithoutChunks { .. } => "no-chunks",
            ScanProblem::OverlappingChunks { .. } => "overlap",
            ScanProblem::ReversedTimeRange { .. } => "reversed",
            ScanProblem::InvalidMetadata { .. } => "invalid-metadata",
            ScanProblem::UnrecognisedName { .. } => "unrecognised",
            ScanProblem::LeftoverTempFile { .. } => "temp",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            // File name order: `.` < `N` < `c`.
            "temp",
            "unrecognised",
            "invalid-metadata",
            "reversed",
            "unrecognised",
            "unrecognised",
            "no-chunks",
            "orphan",
            "overlap",
            "overlap",
        ]
    );
    assert!(matches!(
        &scan.problems[7],
        ScanProblem::OrphanChunks { channel: 2, count: 2, first } if first.ends_with("channel-00002_0_999.bin.gz")
    ));

    let shown: String = scan
        .problems
        .iter()
        .map(|p| format!("{p}\n"))
        .collect::<String>()
        .replace(&d.display().to_string(), "<dir>");
    insta::assert_snapshot!(shown);
}

#[test]
fn a_missing_directory_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let error = scan_output_dir(&missing).unwrap_err();
    assert!(
        error.to_string().contains(&missing.display().to_string()),
        "{error}"
    );
}
