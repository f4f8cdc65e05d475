//! Per-channel metadata files (`channel-{index:05}.metadata.json`).

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::atomic::TempFile;
use crate::chunk::Written;
use crate::error::{Error, Result, io_err};
use crate::name::metadata_file_name;

/// One channel's metadata as written next to its chunks and sent to Pennsieve.
///
/// Serialized field order is exactly `name, start, end, unit, rate, type, group, lastAnnotation,
/// properties` (then `id` when known). Reading also accepts `channelType` for `type` (the API's
/// spelling); `unit`, `lastAnnotation` and `properties` may be absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelMetadata {
    /// Channel name (never blank for our own files).
    pub name: String,
    /// Time of the channel's first sample, µs since the Unix epoch.
    pub start: i64,
    /// Time of the channel's last sample (inclusive), µs since the Unix epoch.
    pub end: i64,
    /// Always `"uV"` for our files.
    #[serde(default = "default_unit")]
    pub unit: String,
    /// Sampling rate in Hz.
    pub rate: f64,
    /// `"CONTINUOUS"` for our files (Pennsieve also knows `"UNIT"`).
    #[serde(rename = "type", alias = "channelType")]
    pub channel_type: String,
    /// Electrode group name.
    pub group: String,
    /// Always 0 for our files.
    #[serde(rename = "lastAnnotation", default)]
    pub last_annotation: i64,
    /// Always empty for our files.
    #[serde(default)]
    pub properties: Vec<serde_json::Value>,
    /// Pennsieve channel node id, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

fn default_unit() -> String {
    "uV".to_owned()
}

impl ChannelMetadata {
    /// A continuous channel in microvolts, as the converter writes it.
    pub fn continuous(
        name: impl Into<String>,
        group: impl Into<String>,
        start_us: i64,
        end_us: i64,
        rate: f64,
    ) -> Self {
        ChannelMetadata {
            name: name.into(),
            start: start_us,
            end: end_us,
            unit: default_unit(),
            rate,
            channel_type: "CONTINUOUS".to_owned(),
            group: group.into(),
            last_annotation: 0,
            properties: Vec::new(),
            id: None,
        }
    }

    /// The compact JSON object written to the metadata file.
    pub fn to_json(&self) -> String {
        // Serializing plain strings, numbers and JSON values cannot fail, except a non-finite rate,
        // which serde_json writes as `null` rather than failing.
        serde_json::to_string(self)
            .unwrap_or_else(|_| unreachable!("ChannelMetadata is always serializable"))
    }

    /// Parses metadata JSON; `origin` names where the text came from, for error messages.
    pub fn from_json(text: &str, origin: &Path) -> Result<Self> {
        serde_json::from_str(text).map_err(|source| Error::InvalidMetadata {
            path: origin.to_owned(),
            source,
        })
    }

    /// Reads and parses a metadata file.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(io_err("read channel metadata", path))?;
        Self::from_json(&text, path)
    }

    /// Writes `dir/channel-{index:05}.metadata.json` atomically.
    pub fn write_atomic(&self, dir: &Path, channel_index: u32) -> Result<Written> {
        let (temp, mut file) = TempFile::create(dir, &metadata_file_name(channel_index))?;
        let json = self.to_json();
        file.write_all(json.as_bytes())
            .map_err(io_err("write channel metadata", temp.temp_path()))?;
        drop(file);
        Ok(Written {
            path: temp.commit()?,
            bytes: json.len() as u64,
        })
    }
}
