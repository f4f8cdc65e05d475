//! Pennsieve's chunked time-series output format, independent of NWB and HTTP.
//!
//! An output directory holds, per channel `k`:
//! - `channel-{k:05}.metadata.json`: one compact JSON object ([`ChannelMetadata`]),
//!   `{"name","start","end","unit":"uV","rate","type":"CONTINUOUS","group","lastAnnotation":0,"properties":[]}`;
//! - `channel-{k:05}_{startUs}_{endUs}.bin.gz` chunk files ([`ChunkName`]): one gzip member whose
//!   payload is the samples as big-endian IEEE-754 float64, in microvolts. `startUs`/`endUs` are the
//!   times of the first and last sample (inclusive), µs since the Unix epoch (negative before 1970).
//!
//! Every file is written to `.{final_name}.{pid}.{random}.tmp` in the same directory (created with
//! `O_EXCL` and `O_NOFOLLOW`) and renamed into place when complete, so a final name never holds a
//! partial file. Uploaded chunks replace the
//! `channel-{k:05}` token by the channel node id ([`ChunkName::with_node_id`]).
//!
//! [`OutputDir`] owns the directory of one conversion: it locks it against other conversions
//! ([`LOCK_FILE_NAME`]), refuses or replaces an earlier conversion's files ([`ExistingOutput`]),
//! writes chunks and metadata atomically, and removes exactly this run's files after a failure.
//!
//! ```
//! use ts_chunk_format::{
//!     ChannelMetadata, ChunkName, ChunkWriter, ExistingOutput, OutputDir, read_chunk,
//!     scan_output_dir,
//! };
//!
//! # fn main() -> ts_chunk_format::Result<()> {
//! let dir = tempfile::tempdir().unwrap();
//! let out = OutputDir::prepare(dir.path(), ExistingOutput::Refuse)?;
//!
//! // Channel 3: 4 samples at 1 kHz starting 2021-01-01T00:00:00Z.
//! let start_us = 1_609_459_200_000_000;
//! let name = ChunkName::local(3, start_us, start_us + 3_000);
//! assert_eq!(name.to_string(), "channel-00003_1609459200000000_1609459200003000.bin.gz");
//! let mut writer = ChunkWriter::new(0);
//! let chunk = out.write_chunk(&mut writer, &name, &[1.5, -2.0, f64::NAN, 0.0])?;
//! assert_eq!(chunk.bytes, std::fs::metadata(&chunk.path).unwrap().len());
//! let chunk_path = chunk.path;
//!
//! let metadata = ChannelMetadata::continuous("CH3", "shank0", start_us, start_us + 3_000, 1000.0);
//! let metadata_path = out.write_metadata(3, &metadata)?.path;
//! assert!(metadata_path.ends_with("channel-00003.metadata.json"));
//!
//! // Read everything back.
//! let samples = read_chunk(&chunk_path)?;
//! assert_eq!(samples[..2], [1.5, -2.0]);
//! assert!(samples[2].is_nan());
//! assert_eq!(ChannelMetadata::read(&metadata_path)?, metadata);
//! assert_eq!(chunk_path.file_name().unwrap().to_str().unwrap().parse::<ChunkName>()?, name);
//!
//! let scan = scan_output_dir(dir.path())?;
//! assert!(scan.problems.is_empty());
//! assert_eq!(scan.channels[0].channel, 3);
//! assert_eq!(scan.channels[0].chunks[0].name, name);
//!
//! // While `out` lives the directory is locked against other runs.
//! assert!(matches!(
//!     OutputDir::prepare(dir.path(), ExistingOutput::Replace),
//!     Err(ts_chunk_format::Error::Locked { .. })
//! ));
//! drop(out);
//!
//! // A second run into the same directory is refused unless it replaces the files.
//! assert!(matches!(
//!     OutputDir::prepare(dir.path(), ExistingOutput::Refuse),
//!     Err(ts_chunk_format::Error::EarlierOutput { count: 2, .. })
//! ));
//! let again = OutputDir::prepare(dir.path(), ExistingOutput::Replace)?;
//! assert_eq!(again.removed_earlier(), 2);
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod atomic;
mod chunk;
mod error;
mod metadata;
mod name;
mod output_dir;
mod scan;

pub use chunk::{ChunkFile, ChunkWriter, Written, decode_samples, encode_samples, read_chunk};
pub use error::{Error, Result};
pub use metadata::ChannelMetadata;
pub use name::{ChannelRef, ChunkName, metadata_file_name};
pub use output_dir::{ExistingOutput, LOCK_FILE_NAME, OutputDir, is_conversion_file_name};
pub use scan::{OutputScan, ScanProblem, ScannedChannel, ScannedChunk, scan_output_dir};
