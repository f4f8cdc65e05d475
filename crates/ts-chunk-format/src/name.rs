//! Chunk file names: `channel-{index:05}_{startUs}_{endUs}.bin.gz` locally,
//! `N:channel:<uuid>_{startUs}_{endUs}.bin.gz` once uploaded.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

const CHUNK_SUFFIX: &str = ".bin.gz";
pub(crate) const LOCAL_PREFIX: &str = "channel-";
const NODE_ID_PREFIX: &str = "N:channel:";

/// Which channel a chunk belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChannelRef {
    /// The local channel index, as written by the converter (`channel-00042`).
    Index(u32),
    /// The full Pennsieve channel node id, `N:channel:<uuid>`, as used for uploads.
    NodeId(String),
}

/// The parsed name of one chunk file.
///
/// `start_us` and `end_us` are the absolute times (microseconds since the Unix epoch) of the first
/// and the last sample (the end is inclusive). They may be negative for recordings before 1970; a
/// negative time is written with a leading `-` (`channel-00001_-5000_-1000.bin.gz`), which cannot be
/// confused with the `_` separators.
///
/// Parsing accepts any number of index digits (indices above 99999 simply print more digits) and
/// decimal times with an optional leading `-`; a `+` sign, spaces or anything else is rejected.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChunkName {
    /// The channel.
    pub channel: ChannelRef,
    /// Time of the first sample, µs since the Unix epoch.
    pub start_us: i64,
    /// Time of the last sample (inclusive), µs since the Unix epoch.
    pub end_us: i64,
}

impl ChunkName {
    /// The local name of a chunk of channel `index`.
    pub fn local(index: u32, start_us: i64, end_us: i64) -> Self {
        ChunkName {
            channel: ChannelRef::Index(index),
            start_us,
            end_us,
        }
    }

    /// The same chunk named for upload: `node_id` is the full channel node id (`N:channel:<uuid>`)
    /// and is used as given.
    pub fn with_node_id(&self, node_id: &str) -> ChunkName {
        ChunkName {
            channel: ChannelRef::NodeId(node_id.to_owned()),
            start_us: self.start_us,
            end_us: self.end_us,
        }
    }

    /// Parses a file name (not a path); same as [`str::parse`].
    pub fn parse(text: &str) -> Result<Self> {
        let invalid = |problem: String| Error::InvalidChunkName {
            text: text.to_owned(),
            problem,
        };
        let stem = text
            .strip_suffix(CHUNK_SUFFIX)
            .ok_or_else(|| invalid(format!("expected the name to end with `{CHUNK_SUFFIX}`")))?;
        let mut parts = stem.rsplitn(3, '_');
        let (Some(end), Some(start), Some(channel)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid(
                "expected `<channel>_<startUs>_<endUs>.bin.gz` (three parts separated by `_`)"
                    .into(),
            ));
        };
        if channel.contains('_') {
            return Err(invalid(
                "expected exactly three parts `<channel>_<startUs>_<endUs>` separated by `_`, found more"
                    .into(),
            ));
        }
        let start_us = parse_time(start).map_err(|why| invalid(format!("start time {why}")))?;
        let end_us = parse_time(end).map_err(|why| invalid(format!("end time {why}")))?;
        let channel = parse_channel(channel).map_err(invalid)?;
        Ok(ChunkName {
            channel,
            start_us,
            end_us,
        })
    }
}

/// A time: optional `-`, then one or more ASCII digits, within `i64`.
fn parse_time(text: &str) -> std::result::Result<i64, String> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "`{text}` is not a whole number of microseconds (expected digits with an optional leading `-`)"
        ));
    }
    text.parse()
        .map_err(|_| format!("`{text}` is out of range for a 64-bit microsecond count"))
}

fn parse_channel(text: &str) -> std::result::Result<ChannelRef, String> {
    if let Some(digits) = text.strip_prefix(LOCAL_PREFIX) {
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "channel index `{digits}` after `{LOCAL_PREFIX}` is not a decimal number"
            ));
        }
        return digits.parse().map(ChannelRef::Index).map_err(|_| {
            format!(
                "channel index `{digits}` is out of range (at most {})",
                u32::MAX
            )
        });
    }
    if let Some(uuid) = text.strip_prefix(NODE_ID_PREFIX) {
        if !looks_like_uuid(uuid) {
            return Err(format!(
                "`{uuid}` after `{NODE_ID_PREFIX}` is not a UUID (expected 36 hex digits and dashes)"
            ));
        }
        return Ok(ChannelRef::NodeId(text.to_owned()));
    }
    Err(format!(
        "channel part `{text}` must start with `{LOCAL_PREFIX}` followed by a number, or be `{NODE_ID_PREFIX}<uuid>`"
    ))
}

/// Loose UUID check: 36 characters, hex digits and dashes.
fn looks_like_uuid(text: &str) -> bool {
    text.len() == 36 && text.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

impl fmt::Display for ChunkName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.channel {
            ChannelRef::Index(index) => write!(f, "{LOCAL_PREFIX}{index:05}")?,
            ChannelRef::NodeId(node_id) => f.write_str(node_id)?,
        }
        write!(f, "_{}_{}{CHUNK_SUFFIX}", self.start_us, self.end_us)
    }
}

impl FromStr for ChunkName {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        ChunkName::parse(text)
    }
}

/// The metadata file name of channel `channel_index`: `channel-{index:05}.metadata.json`.
pub fn metadata_file_name(channel_index: u32) -> String {
    format!("{LOCAL_PREFIX}{channel_index:05}.metadata.json")
}

/// The channel index of a metadata file name, if `name` is exactly `channel-<digits>.metadata.json`.
pub(crate) fn parse_metadata_file_name(name: &str) -> Option<u32> {
    let digits = name
        .strip_prefix(LOCAL_PREFIX)?
        .strip_suffix(".metadata.json")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Whether a file name claims to be one of ours (a local channel file or an uploaded chunk).
pub(crate) fn looks_like_ours(name: &str) -> bool {
    name.starts_with(LOCAL_PREFIX) || name.starts_with(NODE_ID_PREFIX)
}
