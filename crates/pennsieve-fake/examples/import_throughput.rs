//! Measures import throughput (files/s) against the in-process fake at several upload
//! concurrencies. Numbers include the fake's own work (it shares the CPU).
//!
//! `cargo run -p pennsieve-fake --release --example import_throughput -- [FILES] [SAMPLES_PER_CHUNK] [DELAY_MS]`
//!
//! `DELAY_MS` adds a per-response delay to the fake to mimic network latency.

use std::time::{Duration, Instant};

use pennsieve_client::{Client, ImportOptions, import_directory};
use pennsieve_fake::{FakeConfig, FakePennsieve, ids};
use ts_chunk_format::{ChannelMetadata, ChunkName, ChunkWriter};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let files: usize = args.next().map_or(Ok(2000), |a| a.parse())?;
    let samples: usize = args.next().map_or(Ok(1024), |a| a.parse())?;
    let delay_ms: u64 = args.next().map_or(Ok(0), |a| a.parse())?;

    let dir = tempfile::tempdir()?;
    let channels = 10usize;
    let per_channel = files.div_ceil(channels);
    let mut writer = ChunkWriter::new(0);
    let data: Vec<f64> = (0..samples).map(|i| i as f64).collect();
    for channel in 0..channels as u32 {
        let base = 1_600_000_000_000_000i64;
        let mut start = base;
        for _ in 0..per_channel {
            let end = start + (samples as i64 - 1) * 1000;
            writer.write(dir.path(), &ChunkName::local(channel, start, end), &data)?;
            start = end + 1000;
        }
        ChannelMetadata::continuous(format!("E{channel}"), "g", base, start - 1000, 1000.0)
            .write_atomic(dir.path(), channel)?;
    }
    let total = per_channel * channels;
    println!("{total} files of {samples} samples, fake delay {delay_ms} ms");
    for concurrency in [4, 16] {
        let fake = FakePennsieve::start(FakeConfig {
            delay: Duration::from_millis(delay_ms),
            ..FakeConfig::default()
        })
        .await?;
        let mut config = fake.client_config();
        config.upload_concurrency = concurrency;
        let client = Client::new(config, fake.session_credentials())?;
        let started = Instant::now();
        let report = import_directory(&client, dir.path(), &ImportOptions::new(ids::RUN)).await?;
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "concurrency {concurrency:>2}: {} files, {:.1} MB in {seconds:.2} s = {:.0} files/s",
            report.files,
            report.bytes as f64 / 1e6,
            report.files as f64 / seconds
        );
    }
    Ok(())
}
