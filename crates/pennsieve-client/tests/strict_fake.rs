//! The fake refuses what the platform refuses (each rule: a raw request the fake rejects, then
//! the real client passing): the api2 body cap (413), expired presigned URLs (403
//! `AccessDenied`), JSON bodies without `Content-Type: application/json` (415); and it keeps
//! channel properties (grouped by category when listed).

mod common;

use std::time::Duration;

use common::{ChannelSpec, client_with, fake, import_default_run, session_client, write_output};
use pennsieve_client::{Error, ImportOptions, ManifestEntry, NewChannel, import_directory};
use pennsieve_fake::{API2_MAX_BODY_BYTES, FakeConfig, FakePennsieve, FakeRoute, ids};
use serde_json::{Value, json};

fn entries(count: usize) -> Vec<ManifestEntry> {
    (0..count)
        .map(|i| ManifestEntry {
            upload_key: format!("00000000-0000-4000-8000-{i:012}"),
            file_path: format!(
                "N:channel:0b4a1a5e-51ab-4d6e-9a53-4b5b3b1f6c77_{}_{}.bin.gz",
                1_549_968_912_000_000u64 + i as u64 * 1_000_000,
                1_549_968_912_999_000u64 + i as u64 * 1_000_000
            ),
        })
        .collect()
}

/// A raw request with the fake's bearer token; `content_type` `None` sends none.
async fn raw(
    fake: &FakePennsieve,
    method: reqwest::Method,
    url: String,
    content_type: Option<&str>,
    body: String,
) -> (u16, String) {
    let mut request = reqwest::Client::new()
        .request(method, url)
        .bearer_auth(fake.session_token())
        .body(body);
    if let Some(content_type) = content_type {
        request = request.header(reqwest::header::CONTENT_TYPE, content_type);
    }
    let response = request.send().await.expect("send");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

fn create_import_url(fake: &FakePennsieve) -> String {
    format!("{}/import?dataset_id={}", fake.api2_url(), ids::DATASET)
}

fn create_import_body(files: &[ManifestEntry]) -> String {
    json!({"integration_id": ids::RUN, "package_id": ids::PACKAGE, "import_type": "timeseries",
           "files": files})
    .to_string()
}

#[tokio::test]
async fn manifest_bodies_over_the_gateway_cap_get_413() {
    let fake = fake(FakeConfig::default()).await;
    // ~40 000 entries of 150 bytes: over 6 MiB.
    let files = entries(42_000);
    let body = create_import_body(&files);
    assert!(body.len() > API2_MAX_BODY_BYTES);
    let json = Some("application/json");
    let (status, text) = raw(
        &fake,
        reqwest::Method::POST,
        create_import_url(&fake),
        json,
        body,
    )
    .await;
    assert_eq!(
        (status, text.as_str()),
        (413, r#"{"message":"Request Too Large"}"#)
    );

    // The cap is inclusive: exactly the cap passes, one byte more does not (the padding is
    // JSON whitespace).
    let small = create_import_body(&files[..1]);
    let at_cap = format!("{small}{}", " ".repeat(API2_MAX_BODY_BYTES - small.len()));
    let (status, _) = raw(
        &fake,
        reqwest::Method::POST,
        create_import_url(&fake),
        json,
        at_cap.clone(),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = raw(
        &fake,
        reqwest::Method::POST,
        create_import_url(&fake),
        json,
        format!("{at_cap} "),
    )
    .await;
    assert_eq!(status, 413);

    // Appends have the same cap; and the client's own calls send what they are given.
    let client = session_client(&fake);
    let import = client
        .create_import(ids::DATASET, ids::RUN, ids::PACKAGE, &files[..1])
        .await
        .unwrap();
    let error = client
        .append_import_files(ids::DATASET, &import, &files[1..])
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::Status { status: 413, .. }),
        "{error:?}"
    );
    assert_eq!(fake.state().imports[1].files.len(), 1, "nothing appended");
}

#[tokio::test]
async fn the_client_splits_a_large_manifest_below_the_cap_and_every_entry_arrives() {
    // A small cap on both sides stands in for the 6 MB one (a manifest that large needs
    // ~40 000 files): the client's limit equal to the fake's must never be exceeded.
    let cap = 16 * 1024;
    let fake = fake(FakeConfig {
        max_api2_body_bytes: cap,
        ..FakeConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let written = write_output(
        dir.path(),
        &[
            ChannelSpec {
                name: "A",
                rate: 1000.0,
                chunks: 300,
                samples_per_chunk: 2,
            },
            ChannelSpec {
                name: "B",
                rate: 1000.0,
                chunks: 200,
                samples_per_chunk: 2,
            },
        ],
    );
    let client = client_with(&fake, |c| c.max_request_body_bytes = cap);
    let report = import_directory(&client, dir.path(), &ImportOptions::new(ids::RUN))
        .await
        .unwrap();
    assert_eq!(report.files, written.len() as u64);

    let state = fake.state();
    assert!(
        state.requests.iter().all(|r| r.status != 413),
        "no request over the cap"
    );
    let import = &state.imports[0];
    // 500 entries of ~155 bytes in 16 KiB bodies: at least 5 requests.
    assert!(import.append_calls >= 4, "{} appends", import.append_calls);
    assert_eq!(import.files.len(), written.len());
    let keys: std::collections::HashSet<_> =
        import.files.iter().map(|f| f.upload_key.as_str()).collect();
    assert_eq!(keys.len(), written.len(), "every entry once");
    assert_eq!(state.uploads.len(), written.len());
}

#[tokio::test]
async fn expired_presigned_urls_get_403_access_denied() {
    let fake = fake(FakeConfig {
        presign_expiry: Duration::from_millis(100),
        ..FakeConfig::default()
    })
    .await;
    let client = session_client(&fake);
    let files = entries(1);
    let import = client
        .create_import(ids::DATASET, ids::RUN, ids::PACKAGE, &files)
        .await
        .unwrap();
    let key = &files[0].upload_key;
    let url = client.presign(ids::DATASET, &import, key).await.unwrap();
    let query = |name: &str| {
        let url = reqwest::Url::parse(&url).unwrap();
        let found = url.query_pairs().find(|(k, _)| k == name);
        found.map(|(_, v)| v.into_owned())
    };
    let date = query("X-Amz-Date").expect("X-Amz-Date");
    assert!(
        date.len() == 16 && date.as_bytes()[8] == b'T' && date.ends_with('Z'),
        "{date}"
    );
    assert_eq!(
        query("X-Amz-Expires").as_deref(),
        Some("1"),
        "whole seconds"
    );

    tokio::time::sleep(Duration::from_millis(150)).await;
    let response = reqwest::Client::new()
        .put(&url)
        .body("late")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    let xml = response.text().await.unwrap();
    assert!(
        xml.contains("<Code>AccessDenied</Code><Message>Request has expired</Message>"),
        "{xml}"
    );

    // The client's PUT shows S3's code and message; a fresh URL works.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chunk.bin.gz");
    std::fs::write(&path, b"bytes").unwrap();
    let url = client.presign(ids::DATASET, &import, key).await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let error = client.put_file(&url, &path).await.unwrap_err();
    let Error::Status { status, body, .. } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(
        (*status, body.as_str()),
        (403, "AccessDenied: Request has expired")
    );
    let url = client.presign(ids::DATASET, &import, key).await.unwrap();
    assert_eq!(client.put_file(&url, &path).await.unwrap(), 5);
}

#[tokio::test]
async fn the_client_presigns_again_after_an_expired_url() {
    let fake = fake(FakeConfig {
        expired_presigns_first: 3,
        ..FakeConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let written = write_output(
        dir.path(),
        &[ChannelSpec {
            name: "A",
            rate: 100.0,
            chunks: 5,
            samples_per_chunk: 4,
        }],
    );
    let report = import_default_run(&fake, dir.path()).await.unwrap();
    assert_eq!(report.files, 5);
    let state = fake.state();
    let refused = state
        .requests
        .iter()
        .filter(|r| r.route == Some(FakeRoute::Upload) && r.status == 403)
        .count();
    assert_eq!(refused, 3, "the three stale URLs were refused");
    assert_eq!(state.count(FakeRoute::Presign), written.len() + 3);
    assert_eq!(state.uploads.len(), written.len());
}

#[tokio::test]
async fn urls_that_expire_at_once_fail_the_upload_after_every_attempt() {
    let fake = fake(FakeConfig {
        presign_expiry: Duration::ZERO,
        ..FakeConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    write_output(
        dir.path(),
        &[ChannelSpec {
            name: "A",
            rate: 100.0,
            chunks: 1,
            samples_per_chunk: 4,
        }],
    );
    let error = import_default_run(&fake, dir.path()).await.unwrap_err();
    let Error::Import { step, source, .. } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(*step, "upload files");
    let Error::Upload {
        attempts, source, ..
    } = source.as_ref()
    else {
        panic!("{source:?}")
    };
    assert_eq!(
        *attempts, 5,
        "the retry policy's attempts, each with a new URL"
    );
    assert!(
        source
            .to_string()
            .contains("AccessDenied: Request has expired"),
        "{source}"
    );
    assert_eq!(fake.state().count(FakeRoute::Presign), 5);
}

#[tokio::test]
async fn json_bodies_without_a_json_content_type_get_415() {
    let fake = fake(FakeConfig::default()).await;
    let channel = json!({"name": "Fp1", "start": 1, "end": 2, "unit": "uV", "rate": 256.0,
                         "channelType": "CONTINUOUS", "group": "default", "lastAnnotation": 0,
                         "properties": []})
    .to_string();
    let channels_url = format!("{}/timeseries/{}/channels", fake.api_url(), ids::PACKAGE);
    let package_url = format!(
        "{}/packages/{}?updateStorage=true",
        fake.api_url(),
        ids::PACKAGE
    );
    let properties = json!({"properties": [{"key": "icon", "value": "timeseries"}]}).to_string();
    let manifest = create_import_body(&entries(1));
    let post = reqwest::Method::POST;
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let (status, text) = raw(
            &fake,
            post.clone(),
            channels_url.clone(),
            content_type,
            channel.clone(),
        )
        .await;
        assert_eq!(status, 415, "{content_type:?}");
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body["type"], "UnsupportedMediaType");
        let (status, _) = raw(
            &fake,
            reqwest::Method::PUT,
            package_url.clone(),
            content_type,
            properties.clone(),
        )
        .await;
        assert_eq!(status, 415, "{content_type:?}");
        let (status, text) = raw(
            &fake,
            post.clone(),
            create_import_url(&fake),
            content_type,
            manifest.clone(),
        )
        .await;
        assert_eq!(status, 415, "{content_type:?}");
        assert!(text.starts_with(r#"{"message":"#), "{text}");
    }
    let state = fake.state();
    assert!(state.created_channels.is_empty() && state.imports.is_empty());
    assert!(state.property_updates.is_empty());

    // Parameters and case do not matter.
    let (status, _) = raw(
        &fake,
        post,
        channels_url,
        Some("Application/JSON; charset=utf-8"),
        channel,
    )
    .await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn the_clients_json_requests_carry_the_json_content_type() {
    let fake = fake(FakeConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    write_output(
        dir.path(),
        &[
            ChannelSpec {
                name: "A",
                rate: 100.0,
                chunks: 30,
                samples_per_chunk: 4,
            },
            ChannelSpec {
                name: "B",
                rate: 100.0,
                chunks: 30,
                samples_per_chunk: 4,
            },
        ],
    );
    // A small manifest limit so appends are sent too.
    let client = client_with(&fake, |c| c.max_request_body_bytes = 2_000);
    import_directory(&client, dir.path(), &ImportOptions::new(ids::RUN))
        .await
        .unwrap();
    let state = fake.state();
    for route in [
        FakeRoute::PutPackage,
        FakeRoute::CreateChannel,
        FakeRoute::CreateImport,
        FakeRoute::AppendFiles,
    ] {
        assert!(state.count(route) > 0, "{route:?} was called");
    }
    let refused: Vec<_> = state.requests.iter().filter(|r| r.status == 415).collect();
    assert!(refused.is_empty(), "{refused:?}");
    assert_eq!(state.uploads.len(), 60);
}

#[tokio::test]
async fn channel_properties_are_stored_and_listed_grouped_by_category() {
    let fake = fake(FakeConfig::default()).await;
    let client = session_client(&fake);
    let channel = NewChannel {
        name: "Fp1".into(),
        start: 1,
        end: 2,
        unit: "uV".into(),
        rate: 256.0,
        channel_type: "CONTINUOUS".into(),
        group: "default".into(),
        last_annotation: 0,
        properties: vec![
            json!({"key": "electrode", "value": "e12", "category": "NWB", "dataType": "string"}),
            json!({"key": "k", "value": "v"}),
            json!({"key": "location", "value": "CA1", "category": "NWB", "hidden": true}),
        ],
    };
    let created = client.create_channel(ids::PACKAGE, &channel).await.unwrap();

    let url = format!("{}/timeseries/{}/channels", fake.api_url(), ids::PACKAGE);
    let (status, text) = raw(&fake, reqwest::Method::GET, url, None, String::new()).await;
    assert_eq!(status, 200);
    let listed: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(listed[0]["content"]["id"], created.id.as_str());
    let property = |key: &str, value: &str, hidden: bool| {
        json!({"key": key, "value": value, "dataType": "string", "fixed": false,
               "hidden": hidden, "display": value})
    };
    assert_eq!(
        listed[0]["properties"],
        json!([
            {"category": "NWB", "properties": [property("electrode", "e12", false),
                                               property("location", "CA1", true)]},
            {"category": "Pennsieve", "properties": [property("k", "v", false)]},
        ])
    );
    // The client still reads the listing.
    let remote = client.list_channels(ids::PACKAGE).await.unwrap();
    assert_eq!(remote, [created]);

    // A property without a value is refused, as the api requires key and value.
    let bad = NewChannel {
        properties: vec![json!({"key": "k"})],
        ..channel
    };
    let error = client.create_channel(ids::PACKAGE, &bad).await.unwrap_err();
    assert!(
        matches!(error, Error::Status { status: 400, .. }),
        "{error:?}"
    );
}
