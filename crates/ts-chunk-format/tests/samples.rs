//! Sample encoding and chunk files.

use std::io::Write;
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;
use proptest::prelude::*;
use ts_chunk_format::{ChunkName, ChunkWriter, Error, decode_samples, encode_samples, read_chunk};

const LEVELS: [u32; 4] = [0, 1, 6, 9];

/// An error and its sources joined by `: `, as `anyhow`'s `{:#}` shows them.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

fn bits(samples: &[f64]) -> Vec<u64> {
    samples.iter().map(|s| s.to_bits()).collect()
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// Values the spec says pass through unchanged.
fn special_values() -> Vec<f64> {
    vec![
        0.0,
        -0.0,
        1.0,
        -1.5,
        f64::NAN,
        -f64::NAN,
        f64::from_bits(0x7ff0_0000_0000_0001), // signalling NaN payload
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MIN_POSITIVE / 2.0, // subnormal
        -f64::from_bits(1),      // smallest negative subnormal
        f64::MAX,
        f64::MIN,
        f64::EPSILON,
    ]
}

#[test]
fn encoding_is_big_endian_ieee754() {
    let mut out = vec![0xAA]; // appends, keeps what was there
    encode_samples(&[1.0, -0.0, -2.5], &mut out);
    assert_eq!(
        out,
        [
            0xAA, //
            0x3F, 0xF0, 0, 0, 0, 0, 0, 0, // 1.0
            0x80, 0, 0, 0, 0, 0, 0, 0, // -0.0
            0xC0, 0x04, 0, 0, 0, 0, 0, 0, // -2.5
        ]
    );
    assert_eq!(
        bits(&decode_samples(&out[1..]).unwrap()),
        bits(&[1.0, -0.0, -2.5])
    );
    assert!(decode_samples(&[]).unwrap().is_empty());
}

#[test]
fn decoding_rejects_partial_words() {
    let error = decode_samples(&[0; 12]).unwrap_err();
    assert!(matches!(error, Error::SampleBytesLength { len: 12 }));
    insta::assert_snapshot!(error.to_string());
}

#[test]
fn special_values_survive_every_level() {
    let dir = tempfile::tempdir().unwrap();
    let values = special_values();
    for level in LEVELS {
        let name = ChunkName::local(level, -10, 10);
        let path = ChunkWriter::new(level)
            .write(dir.path(), &name, &values)
            .unwrap()
            .path;
        assert_eq!(path, dir.path().join(name.to_string()));
        assert_eq!(
            bits(&read_chunk(&path).unwrap()),
            bits(&values),
            "level {level}"
        );
    }
    // Empty chunks are valid gzip files with an empty payload.
    let path = ChunkWriter::default()
        .write(dir.path(), &ChunkName::local(99, 0, 0), &[])
        .unwrap()
        .path;
    assert!(read_chunk(&path).unwrap().is_empty());
}

#[test]
fn level_zero_stores_and_level_one_compresses() {
    let dir = tempfile::tempdir().unwrap();
    let zeros = vec![0.0; 10_000]; // 80 000 highly compressible bytes
    let stored = ChunkWriter::new(0)
        .write(dir.path(), &ChunkName::local(0, 0, 1), &zeros)
        .unwrap();
    let compressed = ChunkWriter::new(1)
        .write(dir.path(), &ChunkName::local(1, 0, 1), &zeros)
        .unwrap();
    let stored_len = std::fs::metadata(&stored.path).unwrap().len();
    let compressed_len = std::fs::metadata(&compressed.path).unwrap().len();
    // The writer reports what it wrote.
    assert_eq!(stored.bytes, stored_len);
    assert_eq!(compressed.bytes, compressed_len);
    // Stored blocks: payload plus gzip header/trailer and 5 bytes per 64 KiB block.
    assert!((80_000..80_100).contains(&stored_len), "{stored_len}");
    assert!(compressed_len < 1_000, "{compressed_len}");
    assert_eq!(ChunkWriter::new(0).compression_level(), 0);
    assert_eq!(ChunkWriter::default().compression_level(), 0);
}

#[test]
fn compression_levels_above_nine() {
    assert!(matches!(
        ChunkWriter::try_new(10),
        Err(Error::InvalidCompressionLevel { level: 10 })
    ));
    assert_eq!(ChunkWriter::try_new(9).unwrap().compression_level(), 9);
    assert_eq!(ChunkWriter::new(42).compression_level(), 9);
}

#[test]
fn rewriting_a_chunk_replaces_it_and_leaves_no_temporaries() {
    let dir = tempfile::tempdir().unwrap();
    let name = ChunkName::local(0, 5, 6);
    let mut writer = ChunkWriter::new(0);
    writer.write(dir.path(), &name, &[1.0, 2.0, 3.0]).unwrap();
    let path = writer.write(dir.path(), &name, &[4.0]).unwrap().path;
    assert_eq!(read_chunk(&path).unwrap(), [4.0]);
    assert_eq!(file_names(dir.path()), [name.to_string()]);
}

#[test]
fn streaming_equals_one_shot() {
    let dir = tempfile::tempdir().unwrap();
    let samples: Vec<f64> = (0..50_000).map(|i| (i as f64 * 0.37).sin() * 1e3).collect();
    for level in [0, 1] {
        let mut writer = ChunkWriter::new(level);
        let one_shot = writer
            .write(dir.path(), &ChunkName::local(0, 0, level.into()), &samples)
            .unwrap()
            .path;
        let mut file = writer
            .begin(dir.path(), &ChunkName::local(1, 0, level.into()))
            .unwrap();
        // Uneven pieces, including empty ones and ones larger than the internal step.
        let mut rest = &samples[..];
        for size in [0, 1, 7, 8192, 8193, 0, 20_000].into_iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (piece, tail) = rest.split_at(size.min(rest.len()));
            file.append(piece).unwrap();
            rest = tail;
        }
        let streamed = file.finish().unwrap();
        assert_eq!(
            streamed.bytes,
            std::fs::metadata(&streamed.path).unwrap().len()
        );
        let streamed = streamed.path;
        assert_eq!(
            streamed,
            dir.path().join(format!("channel-00001_0_{level}.bin.gz"))
        );
        let decoded = |p: &Path| {
            let mut out = Vec::new();
            encode_samples(&read_chunk(p).unwrap(), &mut out);
            out
        };
        assert_eq!(decoded(&streamed), decoded(&one_shot));
    }
}

#[test]
fn unfinished_chunk_files_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let writer = ChunkWriter::new(0);
    let mut file = writer
        .begin(dir.path(), &ChunkName::local(0, 0, 1))
        .unwrap();
    file.append(&[1.0; 100_000]).unwrap();
    assert!(file.temp_path().exists());
    let temp_name = file
        .temp_path()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    // `.{final_name}.{pid}.{counter}.tmp`
    let prefix = format!(".channel-00000_0_1.bin.gz.{}.", std::process::id());
    assert!(
        temp_name.starts_with(&prefix) && temp_name.ends_with(".tmp"),
        "{temp_name}"
    );
    assert_eq!(file_names(dir.path()), [temp_name]);
    drop(file);
    assert!(file_names(dir.path()).is_empty());
}

#[test]
fn multi_member_gzip_is_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = Vec::new();
    for part in [[1.0, 2.0], [3.0, 4.0]] {
        let mut raw = Vec::new();
        encode_samples(&part, &mut raw);
        let mut encoder = GzEncoder::new(Vec::new(), Compression::new(1));
        encoder.write_all(&raw).unwrap();
        bytes.extend(encoder.finish().unwrap());
    }
    let path = dir.path().join("two-members.bin.gz");
    std::fs::write(&path, bytes).unwrap();
    assert_eq!(read_chunk(&path).unwrap(), [1.0, 2.0, 3.0, 4.0]);
}

#[test]
fn reading_bad_chunks_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let partial = dir.path().join("partial.bin.gz");
    let mut encoder = GzEncoder::new(Vec::new(), Compression::new(0));
    encoder.write_all(&[0; 12]).unwrap();
    std::fs::write(&partial, encoder.finish().unwrap()).unwrap();
    let error = read_chunk(&partial).unwrap_err();
    assert!(matches!(&error, Error::ChunkLength { len: 12, path } if path == &partial));

    let not_gzip = dir.path().join("plain.bin.gz");
    std::fs::write(&not_gzip, [0u8; 16]).unwrap();
    let error2 = read_chunk(&not_gzip).unwrap_err();
    assert!(matches!(error2, Error::Io { .. }));

    let missing = dir.path().join("missing.bin.gz");
    let error3 = read_chunk(&missing).unwrap_err();

    // Messages do not repeat their source; the chain shows the OS error exactly once.
    let shown = format!(
        "{}\n{}\n{}\n",
        chain(&error),
        chain(&error2),
        chain(&error3)
    )
    .replace(&dir.path().display().to_string(), "<dir>");
    insta::assert_snapshot!(shown);
}

#[test]
fn level_zero_is_readable_by_gzip_tool() {
    let dir = tempfile::tempdir().unwrap();
    let values = special_values();
    let path = ChunkWriter::new(0)
        .write(dir.path(), &ChunkName::local(0, 0, 1), &values)
        .unwrap()
        .path;
    let output = match std::process::Command::new("gzip")
        .arg("-dc")
        .arg(&path)
        .output()
    {
        Ok(output) => output,
        Err(error) => {
            eprintln!("skipping: cannot run gzip: {error}");
            return;
        }
    };
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut expected = Vec::new();
    encode_samples(&values, &mut expected);
    assert_eq!(output.stdout, expected);
}

fn any_bits_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<u64>().prop_map(f64::from_bits),
        prop::sample::select(special_values()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn samples_round_trip_through_files(
        samples in prop::collection::vec(any_bits_f64(), 0..2000),
        level in prop::sample::select(LEVELS.to_vec()),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = ChunkWriter::new(level)
            .write(dir.path(), &ChunkName::local(0, -1, 1), &samples)
            .unwrap()
            .path;
        prop_assert_eq!(bits(&read_chunk(&path).unwrap()), bits(&samples));
    }

    #[test]
    fn samples_round_trip_in_memory(samples in prop::collection::vec(any_bits_f64(), 0..500)) {
        let mut bytes = Vec::new();
        encode_samples(&samples, &mut bytes);
        prop_assert_eq!(bytes.len(), samples.len() * 8);
        prop_assert_eq!(bits(&decode_samples(&bytes).unwrap()), bits(&samples));
    }
}

#[test]
fn debug_output_does_not_dump_buffers() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = ChunkWriter::new(1);
    writer
        .write(dir.path(), &ChunkName::local(0, 0, 1), &[0.5; 1000])
        .unwrap();
    let shown = format!("{writer:?}");
    assert_eq!(shown, "ChunkWriter { compression_level: 1, .. }");
    let file = writer
        .begin(dir.path(), &ChunkName::local(0, 0, 1))
        .unwrap();
    assert!(format!("{file:?}").starts_with("ChunkFile { temp_path: "));
}

/// Level 0 is written as stored blocks without a deflate stream: whole or streamed in any
/// pieces, it must decode (CRC and length checked by the decoder) to exactly the encoded samples.
mod stored_blocks {
    use super::*;

    proptest! {
        #[test]
        fn whole_and_streamed_level_zero_decode_to_the_samples(
            raw in proptest::collection::vec(any::<u64>(), 0..20_000),
            cuts in proptest::collection::vec(0usize..20_000, 0..6),
        ) {
            let samples: Vec<f64> = raw.iter().map(|&b| f64::from_bits(b)).collect();
            let dir = tempfile::tempdir().unwrap();
            let whole = ChunkWriter::new(0)
                .write(dir.path(), &ChunkName::local(0, 0, 1), &samples)
                .unwrap();
            let mut file = ChunkWriter::new(0)
                .begin(dir.path(), &ChunkName::local(1, 0, 1))
                .unwrap();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(samples.len())).collect();
            cuts.sort();
            let mut at = 0;
            for cut in cuts.into_iter().chain([samples.len()]) {
                file.append(&samples[at..cut]).unwrap();
                at = cut;
            }
            let streamed = file.finish().unwrap();
            for written in [whole, streamed] {
                prop_assert_eq!(written.bytes, std::fs::metadata(&written.path).unwrap().len());
                prop_assert_eq!(bits(&read_chunk(&written.path).unwrap()), bits(&samples));
            }
        }
    }

    #[test]
    fn system_gzip_accepts_level_zero_files() {
        // Several 64 KiB blocks and a streamed file: what gzip itself (and Python's gzip module,
        // the platform's reader) sees must be a valid member with a matching CRC and length.
        let Ok(status) = std::process::Command::new("gzip").arg("--version").output() else {
            eprintln!("no gzip binary; skipped");
            return;
        };
        assert!(status.status.success());
        let dir = tempfile::tempdir().unwrap();
        let samples: Vec<f64> = (0..100_000).map(|i| (i as f64).sin() * 1e3).collect();
        let whole = ChunkWriter::new(0)
            .write(dir.path(), &ChunkName::local(0, 0, 1), &samples)
            .unwrap();
        let mut file = ChunkWriter::new(0)
            .begin(dir.path(), &ChunkName::local(1, 0, 1))
            .unwrap();
        file.append(&samples[..33_333]).unwrap();
        file.append(&samples[33_333..]).unwrap();
        let streamed = file.finish().unwrap();
        let mut expected = Vec::new();
        encode_samples(&samples, &mut expected);
        for written in [whole, streamed] {
            let out = std::process::Command::new("gzip")
                .arg("-dc")
                .arg(&written.path)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(out.stdout == expected, "{}", written.path.display());
        }
    }
}
