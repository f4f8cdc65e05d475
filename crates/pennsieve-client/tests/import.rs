//! Full imports against the fake: every chunk arrives once with identical bytes, the manifest
//! lists every file once, channels are matched or created per the contract.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::*;
use pennsieve_client::{Error, ImportOptions, ImportStatus, import_directory};
use pennsieve_fake::{FakeConfig, FakePackage, FakeRoute, FakeRun, FakeState, ids};
use ts_chunk_format::{ChannelRef, ChunkName};

/// Checks that the fake received exactly the files in `written`, once each, byte for byte, under
/// upload names `<node id>_<start>_<end>.bin.gz` with one node id per local channel; returns
/// local channel index -> node id.
fn assert_every_chunk_arrived_once(
    state: &FakeState,
    written: &[(PathBuf, ChunkName)],
) -> HashMap<u32, String> {
    assert_eq!(state.imports.len(), 1, "one import");
    let import = &state.imports[0];
    assert_eq!(
        import.files.len(),
        written.len(),
        "manifest lists every file"
    );
    // (start, end) -> (node id, upload key); the helpers give every chunk distinct times.
    let mut manifest: HashMap<(i64, i64), (String, &str)> = HashMap::new();
    for entry in &import.files {
        assert_eq!(
            uuid::Uuid::parse_str(&entry.upload_key)
                .unwrap()
                .get_version_num(),
            4
        );
        let name: ChunkName = entry.file_path.parse().unwrap();
        let ChannelRef::NodeId(node_id) = &name.channel else {
            panic!("{} is not named by node id", entry.file_path)
        };
        let previous = manifest.insert(
            (name.start_us, name.end_us),
            (node_id.clone(), entry.upload_key.as_str()),
        );
        assert!(previous.is_none(), "{} listed twice", entry.file_path);
    }
    let mut bodies: HashMap<&str, &[u8]> = HashMap::new();
    for upload in &state.uploads {
        assert_eq!(upload.import_id, import.id);
        let previous = bodies.insert(upload.upload_key.as_str(), &upload.body[..]);
        assert!(
            previous.is_none(),
            "upload key {} uploaded twice",
            upload.upload_key
        );
    }
    assert_eq!(bodies.len(), written.len(), "one upload per file");
    let mut node_ids: HashMap<u32, String> = HashMap::new();
    for (path, local) in written {
        let ChannelRef::Index(index) = local.channel else {
            panic!("{local} is not local")
        };
        let (node_id, key) = &manifest[&(local.start_us, local.end_us)];
        assert_eq!(
            node_ids.entry(index).or_insert_with(|| node_id.clone()),
            node_id,
            "channel {index}"
        );
        assert_eq!(
            bodies[key],
            &std::fs::read(path).unwrap()[..],
            "bytes of {}",
            path.display()
        );
    }
    let distinct: std::collections::HashSet<&String> = node_ids.values().collect();
    assert_eq!(
        distinct.len(),
        node_ids.len(),
        "each local channel has its own remote channel"
    );
    node_ids
}

fn specs() -> Vec<ChannelSpec> {
    vec![
        ChannelSpec {
            name: "Fp1",
            rate: 1000.0,
            chunks: 3,
            samples_per_chunk: 100,
        },
        ChannelSpec {
            name: "Fp2",
            rate: 1000.0,
            chunks: 3,
            samples_per_chunk: 100,
        },
        ChannelSpec {
            name: "Cz",
            rate: 1000.0,
            chunks: 3,
            samples_per_chunk: 100,
        },
    ]
}

#[tokio::test]
async fn full_import_matches_creates_and_uploads_everything_once() {
    let fake = fake(FakeConfig {
        channels: vec![
            // Matches Fp2 (case-insensitive, rate within 2 %).
            (
                ids::PACKAGE.into(),
                remote_channel_dto(
                    "N:channel:aaaaaaaa-0000-4000-8000-000000000002",
                    "FP2",
                    1010.0,
                ),
            ),
            // Same name as Fp1 but a rate 5 % off: not a match.
            (
                ids::PACKAGE.into(),
                remote_channel_dto(
                    "N:channel:aaaaaaaa-0000-4000-8000-000000000001",
                    "Fp1",
                    1050.0,
                ),
            ),
        ],
        ..FakeConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let written = write_output(dir.path(), &specs());
    let progress = Arc::new(AtomicU64::new(0));
    let seen = progress.clone();
    let opts = ImportOptions {
        integration_id: ids::RUN.into(),
        on_progress: Some(Arc::new(move |files, _bytes| {
            seen.fetch_max(files, Ordering::SeqCst);
        })),
        ..ImportOptions::new(ids::RUN)
    };
    let report = import_directory(&session_client(&fake), dir.path(), &opts)
        .await
        .unwrap();

    let state = fake.state();
    let node_ids = assert_every_chunk_arrived_once(&state, &written);
    assert_eq!(report.status, ImportStatus::Completed);
    assert_eq!((report.channels_matched, report.channels_created), (1, 2));
    assert_eq!(report.files, 9);
    let total: u64 = written
        .iter()
        .map(|(p, _)| std::fs::metadata(p).unwrap().len())
        .sum();
    assert_eq!(report.bytes, total);
    assert_eq!(progress.load(Ordering::SeqCst), 9);
    assert_eq!(report.package_id.as_deref(), Some(ids::PACKAGE));
    assert_eq!(report.dataset_id.as_deref(), Some(ids::DATASET));
    assert_eq!(
        report.import_id.as_deref(),
        Some(state.imports[0].id.as_str())
    );

    // Fp2 reused the existing channel; Fp1 and Cz were created with their metadata.
    assert_eq!(
        node_ids[&1],
        "N:channel:aaaaaaaa-0000-4000-8000-000000000002"
    );
    // Created several at a time: compared in name order.
    let mut created: Vec<(&str, &str)> = state
        .created_channels
        .iter()
        .map(|c| (c.request["name"].as_str().unwrap(), c.id.as_str()))
        .collect();
    created.sort();
    assert_eq!(
        created,
        [
            ("Cz", node_ids[&2].as_str()),
            ("Fp1", node_ids[&0].as_str())
        ]
    );
    let fp1 = &state
        .created_channels
        .iter()
        .find(|c| c.request["name"] == "Fp1")
        .unwrap()
        .request;
    assert_eq!(fp1["start"], 1_600_000_000_000_000i64);
    assert_eq!(
        fp1["end"],
        1_600_000_000_000_000i64 + 299_000,
        "3 chunks of 100 samples at 1 kHz"
    );
    assert_eq!(fp1["rate"], 1000.0);
    assert_eq!(fp1["channelType"], "CONTINUOUS");
    assert_eq!(fp1["group"], "shank0");

    let import = &state.imports[0];
    assert_eq!(
        (import.integration_id.as_str(), import.package_id.as_str()),
        (ids::RUN, ids::PACKAGE)
    );
    assert_eq!(state.property_updates.len(), 1);
    // Uploads start only after the manifest is complete.
    let first_presign = state
        .requests
        .iter()
        .position(|r| r.route == Some(FakeRoute::Presign))
        .unwrap();
    let last_manifest = state
        .requests
        .iter()
        .rposition(|r| {
            matches!(
                r.route,
                Some(FakeRoute::CreateImport | FakeRoute::AppendFiles)
            )
        })
        .unwrap();
    assert!(last_manifest < first_presign);
}

#[tokio::test]
async fn several_packages_target_the_first_packages_parent() {
    let fake = fake(FakeConfig {
        runs: vec![FakeRun {
            id: "multi".into(),
            dataset_id: ids::DATASET.into(),
            data_sources: vec![
                ("a".into(), vec![ids::COLLECTION.into()]),
                (
                    "b".into(),
                    vec![ids::PACKAGE.into(), "N:package:other".into()],
                ),
            ],
        }],
        ..FakeConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let written = write_output(dir.path(), &specs()[..1]);
    let report = import_directory(
        &session_client(&fake),
        dir.path(),
        &ImportOptions::new("multi"),
    )
    .await
    .unwrap();
    assert_eq!(report.package_id.as_deref(), Some(ids::COLLECTION));
    let state = fake.state();
    assert_every_chunk_arrived_once(&state, &written);
    assert_eq!(state.imports[0].package_id, ids::COLLECTION);
    assert_eq!(state.created_channels[0].package_id, ids::COLLECTION);
    assert_eq!(state.property_updates[0].0, ids::COLLECTION);
    assert_eq!(state.imports[0].integration_id, "multi");
}

#[tokio::test]
async fn no_usable_target_package_stops_quietly() {
    let cases: Vec<(Vec<String>, Vec<FakePackage>)> = vec![
        (vec![], vec![]),
        (
            vec!["N:collection:a".into(), "N:collection:b".into()],
            vec![],
        ),
        // The package sits at the dataset root: no parent.
        (
            vec![ids::COLLECTION.into(), "N:package:root".into()],
            vec![FakePackage {
                id: "N:package:root".into(),
                package_type: "TimeSeries".into(),
                parent: None,
            }],
        ),
        // Lookup fails (unknown package).
        (
            vec!["N:collection:x".into(), "N:package:unknown".into()],
            vec![],
        ),
    ];
    for (package_ids, packages) in cases {
        let fake = fake(FakeConfig {
            runs: vec![FakeRun {
                id: "r".into(),
                dataset_id: ids::DATASET.into(),
                data_sources: vec![("s".into(), package_ids.clone())],
            }],
            packages,
            ..FakeConfig::default()
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        write_output(dir.path(), &specs()[..1]);
        let report = import_directory(&session_client(&fake), dir.path(), &ImportOptions::new("r"))
            .await
            .unwrap();
        assert_eq!(
            report.status,
            ImportStatus::NoTargetPackage {
                package_ids: package_ids.clone()
            }
        );
        let state = fake.state();
        assert!(
            state.imports.is_empty()
                && state.uploads.is_empty()
                && state.created_channels.is_empty()
        );
        assert!(state.property_updates.is_empty());
    }
}

#[tokio::test]
async fn an_empty_directory_sends_nothing() {
    let fake = fake(FakeConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("unrelated.txt"), "x").unwrap();
    let report = import_default_run(&fake, dir.path()).await.unwrap();
    assert_eq!(report.status, ImportStatus::NothingToImport);
    assert_eq!(fake.state().requests.len(), 0);
}

#[tokio::test]
async fn directory_problems_are_listed_and_nothing_is_sent() {
    let fake = fake(FakeConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    write_output(dir.path(), &specs()[..1]);
    std::fs::write(dir.path().join("channel-00007_5_9.bin.gz"), "orphan").unwrap();
    std::fs::write(dir.path().join("channel-00008.metadata.json"), "{not json").unwrap();
    let error = import_default_run(&fake, dir.path()).await.unwrap_err();
    let Error::OutputProblems { problems, .. } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(problems.len(), 3, "{problems:#?}");
    let message = error.to_string();
    assert!(
        message.contains("has 3 problem(s), nothing was imported"),
        "{message}"
    );
    assert!(
        message.contains("channel 7 has 1 chunk(s) but no metadata file"),
        "{message}"
    );
    assert_eq!(fake.state().requests.len(), 0);
}

#[tokio::test]
async fn small_request_limits_split_the_manifest_into_appends() {
    let fake = fake(FakeConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let written = write_output(
        dir.path(),
        &[ChannelSpec {
            name: "A",
            rate: 500.0,
            chunks: 40,
            samples_per_chunk: 4,
        }],
    );
    let client = client_with(&fake, |c| c.max_request_body_bytes = 1000);
    import_directory(&client, dir.path(), &ImportOptions::new(ids::RUN))
        .await
        .unwrap();
    let state = fake.state();
    assert_every_chunk_arrived_once(&state, &written);
    // ~140-byte entries, <= 1000-byte bodies: 40 files need at least 6 requests.
    assert!(
        state.imports[0].append_calls >= 5,
        "{}",
        state.imports[0].append_calls
    );
    // Manifest order follows the chunk order (by channel, then time).
    let starts: Vec<i64> = state.imports[0]
        .files
        .iter()
        .map(|f| f.file_path.parse::<ChunkName>().unwrap().start_us)
        .collect();
    let mut sorted = starts.clone();
    sorted.sort();
    assert_eq!(starts, sorted);
}

#[tokio::test]
async fn blank_channel_names_fail_naming_the_metadata_file_and_every_file() {
    let fake = fake(FakeConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let written = write_output(
        dir.path(),
        &[
            ChannelSpec {
                name: "ok",
                rate: 500.0,
                chunks: 2,
                samples_per_chunk: 4,
            },
            ChannelSpec {
                name: " ",
                rate: 500.0,
                chunks: 2,
                samples_per_chunk: 4,
            },
        ],
    );
    let error = import_default_run(&fake, dir.path()).await.unwrap_err();
    let Error::Import {
        step, not_uploaded, ..
    } = &error
    else {
        panic!("{error:?}")
    };
    assert_eq!(*step, "create channels");
    assert_eq!(not_uploaded.len(), written.len());
    let message = chain(&error);
    let metadata = dir.path().join("channel-00001.metadata.json");
    assert!(
        message.starts_with("import step `create channels` failed (4 file(s) not uploaded: "),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "): channel metadata {}: cannot create channel \"\": POST http://",
            metadata.display()
        )),
        "{message}"
    );
    assert!(message.contains("HTTP 400"), "{message}");
    assert!(
        message.contains("channel name must not be blank"),
        "{message}"
    );
    assert!(message.contains("(4 file(s) not uploaded: "), "{message}");
    assert!(fake.state().uploads.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_small_chunks_arrive_exactly_once() {
    let fake = fake(FakeConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let specs: Vec<ChannelSpec> = (0..10)
        .map(|_| ChannelSpec {
            name: "E",
            rate: 1000.0,
            chunks: 1000,
            samples_per_chunk: 2,
        })
        .collect();
    let written = write_output(dir.path(), &specs);
    assert_eq!(written.len(), 10_000);
    let report = import_default_run(&fake, dir.path()).await.unwrap();
    assert_eq!(report.files, 10_000);
    assert_eq!((report.channels_created, report.channels_matched), (10, 0));
    let state = fake.state();
    assert_every_chunk_arrived_once(&state, &written);
    // 10,000 entries of ~155 bytes need two manifest requests under the default limit.
    assert_eq!(state.imports[0].append_calls, 1);
}
