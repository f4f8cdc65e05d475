//! Importing converted files into Pennsieve. The workflow lives in `pennsieve-client`; this module
//! turns settings into a client, runs it on a tokio runtime and decides the exit status.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result, bail};
use pennsieve_client::{Client, ImportOptions, ImportReport, ImportStatus, import_directory};
use tracing::{error, info};

use crate::settings::ImportSettings;

#[derive(clap::Args)]
pub struct ImportArgs {
    /// Directory of chunk and metadata files written by `convert`.
    pub dir: PathBuf,
    /// The workflow run to import into.
    #[arg(long, env = "INTEGRATION_ID")]
    pub integration_id: String,
}

/// `ts-processor import`: the importer's settings from the environment, the run from the flag.
pub fn run_from_cli(args: &ImportArgs) -> Result<()> {
    run(
        &args.dir,
        ImportSettings::from_env(args.integration_id.clone())?,
    )
}

/// Imports `dir` into the run `settings` name.
pub fn run(dir: &Path, settings: ImportSettings) -> Result<()> {
    let ImportSettings {
        client,
        credentials,
        integration_id,
    } = settings;
    let client = Client::new(client, credentials).context("setting up the Pennsieve client")?;
    let mut options = ImportOptions::new(integration_id.clone());
    options.on_progress = Some(upload_progress());
    info!(run = %integration_id, dir = %dir.display(), "importing into Pennsieve");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = runtime
        .block_on(import_directory(&client, dir, &options))
        .with_context(|| format!("import of {} into run {integration_id}", dir.display()))?;
    finish(dir, &integration_id, &report)
}

/// Logs the outcome; a run with no usable target package is an error (the original only logged it
/// and exited 0, so a workflow step that imported nothing looked successful).
fn finish(dir: &Path, integration_id: &str, report: &ImportReport) -> Result<()> {
    match &report.status {
        ImportStatus::Completed => {
            let secs = report.elapsed.as_secs_f64();
            info!(
                dataset = report.dataset_id.as_deref().unwrap_or("?"),
                package = report.package_id.as_deref().unwrap_or("?"),
                import = report.import_id.as_deref().unwrap_or("?"),
                "imported {} files ({:.1} MiB) in {secs:.1} s, {:.0} files/s; channels: {} matched, {} created",
                report.files,
                report.bytes as f64 / 1_048_576.0,
                report.files as f64 / secs.max(1e-9),
                report.channels_matched,
                report.channels_created,
            );
            Ok(())
        }
        ImportStatus::NothingToImport => {
            info!(
                "nothing to import: {} holds no channel metadata or no chunk files",
                dir.display()
            );
            Ok(())
        }
        ImportStatus::NoTargetPackage { package_ids } => {
            error!(?package_ids, "no target package");
            bail!(
                "import of {} into run {integration_id}: the run names no usable target package \
                 (package ids: {}); nothing was uploaded",
                dir.display(),
                if package_ids.is_empty() {
                    "none".to_owned()
                } else {
                    package_ids.join(", ")
                }
            )
        }
        other => bail!(
            "import of {} into run {integration_id}: unexpected outcome {other:?}",
            dir.display()
        ),
    }
}

/// Upload progress as log lines: every 100 files up to 1,000, then every 1,000.
fn upload_progress() -> pennsieve_client::ProgressFn {
    let logged = Arc::new(AtomicU64::new(0));
    Arc::new(move |files: u64, bytes: u64| {
        let step = if files < 1_000 { 100 } else { 1_000 };
        if files.is_multiple_of(step) && logged.fetch_max(files, Ordering::Relaxed) < files {
            info!(
                "uploaded {files} files ({:.1} MiB)",
                bytes as f64 / 1_048_576.0
            );
        }
    })
}
