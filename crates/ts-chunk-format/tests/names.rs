//! Chunk and metadata file names.

use proptest::prelude::*;
use ts_chunk_format::{ChannelRef, ChunkName, Error, metadata_file_name};

const UUID: &str = "0b1d3c55-5a2e-4f5e-9c1a-7d2b8e4f6a10";

#[test]
fn local_names_follow_the_spec() {
    // Spec: `channel-{k:05}_{trunc(t(a)*1e6)}_{trunc(t(b-1)*1e6)}.bin.gz`.
    let name = ChunkName::local(7, 1_609_459_200_000_000, 1_609_459_200_999_992);
    assert_eq!(
        name.to_string(),
        "channel-00007_1609459200000000_1609459200999992.bin.gz"
    );
    // More than five digits simply print in full.
    assert_eq!(
        ChunkName::local(123_456, 0, 10).to_string(),
        "channel-123456_0_10.bin.gz"
    );
    // Times before 1970 are negative.
    assert_eq!(
        ChunkName::local(1, -5000, -1000).to_string(),
        "channel-00001_-5000_-1000.bin.gz"
    );
    assert_eq!(metadata_file_name(7), "channel-00007.metadata.json");
    assert_eq!(metadata_file_name(100_000), "channel-100000.metadata.json");
}

#[test]
fn uploaded_names_replace_the_channel_token() {
    let node_id = format!("N:channel:{UUID}");
    let local = ChunkName::local(3, 100, 200);
    let uploaded = local.with_node_id(&node_id);
    assert_eq!(
        uploaded.to_string(),
        format!("N:channel:{UUID}_100_200.bin.gz")
    );
    assert_eq!(uploaded.channel, ChannelRef::NodeId(node_id));
    assert_eq!((uploaded.start_us, uploaded.end_us), (100, 200));
}

#[test]
fn parsing_accepts_both_forms_and_unpadded_indices() {
    assert_eq!(
        "channel-00042_-3_17.bin.gz".parse::<ChunkName>().unwrap(),
        ChunkName::local(42, -3, 17)
    );
    assert_eq!(
        ChunkName::parse("channel-7_0_0.bin.gz").unwrap(),
        ChunkName::local(7, 0, 0)
    );
    let uploaded = ChunkName::parse(&format!("N:channel:{UUID}_5_6.bin.gz")).unwrap();
    assert_eq!(
        uploaded.channel,
        ChannelRef::NodeId(format!("N:channel:{UUID}"))
    );
}

#[test]
fn malformed_names_are_rejected_with_clear_messages() {
    let bad = [
        "chan-00001_0_10.bin.gz",                      // wrong prefix
        "00001_0_10.bin.gz",                           // missing prefix
        "channel-00001_0.bin.gz",                      // missing end
        "channel-00001.bin.gz",                        // missing both times
        "channel-_0_10.bin.gz",                        // empty index
        "channel-0x1_0_10.bin.gz",                     // non-numeric index
        "channel-00001_abc_10.bin.gz",                 // non-numeric start
        "channel-00001_0_1e3.bin.gz",                  // non-numeric end
        "channel-00001_+5_10.bin.gz",                  // plus sign
        "channel-00001_0_10.bin.gz.bak",               // extra suffix
        "channel-00001_0_10_20.bin.gz",                // extra part
        "channel-00001_0_10.bin",                      // .bin without .gz
        "channel-00001_0_99999999999999999999.bin.gz", // time out of range
        "channel-99999999999_0_10.bin.gz",             // index out of range
        "N:channel:not-a-uuid_0_10.bin.gz",            // bad node id
        "",                                            // empty
    ];
    let mut report = String::new();
    for text in bad {
        let error = ChunkName::parse(text).expect_err(text);
        assert!(matches!(&error, Error::InvalidChunkName { text: t, .. } if t == text));
        report.push_str(&error.to_string());
        report.push('\n');
    }
    insta::assert_snapshot!(report);
}

fn uuid() -> impl Strategy<Value = String> {
    "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
}

proptest! {
    #[test]
    fn local_names_round_trip(index in any::<u32>(), start in any::<i64>(), end in any::<i64>()) {
        let name = ChunkName::local(index, start, end);
        let text = name.to_string();
        prop_assert!(text.starts_with("channel-") && text.ends_with(".bin.gz"));
        prop_assert_eq!(text.parse::<ChunkName>().unwrap(), name);
    }

    #[test]
    fn uploaded_names_round_trip(uuid in uuid(), start in any::<i64>(), end in any::<i64>()) {
        let name = ChunkName::local(0, start, end).with_node_id(&format!("N:channel:{uuid}"));
        prop_assert_eq!(ChunkName::parse(&name.to_string()).unwrap(), name);
    }

    #[test]
    fn parsing_arbitrary_text_never_panics(text in ".*") {
        let _ = ChunkName::parse(&text);
    }
}
