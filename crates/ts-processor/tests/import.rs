//! The binary's import step against the in-process fake Pennsieve: the CLI path with a session
//! token, and the failures that must end with a non-zero exit. (`cargo xtask e2e` runs the
//! release binary in container mode with an API key and checks every byte that arrived.)

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::processor;
use pennsieve_fake::{FakeConfig, FakePennsieve, FakeRun, ids};

fn bin() -> Command {
    // Debug logs, so that the secret checks below see everything the binary could log.
    processor("debug")
}

fn sample() -> PathBuf {
    common::testdata().join("sample.nwb")
}

/// `root/in` holding a copy of the sample, and `root/out` (not created).
fn input_with_sample(root: &Path) -> (PathBuf, PathBuf) {
    let input = root.join("in");
    std::fs::create_dir(&input).unwrap();
    std::fs::copy(sample(), input.join("sample.nwb")).unwrap();
    (input, root.join("out"))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn with_fake_hosts(cmd: &mut Command, fake: &FakePennsieve) {
    cmd.env("PENNSIEVE_API_HOST", fake.api_url())
        .env("PENNSIEVE_API_HOST2", fake.api2_url())
        .env("PENNSIEVE_COGNITO_ENDPOINT", fake.cognito_url());
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The whole log and its `error:` line, after checking the exit status is 1.
fn failure(out: &Output) -> (String, String) {
    let log = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    let error = log
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_default();
    let error = error.to_owned();
    (log, error)
}

fn chunk_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".bin.gz"))
        .collect();
    files.sort();
    files
}

#[test]
fn cli_import_uploads_every_chunk_with_a_session_token() {
    let rt = runtime();
    let config = FakeConfig::default();
    let refresh = config.refresh_token.clone();
    let fake = rt.block_on(FakePennsieve::start(config)).unwrap();
    // Tokens expire after a few calls, so the refresh path runs inside the binary.
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let status = bin()
        .arg("convert")
        .arg(sample())
        .arg("-o")
        .arg(&out)
        .args(["--chunk-size-mb", "0.25"])
        .output()
        .unwrap()
        .status;
    assert!(status.success());
    let token = fake.session_token();
    fake.expire_tokens();

    let mut cmd = bin();
    cmd.arg("import")
        .arg(&out)
        .args(["--integration-id", ids::RUN])
        .env("SESSION_TOKEN", &token)
        .env("REFRESH_TOKEN", &refresh)
        .env("UPLOAD_CONCURRENCY", "3");
    with_fake_hosts(&mut cmd, &fake);
    let output = cmd.output().unwrap();
    let log = stderr(&output);
    assert!(output.status.success(), "{log}");

    let state = fake.state();
    assert!(
        state.auth_count("REFRESH_TOKEN_AUTH") >= 1,
        "the expired token was refreshed"
    );
    assert_eq!(state.imports.len(), 1);
    let local = chunk_files(&out);
    assert_eq!(
        state.imports[0].files.len(),
        local.len(),
        "manifest lists every chunk"
    );
    assert_eq!(state.uploads.len(), local.len(), "one upload per chunk");
    // Each local chunk's bytes arrived exactly once.
    let mut bodies: Vec<&[u8]> = state.uploads.iter().map(|u| &u.body[..]).collect();
    for path in &local {
        let bytes = std::fs::read(path).unwrap();
        let at = bodies
            .iter()
            .position(|b| *b == &bytes[..])
            .unwrap_or_else(|| panic!("{} did not arrive", path.display()));
        bodies.swap_remove(at);
    }
    assert!(
        log.contains(&format!("imported {} files", local.len())),
        "{log}"
    );
    for secret in [
        token.as_str(),
        refresh.as_str(),
        "X-Amz-Signature",
        "fake-secret-session",
    ] {
        assert!(!log.contains(secret), "{secret} reached the log:\n{log}");
    }
}

#[test]
fn container_mode_fails_when_the_run_has_no_target_package() {
    let rt = runtime();
    let config = FakeConfig {
        runs: vec![FakeRun {
            id: ids::RUN.into(),
            dataset_id: ids::DATASET.into(),
            data_sources: Vec::new(),
        }],
        ..FakeConfig::default()
    };
    let (key, secret) = (config.api_key.clone(), config.api_secret.clone());
    let fake = rt.block_on(FakePennsieve::start(config)).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (input, out) = input_with_sample(tmp.path());

    let mut cmd = bin();
    cmd.env("ENVIRONMENT", "production")
        .env("INPUT_DIR", &input)
        .env("OUTPUT_DIR", &out)
        .env("PENNSIEVE_API_KEY", &key)
        .env("PENNSIEVE_API_SECRET", &secret)
        .env("INTEGRATION_ID", ids::RUN);
    with_fake_hosts(&mut cmd, &fake);
    let output = cmd.output().unwrap();
    let (log, error) = failure(&output);
    assert!(error.contains("no usable target package"), "{log}");
    assert!(error.contains(ids::RUN), "{error}");
    let state = fake.state();
    assert!(state.imports.is_empty() && state.uploads.is_empty());
    assert!(!log.contains(&secret), "the API secret reached the log");
}

#[test]
fn import_without_credentials_names_the_variables() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, out) = input_with_sample(tmp.path());
    let output = bin()
        .env("INPUT_DIR", &input)
        .env("OUTPUT_DIR", &out)
        .env("IMPORTER_ENABLED", "true")
        .output()
        .unwrap();
    let (_, error) = failure(&output);
    assert!(
        error.contains("SESSION_TOKEN") && error.contains("PENNSIEVE_API_KEY"),
        "{error}"
    );
    // Settings are checked before any work: no conversion that could not be imported.
    assert!(!out.exists() || chunk_files(&out).is_empty());
}

// Streaming: container mode and `convert --import` upload while converting.

/// Chunk files of the sample at `CHUNK_SIZE_MB=0.1`: 8 channels x 5 + 4 channels x 1.
const SAMPLE_CHUNKS_AT_0_1: usize = 44;

/// Container mode with the importer on, against `fake`, with a session token.
fn container(fake: &FakePennsieve, input: &Path, out: &Path) -> Command {
    let mut cmd = bin();
    cmd.env("ENVIRONMENT", "production")
        .env("INPUT_DIR", input)
        .env("OUTPUT_DIR", out)
        .env("CHUNK_SIZE_MB", "0.1")
        .env("SESSION_TOKEN", fake.session_token())
        .env("INTEGRATION_ID", ids::RUN);
    with_fake_hosts(&mut cmd, fake);
    cmd
}

fn conversion_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("channel-")
        })
        .collect();
    files.sort();
    files
}

/// Created channels (requests), manifest names and (name, bytes) of every upload, sorted; in names
/// channel node ids are replaced by their creation order.
type Normalised = (Vec<serde_json::Value>, Vec<String>, Vec<(String, Vec<u8>)>);

/// What `fake` received, see [`Normalised`].
fn normalised_import(fake: &FakePennsieve) -> Normalised {
    let state = fake.state();
    // Channels are created several at a time, so their node ids are named by what was asked
    // for, not by creation order.
    let normalise = |name: &str| {
        let mut name = name.to_owned();
        for channel in &state.created_channels {
            name = name.replace(&channel.id, &format!("channel{}", channel.request));
        }
        name
    };
    assert_eq!(state.imports.len(), 1);
    let import = &state.imports[0];
    let manifest: Vec<String> = import
        .files
        .iter()
        .map(|e| normalise(&e.file_path))
        .collect();
    let mut uploads: Vec<(String, Vec<u8>)> = state
        .uploads
        .iter()
        .map(|u| {
            let entry = import
                .files
                .iter()
                .find(|e| e.upload_key == u.upload_key)
                .unwrap();
            (normalise(&entry.file_path), u.body.to_vec())
        })
        .collect();
    uploads.sort();
    let mut channels: Vec<serde_json::Value> = state
        .created_channels
        .iter()
        .map(|c| c.request.clone())
        .collect();
    channels.sort_by_key(|c| c.to_string());
    (channels, manifest, uploads)
}

#[test]
fn container_mode_streams_the_same_import_as_convert_then_import() {
    let rt = runtime();
    let tmp = tempfile::tempdir().unwrap();
    let (input, out) = input_with_sample(tmp.path());

    // Two-phase: convert, then `import`.
    let two_phase = rt
        .block_on(FakePennsieve::start(FakeConfig::default()))
        .unwrap();
    let plain = tmp.path().join("plain");
    let status = bin()
        .arg("convert")
        .arg(sample())
        .arg("-o")
        .arg(&plain)
        .args(["--chunk-size-mb", "0.1"])
        .status()
        .unwrap();
    assert!(status.success());
    let mut cmd = bin();
    cmd.arg("import")
        .arg(&plain)
        .args(["--integration-id", ids::RUN])
        .env("SESSION_TOKEN", two_phase.session_token());
    with_fake_hosts(&mut cmd, &two_phase);
    let output = cmd.output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));

    // Streaming: container mode.
    let streamed = rt
        .block_on(FakePennsieve::start(FakeConfig::default()))
        .unwrap();
    let output = container(&streamed, &input, &out).output().unwrap();
    let log = stderr(&output);
    assert!(output.status.success(), "{log}");
    assert!(
        log.contains(&format!("imported {SAMPLE_CHUNKS_AT_0_1} files")),
        "{log}"
    );

    let (channels_a, manifest_a, uploads_a) = normalised_import(&two_phase);
    let (channels_b, manifest_b, uploads_b) = normalised_import(&streamed);
    assert_eq!(channels_b.len(), 12);
    assert_eq!(channels_a, channels_b, "same channels");
    assert_eq!(manifest_b.len(), SAMPLE_CHUNKS_AT_0_1);
    assert_eq!(manifest_a, manifest_b, "same manifest in the same order");
    assert_eq!(
        uploads_a, uploads_b,
        "same bytes under the same names, each once"
    );
    // The output directory is the same complete conversion.
    let names = |dir: &Path| -> Vec<_> {
        conversion_files(dir)
            .iter()
            .map(|p| p.file_name().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&plain), names(&out));
}

#[test]
fn uploads_start_before_the_conversion_ends() {
    let rt = runtime();
    // Slow responses and one upload at a time: conversion must wait for uploads (back-pressure).
    let fake = rt
        .block_on(FakePennsieve::start(FakeConfig {
            network: pennsieve_fake::NetworkModel {
                reply_latency: std::time::Duration::from_millis(10),
                ..pennsieve_fake::NetworkModel::none()
            },
            ..FakeConfig::default()
        }))
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (input, out) = input_with_sample(tmp.path());
    let mut child = container(&fake, &input, &out)
        .env("UPLOAD_CONCURRENCY", "1")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once the first upload has arrived, look at how many chunk files exist.
    let mut chunks_at_first_upload = None;
    while child.try_wait().unwrap().is_none() {
        if fake.state().uploads.is_empty() {
            std::thread::sleep(std::time::Duration::from_millis(2));
            continue;
        }
        chunks_at_first_upload = Some(chunk_files(&out).len());
        break;
    }
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let seen = chunks_at_first_upload.expect("an upload while the conversion ran");
    assert!(
        seen < SAMPLE_CHUNKS_AT_0_1,
        "the first upload came after all {seen} chunk files were written"
    );
    assert_eq!(chunk_files(&out).len(), SAMPLE_CHUNKS_AT_0_1);
    assert_eq!(fake.state().uploads.len(), SAMPLE_CHUNKS_AT_0_1);
}

#[test]
fn an_upload_failure_stops_the_conversion_with_one_error() {
    let rt = runtime();
    // Every presign refused (and no refresh token to renew with): the first upload fails for good.
    let fake = rt
        .block_on(FakePennsieve::start(FakeConfig {
            fail_first: vec![(pennsieve_fake::FakeRoute::Presign, 100_000)],
            fail_status: 403,
            ..FakeConfig::default()
        }))
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (input, out) = input_with_sample(tmp.path());
    // One upload slot: back-pressure holds the conversion a few files ahead of the uploads, so
    // it is still running when the first upload fails, however fast this machine converts.
    let output = container(&fake, &input, &out)
        .env("UPLOAD_CONCURRENCY", "1")
        .output()
        .unwrap();
    let (log, error) = failure(&output);
    assert_eq!(
        log.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{log}"
    );
    assert!(
        error.contains("upload files") && error.contains("HTTP 403"),
        "{error}"
    );
    assert!(error.contains("the conversion was stopped"), "{error}");
    assert!(
        !log.contains("converted 2 series"),
        "the conversion ran to its end:\n{log}"
    );
    assert!(!log.contains("imported"), "{log}");
    assert!(
        conversion_files(&out).is_empty(),
        "{:?}",
        conversion_files(&out)
    );
    assert!(fake.state().uploads.is_empty());
}

#[test]
fn a_conversion_failure_stops_the_uploads_with_one_error() {
    let rt = runtime();
    let fake = rt
        .block_on(FakePennsieve::start(FakeConfig {
            network: pennsieve_fake::NetworkModel {
                reply_latency: std::time::Duration::from_millis(10),
                ..pennsieve_fake::NetworkModel::none()
            },
            ..FakeConfig::default()
        }))
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (input, out) = input_with_sample(tmp.path());
    // A directory where the last series' chunk must go: renaming it into place fails.
    std::fs::create_dir_all(out.join("channel-00011_1710487800123456_1710487803122456.bin.gz"))
        .unwrap();
    let output = container(&fake, &input, &out)
        .env("UPLOAD_CONCURRENCY", "1")
        .output()
        .unwrap();
    let (log, error) = failure(&output);
    assert_eq!(
        log.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{log}"
    );
    assert!(error.contains("channel-00011_"), "{error}");
    assert!(!log.contains("imported"), "{log}");
    // The import was registered, but not every file arrived; the output holds nothing of the run.
    let state = fake.state();
    assert_eq!(state.imports[0].files.len(), SAMPLE_CHUNKS_AT_0_1);
    assert!(
        state.uploads.len() < SAMPLE_CHUNKS_AT_0_1,
        "{}",
        state.uploads.len()
    );
    assert!(
        conversion_files(&out).iter().all(|p| p.is_dir()),
        "{:?}",
        conversion_files(&out)
    );
}

#[test]
fn convert_import_with_delete_after_upload_keeps_only_metadata() {
    let rt = runtime();
    let fake = rt
        .block_on(FakePennsieve::start(FakeConfig::default()))
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let plain = tmp.path().join("plain");
    let out = tmp.path().join("out");
    let status = bin()
        .arg("convert")
        .arg(sample())
        .arg("-o")
        .arg(&plain)
        .args(["--chunk-size-mb", "0.1"])
        .status()
        .unwrap();
    assert!(status.success());

    let mut cmd = bin();
    cmd.arg("convert")
        .arg(sample())
        .arg("-o")
        .arg(&out)
        .args([
            "--chunk-size-mb",
            "0.1",
            "--import",
            "--delete-after-upload",
        ])
        .args(["--integration-id", ids::RUN])
        .env("SESSION_TOKEN", fake.session_token());
    with_fake_hosts(&mut cmd, &fake);
    let output = cmd.output().unwrap();
    let log = stderr(&output);
    assert!(output.status.success(), "{log}");
    assert!(chunk_files(&out).is_empty(), "{:?}", chunk_files(&out));
    let metadata: Vec<_> = conversion_files(&out)
        .into_iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(metadata.len(), 12);
    assert!(
        metadata.iter().all(|n| n.ends_with(".metadata.json")),
        "{metadata:?}"
    );
    for name in &metadata {
        assert_eq!(
            std::fs::read(out.join(name)).unwrap(),
            std::fs::read(plain.join(name)).unwrap(),
            "{name}"
        );
    }
    // Every chunk arrived, byte for byte.
    let state = fake.state();
    assert_eq!(state.imports[0].files.len(), SAMPLE_CHUNKS_AT_0_1);
    let mut uploaded: Vec<Vec<u8>> = state.uploads.iter().map(|u| u.body.to_vec()).collect();
    let mut expected: Vec<Vec<u8>> = chunk_files(&plain)
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    uploaded.sort();
    expected.sort();
    assert_eq!(uploaded.len(), SAMPLE_CHUNKS_AT_0_1);
    assert_eq!(uploaded, expected);
}

#[test]
fn convert_import_needs_a_run() {
    let tmp = tempfile::tempdir().unwrap();
    let output = bin()
        .arg("convert")
        .arg(sample())
        .arg("-o")
        .arg(tmp.path().join("out"))
        .arg("--import")
        .env("SESSION_TOKEN", "t")
        .output()
        .unwrap();
    let (_, error) = failure(&output);
    assert!(error.contains("--integration-id"), "{error}");
    assert!(!tmp.path().join("out").exists());
}
