//! Measures import throughput against the in-process fake under a simulated network
//! ([`NetworkModel`]) at several upload concurrencies, and compares it with the model's ceiling.
//! Numbers include the fake's own work (it shares the CPU).
//!
//! ```text
//! cargo run -p pennsieve-fake --release --example import_throughput -- \
//!     [FILES] [SAMPLES_PER_CHUNK] [LATENCY_MS] [MB_PER_S] [CONNECT_MS] [CONCURRENCIES]
//! ```
//!
//! Defaults: 2000 files of 1024 samples, no latency, unlimited bandwidth (`0`), free connections,
//! concurrencies `4,16`. `CONNECT_MS` defaults to 3 × `LATENCY_MS` (handshake plus TLS).
//! `SAMPLES_PER_CHUNK` 131072 is the default chunk of the converter (1 MiB raw).
//! Example, a 20 ms / 50 MB/s WAN: `-- 2000 131072 20 50 60 4,16,32,64`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pennsieve_client::{Client, ImportOptions, import_directory};
use pennsieve_fake::{FakeConfig, FakePennsieve, FakeRoute, NetworkModel, ids};
use ts_chunk_format::{ChannelMetadata, ChunkName, ChunkWriter};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let files: usize = args.next().map_or(Ok(2000), |a| a.parse())?;
    let samples: usize = args.next().map_or(Ok(1024), |a| a.parse())?;
    let latency_ms: u64 = args.next().map_or(Ok(0), |a| a.parse())?;
    let mb_per_s: f64 = args.next().map_or(Ok(0.0), |a| a.parse())?;
    let connect_ms: u64 = args.next().map_or(Ok(3 * latency_ms), |a| a.parse())?;
    let concurrencies: Vec<usize> = args
        .next()
        .unwrap_or_else(|| "4,16".into())
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let network = NetworkModel {
        reply_latency: Duration::from_millis(latency_ms),
        put_bytes_per_second: (mb_per_s > 0.0).then_some((mb_per_s * 1e6) as u64),
        connect_cost: Duration::from_millis(connect_ms),
    };

    let dir = tempfile::tempdir()?;
    let channels = 10usize;
    let per_channel = files.div_ceil(channels);
    // gzip level 0 (stored), the converter's default: files are the raw size plus a few bytes.
    let mut writer = ChunkWriter::new(0);
    let data: Vec<f64> = (0..samples)
        .map(|i| (i as f64 * 0.37).sin() * 100.0)
        .collect();
    let mut total_bytes = 0u64;
    for channel in 0..channels as u32 {
        let base = 1_600_000_000_000_000i64;
        let mut start = base;
        for _ in 0..per_channel {
            let end = start + (samples as i64 - 1) * 1000;
            total_bytes += writer
                .write(dir.path(), &ChunkName::local(channel, start, end), &data)?
                .bytes;
            start = end + 1000;
        }
        ChannelMetadata::continuous(format!("E{channel}"), "g", base, start - 1000, 1000.0)
            .write_atomic(dir.path(), channel)?;
    }
    let total = per_channel * channels;
    let mean_bytes = total_bytes / total as u64;
    println!(
        "{total} files of {samples} samples ({:.0} kB each, {:.1} MB in all); network: {} ms per reply, {}, connect {} ms",
        mean_bytes as f64 / 1e3,
        total_bytes as f64 / 1e6,
        latency_ms,
        match network.put_bytes_per_second {
            Some(rate) => format!("{:.0} MB/s per connection", rate as f64 / 1e6),
            None => "unlimited bandwidth".into(),
        },
        connect_ms,
    );
    println!(
        "{:>11} {:>8} {:>8} {:>7} {:>11} {:>9} {:>9} {:>8} {:>10} {:>8}",
        "concurrency",
        "seconds",
        "files/s",
        "MB/s",
        "connections",
        "requests",
        "ceiling",
        "% ceil",
        "uploads/s",
        "% ceil"
    );
    for concurrency in concurrencies {
        let fake = FakePennsieve::start(FakeConfig {
            network,
            ..FakeConfig::default()
        })
        .await?;
        let mut config = fake.client_config();
        config.upload_concurrency = concurrency;
        let client = Client::new(config, fake.session_credentials())?;
        // When the first and the last upload finished: the upload phase, without the calls
        // before it (run, package, channels, manifest) that the whole import includes.
        let finished: Arc<Mutex<Vec<Instant>>> = Arc::default();
        let mut options = ImportOptions::new(ids::RUN);
        options.on_progress = Some({
            let finished = finished.clone();
            Arc::new(move |_files, _bytes| {
                if let Ok(mut f) = finished.lock() {
                    f.push(Instant::now());
                }
            })
        });
        let started = Instant::now();
        let report = import_directory(&client, dir.path(), &options).await?;
        let seconds = started.elapsed().as_secs_f64();
        let state = fake.state();
        let files_per_second = report.files as f64 / seconds;
        let phase = {
            let f = finished.lock().map_err(|_| "poisoned")?;
            match (f.first(), f.last()) {
                (Some(a), Some(b)) if f.len() > 1 => (f.len() - 1) as f64 / (*b - *a).as_secs_f64(),
                _ => f64::NAN,
            }
        };
        let ceiling = network.upload_ceiling(concurrency, mean_bytes);
        let percent =
            |rate: f64| ceiling.map_or("-".into(), |c| format!("{:.0} %", 100.0 * rate / c));
        println!(
            "{concurrency:>11} {seconds:>8.2} {files_per_second:>8.1} {:>7.1} {:>11} {:>9} {:>9} {:>8} {phase:>10.1} {:>8}",
            report.bytes as f64 / 1e6 / seconds,
            state.connections_opened,
            state.count(FakeRoute::Presign) + state.count(FakeRoute::Upload),
            ceiling.map_or("-".into(), |c| format!("{c:.1}")),
            percent(files_per_second),
            percent(phase),
        );
    }
    println!(
        "ceiling = concurrency / (latency + mean file / bandwidth): one PUT reply per file with its \
         URL presigned ahead, connections reused. files/s: the whole import (run lookup, channels, \
         manifest, uploads); uploads/s: from the first finished upload to the last"
    );
    Ok(())
}
