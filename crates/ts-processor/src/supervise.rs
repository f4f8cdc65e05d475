//! Running the HDF5 work in a supervised copy of this executable (`ts_convert::isolation`), so a
//! crash or hang inside the HDF5 C library becomes one clear error, exit 1, and no partial output.

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use tracing::warn;
use ts_convert::isolation::{self, Outcome, Supervision};
use ts_convert::{ExistingOutput, OutputDir};

use crate::settings::ContainerSettings;
use crate::{Cli, Command as Subcommand, files};

/// Set to `0` to do the work in this process (debugging, profiling).
const ISOLATION_VAR: &str = "TS_PROCESSOR_ISOLATION";
/// Seconds without progress after which the work is stopped (default 600).
const STALL_VAR: &str = "STALL_TIMEOUT_S";

/// What the supervisor must know about the work: the file it reads and the directory it writes.
pub struct Targets {
    input: PathBuf,
    output: Option<PathBuf>,
}

/// Whether this process should supervise a child rather than do the work itself.
pub fn wanted() -> bool {
    !isolation::is_worker() && std::env::var_os(ISOLATION_VAR).is_none_or(|v| v != "0")
}

/// The input and output of a command that reads HDF5, `None` for one that does not (`import`).
/// Settings are checked here too, so bad ones fail before a child is started.
pub fn targets(cli: Option<&Cli>) -> Result<Option<Targets>> {
    Ok(match cli.map(|c| &c.command) {
        None => {
            let settings = ContainerSettings::from_env()?;
            Some(Targets {
                input: files::find_single_nwb(&settings.input_dir)?,
                output: Some(settings.output_dir),
            })
        }
        Some(Subcommand::Convert(args)) => {
            if args.import {
                // Missing credentials fail before a child is started.
                crate::import_settings(args.integration_id.clone(), args.delete_after_upload)?;
            }
            Some(Targets {
                input: args.input.clone(),
                output: Some(args.output.clone()),
            })
        }
        Some(Subcommand::Inspect(args)) => Some(Targets {
            input: args.input.clone(),
            output: None,
        }),
        Some(Subcommand::Import(_)) => None,
        // Reads chunk files only, no HDF5.
        Some(Subcommand::Preview(_)) => None,
    })
}

/// Runs this executable again with the same arguments as a supervised child and turns how it
/// ended into this process's exit status. The child reports its own errors; a child that crashed,
/// stalled or was interrupted is reported here, and its partial output removed.
pub fn run(targets: &Targets, json_logs: bool) -> ExitCode {
    match supervise(targets) {
        Ok(code) => code,
        Err(err) => {
            crate::report_error(&err, json_logs);
            ExitCode::FAILURE
        }
    }
}

fn supervise(targets: &Targets) -> Result<ExitCode> {
    let stall_timeout = match std::env::var(STALL_VAR) {
        Err(_) => Supervision::default().stall_timeout,
        Ok(text) => text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(Duration::from_secs_f64)
            .with_context(|| format!("{STALL_VAR}={text:?} is not a positive number of seconds"))?,
    };
    let exe =
        std::env::current_exe().context("cannot find this executable to run the conversion")?;
    let mut child = Command::new(exe);
    child.args(std::env::args_os().skip(1));
    let outcome = isolation::supervise(&mut child, &Supervision { stall_timeout })
        .context("cannot start the conversion process")?;
    let input = targets.input.display();
    let failure = match &outcome {
        Outcome::Exited { code: 101, .. } => {
            // A panic: the child printed it. Keep its status so tests and users see a bug.
            remove_partial_output(targets, &outcome);
            return Ok(ExitCode::from(101));
        }
        Outcome::Exited { code, .. } => {
            return Ok(ExitCode::from(u8::try_from(*code).unwrap_or(1)));
        }
        Outcome::Crashed { signal, .. } => anyhow!(
            "{input}: the HDF5 library crashed reading the file ({}): the file is corrupt",
            signal_name(*signal)
        ),
        Outcome::Stalled { after, .. } => anyhow!(
            "{input}: no progress for {:.0} s, stopped (the HDF5 library is probably stuck on a \
             corrupt file; {STALL_VAR} sets the limit)",
            after.as_secs_f64()
        ),
        Outcome::Interrupted { signal, .. } => {
            remove_partial_output(targets, &outcome);
            crate::report_error(
                &anyhow!("{input}: interrupted by {}", signal_name(*signal)),
                false,
            );
            return Ok(ExitCode::from(u8::try_from(128 + signal).unwrap_or(1)));
        }
        other => anyhow!("{input}: the conversion ended unexpectedly: {other:?}"),
    };
    remove_partial_output(targets, &outcome);
    Err(failure)
}

/// Removes the files a child that did not finish left in its output directory. Only after the
/// child prepared it: then every conversion file there is the child's (an earlier run's files were
/// refused or replaced, and the directory lock kept others out).
fn remove_partial_output(targets: &Targets, outcome: &Outcome) {
    let Some(dir) = &targets.output else { return };
    if !outcome.output_prepared() {
        return;
    }
    match OutputDir::prepare(dir, ExistingOutput::Replace) {
        Ok(out) if out.removed_earlier() > 0 => warn!(
            removed = out.removed_earlier(),
            dir = %dir.display(),
            "removed the partial output"
        ),
        Ok(_) => {}
        Err(err) => warn!(
            "could not remove the partial output in {}: {err}",
            dir.display()
        ),
    }
}

fn signal_name(signal: i32) -> String {
    let name = match signal {
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGILL => "SIGILL",
        libc::SIGKILL => "SIGKILL",
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        _ => return format!("signal {signal}"),
    };
    format!("signal {signal}, {name}")
}
