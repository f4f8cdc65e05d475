//! Block-read throughput over two synthetic NWB files of 64 MiB raw data each:
//! (a) 2 channels of float64 stored contiguously (the plain pynwb shape) and
//! (b) 64 channels of int16 in chunks of 40000 x 64 with shuffle + gzip 4 (the neuroconv shape).
//! For each: `read_raw` of `preferred_block_len(8 MiB)` blocks, `read_raw` plus
//! `scale_channel_into` for every channel, and as a baseline plain hdf5 `read_slice_2d` of the
//! same blocks without nwb-reader. Throughput counts bytes of raw data. The files are written once
//! into `<target dir>/nwb-reader-bench`.

use std::path::{Path, PathBuf};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hdf5::H5Type;
use ndarray::{Array2, s};
use nwb_reader::{DiscoverOptions, NwbFile};

#[path = "../tests/common/mod.rs"]
mod common;
use common::{Timing, write_nwb};

const RAW_BYTES: usize = 64 << 20;
const BLOCK_BYTES: usize = 8 << 20;

/// A series of `channels` channels and 64 MiB raw data; `chunk_rows` turns on chunking.
fn write_synthetic<T: H5Type>(
    path: &Path,
    channels: usize,
    value: impl Fn(usize, usize) -> T,
    chunk_rows: Option<usize>,
) {
    let samples = RAW_BYTES / (channels * std::mem::size_of::<T>());
    let data = Array2::from_shape_fn((samples, channels), |(i, c)| value(i, c));
    let timing = Timing {
        rate: Some((30_000.0, 0.0)),
        timestamps: None,
    };
    write_nwb(path, &data, &timing, chunk_rows);
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

fn fixture(name: &str, write: impl FnOnce(&Path)) -> PathBuf {
    let dir = target_dir().join("nwb-reader-bench");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    if !path.exists() {
        let tmp = dir.join(format!("{name}.tmp"));
        write(&tmp);
        std::fs::rename(&tmp, &path).unwrap();
    }
    path
}

fn bench_file<T: H5Type>(c: &mut Criterion, label: &str, path: &Path) {
    let file = NwbFile::open(path).unwrap();
    let info = file
        .discover(&DiscoverOptions::default())
        .unwrap()
        .series
        .remove(0);
    let reader = file.open_series(&info).unwrap();
    let block = reader.preferred_block_len(BLOCK_BYTES);
    let n = info.num_samples;
    let ranges: Vec<(usize, usize)> = (0..n)
        .step_by(block as usize)
        .map(|a| (a as usize, (a + block).min(n) as usize))
        .collect();
    eprintln!(
        "{label}: {n} samples x {} channels, block {block} samples, {} blocks",
        info.num_channels,
        ranges.len()
    );

    let mut group = c.benchmark_group(label);
    group.sample_size(10);
    group.throughput(Throughput::Bytes(RAW_BYTES as u64));
    group.bench_function("read_raw", |b| {
        b.iter(|| {
            for r in reader.blocks(block) {
                std::hint::black_box(r.unwrap());
            }
        })
    });
    let mut uv = Vec::new();
    group.bench_function("read_raw+scale_all_channels", |b| {
        b.iter(|| {
            for r in reader.blocks(block) {
                let (_, raw) = r.unwrap();
                for k in 0..info.num_channels {
                    raw.scale_channel_into(k, &info.scaling, &mut uv);
                    std::hint::black_box(&uv);
                }
            }
        })
    });
    // Baseline: the hdf5 crate alone, default file access properties, the same blocks.
    let plain = hdf5::File::open(path).unwrap();
    let data = plain.dataset("acquisition/ElectricalSeries/data").unwrap();
    group.bench_function("plain_hdf5_read_slice_2d", |b| {
        b.iter(|| {
            for &(a, e) in &ranges {
                let block: Array2<T> = data.read_slice_2d(s![a..e, ..]).unwrap();
                std::hint::black_box(block);
            }
        })
    });
    group.finish();
}

fn block_reads(c: &mut Criterion) {
    let plain = fixture("f64_2ch_contiguous.nwb", |p| {
        write_synthetic::<f64>(
            p,
            2,
            |i, ch| (i as f64 * 1e-3).sin() * (ch + 1) as f64,
            None,
        )
    });
    let gzip = fixture("int16_64ch_chunked_gzip4_shuffle.nwb", |p| {
        write_synthetic::<i16>(
            p,
            64,
            |i, ch| ((i * 7 + ch * 131) % 2048) as i16 - 1024,
            Some(40_000),
        )
    });
    bench_file::<f64>(c, "f64_2ch_contiguous", &plain);
    bench_file::<i16>(c, "int16_64ch_chunked_gzip4_shuffle", &gzip);
}

criterion_group!(benches, block_reads);
criterion_main!(benches);
