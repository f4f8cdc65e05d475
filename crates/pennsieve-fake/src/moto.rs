//! A real Cognito protocol endpoint for the tests: the `moto` emulator in server mode, run by
//! `moto/moto_cognito.py` from a virtualenv that is created on first use.
//!
//! The virtualenv lives at `<target dir>/cognito-venv` (`CARGO_TARGET_DIR`, else
//! `<workspace>/target`), filled from `moto/requirements.txt` and reused while its stamp matches
//! that file; a fresh machine needs only `python3` with `venv` and PyPI. The emulator listens on
//! `127.0.0.1` on a port the OS picks, is set up like Pennsieve's `cognito-config` (a token pool
//! whose user is an API key, a user pool with a signed-in user), and is killed when the
//! [`MotoCognito`] is dropped; it also exits by itself when its standard input closes, so it
//! never outlives the process that started it. Every wait is bounded.
//!
//! When the emulator cannot be had, [`MotoCognito::start_or_skip`] prints a `SKIPPED:` line and
//! returns `None`, unless `COGNITO_EMULATOR_REQUIRED=1` (CI), where it panics.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::config::ExternalCognito;

/// The environment variable that turns "skip" into "fail".
const REQUIRED_VAR: &str = "COGNITO_EMULATOR_REQUIRED";

/// Creating and filling the virtualenv (a cold pip cache downloads ~30 MB).
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);
/// From spawning the emulator to its setup line.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// A running moto Cognito, set up and signed in; killed on drop.
#[derive(Debug, Deserialize)]
pub struct MotoCognito {
    /// Its endpoint (`http://127.0.0.1:{port}/`), for `Config::cognito_endpoint`.
    pub endpoint: String,
    /// The region of both pools.
    pub region: String,
    /// `userPool.id`.
    pub user_pool_id: String,
    /// `userPool.appClientId` (no secret; USER_PASSWORD_AUTH and REFRESH_TOKEN_AUTH allowed).
    pub user_pool_client_id: String,
    /// `tokenPool.id`.
    pub token_pool_id: String,
    /// `tokenPool.appClientId`.
    pub token_pool_client_id: String,
    /// An API key: the username of a confirmed user of the token pool.
    pub api_key: String,
    /// Its secret: that user's permanent password.
    pub api_secret: String,
    /// A user-pool access token (from USER_PASSWORD_AUTH of a user-pool user at setup).
    pub session_access_token: String,
    /// The refresh token of that login.
    pub session_refresh_token: String,
    #[serde(skip)]
    process: Option<Child>,
}

impl Drop for MotoCognito {
    fn drop(&mut self) {
        if let Some(mut child) = self.process.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl MotoCognito {
    /// Creates the virtualenv if needed, then starts and sets up the emulator (blocking).
    pub fn start() -> Result<MotoCognito, String> {
        let python = venv_python()?;
        spawn(&python)
    }

    /// [`MotoCognito::start`], or `None` after printing `SKIPPED: {what}: …` to stderr (not
    /// captured by the test harness) when it fails.
    ///
    /// # Panics
    ///
    /// When it fails and `COGNITO_EMULATOR_REQUIRED=1`.
    pub fn start_or_skip(what: &str) -> Option<MotoCognito> {
        match MotoCognito::start() {
            Ok(moto) => Some(moto),
            Err(why) if MotoCognito::required() => {
                panic!(
                    "{what}: Cognito emulator (moto) required by {REQUIRED_VAR}=1 but unavailable: {why}"
                )
            }
            Err(why) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED: {what}: Cognito emulator (moto) unavailable ({REQUIRED_VAR}=1 makes this fail): {why}"
                );
                None
            }
        }
    }

    /// Whether `COGNITO_EMULATOR_REQUIRED=1` (an unavailable emulator is then a failure).
    pub fn required() -> bool {
        std::env::var(REQUIRED_VAR).is_ok_and(|v| v == "1")
    }

    /// The fake's [`crate::FakeConfig::external_cognito`] for this emulator.
    pub fn external_cognito(&self) -> ExternalCognito {
        ExternalCognito {
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            user_pool_id: self.user_pool_id.clone(),
            user_pool_client_id: self.user_pool_client_id.clone(),
            token_pool_id: self.token_pool_id.clone(),
            token_pool_client_id: self.token_pool_client_id.clone(),
        }
    }
}

fn moto_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("moto")
}

fn target_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let workspace = workspace.canonicalize().unwrap_or(workspace);
    match std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => dir,
        Some(dir) => workspace.join(dir),
        None => workspace.join("target"),
    }
}

/// The virtualenv's python, creating and filling the virtualenv first when its stamp does not
/// match the requirements. Serialised across processes by a lock file.
fn venv_python() -> Result<PathBuf, String> {
    let requirements = moto_dir().join("requirements.txt");
    let wanted = std::fs::read_to_string(&requirements)
        .map_err(|e| format!("{}: {e}", requirements.display()))?;
    let target = target_dir();
    std::fs::create_dir_all(&target).map_err(|e| format!("{}: {e}", target.display()))?;
    let lock_path = target.join("cognito-venv.lock");
    let lock = File::create(&lock_path).map_err(|e| format!("{}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("locking {}: {e}", lock_path.display()))?;

    let venv = target.join("cognito-venv");
    let python = venv.join("bin/python");
    let stamp = venv.join("requirements.stamp");
    let log = target.join("cognito-venv-install.log");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted)
        && run_bounded(
            Command::new(&python).args(["-c", "import moto.server, boto3, joserfc"]),
            &log,
            Duration::from_secs(60),
        )
        .is_ok()
    {
        return Ok(python);
    }
    if venv.exists() {
        std::fs::remove_dir_all(&venv).map_err(|e| format!("{}: {e}", venv.display()))?;
    }
    let started = Instant::now();
    run_bounded(
        Command::new("python3").args(["-m", "venv"]).arg(&venv),
        &log,
        Duration::from_secs(120),
    )?;
    run_bounded(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "--timeout",
                "60",
                "-r",
            ])
            .arg(&requirements),
        &log,
        INSTALL_TIMEOUT,
    )?;
    std::fs::write(&stamp, wanted).map_err(|e| format!("{}: {e}", stamp.display()))?;
    let _ = writeln!(
        std::io::stderr(),
        "moto: virtualenv {} created in {:.1} s",
        venv.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(python)
}

/// Runs `cmd` with its output appended to `log`, killing it after `limit`.
fn run_bounded(cmd: &mut Command, log: &Path, limit: Duration) -> Result<(), String> {
    let out = File::options()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("{}: {e}", log.display()))?;
    let err = out
        .try_clone()
        .map_err(|e| format!("{}: {e}", log.display()))?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => {
                return Err(format!(
                    "{cmd:?} failed with {status}; see {}: {}",
                    log.display(),
                    tail(log)
                ));
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{cmd:?} did not finish within {limit:?}"));
            }
            Err(e) => return Err(format!("waiting for {cmd:?}: {e}")),
        }
    }
}

/// Starts `moto_cognito.py` and reads its setup line (bounded).
fn spawn(python: &Path) -> Result<MotoCognito, String> {
    let log = target_dir().join("cognito-venv-moto.log");
    let stderr = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let script = moto_dir().join("moto_cognito.py");
    let mut child = Command::new(python)
        .arg(&script)
        .env("PYTHONUNBUFFERED", "1")
        // boto3 gets explicit dummy keys; a named profile that does not exist would still fail.
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_DEFAULT_PROFILE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", script.display()))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let _ = send.send(read.map(|_| line));
    });
    let failed = |child: &mut Child, why: String| {
        let _ = child.kill();
        let _ = child.wait();
        Err(format!("{why}; see {}: {}", log.display(), tail(&log)))
    };
    let line = match receive.recv_timeout(START_TIMEOUT) {
        Ok(Ok(line)) if !line.trim().is_empty() => line,
        Ok(Ok(_)) => return failed(&mut child, "the emulator exited during setup".into()),
        Ok(Err(e)) => return failed(&mut child, format!("reading the emulator's output: {e}")),
        Err(_) => {
            return failed(
                &mut child,
                format!("no setup line within {START_TIMEOUT:?}"),
            );
        }
    };
    match serde_json::from_str::<MotoCognito>(&line) {
        Ok(mut moto) => {
            moto.process = Some(child);
            Ok(moto)
        }
        Err(e) => failed(&mut child, format!("unexpected setup line ({e})")),
    }
}

/// The last lines of a log file, for error messages.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}
