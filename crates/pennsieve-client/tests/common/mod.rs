//! Shared test helpers: a fake server, clients for it, and output directories.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use pennsieve_client::{Client, Config, ImportOptions, ImportReport, import_directory};
use pennsieve_fake::{FakeConfig, FakePennsieve, ids};
use serde_json::{Value, json};
use ts_chunk_format::{ChannelMetadata, ChunkName, ChunkWriter};

pub async fn fake(config: FakeConfig) -> FakePennsieve {
    FakePennsieve::start(config).await.expect("start fake")
}

pub fn session_client(fake: &FakePennsieve) -> Client {
    Client::new(fake.client_config(), fake.session_credentials()).expect("client")
}

pub fn key_client(fake: &FakePennsieve) -> Client {
    Client::new(fake.client_config(), fake.api_key_credentials()).expect("client")
}

pub fn client_with(fake: &FakePennsieve, edit: impl FnOnce(&mut Config)) -> Client {
    let mut config = fake.client_config();
    edit(&mut config);
    Client::new(config, fake.session_credentials()).expect("client")
}

/// Imports `dir` into the default run with a session-token client.
pub async fn import_default_run(
    fake: &FakePennsieve,
    dir: &Path,
) -> pennsieve_client::Result<ImportReport> {
    import_directory(&session_client(fake), dir, &ImportOptions::new(ids::RUN)).await
}

/// One local channel to write.
pub struct ChannelSpec {
    pub name: &'static str,
    pub rate: f64,
    pub chunks: usize,
    pub samples_per_chunk: usize,
}

/// Writes `specs` as channels 0.. into `dir`; returns every chunk path with its local name.
pub fn write_output(dir: &Path, specs: &[ChannelSpec]) -> Vec<(PathBuf, ChunkName)> {
    let mut writer = ChunkWriter::new(0);
    let mut written = Vec::new();
    for (index, spec) in specs.iter().enumerate() {
        let index = index as u32;
        // Channels start 1 µs apart so (start, end) identifies a chunk across channels.
        let base = 1_600_000_000_000_000i64 + i64::from(index);
        let period_us = (1e6 / spec.rate) as i64;
        let mut start = base;
        for chunk in 0..spec.chunks {
            let samples: Vec<f64> = (0..spec.samples_per_chunk)
                .map(|i| (index as f64) * 1000.0 + (chunk * spec.samples_per_chunk + i) as f64)
                .collect();
            let end = start + period_us * (spec.samples_per_chunk as i64 - 1);
            let name = ChunkName::local(index, start, end);
            let path = writer
                .write(dir, &name, &samples)
                .expect("write chunk")
                .path;
            written.push((path, name));
            start = end + period_us;
        }
        let metadata =
            ChannelMetadata::continuous(spec.name, "shank0", base, start - period_us, spec.rate);
        metadata.write_atomic(dir, index).expect("write metadata");
    }
    written
}

/// A raw `ChannelDTO` as the api returns it, with `group` missing and grouped properties.
pub fn remote_channel_dto(id: &str, name: &str, rate: f64) -> Value {
    json!({
        "content": {"id": id, "packageId": pennsieve_fake::ids::PACKAGE, "name": name,
                    "start": 1, "end": 2, "unit": "uV", "rate": rate, "channelType": "CONTINUOUS",
                    "lastAnnotation": 0, "spikeDuration": null, "createdAt": "2024-01-01T00:00:00Z"},
        "properties": [{"category": "Pennsieve",
                        "properties": [{"key": "k", "value": "v", "dataType": "string",
                                        "fixed": false, "hidden": false, "display": "v"}]}]
    })
}

/// An error and its causes, as `anyhow` shows them with `{:#}`.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
