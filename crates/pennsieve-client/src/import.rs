//! The time-series import workflow (contract §3): scan, run lookup, target package, viewer
//! properties, channels, manifest, uploads.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::FuturesUnordered;
use futures::{StreamExt, TryStreamExt};
use tokio::sync::{Semaphore, mpsc};
use ts_chunk_format::{ChannelMetadata, ChunkName, scan_output_dir};

use crate::client::{Client, ManifestEntry, NewChannel, RemoteChannel, create_import_body};
use crate::error::{Error, Result};

/// Called after every uploaded file with (files done, bytes done).
pub type ProgressFn = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// What [`import_directory`] and [`StreamingImport::begin`] need besides the client.
#[derive(Clone)]
pub struct ImportOptions {
    /// The workflow run id (`INTEGRATION_ID`).
    pub integration_id: String,
    /// Progress callback, if any.
    pub on_progress: Option<ProgressFn>,
    /// Remove each chunk file once its upload succeeded, so local disk use stays bounded. The
    /// directory then no longer holds a complete conversion (metadata files stay).
    pub delete_after_upload: bool,
}

impl ImportOptions {
    /// Options for run `integration_id` without progress reporting.
    pub fn new(integration_id: impl Into<String>) -> Self {
        ImportOptions {
            integration_id: integration_id.into(),
            on_progress: None,
            delete_after_upload: false,
        }
    }
}

impl std::fmt::Debug for ImportOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportOptions")
            .field("integration_id", &self.integration_id)
            .field(
                "on_progress",
                &self.on_progress.as_ref().map(|_| "<callback>"),
            )
            .field("delete_after_upload", &self.delete_after_upload)
            .finish()
    }
}

/// How an import ended without error.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImportStatus {
    /// Every file was registered and uploaded.
    Completed,
    /// The directory holds no channel metadata or no chunks: nothing was sent (exit 0).
    NothingToImport,
    /// The run names no usable target package (contract §6): only logged, exit 0.
    NoTargetPackage {
        /// The run's package ids.
        package_ids: Vec<String>,
    },
}

/// Counts for the binary's summary.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportReport {
    /// How it ended.
    pub status: ImportStatus,
    /// The dataset, once known.
    pub dataset_id: Option<String>,
    /// The target package or collection, once chosen.
    pub package_id: Option<String>,
    /// The import id, once created.
    pub import_id: Option<String>,
    /// Local channels that reused an existing remote channel.
    pub channels_matched: usize,
    /// Channels created.
    pub channels_created: usize,
    /// Files uploaded.
    pub files: u64,
    /// Bytes uploaded.
    pub bytes: u64,
    /// Wall time of the whole import.
    pub elapsed: Duration,
}

impl ImportReport {
    fn empty(status: ImportStatus, started: Instant) -> Self {
        ImportReport {
            status,
            dataset_id: None,
            package_id: None,
            import_id: None,
            channels_matched: 0,
            channels_created: 0,
            files: 0,
            bytes: 0,
            elapsed: started.elapsed(),
        }
    }
}

/// One chunk file of an [`ImportChannel`].
#[derive(Debug, Clone, PartialEq)]
pub struct ImportChunk {
    /// The path the file is (or will be) at, exactly as it will be handed to [`FileSender`].
    pub path: PathBuf,
    /// Its local name (`channel-NNNNN_<start>_<end>.bin.gz`), which gives the uploaded name.
    pub name: ChunkName,
}

/// One channel to import: its metadata and every chunk file it has or will have.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportChannel {
    /// The channel's metadata file; names the channel in errors (it need not exist yet).
    pub metadata_path: PathBuf,
    /// What the channel is created or matched with (name, type, rate, start, end, group, unit).
    pub metadata: ChannelMetadata,
    /// The channel's chunk files, in the order the manifest lists them.
    pub chunks: Vec<ImportChunk>,
}

/// Files queued for upload per concurrent upload: how far a producer can run ahead of the
/// uploads before [`FileSender::send_blocking`] waits.
const QUEUED_PER_UPLOAD: usize = 4;

/// Files in flight per PUT slot. A file presigns (one round trip), then waits for a slot, then
/// PUTs (another): with only one presigning per slot, presigning is as slow as the PUTs and any
/// jitter leaves slots idle; with two, a presigned URL is always waiting.
const PRESIGN_AHEAD: usize = 3;

/// What [`StreamingImport::begin`] did.
#[derive(Debug)]
#[must_use]
pub enum Begun {
    /// Channels and the whole manifest are registered: send every chunk file, then
    /// [`StreamingImport::finish`].
    Ready(StreamingImport),
    /// Nothing will be uploaded ([`ImportStatus::NothingToImport`] or
    /// [`ImportStatus::NoTargetPackage`]); the report says why.
    Nothing(ImportReport),
}

/// An import whose files are uploaded as they are handed in, e.g. while a conversion is still
/// writing later ones.
///
/// [`StreamingImport::begin`] does everything the platform needs before the bytes (run lookup,
/// target package, viewer properties, channels, the whole manifest); then each file sent through
/// a [`FileSender`] is uploaded as soon as an upload slot is free ([`Config::upload_concurrency`]
/// at a time, streamed from disk). The queue between senders and uploads holds a few files per
/// slot: when it is full, sending waits, which holds the producer back. The first file that
/// fails for good stops the import: uploads in flight are cancelled and every later send fails
/// with [`Error::ImportStopped`]; [`StreamingImport::finish`] then returns the failure.
/// Dropping a `StreamingImport` without finishing it cancels its uploads.
///
/// [`Config::upload_concurrency`]: crate::Config::upload_concurrency
#[derive(Debug)]
pub struct StreamingImport {
    sender: Option<FileSender>,
    task: Option<tokio::task::JoinHandle<Result<ImportReport>>>,
}

/// Hands completed files to a [`StreamingImport`]. Cheap to clone; usable from any thread.
#[derive(Debug, Clone)]
pub struct FileSender {
    tx: mpsc::Sender<PathBuf>,
}

impl FileSender {
    /// Queues `path` for upload, waiting while the queue is full. For threads outside an async
    /// runtime (it panics when called from async code, like tokio's `blocking_send`).
    ///
    /// # Errors
    ///
    /// [`Error::ImportStopped`] once the import has failed or was dropped; the file is not
    /// uploaded.
    pub fn send_blocking(&self, path: impl Into<PathBuf>) -> Result<()> {
        self.tx
            .blocking_send(path.into())
            .map_err(|_| Error::ImportStopped)
    }

    /// Whether the import has stopped taking files (it failed, or was dropped or finished).
    pub fn is_stopped(&self) -> bool {
        self.tx.is_closed()
    }

    /// Resolves once the import has stopped taking files, e.g. to stop producing them.
    pub async fn stopped(&self) {
        self.tx.closed().await;
    }

    /// Queues `path` for upload, waiting while the queue is full.
    ///
    /// # Errors
    ///
    /// [`Error::ImportStopped`] once the import has failed or was dropped.
    pub async fn send(&self, path: impl Into<PathBuf>) -> Result<()> {
        self.tx
            .send(path.into())
            .await
            .map_err(|_| Error::ImportStopped)
    }
}

impl StreamingImport {
    /// Looks up the run, picks the target package, sets the viewer properties, matches or creates
    /// `channels` and registers every chunk file in the manifest, then starts the uploader on
    /// the current tokio runtime. Nothing is uploaded yet.
    ///
    /// # Errors
    ///
    /// [`Error::ChannelMetadata`] for a channel that cannot be imported, and
    /// [`Error::Import`] (naming the step, every file listed as not uploaded) for a failed call.
    pub async fn begin(
        client: &Client,
        opts: &ImportOptions,
        channels: Vec<ImportChannel>,
    ) -> Result<Begun> {
        let started = Instant::now();
        let total: usize = channels.iter().map(|c| c.chunks.len()).sum();
        if channels.is_empty() || total == 0 {
            return Ok(Begun::Nothing(ImportReport::empty(
                ImportStatus::NothingToImport,
                started,
            )));
        }
        let failed_before_upload = |step: &'static str| {
            let channels = &channels;
            move |source: Error| Error::Import {
                step,
                not_uploaded: channels
                    .iter()
                    .flat_map(|c| c.chunks.iter().map(|chunk| chunk.path.clone()))
                    .collect(),
                source: Box::new(source),
            }
        };

        let run = client
            .workflow_run(&opts.integration_id)
            .await
            .map_err(failed_before_upload("look up workflow run"))?;
        let Some(package_id) = select_target_package(client, &run.package_ids).await else {
            tracing::error!(
                "workflow run {} has no usable target package (package ids: {:?}); nothing imported",
                opts.integration_id,
                run.package_ids
            );
            let mut report = ImportReport::empty(
                ImportStatus::NoTargetPackage {
                    package_ids: run.package_ids.clone(),
                },
                started,
            );
            report.dataset_id = Some(run.dataset_id);
            return Ok(Begun::Nothing(report));
        };
        tracing::info!(
            "importing {total} file(s) into {package_id} (dataset {})",
            run.dataset_id
        );

        client
            .set_viewer_properties(&package_id)
            .await
            .map_err(failed_before_upload("set viewer properties"))?;

        let remote = client
            .list_channels(&package_id)
            .await
            .map_err(failed_before_upload("list channels"))?;
        let matches =
            match_channels(&channels, &remote).map_err(failed_before_upload("match channels"))?;
        // Channels are created `upload_concurrency` at a time: one by one, a 1,024-channel
        // probe would wait a thousand round trips before its first upload.
        let concurrency = client.config().upload_concurrency.max(1);
        let node_ids: Vec<(String, bool)> = futures::stream::iter(channels.iter().zip(matches))
            .map(|(local, remote_index)| {
                let existing = remote_index.map(|index| remote[index].id.clone());
                let package_id = &package_id;
                Ok(async move {
                    if let Some(id) = existing {
                        return Ok((id, false));
                    }
                    let new_channel = NewChannel::from(&local.metadata);
                    let channel = client
                        .create_channel(package_id, &new_channel)
                        .await
                        .map_err(|source| Error::ChannelMetadata {
                            path: local.metadata_path.clone(),
                            problem: format!(
                                "cannot create channel {:?}: {source}",
                                new_channel.name
                            ),
                        })?;
                    Ok((channel.id, true))
                })
            })
            .try_buffered(concurrency)
            .try_collect()
            .await
            .map_err(failed_before_upload("create channels"))?;
        let created = node_ids.iter().filter(|(_, created)| *created).count();
        let matched = node_ids.len() - created;
        let node_ids: Vec<String> = node_ids.into_iter().map(|(id, _)| id).collect();

        // Manifest: one fresh upload key per chunk, named after its channel's node id.
        let mut entries = Vec::with_capacity(total);
        let mut paths = Vec::with_capacity(total);
        for (local, node_id) in channels.iter().zip(&node_ids) {
            for chunk in &local.chunks {
                entries.push(ManifestEntry {
                    upload_key: uuid::Uuid::new_v4().to_string(),
                    file_path: chunk.name.with_node_id(node_id).to_string(),
                });
                paths.push(chunk.path.clone());
            }
        }
        let batches = manifest_batches(
            &entries,
            &run.uuid,
            &package_id,
            client.config().max_request_body_bytes,
        );
        let mut import_id = None;
        for batch in batches {
            match &import_id {
                None => {
                    let id = client
                        .create_import(&run.dataset_id, &run.uuid, &package_id, batch)
                        .await
                        .map_err(failed_before_upload("create import"))?;
                    import_id = Some(id);
                }
                Some(id) => client
                    .append_import_files(&run.dataset_id, id, batch)
                    .await
                    .map_err(failed_before_upload("append files to import"))?,
            }
        }
        let Some(import_id) = import_id else {
            // Unreachable: `entries` is non-empty, so there is at least one batch.
            return Ok(Begun::Nothing(ImportReport::empty(
                ImportStatus::NothingToImport,
                started,
            )));
        };

        let report = ImportReport {
            status: ImportStatus::Completed,
            dataset_id: Some(run.dataset_id.clone()),
            package_id: Some(package_id),
            import_id: Some(import_id.clone()),
            channels_matched: matched,
            channels_created: created,
            files: 0,
            bytes: 0,
            elapsed: started.elapsed(),
        };
        let index = paths
            .iter()
            .enumerate()
            .map(|(i, path)| (path.clone(), i))
            .collect();
        let uploader = Uploader {
            client: client.clone(),
            options: opts.clone(),
            dataset_id: run.dataset_id,
            import_id,
            entries,
            paths,
            index,
        };
        let concurrency = client.config().upload_concurrency;
        let (tx, rx) = mpsc::channel(concurrency.saturating_mul(QUEUED_PER_UPLOAD).max(1));
        let task = tokio::spawn(uploader.run(rx, report, started));
        Ok(Begun::Ready(StreamingImport {
            sender: Some(FileSender { tx }),
            task: Some(task),
        }))
    }

    /// A sender for the files of this import. [`StreamingImport::finish`] waits until every
    /// sender is dropped.
    pub fn sender(&self) -> FileSender {
        // `sender` is only taken by `finish`, which consumes `self`.
        self.sender.clone().unwrap_or_else(|| {
            let (tx, _) = mpsc::channel(1);
            FileSender { tx }
        })
    }

    /// Waits until every sender is dropped and every file sent is uploaded, and returns the
    /// report.
    ///
    /// # Errors
    ///
    /// The first upload that failed for good, or, when the senders are gone but a file of the
    /// manifest never arrived, [`Error::FilesNotDelivered`]; both inside [`Error::Import`] with
    /// step `upload files`, listing every file not uploaded.
    pub async fn finish(mut self) -> Result<ImportReport> {
        self.sender = None;
        let Some(task) = self.task.take() else {
            return Err(Error::ImportStopped);
        };
        match task.await {
            Ok(result) => result,
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            Err(_) => Err(Error::ImportStopped),
        }
    }
}

impl Drop for StreamingImport {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Where a manifest file is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FileState {
    Waiting,
    Uploading,
    Uploaded,
}

/// The upload half of a [`StreamingImport`], run as a task.
struct Uploader {
    client: Client,
    options: ImportOptions,
    dataset_id: String,
    import_id: String,
    /// The manifest, in order, and each entry's local file.
    entries: Vec<ManifestEntry>,
    paths: Vec<PathBuf>,
    index: HashMap<PathBuf, usize>,
}

impl Uploader {
    async fn run(
        self,
        mut rx: mpsc::Receiver<PathBuf>,
        mut report: ImportReport,
        started: Instant,
    ) -> Result<ImportReport> {
        let concurrency = self.client.config().upload_concurrency;
        let put_slots = Semaphore::new(concurrency);
        let mut state = vec![FileState::Waiting; self.paths.len()];
        let mut in_flight = FuturesUnordered::new();
        let mut open = true;
        loop {
            tokio::select! {
                Some((i, sent)) = in_flight.next() => match sent {
                    Ok(bytes) => {
                        state[i] = FileState::Uploaded;
                        report.files += 1;
                        report.bytes += bytes;
                        if let Some(progress) = &self.options.on_progress {
                            progress(report.files, report.bytes);
                        }
                    }
                    // Returning drops the uploads in flight (cancelling them) and the queue, so
                    // every later send fails.
                    Err(error) => return Err(self.failed(&state, error)),
                },
                // Taking a file only when a slot is free lets the queue fill up: back-pressure.
                // Up to PRESIGN_AHEAD times as many files as PUT slots: the others presign ahead.
                received = rx.recv(), if open && in_flight.len() < PRESIGN_AHEAD * concurrency => match received {
                    None => open = false,
                    Some(path) => {
                        let reason = match self.index.get(&path) {
                            None => "it is not in the import's manifest",
                            Some(&i) if state[i] != FileState::Waiting => "it was sent twice",
                            Some(&i) => {
                                state[i] = FileState::Uploading;
                                in_flight.push(self.upload(i, &put_slots));
                                continue;
                            }
                        };
                        let error = Error::UnexpectedFile { path, reason };
                        return Err(self.failed(&state, error));
                    }
                },
                else => break,
            }
        }
        let missing = state.iter().filter(|s| **s != FileState::Uploaded).count();
        if missing > 0 {
            return Err(self.failed(&state, Error::FilesNotDelivered { missing }));
        }
        report.elapsed = started.elapsed();
        Ok(report)
    }

    /// Uploads manifest file `i`, then removes it when asked to. The URL is presigned before
    /// waiting for one of `put_slots`, so a free slot starts its PUT at once (the presign round
    /// trip overlaps other PUTs); the URL waits at most about one PUT.
    async fn upload(&self, i: usize, put_slots: &Semaphore) -> (usize, Result<u64>) {
        let path = &self.paths[i];
        let key = &self.entries[i].upload_key;
        let ahead = match self
            .client
            .presign(&self.dataset_id, &self.import_id, key)
            .await
        {
            Ok(url) => Some(url),
            Err(error) => {
                // The upload's own attempts presign again, with retries; they report failures.
                tracing::debug!("presigning ahead for {} failed: {error}", path.display());
                None
            }
        };
        // Never closed, so acquiring only waits.
        let _slot = put_slots.acquire().await.ok();
        let sent = self
            .client
            .upload_file_with(&self.dataset_id, &self.import_id, key, path, ahead)
            .await;
        if sent.is_ok()
            && self.options.delete_after_upload
            && let Err(error) = tokio::fs::remove_file(path).await
        {
            // The upload counts; only the disk space is not given back.
            tracing::warn!("cannot remove uploaded {}: {error}", path.display());
        }
        (i, sent)
    }

    fn failed(&self, state: &[FileState], source: Error) -> Error {
        Error::Import {
            step: "upload files",
            not_uploaded: self
                .paths
                .iter()
                .zip(state)
                .filter(|(_, s)| **s != FileState::Uploaded)
                .map(|(path, _)| path.clone())
                .collect(),
            source: Box::new(source),
        }
    }
}

/// Imports the converter's output directory `dir` into the run's target package: scans it, then
/// [`StreamingImport::begin`] and every chunk file sent in turn.
///
/// Fails before sending anything when the directory has problems. Any later failure is an
/// [`Error::Import`] naming the step and listing the files that were not uploaded.
pub async fn import_directory(
    client: &Client,
    dir: &Path,
    opts: &ImportOptions,
) -> Result<ImportReport> {
    let channels = local_channels(dir)?;
    let files: Vec<PathBuf> = channels
        .iter()
        .flat_map(|c| c.chunks.iter().map(|chunk| chunk.path.clone()))
        .collect();
    let import = match StreamingImport::begin(client, opts, channels).await? {
        Begun::Ready(import) => import,
        Begun::Nothing(report) => {
            if report.status == ImportStatus::NothingToImport {
                tracing::info!(
                    "{}: no channels or chunks, nothing to import",
                    dir.display()
                );
            }
            return Ok(report);
        }
    };
    let sender = import.sender();
    for path in files {
        if sender.send(path).await.is_err() {
            break; // the import failed: `finish` says why
        }
    }
    drop(sender);
    import.finish().await
}

/// Scans `dir`; any problem is an error listing them all.
fn local_channels(dir: &Path) -> Result<Vec<ImportChannel>> {
    let scan = scan_output_dir(dir).map_err(|source| Error::Scan {
        dir: dir.to_owned(),
        source,
    })?;
    if !scan.problems.is_empty() {
        return Err(Error::OutputProblems {
            dir: dir.to_owned(),
            problems: scan.problems.iter().map(ToString::to_string).collect(),
        });
    }
    let mut channels = Vec::with_capacity(scan.channels.len());
    for channel in scan.channels {
        // Without problems every channel has valid metadata and chunks.
        let (Some(metadata_path), Some(metadata)) = (channel.metadata_path, channel.metadata)
        else {
            continue;
        };
        let chunks = channel
            .chunks
            .into_iter()
            .map(|chunk| ImportChunk {
                path: chunk.path,
                name: chunk.name,
            })
            .collect();
        channels.push(ImportChannel {
            metadata_path,
            metadata,
            chunks,
        });
    }
    Ok(channels)
}

/// Contract §6: none -> none; one -> it; several -> the first `N:package:` id's parent.
async fn select_target_package(client: &Client, package_ids: &[String]) -> Option<String> {
    match package_ids {
        [] => None,
        [only] => Some(only.clone()),
        several => {
            let first = several.iter().find(|id| id.starts_with("N:package:"))?;
            match client.package_parent(first).await {
                Ok(Some(parent)) => Some(parent),
                Ok(None) => {
                    tracing::error!("package {first} has no parent (it sits at the dataset root)");
                    None
                }
                Err(error) => {
                    tracing::error!("cannot look up the parent of {first}: {error}");
                    None
                }
            }
        }
    }
}

/// For each local channel, the index of the remote channel it reuses (contract §7): same name
/// and type (case-insensitive) and rates within 2 %; the first unused match in response order.
/// Each remote channel is used at most once (the reference could map two local channels onto one).
fn match_channels(
    locals: &[ImportChannel],
    remote: &[RemoteChannel],
) -> Result<Vec<Option<usize>>> {
    let mut used = HashSet::new();
    let mut matches = Vec::with_capacity(locals.len());
    for local in locals {
        let metadata = &local.metadata;
        let problem = |problem: String| Error::ChannelMetadata {
            path: local.metadata_path.clone(),
            problem,
        };
        let local_type = metadata.channel_type.trim().to_uppercase();
        if local_type != "CONTINUOUS" && local_type != "UNIT" {
            return Err(problem(format!(
                "channel type {:?} is neither CONTINUOUS nor UNIT",
                metadata.channel_type
            )));
        }
        if !(metadata.rate.is_finite() && metadata.rate > 0.0) {
            return Err(problem(format!(
                "rate {} is not a positive number",
                metadata.rate
            )));
        }
        let name = metadata.name.trim().to_lowercase();
        let found = remote.iter().enumerate().position(|(index, r)| {
            !used.contains(&index)
                && r.name.trim().to_lowercase() == name
                && r.channel_type.trim().to_uppercase() == local_type
                && (1.0 - r.rate / metadata.rate).abs() < 0.02
        });
        if let Some(index) = found {
            used.insert(index);
        }
        matches.push(found);
    }
    Ok(matches)
}

/// Splits the manifest so every request body, measured as the exact JSON sent, stays within
/// `max_body_bytes` (a single oversized entry still goes alone). The first batch is the create
/// body, the rest are append bodies.
pub(crate) fn manifest_batches<'a>(
    entries: &'a [ManifestEntry],
    integration_id: &str,
    package_id: &str,
    max_body_bytes: usize,
) -> Vec<&'a [ManifestEntry]> {
    let create_overhead = create_import_body(integration_id, package_id, &[])
        .to_string()
        .len();
    let append_overhead = serde_json::json!({ "files": [] }).to_string().len();
    let mut batches = Vec::new();
    let mut start = 0;
    let mut size = create_overhead;
    for (index, entry) in entries.iter().enumerate() {
        let cost = serde_json::to_string(entry).map_or(0, |text| text.len());
        let separator = usize::from(index > start);
        if index > start && size + separator + cost > max_body_bytes {
            batches.push(&entries[start..index]);
            start = index;
            size = append_overhead + cost;
        } else {
            size += separator + cost;
        }
    }
    if start < entries.len() {
        batches.push(&entries[start..]);
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn local(name: &str, channel_type: &str, rate: f64) -> ImportChannel {
        let mut metadata = ChannelMetadata::continuous(name, "g", 0, 10, rate);
        metadata.channel_type = channel_type.into();
        ImportChannel {
            metadata_path: PathBuf::from(format!("{name}.metadata.json")),
            metadata,
            chunks: Vec::new(),
        }
    }

    fn remote(id: &str, name: &str, channel_type: &str, rate: f64) -> RemoteChannel {
        RemoteChannel {
            id: id.into(),
            name: name.into(),
            start: 0,
            end: 10,
            unit: "uV".into(),
            rate,
            channel_type: channel_type.into(),
            group: None,
        }
    }

    #[test]
    fn channels_match_on_name_type_and_rate_within_two_percent() {
        let remote = [
            remote("r0", "Fp1", "continuous", 1000.0),
            remote("r1", "FP2", "CONTINUOUS", 1019.9),
            remote("r2", "Fp3", "CONTINUOUS", 1020.0),
            remote("r3", "Fp4", "UNIT", 1000.0),
        ];
        let locals = [
            local("fp1", "CONTINUOUS", 1000.0),
            local("Fp2", "CONTINUOUS", 1000.0),
            local("Fp3", "CONTINUOUS", 1000.0),
            local("Fp4", "CONTINUOUS", 1000.0),
        ];
        assert_eq!(
            match_channels(&locals, &remote).unwrap(),
            [Some(0), Some(1), None, None],
            "|1 - 1020/1000| = 0.02 is not < 0.02; UNIT != CONTINUOUS"
        );
    }

    #[test]
    fn each_remote_channel_is_used_once_first_in_response_order() {
        let remote = [
            remote("a", "X", "CONTINUOUS", 500.0),
            remote("b", "x", "CONTINUOUS", 500.0),
        ];
        let locals = [
            local("X", "CONTINUOUS", 500.0),
            local("X", "CONTINUOUS", 500.0),
            local("X", "CONTINUOUS", 500.0),
        ];
        assert_eq!(
            match_channels(&locals, &remote).unwrap(),
            [Some(0), Some(1), None]
        );
    }

    #[test]
    fn bad_local_type_or_rate_names_the_file() {
        let error = match_channels(&[local("a", "SPIKES", 1.0)], &[]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "channel metadata a.metadata.json: channel type \"SPIKES\" is neither CONTINUOUS nor UNIT"
        );
        let error = match_channels(&[local("b", "unit", 0.0)], &[]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "channel metadata b.metadata.json: rate 0 is not a positive number"
        );
    }

    fn entries(names: &[String]) -> Vec<ManifestEntry> {
        names
            .iter()
            .enumerate()
            .map(|(i, name)| ManifestEntry {
                upload_key: format!("00000000-0000-4000-8000-{i:012}"),
                file_path: name.clone(),
            })
            .collect()
    }

    proptest! {
        #[test]
        fn batches_keep_order_and_respect_the_limit(
            names in proptest::collection::vec("[a-zA-Z0-9:_.-]{0,120}", 1..200),
            limit in 100usize..5000,
        ) {
            let entries = entries(&names);
            let batches = manifest_batches(&entries, "run-uuid", "N:package:p", limit);
            let flattened: Vec<&ManifestEntry> = batches.iter().flat_map(|b| b.iter()).collect();
            prop_assert_eq!(flattened, entries.iter().collect::<Vec<_>>());
            for (i, batch) in batches.iter().enumerate() {
                prop_assert!(!batch.is_empty());
                let body = if i == 0 {
                    create_import_body("run-uuid", "N:package:p", batch).to_string()
                } else {
                    serde_json::json!({ "files": batch }).to_string()
                };
                prop_assert!(batch.len() == 1 || body.len() <= limit, "batch {} is {} bytes", i, body.len());
                // Greedy: the next entry would not have fitted.
                if let Some(next) = batches.get(i + 1) {
                    let mut grown = batch.to_vec();
                    grown.push(next[0].clone());
                    let grown_body = if i == 0 {
                        create_import_body("run-uuid", "N:package:p", &grown).to_string()
                    } else {
                        serde_json::json!({ "files": grown }).to_string()
                    };
                    prop_assert!(grown_body.len() > limit);
                }
            }
        }
    }

    #[test]
    fn typical_names_fill_a_default_batch() {
        let name = "N:channel:0b4a1a5e-51ab-4d6e-9a53-4b5b3b1f6c77_1549968912000000_1549968926998750.bin.gz";
        let entries = entries(&vec![name.to_owned(); 12_000]);
        let batches = manifest_batches(&entries, "r", "p", 838_860);
        // Worked out independently: each entry is 155 bytes of compact JSON plus a comma; the create
        // body without files is 77 bytes, the append body 12: floor((838_860 - 77 + 1) / 156) = 5376
        // and floor((838_860 - 12 + 1) / 156) = 5377.
        assert_eq!(
            batches.iter().map(|b| b.len()).collect::<Vec<_>>(),
            [5376, 5377, 1247]
        );
    }
}
