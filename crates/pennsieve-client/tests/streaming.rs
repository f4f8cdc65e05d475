//! `StreamingImport`: channels and manifest first, then each file uploaded as it is handed in.
//! Compared with `import_directory` (the two-phase path), checked for uploads that start before
//! the producer has written everything, and for failures on either side.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use pennsieve_client::{
    Begun, Error, ImportChannel, ImportChunk, ImportOptions, StreamingImport, import_directory,
};
use pennsieve_fake::{FakeConfig, FakePennsieve, FakeRoute, FakeState, ids};
use ts_chunk_format::{ChannelMetadata, ChunkName, metadata_file_name};

/// Guards against a hang only: a broken streaming import would wait forever.
const HANG_GUARD: Duration = Duration::from_secs(120);

fn specs() -> Vec<ChannelSpec> {
    ["Fp1", "Fp2", "Cz"]
        .into_iter()
        .map(|name| ChannelSpec {
            name,
            rate: 1000.0,
            chunks: 4,
            samples_per_chunk: 50,
        })
        .collect()
}

/// What a producer knows in advance of `written` (as a converter knows from its plan): each
/// channel's metadata (read back here) and its chunk files.
fn channels_of(dir: &Path, written: &[(PathBuf, ChunkName)]) -> Vec<ImportChannel> {
    let mut channels: Vec<ImportChannel> = Vec::new();
    for (path, name) in written {
        let ts_chunk_format::ChannelRef::Index(index) = name.channel else {
            panic!("{name} is not local")
        };
        if channels.len() <= index as usize {
            let metadata_path = dir.join(metadata_file_name(index));
            let metadata: ChannelMetadata =
                serde_json::from_slice(&std::fs::read(&metadata_path).unwrap()).unwrap();
            channels.push(ImportChannel {
                metadata_path,
                metadata,
                chunks: Vec::new(),
            });
        }
        channels[index as usize].chunks.push(ImportChunk {
            path: path.clone(),
            name: name.clone(),
        });
    }
    channels
}

async fn begin(
    fake: &FakePennsieve,
    opts: &ImportOptions,
    channels: Vec<ImportChannel>,
) -> StreamingImport {
    match StreamingImport::begin(&session_client(fake), opts, channels)
        .await
        .unwrap()
    {
        Begun::Ready(import) => import,
        Begun::Nothing(report) => panic!("nothing to import: {report:?}"),
    }
}

/// Uploaded name -> bytes.
fn uploaded_by_name(state: &FakeState) -> HashMap<String, Vec<u8>> {
    let import = &state.imports[0];
    let names: HashMap<&str, &str> = import
        .files
        .iter()
        .map(|e| (e.upload_key.as_str(), e.file_path.as_str()))
        .collect();
    state
        .uploads
        .iter()
        .map(|u| (names[u.upload_key.as_str()].to_owned(), u.body.to_vec()))
        .collect()
}

/// Replaces channel node ids (random per fake) by what the channel's creation asked for
/// (channels are created several at a time, so creation order is not fixed).
fn normalise(name: &str, state: &FakeState) -> String {
    let mut name = name.to_owned();
    for channel in &state.created_channels {
        name = name.replace(&channel.id, &format!("channel{}", channel.request));
    }
    name
}

#[tokio::test]
async fn streaming_registers_and_uploads_the_same_as_import_directory() {
    let dir = tempfile::tempdir().unwrap();
    let written = write_output(dir.path(), &specs());

    let two_phase = fake(FakeConfig::default()).await;
    import_directory(
        &session_client(&two_phase),
        dir.path(),
        &ImportOptions::new(ids::RUN),
    )
    .await
    .unwrap();

    let streamed = fake(FakeConfig::default()).await;
    let import = begin(
        &streamed,
        &ImportOptions::new(ids::RUN),
        channels_of(dir.path(), &written),
    )
    .await;
    let sender = import.sender();
    // Any arrival order: here the last file first.
    for (path, _) in written.iter().rev() {
        sender.send(path).await.unwrap();
    }
    drop(sender);
    let report = import.finish().await.unwrap();
    assert_eq!(report.files, written.len() as u64);
    assert_eq!(report.channels_created, 3);

    let (a, b) = (two_phase.state(), streamed.state());
    let requests = |s: &FakeState| -> Vec<_> {
        s.created_channels
            .iter()
            .map(|c| c.request.clone())
            .collect()
    };
    assert_eq!(requests(&a), requests(&b), "same channels, same order");
    assert_eq!(a.property_updates, b.property_updates);
    let manifest = |s: &FakeState| -> Vec<String> {
        s.imports[0]
            .files
            .iter()
            .map(|e| normalise(&e.file_path, s))
            .collect()
    };
    assert_eq!(manifest(&a), manifest(&b), "same manifest, same order");
    assert_eq!(b.imports[0].files.len(), written.len());
    let bytes = |s: &FakeState| -> HashMap<String, Vec<u8>> {
        uploaded_by_name(s)
            .into_iter()
            .map(|(name, body)| (normalise(&name, s), body))
            .collect()
    };
    assert_eq!(bytes(&a), bytes(&b), "same bytes under the same names");
    assert_eq!(b.uploads.len(), written.len(), "each file once");
}

#[tokio::test]
async fn files_upload_while_later_ones_are_not_written_yet() {
    let fake = fake(FakeConfig::default()).await;
    let plan_dir = tempfile::tempdir().unwrap();
    let written = write_output(plan_dir.path(), &specs());
    let channels = channels_of(plan_dir.path(), &written);
    // The producer's real directory starts empty: files appear one by one.
    let dir = tempfile::tempdir().unwrap();
    let at = |path: &Path| dir.path().join(path.file_name().unwrap());
    let channels = channels
        .into_iter()
        .map(|mut c| {
            for chunk in &mut c.chunks {
                chunk.path = at(&chunk.path);
            }
            c
        })
        .collect();
    let (uploaded_tx, mut uploaded_rx) = tokio::sync::mpsc::unbounded_channel();
    let opts = ImportOptions {
        on_progress: Some(std::sync::Arc::new(move |files, _| {
            let _ = uploaded_tx.send(files);
        })),
        ..ImportOptions::new(ids::RUN)
    };
    let import = begin(&fake, &opts, channels).await;
    let sender = import.sender();
    for (i, (source, _)) in written.iter().enumerate() {
        std::fs::copy(source, at(source)).unwrap();
        sender.send(at(source)).await.unwrap();
        // The next file is written only once this one has been uploaded.
        let files = tokio::time::timeout(HANG_GUARD, uploaded_rx.recv())
            .await
            .expect("an upload while the producer waits")
            .unwrap();
        assert_eq!(files, i as u64 + 1);
        assert_eq!(fake.state().uploads.len(), i + 1);
    }
    drop(sender);
    let report = import.finish().await.unwrap();
    assert_eq!(report.files, written.len() as u64);
}

#[tokio::test]
async fn a_file_that_never_arrives_fails_the_import() {
    let fake = fake(FakeConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let written = write_output(dir.path(), &specs());
    let import = begin(
        &fake,
        &ImportOptions::new(ids::RUN),
        channels_of(dir.path(), &written),
    )
    .await;
    let sender = import.sender();
    let (missing, sent) = written.split_last().unwrap();
    for (path, _) in sent {
        sender.send(path).await.unwrap();
    }
    drop(sender);
    let error = import.finish().await.unwrap_err();
    let Error::Import {
        step,
        not_uploaded,
        source,
    } = &error
    else {
        panic!("{error:?}")
    };
    assert_eq!(*step, "upload files");
    assert_eq!(not_uploaded, &vec![missing.0.clone()]);
    assert!(
        matches!(**source, Error::FilesNotDelivered { missing: 1 }),
        "{source:?}"
    );
    assert_eq!(fake.state().uploads.len(), sent.len());
}

#[tokio::test]
async fn unknown_and_repeated_files_fail_the_import() {
    for repeat in [false, true] {
        let fake = fake(FakeConfig::default()).await;
        let dir = tempfile::tempdir().unwrap();
        let written = write_output(dir.path(), &specs());
        let import = begin(
            &fake,
            &ImportOptions::new(ids::RUN),
            channels_of(dir.path(), &written),
        )
        .await;
        let sender = import.sender();
        sender.send(&written[0].0).await.unwrap();
        let odd = if repeat {
            written[0].0.clone()
        } else {
            dir.path().join("channel-00099_1_2.bin.gz")
        };
        sender.send(&odd).await.unwrap();
        drop(sender);
        let error = import.finish().await.unwrap_err();
        let message = chain(&error);
        let reason = if repeat {
            "it was sent twice"
        } else {
            "it is not in the import's manifest"
        };
        assert!(message.contains(reason), "{message}");
        assert!(message.contains(&odd.display().to_string()), "{message}");
    }
}

#[tokio::test]
async fn an_upload_failure_stops_the_import_and_refuses_later_files() {
    // Presign refused even after a session renewal: a permission error, not retried.
    let fake = fake(FakeConfig {
        fail_first: vec![(FakeRoute::Presign, 1000)],
        fail_status: 403,
        ..FakeConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let written = write_output(dir.path(), &specs());
    let import = begin(
        &fake,
        &ImportOptions::new(ids::RUN),
        channels_of(dir.path(), &written),
    )
    .await;
    let sender = import.sender();
    sender.send(&written[0].0).await.unwrap();
    tokio::time::timeout(HANG_GUARD, sender.stopped())
        .await
        .expect("the import stops");
    assert!(sender.is_stopped());
    assert!(matches!(
        sender.send(&written[1].0).await,
        Err(Error::ImportStopped)
    ));
    drop(sender);
    let error = import.finish().await.unwrap_err();
    let Error::Import {
        step,
        not_uploaded,
        source,
    } = &error
    else {
        panic!("{error:?}")
    };
    assert_eq!(*step, "upload files");
    assert_eq!(not_uploaded.len(), written.len(), "nothing was uploaded");
    assert!(matches!(**source, Error::Upload { .. }), "{source:?}");
    assert!(fake.state().uploads.is_empty());
}

#[tokio::test]
async fn delete_after_upload_leaves_metadata_and_no_chunks() {
    let fake = fake(FakeConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let written = write_output(dir.path(), &specs());
    let originals: Vec<Vec<u8>> = written
        .iter()
        .map(|(p, _)| std::fs::read(p).unwrap())
        .collect();
    let opts = ImportOptions {
        delete_after_upload: true,
        ..ImportOptions::new(ids::RUN)
    };
    let report = import_directory(&session_client(&fake), dir.path(), &opts)
        .await
        .unwrap();
    assert_eq!(report.files, written.len() as u64);
    for (path, _) in &written {
        assert!(!path.exists(), "{} is still there", path.display());
    }
    for index in 0..specs().len() as u32 {
        assert!(dir.path().join(metadata_file_name(index)).exists());
    }
    let mut uploaded: Vec<Vec<u8>> = fake
        .state()
        .uploads
        .iter()
        .map(|u| u.body.to_vec())
        .collect();
    let mut expected = originals;
    uploaded.sort();
    expected.sort();
    assert_eq!(
        uploaded, expected,
        "every file arrived whole before it was removed"
    );
}

#[tokio::test]
async fn dropping_a_streaming_import_refuses_further_files() {
    let fake = fake(FakeConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let written = write_output(dir.path(), &specs());
    let import = begin(
        &fake,
        &ImportOptions::new(ids::RUN),
        channels_of(dir.path(), &written),
    )
    .await;
    let sender = import.sender();
    drop(import);
    tokio::time::timeout(HANG_GUARD, sender.stopped())
        .await
        .expect("the import stops");
    assert!(matches!(
        sender.send(&written[0].0).await,
        Err(Error::ImportStopped)
    ));
}
