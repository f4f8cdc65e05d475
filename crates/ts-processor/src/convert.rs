//! Converting one file: plan, say what was found, prepare the output directory, execute with
//! progress, and optionally import while converting. Shared by `convert` and container mode; the
//! work itself is `ts_convert`'s and `pennsieve_client`'s.

use std::ops::ControlFlow;
use std::path::Path;

use anyhow::{Result, anyhow};
use pennsieve_client::{Begun, ImportChannel, ImportChunk, ImportStatus};
use tracing::{info, warn};
use ts_chunk_format::metadata_file_name;
use ts_convert::{ExecOptions, ExistingOutput, NwbFile, Options, OutputDir, Plan, Summary};

use crate::import::Importer;
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
    let plan = plan(&file, options)?;
    let out = prepare(output, existing)?;
    let summary = ts_convert::execute(&plan, &out, exec, |p| {
        progress.update(p.done_bytes, p.total_bytes)
    })?;
    inject_fault();
    Ok(summary)
}

/// Converts `input` into `output` and imports it at the same time: channels and the whole
/// manifest are registered from the plan first, then every chunk file is uploaded as soon as it
/// is written (conversion waits while uploads lag a few files per upload slot behind).
///
/// A failure on either side stops both and is the one error returned. The output directory then
/// holds nothing of this run, except after a failed import of a complete conversion without
/// `delete_after_upload` (the converted files stay, as when `import` fails).
pub fn convert_and_import(
    input: &Path,
    output: &Path,
    options: &Options,
    exec: &ExecOptions,
    existing: ExistingOutput,
    progress: &Progress,
    importer: &Importer,
) -> Result<()> {
    let file = NwbFile::open(input)?;
    let plan = plan(&file, options)?;
    let out = prepare(output, existing)?;
    let import = match importer.begin(output, import_channels(&plan, out.path()))? {
        Begun::Ready(import) => import,
        Begun::Nothing(report) => {
            if report.status == ImportStatus::NothingToImport {
                let summary = ts_convert::execute(&plan, &out, exec, |p| {
                    progress.update(p.done_bytes, p.total_bytes)
                })?;
                inject_fault();
                info!("{summary}");
            }
            return importer.finish(output, &report);
        }
    };

    let sender = import.sender();
    // A send fails once the import has stopped; the conversion then stops too.
    let converted = ts_convert::execute_with_files(
        &plan,
        &out,
        exec,
        |p| progress.update(p.done_bytes, p.total_bytes),
        |written| match sender.send_blocking(written.path.clone()) {
            Ok(()) => ControlFlow::Continue(()),
            Err(_) => ControlFlow::Break(()),
        },
    );
    drop(sender);
    progress.finish();
    let remove_output = || {
        if let Err(err) = out.remove_files(plan.file_names()) {
            warn!("could not clean up after the failure: {err}");
        }
    };
    match converted {
        Ok(summary) => {
            inject_fault();
            info!("{summary}");
            match importer.wait(output, import) {
                Ok(report) => importer.finish(output, &report),
                Err(err) => {
                    // Some chunks are gone: what is left must not look like a conversion.
                    if importer.deletes_after_upload() {
                        remove_output();
                    }
                    Err(err)
                }
            }
        }
        Err(ts_convert::Error::Stopped { .. }) => {
            // `execute` removed its files; the import's own error says why it stopped.
            match importer.wait(output, import) {
                Err(err) => Err(err.context("the conversion was stopped")),
                Ok(_) => Err(anyhow!("the import stopped before the conversion ended")),
            }
        }
        Err(err) => {
            // `execute` removed its files; dropping the import cancels its uploads.
            drop(import);
            Err(err.into())
        }
    }
}

/// Plans the conversion and says what was found and skipped.
fn plan<'f>(file: &'f NwbFile, options: &Options) -> Result<Plan<'f>> {
    let plan = ts_convert::plan(file, options)?;
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
    Ok(plan)
}

/// Locks and prepares the output directory and tells a supervisor it is ours.
fn prepare(output: &Path, existing: ExistingOutput) -> Result<OutputDir> {
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
    Ok(out)
}

/// Every output channel of `plan` with the chunk files it will have in `dir`, as the importer
/// registers them (the same metadata `execute` writes).
fn import_channels(plan: &Plan<'_>, dir: &Path) -> Vec<ImportChannel> {
    plan.series
        .iter()
        .flat_map(|series| {
            (0..series.info.num_channels).map(move |k| ImportChannel {
                metadata_path: dir.join(metadata_file_name(series.channel_index(k))),
                metadata: series.metadata(k),
                chunks: series
                    .chunks
                    .iter()
                    .map(|chunk| {
                        let name = series.chunk_name(k, chunk);
                        ImportChunk {
                            path: dir.join(name.to_string()),
                            name,
                        }
                    })
                    .collect(),
            })
        })
        .collect()
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
