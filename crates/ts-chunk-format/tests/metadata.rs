//! Channel metadata JSON.

use std::path::Path;

use ts_chunk_format::{ChannelMetadata, Error, metadata_file_name};

/// An error and its sources joined by `: `, as `anyhow`'s `{:#}` shows them.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

fn example() -> ChannelMetadata {
    ChannelMetadata::continuous(
        "CH 01",
        "shank0",
        1_609_459_200_000_000,
        1_609_459_260_000_000,
        30000.0,
    )
}

#[test]
fn json_has_the_spec_fields_in_the_spec_order() {
    // Spec: {"name","start","end","unit":"uV","rate","type":"CONTINUOUS","group","lastAnnotation":0,"properties":[]}
    assert_eq!(
        example().to_json(),
        r#"{"name":"CH 01","start":1609459200000000,"end":1609459260000000,"unit":"uV","rate":30000.0,"type":"CONTINUOUS","group":"shank0","lastAnnotation":0,"properties":[]}"#
    );
    insta::assert_snapshot!("continuous_compact", example().to_json());
    insta::assert_snapshot!(
        "continuous_pretty",
        serde_json::to_string_pretty(&example()).unwrap()
    );
}

#[test]
fn id_is_written_last_and_only_when_known() {
    let mut metadata = example();
    metadata.id = Some("N:channel:0b1d3c55-5a2e-4f5e-9c1a-7d2b8e4f6a10".into());
    let json = metadata.to_json();
    assert!(
        json.ends_with(r#""properties":[],"id":"N:channel:0b1d3c55-5a2e-4f5e-9c1a-7d2b8e4f6a10"}"#),
        "{json}"
    );
    assert!(!example().to_json().contains("\"id\""));
}

#[test]
fn reading_accepts_channel_type_and_defaults() {
    let text = r#"{"name":"a","start":-5,"end":7,"rate":250.5,"channelType":"UNIT","group":"g"}"#;
    let metadata = ChannelMetadata::from_json(text, Path::new("remote")).unwrap();
    assert_eq!(metadata.channel_type, "UNIT");
    assert_eq!(
        (metadata.start, metadata.end, metadata.rate),
        (-5, 7, 250.5)
    );
    assert_eq!(metadata.unit, "uV");
    assert_eq!(metadata.last_annotation, 0);
    assert!(metadata.properties.is_empty());
    assert_eq!(metadata.id, None);
    // Writing uses `type`.
    assert!(metadata.to_json().contains(r#""type":"UNIT""#));
}

#[test]
fn round_trips_through_json_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let metadata = example();
    assert_eq!(
        ChannelMetadata::from_json(&metadata.to_json(), Path::new("x")).unwrap(),
        metadata
    );
    let written = metadata.write_atomic(dir.path(), 12).unwrap();
    assert_eq!(written.bytes, metadata.to_json().len() as u64);
    let path = written.path;
    assert_eq!(path, dir.path().join(metadata_file_name(12)));
    assert_eq!(ChannelMetadata::read(&path).unwrap(), metadata);
    // Only the final file remains, no temporary.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["channel-00012.metadata.json"]);
}

#[test]
fn errors_name_the_file() {
    let missing_group = r#"{"name":"a","start":0,"end":1,"rate":1.0,"type":"CONTINUOUS"}"#;
    let error =
        ChannelMetadata::from_json(missing_group, Path::new("out/channel-00001.metadata.json"))
            .unwrap_err();
    assert!(matches!(error, Error::InvalidMetadata { .. }));
    let not_json =
        ChannelMetadata::from_json("{", Path::new("out/channel-00002.metadata.json")).unwrap_err();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("channel-00003.metadata.json");
    let io = ChannelMetadata::read(&missing).unwrap_err();
    assert!(
        io.to_string().contains(&missing.display().to_string()),
        "{io}"
    );
    assert!(matches!(io, Error::Io { .. }));
    assert!(!io.to_string().contains("os error"), "{io}");
    assert!(chain(&io).ends_with("(os error 2)"), "{}", chain(&io));
    insta::assert_snapshot!(format!("{}\n{}\n", chain(&error), chain(&not_json)));
}
