//! `cargo xtask e2e`: the binary in container mode, importer on, against the in-process fake
//! Pennsieve (api, api2, S3). Checks that what arrived is exactly what was written. It uses the
//! dev-profile binary that `cargo test` has just built, so CI compiles everything once.
//!
//! The binary logs in with an API key through a real Cognito protocol endpoint, the `moto`
//! emulator (`pennsieve_fake::MotoCognito`, a virtualenv under the target dir, started and killed
//! here); the fake serves moto's pools in `cognito-config` and accepts moto's tokens. Without
//! python3/PyPI it prints `SKIPPED: …` and uses the fake's own Cognito, unless
//! `COGNITO_EMULATOR_REQUIRED=1`, where that is an error.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use ndarray::{ArrayD, IxDyn};
use pennsieve_fake::{
    CreatedChannel, FakeConfig, FakePennsieve, FakeRoute, FakeState, MotoCognito, ids,
};
use ts_chunk_format::{ChannelRef, ChunkName, OutputScan, scan_output_dir};

use crate::fixtures::builder::{ElectrodesTable, Header, NwbBuilder, Samples, SeriesSpec, Time};
use crate::util::{build_processor, target_dir};

pub fn run_e2e() -> Result<()> {
    let work = target_dir().join("xtask").join("e2e");
    let (input, output) = (work.join("input"), work.join("output"));
    for dir in [&input, &output] {
        if dir.exists() {
            std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    write_recording(&input.join("recording.nwb"))?;
    let bin = build_processor(false)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let moto = start_moto()?;
    let config = FakeConfig {
        external_cognito: moto.as_ref().map(MotoCognito::external_cognito),
        ..FakeConfig::default()
    };
    let (key, secret) = match &moto {
        Some(moto) => (moto.api_key.clone(), moto.api_secret.clone()),
        None => (config.api_key.clone(), config.api_secret.clone()),
    };
    let fake = runtime
        .block_on(FakePennsieve::start(config))
        .context("starting the fake Pennsieve")?;

    // The fake serves on the runtime's worker threads while the binary runs.
    let mut cmd = Command::new(&bin);
    // A clean environment, so the caller's container-mode variables cannot leak in.
    cmd.env_clear();
    for var in ["PATH", "HOME", "LD_LIBRARY_PATH", "TMPDIR"] {
        if let Some(value) = std::env::var_os(var) {
            cmd.env(var, value);
        }
    }
    cmd.env("ENVIRONMENT", "production")
        .env("IMPORTER_ENABLED", "true")
        .env("INPUT_DIR", &input)
        .env("OUTPUT_DIR", &output)
        .env("CHUNK_SIZE_MB", "0.05")
        .env("PENNSIEVE_API_HOST", fake.api_url())
        .env("PENNSIEVE_API_HOST2", fake.api2_url())
        .env("PENNSIEVE_COGNITO_ENDPOINT", fake.cognito_url())
        .env("PENNSIEVE_API_KEY", &key)
        .env("PENNSIEVE_API_SECRET", &secret)
        .env("INTEGRATION_ID", ids::RUN)
        .env("UPLOAD_CONCURRENCY", "4");
    println!(
        "$ ts-processor   (container mode, importer on, fake Pennsieve at {}, Cognito at {})",
        fake.address(),
        fake.cognito_url()
    );
    let started = Instant::now();
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let elapsed = started.elapsed();
    ensure!(status.success(), "ts-processor failed with {status}");

    let scan = scan_output_dir(&output)?;
    ensure!(
        scan.problems.is_empty(),
        "output problems: {:?}",
        scan.problems
    );
    let state = fake.state();
    let files = verify(&scan, &state)?;
    if moto.is_some() {
        // The fake accepted only moto's tokens: none came from its own Cognito.
        ensure!(
            state.count(FakeRoute::InitiateAuth) == 0,
            "the binary logged in at the fake's Cognito, not moto's"
        );
        println!(
            "e2e: logged in through the moto Cognito emulator (USER_PASSWORD_AUTH, token pool)"
        );
    }
    drop(moto);
    println!(
        "e2e ok: {} channels created, {files} chunk files in one manifest, each uploaded once with \
         identical bytes ({:.1} s including conversion)",
        state.created_channels.len(),
        elapsed.as_secs_f64()
    );
    Ok(())
}

/// The Cognito emulator, or `None` (after a SKIPPED line) when it cannot be had and
/// `COGNITO_EMULATOR_REQUIRED` is not `1`.
fn start_moto() -> Result<Option<MotoCognito>> {
    let started = Instant::now();
    match MotoCognito::start() {
        Ok(moto) => {
            println!(
                "e2e: moto Cognito emulator at {} ready in {:.1} s",
                moto.endpoint,
                started.elapsed().as_secs_f64()
            );
            Ok(Some(moto))
        }
        Err(why) if MotoCognito::required() => {
            bail!(
                "Cognito emulator (moto) required by COGNITO_EMULATOR_REQUIRED=1 but unavailable: {why}"
            )
        }
        Err(why) => {
            println!(
                "SKIPPED: e2e login through the Cognito emulator (moto): {why}; using the fake's own Cognito"
            );
            Ok(None)
        }
    }
}

/// Two series (the second with explicit timestamps and a gap, so two segments), 12 channels.
fn write_recording(path: &Path) -> Result<()> {
    let mut b = NwbBuilder::create(path, "e2e", Header::standard())?;
    b.add_electrodes(ElectrodesTable::simple(12))?;
    let (n, c) = (40_000, 8);
    let data = ArrayD::from_shape_fn(IxDyn(&[n, c]), |ix| {
        ((ix[0] * 7 + ix[1] * 1_000) % 4_001) as i16 - 2_000
    });
    let mut first = SeriesSpec::new(
        "/acquisition/ElectricalSeries",
        Samples::I16(data),
        Time::Rate {
            rate: 30_000.0,
            starting_time: 0.5,
        },
        (0..8).collect(),
    );
    first.conversion = Some(0.195e-6);
    b.add_series(first)?;

    let (n, c) = (20_000, 4);
    let data = ArrayD::from_shape_fn(IxDyn(&[n, c]), |ix| {
        (ix[0] as f64 * 0.25 - ix[1] as f64) * 1e-6
    });
    let timestamps = (0..n)
        .map(|i| i as f64 / 1_000.0 + if i >= n / 2 { 3.0 } else { 0.0 })
        .collect();
    b.add_series(SeriesSpec::new(
        "/acquisition/ElectricalSeriesLFP",
        Samples::F64(data),
        Time::Timestamps(timestamps),
        (8..12).collect(),
    ))?;
    b.finish()?;
    Ok(())
}

/// What arrived equals what was written: one created channel per local channel (same name, rate,
/// unit), one manifest listing every chunk once under its channel's node id, one upload per chunk
/// with the chunk's exact bytes. Returns the number of chunk files.
fn verify(scan: &OutputScan, state: &FakeState) -> Result<usize> {
    ensure!(
        state.imports.len() == 1,
        "{} imports created, expected 1",
        state.imports.len()
    );
    let import = &state.imports[0];
    ensure!(
        import.integration_id == ids::RUN,
        "import names run {}",
        import.integration_id
    );
    ensure!(
        import.package_id == ids::PACKAGE,
        "import targets {}",
        import.package_id
    );

    // Created channels by name.
    let mut created_by_name: HashMap<&str, &CreatedChannel> = HashMap::new();
    for created in &state.created_channels {
        let name = created.request["name"]
            .as_str()
            .context("created channel has no name")?;
        ensure!(
            created_by_name.insert(name, created).is_none(),
            "channel {name:?} created twice"
        );
    }
    ensure!(
        state.created_channels.len() == scan.channels.len(),
        "{} channels created for {} local channels",
        state.created_channels.len(),
        scan.channels.len()
    );

    // Manifest: (node id, start, end) -> upload key, each at most once.
    let mut manifest: HashMap<(String, i64, i64), &str> = HashMap::new();
    for entry in &import.files {
        let name: ChunkName = entry.file_path.parse()?;
        let ChannelRef::NodeId(node) = name.channel else {
            bail!(
                "manifest entry {} is not named by a channel node id",
                entry.file_path
            );
        };
        let key = (node, name.start_us, name.end_us);
        ensure!(
            manifest.insert(key, &entry.upload_key).is_none(),
            "manifest lists {} twice",
            entry.file_path
        );
    }

    let mut bodies: HashMap<&str, &[u8]> = HashMap::new();
    for upload in &state.uploads {
        ensure!(
            upload.import_id == import.id,
            "upload to a foreign import {}",
            upload.import_id
        );
        ensure!(
            bodies.insert(&upload.upload_key, &upload.body).is_none(),
            "upload key {} uploaded twice",
            upload.upload_key
        );
    }

    let mut files = 0;
    let mut used_keys = HashSet::new();
    for channel in &scan.channels {
        let meta = channel
            .metadata
            .as_ref()
            .context("channel without metadata")?;
        let created = created_by_name
            .get(meta.name.as_str())
            .with_context(|| format!("no channel created for local channel {:?}", meta.name))?;
        let node = &created.id;
        ensure!(
            created.request["rate"].as_f64() == Some(meta.rate),
            "channel {:?}: created with rate {}, local rate {}",
            meta.name,
            created.request["rate"],
            meta.rate
        );
        ensure!(
            created.request["start"].as_i64() == Some(meta.start)
                && created.request["end"].as_i64() == Some(meta.end),
            "channel {:?}: created with start/end {}/{}, local {}/{}",
            meta.name,
            created.request["start"],
            created.request["end"],
            meta.start,
            meta.end
        );
        for chunk in &channel.chunks {
            let key = manifest
                .get(&(node.clone(), chunk.name.start_us, chunk.name.end_us))
                .with_context(|| {
                    format!("{} is missing from the manifest", chunk.path.display())
                })?;
            let body = bodies
                .get(key)
                .with_context(|| format!("{} was never uploaded", chunk.path.display()))?;
            let local = std::fs::read(&chunk.path)?;
            ensure!(
                *body == &local[..],
                "{}: uploaded bytes differ",
                chunk.path.display()
            );
            used_keys.insert(*key);
            files += 1;
        }
    }
    ensure!(
        manifest.len() == files && bodies.len() == files && used_keys.len() == files,
        "{files} local chunks, {} manifest entries, {} uploads",
        manifest.len(),
        bodies.len()
    );
    ensure!(
        files > scan.channels.len(),
        "expected several chunks per channel, got {files}"
    );
    Ok(files)
}
