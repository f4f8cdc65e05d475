//! Converting one file: plan, say what was found, prepare the output directory, execute with
//! progress. Shared by `convert` and container mode; the work itself is `ts_convert`'s.

use std::path::Path;

use anyhow::{Result, anyhow};
use tracing::{info, warn};
use ts_convert::{ExecOptions, ExistingOutput, NwbFile, Options, OutputDir, Summary};

use crate::progress::Progress;

/// Converts `input` into `output`; `existing` says what to do with an earlier run's files there.
pub fn convert(
    input: &Path,
    output: &Path,
    options: &Options,
    exec: &ExecOptions,
    existing: ExistingOutput,
    progress: &Progress,
) -> Result<Summary> {
    let file = NwbFile::open(input)?;
    let plan = ts_convert::plan(&file, options)?;
    for skipped in &plan.skipped {
        info!(
            series = %skipped.path,
            neurodata_type = %skipped.neurodata_type,
            "skipped: {}", skipped.reason
        );
    }
    for series in &plan.series {
        for warning in series.info.warnings.iter().chain(&series.segment_warning) {
            warn!("{warning}");
        }
    }
    plan.ensure_series()?;
    let out = OutputDir::prepare(output, existing).map_err(|err| match err {
        ts_chunk_format::Error::EarlierOutput { .. } => {
            anyhow!("{err}; pass --overwrite to replace them or choose another directory")
        }
        other => other.into(),
    })?;
    ts_convert::isolation::output_prepared();
    if out.removed_earlier() > 0 {
        warn!(removed = out.removed_earlier(), dir = %output.display(), "removed files of an earlier conversion");
    }
    let summary = ts_convert::execute(&plan, &out, exec, |p| {
        progress.update(p.done_bytes, p.total_bytes)
    })?;
    inject_fault();
    Ok(summary)
}

/// Fault injection for the supervisor's tests: in a supervised child, `TS_PROCESSOR_FAULT=crash`
/// (or `hang`) crashes with SIGSEGV (or stops making progress) once every file is written, as
/// libhdf5 does on some corrupt files.
fn inject_fault() {
    if !ts_convert::isolation::is_worker() {
        return;
    }
    match std::env::var("TS_PROCESSOR_FAULT").as_deref() {
        // SAFETY: raising a signal in our own process. Rust's runtime handles SIGSEGV (to detect
        // stack overflows) and returns for a raised one, so restore the default action first.
        Ok("crash") => unsafe {
            libc::signal(libc::SIGSEGV, libc::SIG_DFL);
            libc::raise(libc::SIGSEGV);
        },
        Ok("hang") => loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        },
        _ => {}
    }
}
