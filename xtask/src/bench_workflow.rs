//! The end-to-end row of `cargo xtask bench` (issue #13): the workflow step (container mode,
//! importer on) against the fake Pennsieve with a network model, next to converting alone and
//! uploading alone, each measured in this run.
//!
//! The fake runs as its own release-built process (`pennsieve-fake`'s `fake_server` example),
//! restarted for every measurement so that each starts from an empty platform. It shares the
//! machine's cores with the converter and the uploader, which a real platform would not.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::util::target_dir;

/// The network model of the row: per reply, per connection, per new connection.
pub const LATENCY_MS: u32 = 20;
pub const MB_PER_S: u32 = 50;
pub const CONNECT_MS: u32 = 60;

/// Measured wall, CPU and peak RSS of one run (from `bench::measure`).
pub struct Run {
    pub measured: crate::bench::Measured,
    /// Largest total size of the output directory seen while it ran (sampled every 20 ms).
    pub peak_disk: u64,
    /// CPU-seconds the fake server spent meanwhile (it shares this machine's cores).
    pub fake_cpu: Option<f64>,
}

pub struct WorkflowRow {
    pub convert: Run,
    pub upload: Run,
    pub streaming: Run,
    pub streaming_delete: Run,
    pub files: u64,
    pub bytes: u64,
}

/// A fake Pennsieve process with the network model; killed on drop.
struct FakeServer {
    child: Child,
    info: Value,
}

impl FakeServer {
    fn start(exe: &Path) -> Result<FakeServer> {
        let mut child = Command::new(exe)
            .env("FAKE_LATENCY_MS", LATENCY_MS.to_string())
            .env("FAKE_MB_PER_S", MB_PER_S.to_string())
            .env("FAKE_CONNECT_MS", CONNECT_MS.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?;
        let stdout = child.stdout.take().context("fake server stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let info: Value =
            serde_json::from_str(&line).with_context(|| format!("fake server said {line:?}"))?;
        Ok(FakeServer { child, info })
    }

    /// User + system CPU-seconds of the fake so far (`/proc/PID/stat`, fields 14 and 15).
    fn cpu_seconds(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).ok()?;
        // Fields after the command name, which is in parentheses and may hold spaces.
        let rest = stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 =
            fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        // SAFETY: sysconf only reads a constant.
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        (per_second > 0.0).then(|| ticks / per_second)
    }

    fn get(&self, key: &str) -> String {
        self.info[key].as_str().unwrap_or_default().to_owned()
    }

    /// The environment the binary needs to talk to this fake.
    fn env(&self, cmd: &mut Command) {
        cmd.env_clear();
        for var in ["PATH", "HOME", "LD_LIBRARY_PATH", "TMPDIR"] {
            if let Some(value) = std::env::var_os(var) {
                cmd.env(var, value);
            }
        }
        cmd.env("PENNSIEVE_API_HOST", self.get("api"))
            .env("PENNSIEVE_API_HOST2", self.get("api2"))
            .env("PENNSIEVE_COGNITO_ENDPOINT", self.get("cognito"))
            .env("SESSION_TOKEN", self.get("session_token"))
            .env("REFRESH_TOKEN", self.get("refresh_token"))
            .env("INTEGRATION_ID", self.get("run_id"))
            .env("RUST_LOG", "warn");
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `cmd` while sampling the size of `dir`.
fn run_sampling(cmd: &mut Command, dir: &Path) -> Result<Run> {
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, peak, dir) = (stop.clone(), peak.clone(), dir.to_owned());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(dir_bytes(&dir), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let measured = crate::bench::measure(cmd);
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    Ok(Run {
        measured: measured?,
        peak_disk: peak.load(Ordering::Relaxed),
        fake_cpu: None,
    })
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Convert alone, upload alone (`import` of that output), then the workflow step streaming,
/// with and without `DELETE_AFTER_UPLOAD`.
pub fn bench_workflow(bin: &Path, input: &Path, concurrency: u32) -> Result<WorkflowRow> {
    let fake_exe = crate::util::build_release_example("pennsieve-fake", "fake_server")?;
    let work = target_dir().join("xtask").join("bench-workflow");
    let (in_dir, out) = (work.join("input"), work.join("output"));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&in_dir)?;
    // Container mode reads the one .nwb of INPUT_DIR: a hard link costs no copy.
    let linked = in_dir.join("recording.nwb");
    if std::fs::hard_link(input, &linked).is_err() {
        std::fs::copy(input, &linked)?;
    }
    let settle = || crate::bench::settle(Some(input));

    settle();
    let convert = run_sampling(
        Command::new(bin)
            .arg("convert")
            .arg(input)
            .arg("--output")
            .arg(&out)
            .env("RUST_LOG", "warn"),
        &out,
    )?;
    let (files, bytes) = crate::bench::dir_size(&out)?;

    let upload = {
        let fake = FakeServer::start(&fake_exe)?;
        settle();
        let mut cmd = Command::new(bin);
        fake.env(&mut cmd);
        cmd.env("UPLOAD_CONCURRENCY", concurrency.to_string())
            .arg("import")
            .arg(&out);
        let before = fake.cpu_seconds();
        let mut run = run_sampling(&mut cmd, &out)?;
        run.fake_cpu = fake
            .cpu_seconds()
            .zip(before)
            .map(|(after, before)| after - before);
        check_uploaded(&fake, files)?;
        run
    };
    std::fs::remove_dir_all(&out)?;

    let mut streaming_runs = Vec::new();
    for delete in [false, true] {
        let fake = FakeServer::start(&fake_exe)?;
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out)?;
        settle();
        let mut cmd = Command::new(bin);
        fake.env(&mut cmd);
        cmd.env("ENVIRONMENT", "production")
            .env("IMPORTER_ENABLED", "true")
            .env("INPUT_DIR", &in_dir)
            .env("OUTPUT_DIR", &out)
            .env("UPLOAD_CONCURRENCY", concurrency.to_string())
            .env("DELETE_AFTER_UPLOAD", delete.to_string());
        let before = fake.cpu_seconds();
        let mut run = run_sampling(&mut cmd, &out)?;
        run.fake_cpu = fake
            .cpu_seconds()
            .zip(before)
            .map(|(after, before)| after - before);
        streaming_runs.push(run);
        check_uploaded(&fake, files)?;
    }
    let _ = std::fs::remove_dir_all(&work);
    let streaming_delete = streaming_runs.pop().context("no run")?;
    let streaming = streaming_runs.pop().context("no run")?;
    Ok(WorkflowRow {
        convert,
        upload,
        streaming,
        streaming_delete,
        files,
        bytes,
    })
}

/// The fake holds every chunk file: nothing was reported imported that was not uploaded.
fn check_uploaded(fake: &FakeServer, files: u64) -> Result<()> {
    let api = fake.get("api");
    let url = format!("{}/_fake/state", api.strip_suffix("/api").unwrap_or(&api));
    let Ok(out) = Command::new("curl").args(["-sf", &url]).output() else {
        eprintln!("no curl: the fake's uploads are not counted, only the exit status checked");
        return Ok(());
    };
    if !out.status.success() {
        bail!("cannot read the fake's state at {url}");
    }
    let state: Value = serde_json::from_slice(&out.stdout)?;
    let uploaded = state["uploads"].as_array().map_or(0, |u| u.len() as u64);
    if uploaded != files {
        bail!("the fake holds {uploaded} uploads, expected {files}");
    }
    Ok(())
}
