//! Every typed endpoint against the fake server.

mod common;

use common::*;
use pennsieve_client::{Error, ManifestEntry, NewChannel, RemoteChannel};
use pennsieve_fake::{FakeConfig, FakePackage, FakeRoute, FakeRun, ids};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn entry(key: &str, name: &str) -> ManifestEntry {
    ManifestEntry {
        upload_key: key.into(),
        file_path: name.into(),
    }
}

#[tokio::test]
async fn workflow_run_keeps_data_source_order() {
    let fake = fake(FakeConfig {
        runs: vec![FakeRun {
            id: "run-a".into(),
            dataset_id: ids::DATASET.into(),
            data_sources: vec![
                (
                    "zeta".into(),
                    vec!["N:package:z1".into(), "N:package:z2".into()],
                ),
                ("alpha".into(), vec![]),
                ("mid".into(), vec!["N:collection:m".into()]),
            ],
        }],
        ..FakeConfig::default()
    })
    .await;
    let run = session_client(&fake).workflow_run("run-a").await.unwrap();
    assert_eq!(run.uuid, "run-a");
    assert_eq!(run.dataset_id, ids::DATASET);
    assert_eq!(
        run.package_ids,
        ["N:package:z1", "N:package:z2", "N:collection:m"]
    );
}

#[tokio::test]
async fn unknown_runs_and_empty_dataset_ids_are_not_found() {
    let fake = fake(FakeConfig {
        runs: vec![FakeRun {
            id: "zero".into(),
            dataset_id: String::new(),
            data_sources: vec![],
        }],
        ..FakeConfig::default()
    })
    .await;
    let client = session_client(&fake);
    for run_id in ["zero", "missing"] {
        let error = client.workflow_run(run_id).await.unwrap_err();
        assert!(
            matches!(&error, Error::WorkflowRunNotFound { run_id: id, .. } if id == run_id),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(message.starts_with(&format!("workflow run {run_id} not found (GET http://")));
        assert!(message.ends_with(&format!("/api2/compute/workflows/runs/{run_id})")));
    }
}

#[tokio::test]
async fn package_parent_is_the_parent_node_id_or_none_at_the_root() {
    let fake = fake(FakeConfig::default()).await;
    let client = session_client(&fake);
    assert_eq!(
        client
            .package_parent(ids::PACKAGE)
            .await
            .unwrap()
            .as_deref(),
        Some(ids::COLLECTION)
    );
    assert_eq!(client.package_parent(ids::COLLECTION).await.unwrap(), None);
    let error = client.package_parent("N:package:nope").await.unwrap_err();
    assert!(
        matches!(error, Error::Status { status: 404, .. }),
        "{error:?}"
    );
    let logged = &fake.state().requests;
    let query = logged
        .iter()
        .find(|r| r.route == Some(FakeRoute::GetPackage))
        .and_then(|r| r.query.clone());
    assert_eq!(
        query.as_deref(),
        Some("includeAncestors=true&startAtEpoch=false&limit=100&offset=0")
    );
}

#[tokio::test]
async fn viewer_properties_send_the_contract_body() {
    let fake = fake(FakeConfig::default()).await;
    session_client(&fake)
        .set_viewer_properties(ids::COLLECTION)
        .await
        .unwrap();
    let state = fake.state();
    assert_eq!(
        state.property_updates,
        [(
            ids::COLLECTION.to_owned(),
            json!({"properties": [
                {"key": "subtype", "value": "pennsieve_timeseries", "dataType": "string",
                 "category": "Viewer", "fixed": false, "hidden": true},
                {"key": "icon", "value": "timeseries", "dataType": "string",
                 "category": "Pennsieve", "fixed": false, "hidden": true}]})
        )]
    );
    let request = state
        .requests
        .iter()
        .find(|r| r.route == Some(FakeRoute::PutPackage))
        .unwrap();
    assert_eq!(request.query.as_deref(), Some("updateStorage=true"));
}

#[tokio::test]
async fn channels_are_listed_with_missing_group_and_created_with_201() {
    let fake = fake(FakeConfig {
        channels: vec![(
            ids::PACKAGE.into(),
            remote_channel_dto("N:channel:existing", "Fp1", 256.0),
        )],
        ..FakeConfig::default()
    })
    .await;
    let client = session_client(&fake);
    let listed = client.list_channels(ids::PACKAGE).await.unwrap();
    assert_eq!(
        listed,
        [RemoteChannel {
            id: "N:channel:existing".into(),
            name: "Fp1".into(),
            start: 1,
            end: 2,
            unit: "uV".into(),
            rate: 256.0,
            channel_type: "CONTINUOUS".into(),
            group: None,
        }]
    );

    let new_channel = NewChannel {
        name: "  Cz ".into(),
        start: 10,
        end: 20,
        unit: "uV".into(),
        rate: 1000.0,
        channel_type: "CONTINUOUS".into(),
        group: "grid".into(),
        last_annotation: 0,
        properties: vec![],
    };
    let created = client
        .create_channel(ids::PACKAGE, &new_channel)
        .await
        .unwrap();
    assert!(created.id.starts_with("N:channel:"));
    assert_eq!(created.name, "Cz", "the server trims names");
    assert_eq!(created.group.as_deref(), Some("grid"));
    let state = fake.state();
    assert_eq!(
        state.created_channels[0].request,
        json!({"name": "  Cz ", "start": 10, "end": 20, "unit": "uV", "rate": 1000.0,
               "channelType": "CONTINUOUS", "group": "grid", "lastAnnotation": 0, "properties": []})
    );
    let created_status = state
        .requests
        .iter()
        .find(|r| r.route == Some(FakeRoute::CreateChannel))
        .unwrap()
        .status;
    assert_eq!(created_status, 201);
    let listed = client.list_channels(ids::PACKAGE).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1].id, created.id);
}

#[tokio::test]
async fn blank_channel_names_and_non_timeseries_packages_are_rejected() {
    let fake = fake(FakeConfig {
        packages: vec![FakePackage {
            id: "N:package:pdf".into(),
            package_type: "PDF".into(),
            parent: None,
        }],
        ..FakeConfig::default()
    })
    .await;
    let client = session_client(&fake);
    let mut channel = NewChannel {
        name: "   ".into(),
        start: 0,
        end: 1,
        unit: "uV".into(),
        rate: 1.0,
        channel_type: "CONTINUOUS".into(),
        group: "g".into(),
        last_annotation: 0,
        properties: vec![],
    };
    let error = client
        .create_channel(ids::PACKAGE, &channel)
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::Status { status: 404, .. }),
        "{error}"
    );
    let fake = common::fake(FakeConfig::default()).await;
    let client = session_client(&fake);
    let error = client
        .create_channel(ids::PACKAGE, &channel)
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(error, Error::Status { status: 400, .. }),
        "{message}"
    );
    assert!(
        message.contains("channel name must not be blank"),
        "{message}"
    );
    assert!(message.starts_with("POST http://"), "{message}");
    channel.name = "ok".into();
    let fake = common::fake(FakeConfig {
        packages: vec![FakePackage {
            id: "N:package:pdf".into(),
            package_type: "PDF".into(),
            parent: None,
        }],
        ..FakeConfig::default()
    })
    .await;
    let error = session_client(&fake)
        .create_channel("N:package:pdf", &channel)
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("channels can only be added to time series packages or collections"),
        "{error}"
    );
}

#[tokio::test]
async fn import_manifest_presign_and_upload() {
    let fake = fake(FakeConfig::default()).await;
    let client = session_client(&fake);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("chunk.bin.gz");
    std::fs::write(&file, b"exact bytes \x00\xff").unwrap();

    let import_id = client
        .create_import(
            ids::DATASET,
            ids::RUN,
            ids::PACKAGE,
            &[entry("k1", "a.bin.gz")],
        )
        .await
        .unwrap();
    client
        .append_import_files(
            ids::DATASET,
            &import_id,
            &[entry("k2", "b.bin.gz"), entry("k3", "c.bin.gz")],
        )
        .await
        .unwrap();
    let url = client
        .presign(ids::DATASET, &import_id, "k2")
        .await
        .unwrap();
    assert!(
        url.starts_with(&format!("{}/{import_id}/k2?", fake.s3_url())),
        "{url}"
    );
    assert_eq!(client.put_file(&url, &file).await.unwrap(), 14);

    let state = fake.state();
    assert_eq!(state.imports.len(), 1);
    let import = &state.imports[0];
    assert_eq!(
        (
            import.dataset_id.as_str(),
            import.integration_id.as_str(),
            import.package_id.as_str(),
            import.import_type.as_str()
        ),
        (ids::DATASET, ids::RUN, ids::PACKAGE, "timeseries")
    );
    assert_eq!(
        import.files,
        [
            entry("k1", "a.bin.gz"),
            entry("k2", "b.bin.gz"),
            entry("k3", "c.bin.gz")
        ]
    );
    assert_eq!(import.append_calls, 1);
    assert_eq!(state.uploads.len(), 1);
    assert_eq!(
        (
            state.uploads[0].import_id.as_str(),
            state.uploads[0].upload_key.as_str()
        ),
        (import_id.as_str(), "k2")
    );
    assert_eq!(&state.uploads[0].body[..], b"exact bytes \x00\xff");

    // api/api2 calls carry the bearer token and the dataset; the S3 PUT carries no auth.
    for request in &state.requests {
        match request.route {
            Some(FakeRoute::Upload) => assert_eq!(request.authorization, None),
            Some(FakeRoute::CreateImport | FakeRoute::AppendFiles | FakeRoute::Presign) => {
                assert!(
                    request
                        .authorization
                        .as_deref()
                        .unwrap()
                        .starts_with("Bearer ")
                );
                assert_eq!(
                    request.query.as_deref(),
                    Some("dataset_id=N%3Adataset%3A22222222-2222-4222-8222-222222222222")
                );
            }
            _ => {}
        }
    }

    // Unknown upload keys and wrong datasets are refused.
    let error = client
        .presign(ids::DATASET, &import_id, "nope")
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::Status { status: 404, .. }),
        "{error}"
    );
    let error = client
        .presign("N:dataset:other", &import_id, "k1")
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::PermissionDenied { status: 403, .. }),
        "{error}"
    );
}

#[tokio::test]
async fn upload_errors_never_show_the_presigned_query() {
    let fake = fake(FakeConfig::default()).await;
    let client = session_client(&fake);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.bin.gz");
    std::fs::write(&file, b"x").unwrap();
    let import_id = client
        .create_import(ids::DATASET, ids::RUN, ids::PACKAGE, &[entry("k1", "a")])
        .await
        .unwrap();
    let stale = client
        .presign(ids::DATASET, &import_id, "k1")
        .await
        .unwrap();
    let _fresh = client
        .presign(ids::DATASET, &import_id, "k1")
        .await
        .unwrap();
    let error = client.put_file(&stale, &file).await.unwrap_err();
    let message = error.to_string();
    assert_eq!(
        message,
        format!(
            "PUT {}/{import_id}/k1: HTTP 403: SignatureDoesNotMatch: bad or stale presigned URL",
            fake.s3_url()
        )
    );
    assert!(
        !message.contains("fake-secret-session")
            && !message.contains("X-Amz")
            && !message.contains('?')
    );

    // A missing file names the file; the OS error is the source, said once.
    let missing = dir.path().join("missing.bin.gz");
    let error = client.put_file(&stale, &missing).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("cannot open {}", missing.display())
    );
    let cause = std::error::Error::source(&error).expect("the OS error");
    assert!(cause.to_string().contains("No such file"), "{cause}");
}

/// Raw HTTP/1.1 PUT to the fake's S3 target; returns the status line.
async fn raw_put(fake: &pennsieve_fake::FakePennsieve, headers: &str, body: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(fake.address())
        .await
        .unwrap();
    let request = format!(
        "PUT /s3/imp/key?X-Amz-Signature=s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}\r\n{body}"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn the_s3_target_rejects_chunked_and_length_less_uploads() {
    let fake = fake(FakeConfig::default()).await;
    assert_eq!(
        raw_put(
            &fake,
            "Transfer-Encoding: chunked\r\n",
            "3\r\nabc\r\n0\r\n\r\n"
        )
        .await,
        "HTTP/1.1 501 Not Implemented"
    );
    assert_eq!(raw_put(&fake, "", "").await, "HTTP/1.1 411 Length Required");
    // With a length but an unknown signature: refused like a stale URL.
    assert_eq!(
        raw_put(&fake, "Content-Length: 3\r\n", "abc").await,
        "HTTP/1.1 403 Forbidden"
    );
    assert_eq!(fake.state().uploads.len(), 0);
}

#[tokio::test]
async fn other_processes_can_inspect_the_fake() {
    let fake = fake(FakeConfig::default()).await;
    let client = session_client(&fake);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.bin.gz");
    std::fs::write(&file, b"payload").unwrap();
    let import_id = client
        .create_import(ids::DATASET, ids::RUN, ids::PACKAGE, &[entry("k1", "n1")])
        .await
        .unwrap();
    let url = client
        .presign(ids::DATASET, &import_id, "k1")
        .await
        .unwrap();
    client.put_file(&url, &file).await.unwrap();

    let base = format!("http://{}", fake.address());
    let state: serde_json::Value = reqwest::get(format!("{base}/_fake/state"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        state["imports"][0]["files"],
        json!([{"upload_key": "k1", "file_path": "n1"}])
    );
    assert_eq!(
        state["uploads"],
        json!([{"import_id": import_id, "upload_key": "k1", "size": 7}])
    );
    let object = reqwest::get(format!("{base}/_fake/objects/{import_id}/k1"))
        .await
        .unwrap();
    assert_eq!(object.status(), 200);
    assert_eq!(&object.bytes().await.unwrap()[..], b"payload");
    let missing = reqwest::get(format!("{base}/_fake/objects/{import_id}/nope"))
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}
