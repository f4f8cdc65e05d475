//! Inventory of an output directory: which channels have metadata and chunks, and what is amiss.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::atomic::is_temp_name;
use crate::error::{Result, error_chain, io_err};
use crate::metadata::ChannelMetadata;
use crate::name::{ChannelRef, ChunkName, looks_like_ours, parse_metadata_file_name};

/// What [`scan_output_dir`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputScan {
    /// Channels with a metadata file or at least one chunk, sorted by index.
    pub channels: Vec<ScannedChannel>,
    /// Everything that looks wrong, in a stable order (by kind as found, then by channel).
    pub problems: Vec<ScanProblem>,
}

/// One channel of an output directory.
#[derive(Debug, Clone, PartialEq)]
pub struct ScannedChannel {
    /// Local channel index.
    pub channel: u32,
    /// `channel-{index:05}.metadata.json`, if present.
    pub metadata_path: Option<PathBuf>,
    /// The parsed metadata, if present and valid.
    pub metadata: Option<ChannelMetadata>,
    /// The channel's chunk files, sorted by `start_us` (then `end_us`).
    pub chunks: Vec<ScannedChunk>,
}

/// One chunk file of an output directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedChunk {
    /// Full path.
    pub path: PathBuf,
    /// Parsed name.
    pub name: ChunkName,
    /// Compressed size on disk.
    pub size_bytes: u64,
}

/// Something wrong in an output directory.
#[derive(Debug, Clone, PartialEq)]
pub enum ScanProblem {
    /// Chunks of a channel that has no metadata file.
    OrphanChunks {
        /// Channel index.
        channel: u32,
        /// How many chunks.
        count: usize,
        /// The earliest of them.
        first: PathBuf,
    },
    /// A metadata file without any chunk of its channel.
    MetadataWithoutChunks {
        /// Channel index.
        channel: u32,
        /// The metadata file.
        path: PathBuf,
    },
    /// Two chunks of one channel whose time ranges overlap (the later one starts at or before the
    /// end of an earlier one).
    OverlappingChunks {
        /// Channel index.
        channel: u32,
        /// The earlier chunk (the one whose end reaches furthest so far).
        earlier: PathBuf,
        /// The chunk starting inside it.
        later: PathBuf,
    },
    /// A chunk whose name has its end before its start.
    ReversedTimeRange {
        /// The chunk file.
        path: PathBuf,
    },
    /// A metadata file that cannot be read or is not valid metadata JSON.
    InvalidMetadata {
        /// The metadata file.
        path: PathBuf,
        /// The error message with its causes (it names the file).
        error: String,
    },
    /// A file named like ours (`channel-…` or `N:channel:…`) that is neither a local chunk nor a
    /// metadata file.
    UnrecognisedName {
        /// The file.
        path: PathBuf,
        /// Why it was not accepted.
        reason: String,
    },
    /// A temporary file left behind by an interrupted write (`.*.tmp`); ignored otherwise.
    LeftoverTempFile {
        /// The file.
        path: PathBuf,
    },
}

impl fmt::Display for ScanProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScanProblem::OrphanChunks {
                channel,
                count,
                first,
            } => write!(
                f,
                "channel {channel} has {count} chunk(s) but no metadata file (first: {})",
                first.display()
            ),
            ScanProblem::MetadataWithoutChunks { channel, path } => write!(
                f,
                "channel {channel} has a metadata file {} but no chunks",
                path.display()
            ),
            ScanProblem::OverlappingChunks {
                channel,
                earlier,
                later,
            } => write!(
                f,
                "channel {channel}: chunk {} starts before chunk {} ends",
                later.display(),
                earlier.display()
            ),
            ScanProblem::ReversedTimeRange { path } => {
                write!(f, "chunk {} ends before it starts", path.display())
            }
            // The error message already names the file.
            ScanProblem::InvalidMetadata { error, .. } => f.write_str(error),
            ScanProblem::UnrecognisedName { path, reason } => {
                write!(f, "unrecognised file {}: {reason}", path.display())
            }
            ScanProblem::LeftoverTempFile { path } => {
                write!(f, "leftover temporary file {}", path.display())
            }
        }
    }
}

/// Lists the chunk and metadata files directly in `dir` (subdirectories and unrelated files are
/// ignored) and reports problems. Only an unreadable directory is an error; everything found in it
/// is reported in [`OutputScan::problems`].
pub fn scan_output_dir(dir: &Path) -> Result<OutputScan> {
    let mut channels: BTreeMap<u32, ScannedChannel> = BTreeMap::new();
    let mut problems = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(io_err("list output directory", dir))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err("list output directory", dir))?;
        let path = entry.path();
        // Follows symlinks, so a linked chunk reports its target's size.
        let metadata = std::fs::metadata(&path).map_err(io_err("inspect", &path))?;
        if metadata.is_dir() {
            continue;
        }
        files.push((
            entry.file_name().to_string_lossy().into_owned(),
            path,
            metadata.len(),
        ));
    }
    // read_dir order is arbitrary; sort so problems come out in a stable order.
    files.sort();

    for (file_name, path, size_bytes) in files {
        if is_temp_name(&file_name) {
            problems.push(ScanProblem::LeftoverTempFile { path });
        } else if let Some(index) = parse_metadata_file_name(&file_name) {
            let metadata = match ChannelMetadata::read(&path) {
                Ok(metadata) => Some(metadata),
                Err(error) => {
                    problems.push(ScanProblem::InvalidMetadata {
                        path: path.clone(),
                        error: error_chain(&error),
                    });
                    None
                }
            };
            let channel = channel_entry(&mut channels, index);
            channel.metadata_path = Some(path);
            channel.metadata = metadata;
        } else if looks_like_ours(&file_name) {
            match ChunkName::parse(&file_name) {
                Ok(ChunkName {
                    channel: ChannelRef::Index(index),
                    start_us,
                    end_us,
                }) => {
                    if end_us < start_us {
                        problems.push(ScanProblem::ReversedTimeRange { path: path.clone() });
                    }
                    channel_entry(&mut channels, index).chunks.push(ScannedChunk {
                        path,
                        name: ChunkName::local(index, start_us, end_us),
                        size_bytes,
                    });
                }
                Ok(_) => problems.push(ScanProblem::UnrecognisedName {
                    path,
                    reason: "a chunk named by channel node id (upload form); an output directory holds only local `channel-NNNNN_…` names".into(),
                }),
                Err(error) => problems.push(ScanProblem::UnrecognisedName {
                    path,
                    reason: error.to_string(),
                }),
            }
        }
    }

    for channel in channels.values_mut() {
        channel
            .chunks
            .sort_by_key(|chunk| (chunk.name.start_us, chunk.name.end_us));
        check_channel(channel, &mut problems);
    }
    Ok(OutputScan {
        channels: channels.into_values().collect(),
        problems,
    })
}

fn channel_entry(channels: &mut BTreeMap<u32, ScannedChannel>, index: u32) -> &mut ScannedChannel {
    channels.entry(index).or_insert_with(|| ScannedChannel {
        channel: index,
        metadata_path: None,
        metadata: None,
        chunks: Vec::new(),
    })
}

fn check_channel(channel: &ScannedChannel, problems: &mut Vec<ScanProblem>) {
    match (&channel.metadata_path, channel.chunks.first()) {
        (None, Some(first)) => problems.push(ScanProblem::OrphanChunks {
            channel: channel.channel,
            count: channel.chunks.len(),
            first: first.path.clone(),
        }),
        (Some(path), None) => problems.push(ScanProblem::MetadataWithoutChunks {
            channel: channel.channel,
            path: path.clone(),
        }),
        _ => {}
    }
    // Compare each chunk with the one reaching furthest so far, so a chunk nested inside an
    // earlier long one is caught too.
    let mut furthest: Option<&ScannedChunk> = None;
    for chunk in &channel.chunks {
        if let Some(earlier) = furthest.filter(|e| chunk.name.start_us <= e.name.end_us) {
            problems.push(ScanProblem::OverlappingChunks {
                channel: channel.channel,
                earlier: earlier.path.clone(),
                later: chunk.path.clone(),
            });
        }
        if furthest.is_none_or(|f| chunk.name.end_us > f.name.end_us) {
            furthest = Some(chunk);
        }
    }
}
