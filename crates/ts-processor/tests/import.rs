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
