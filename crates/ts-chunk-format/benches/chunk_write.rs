//! Chunk write throughput: encode + gzip (levels 0 and 1) + atomic write of 1 MiB chunks
//! (131 072 float64 samples), against a plain `std::fs::write` of the same byte count.
//!
//! `cargo bench -p ts-chunk-format --bench chunk_write -- --warm-up-time 1 --measurement-time 3`

use std::io::Write;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flate2::Compression;
use flate2::write::GzEncoder;
use ts_chunk_format::{ChunkName, ChunkWriter};

const SAMPLES: usize = 131_072;
const BYTES: u64 = SAMPLES as u64 * 8;

fn chunk_write(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary directory");
    // Signal-like values (a sine plus slow drift), so level 1 has realistic work to do.
    let samples: Vec<f64> = (0..SAMPLES)
        .map(|i| (i as f64 * 0.013).sin() * 250.0 + i as f64 * 1e-4)
        .collect();
    let name = ChunkName::local(0, 1_609_459_200_000_000, 1_609_459_204_369_033);

    let mut group = c.benchmark_group("chunk_write_1MiB");
    group.throughput(Throughput::Bytes(BYTES));

    let baseline_bytes = vec![0x5Au8; BYTES as usize];
    let baseline_path = dir.path().join("baseline.bin");
    group.bench_function("std_fs_write", |b| {
        b.iter(|| std::fs::write(&baseline_path, &baseline_bytes).expect("write"))
    });

    for level in [0, 1] {
        let mut writer = ChunkWriter::new(level);
        group.bench_function(format!("level_{level}"), |b| {
            b.iter(|| {
                writer
                    .write(dir.path(), &name, &samples)
                    .expect("write chunk")
            })
        });
    }

    // Where the time goes: the steps of a level-0 write, in memory.
    let mut raw = Vec::with_capacity(BYTES as usize);
    group.bench_function("parts/encode_only", |b| {
        b.iter(|| {
            raw.clear();
            ts_chunk_format::encode_samples(&samples, &mut raw);
        })
    });
    let mut gz = Vec::with_capacity(BYTES as usize + 1024);
    group.bench_function("parts/gzip_level_0_in_memory", |b| {
        b.iter(|| {
            gz.clear();
            let mut encoder = GzEncoder::new(&mut gz, Compression::new(0));
            encoder.write_all(&raw).expect("compress");
            encoder.finish().expect("compress");
        })
    });
    let rename_from = dir.path().join("rename-from.bin");
    let rename_to = dir.path().join("rename-to.bin");
    group.bench_function("parts/fs_write_then_rename", |b| {
        b.iter(|| {
            std::fs::write(&rename_from, &baseline_bytes).expect("write");
            std::fs::rename(&rename_from, &rename_to).expect("rename");
        })
    });

    let writer = ChunkWriter::new(0);
    group.bench_function("level_0_streaming_8_appends", |b| {
        b.iter(|| {
            let mut file = writer.begin(dir.path(), &name).expect("begin");
            for piece in samples.chunks(SAMPLES / 8) {
                file.append(piece).expect("append");
            }
            file.finish().expect("finish")
        })
    });
    group.finish();
}

criterion_group!(benches, chunk_write);
criterion_main!(benches);
