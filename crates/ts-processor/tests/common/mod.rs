//! Shared by the binary's integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `ts-processor` binary in a clean environment (so the developer's container-mode or
/// Pennsieve variables cannot leak in), logging at `rust_log`.
pub fn processor(rust_log: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ts-processor"));
    cmd.env_clear();
    for var in ["PATH", "HOME", "LD_LIBRARY_PATH", "TMPDIR"] {
        if let Some(value) = std::env::var_os(var) {
            cmd.env(var, value);
        }
    }
    cmd.env("RUST_LOG", rust_log);
    cmd
}

/// The repository's `testdata/` directory.
pub fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}
