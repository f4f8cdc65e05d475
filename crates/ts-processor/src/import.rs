//! Importing converted files into Pennsieve. The workflow lives in `pennsieve-client`; this module
//! turns settings into a client, runs it on a tokio runtime and decides the exit status.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result, bail};
use pennsieve_client::{
    Begun, Client, ImportChannel, ImportOptions, ImportReport, ImportStatus, StreamingImport,
    import_directory,
};
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
    let importer = Importer::new(settings)?;
    info!(run = %importer.integration_id, dir = %dir.display(), "importing into Pennsieve");
    let report = importer
        .runtime
        .block_on(import_directory(&importer.client, dir, &importer.options))
        .with_context(|| importer.context(dir))?;
    importer.finish(dir, &report)
}

/// A client and an async runtime for one import (a whole directory, or streamed while
/// converting, see `convert::convert_and_import`).
pub struct Importer {
    runtime: tokio::runtime::Runtime,
    client: Client,
    options: ImportOptions,
    integration_id: String,
}

impl Importer {
    /// Sets up the client and the runtime for `settings`; nothing is sent yet.
    pub fn new(settings: ImportSettings) -> Result<Self> {
        let ImportSettings {
            client,
            credentials,
            integration_id,
            delete_after_upload,
        } = settings;
        let client = Client::new(client, credentials).context("setting up the Pennsieve client")?;
        let mut options = ImportOptions::new(integration_id.clone());
        options.on_progress = Some(upload_progress());
        options.delete_after_upload = delete_after_upload;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        Ok(Importer {
            runtime,
            client,
            options,
            integration_id,
        })
    }

    /// Whether uploaded files are removed.
    pub fn deletes_after_upload(&self) -> bool {
        self.options.delete_after_upload
    }

    /// Registers `channels` and their files (channels, manifest) before any file exists.
    pub fn begin(&self, dir: &Path, channels: Vec<ImportChannel>) -> Result<Begun> {
        info!(run = %self.integration_id, dir = %dir.display(), "importing into Pennsieve while converting");
        self.runtime
            .block_on(with_heartbeat(StreamingImport::begin(
                &self.client,
                &self.options,
                channels,
            )))
            .with_context(|| self.context(dir))
    }

    /// Waits for the uploads still queued once every file was sent (or the first failure).
    pub fn wait(&self, dir: &Path, import: StreamingImport) -> Result<ImportReport> {
        self.runtime
            .block_on(with_heartbeat(import.finish()))
            .with_context(|| self.context(dir))
    }

    fn context(&self, dir: &Path) -> String {
        format!(
            "import of {} into run {}",
            dir.display(),
            self.integration_id
        )
    }

    /// Logs the outcome, or fails for a run without a target package.
    pub fn finish(&self, dir: &Path, report: &ImportReport) -> Result<()> {
        finish(dir, &self.integration_id, report)
    }
}

/// Runs `work` (network calls only, each within the client's call deadline) while telling a
/// supervisor that the process is alive: no HDF5 code runs meanwhile, so beating cannot hide a
/// hung conversion.
async fn with_heartbeat<T>(work: impl std::future::Future<Output = T>) -> T {
    let pulse = tokio::spawn(async {
        loop {
            ts_convert::isolation::heartbeat();
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    });
    let result = work.await;
    pulse.abort();
    result
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

/// Upload progress as log lines: every 100 files up to 1,000, then every 1,000. Each upload is
/// also a heartbeat for the supervisor: a conversion waiting for upload slots is not stuck.
fn upload_progress() -> pennsieve_client::ProgressFn {
    let logged = Arc::new(AtomicU64::new(0));
    Arc::new(move |files: u64, bytes: u64| {
        ts_convert::isolation::heartbeat();
        let step = if files < 1_000 { 100 } else { 1_000 };
        if files.is_multiple_of(step) && logged.fetch_max(files, Ordering::Relaxed) < files {
            info!(
                "uploaded {files} files ({:.1} MiB)",
                bytes as f64 / 1_048_576.0
            );
        }
    })
}
