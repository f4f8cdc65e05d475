//! Read `ElectricalSeries` from NWB 2.x files (HDF5): which series to convert, their channels
//! (electrode rows), scaling to microvolts, time base and contiguous segments, and streaming block
//! reads whose memory does not grow with the file. The rules are the team's conversion spec.
//!
//! ```
//! use nwb_reader::{DiscoverOptions, NwbFile};
//!
//! let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/rate_basic.nwb");
//! let file = NwbFile::open(path)?;
//! let discovery = file.discover(&DiscoverOptions::default())?;
//! let info = &discovery.series[0];
//! assert_eq!(info.path, "/acquisition/ElectricalSeries");
//!
//! let reader = file.open_series(info)?;
//! let mut microvolts = Vec::new();
//! for block in reader.blocks(reader.preferred_block_len(1 << 20)) {
//!     let (start, block) = block?;
//!     block.scale_channel_into(0, &info.scaling, &mut microvolts);
//!     println!("channel 0, samples from {start}: {} values", microvolts.len());
//! }
//! println!("first sample at {} s since the epoch", reader.time_at(0)?);
//! # Ok::<(), nwb_reader::Error>(())
//! ```
//!
//! HDF5 calls are serialised by the library; read on one thread and scale on others
//! ([`RawBlock`] is `Send`; [`RawBlock::scale_rows_into`] scales one channel's rows). For a
//! single thread, [`SeriesReader::read_scaled`] fills a reusable channel-major [`ScaledBlock`].
//!
//! Values follow the spec exactly, in float64 ([`Scaling::to_microvolts`]):
//! `((x * (channel_conversion[k] * conversion)) + offset) * unit_factor` µV. Times
//! ([`SeriesReader::time_at`]) are `(starting_time + i / rate) + T0` or `timestamps[i] + T0`, and
//! segments split where consecutive times are more than two sample periods apart or where time
//! stands still or goes back ([`SeriesReader::segments_report`], [`SeriesReader::segments`]).

#![warn(missing_docs)]

// Modules and what they use of each other (no cycles):
//   error, h5util, specs, time, model   use nothing else of the crate
//   storage -> model;  block -> model
//   series -> block, model, error, h5util
//   file (NwbFile) -> series, storage, specs, time, model, error, h5util
//   electrodes -> file, model, error, h5util
//   discover -> file, electrodes, storage, specs, time, model, error, h5util
mod block;
mod discover;
mod electrodes;
mod error;
mod file;
mod h5util;
mod model;
mod series;
mod specs;
mod storage;
mod stored;
mod time;

// The public API: everything callers name is re-exported here, and only here.
pub use block::{RawBlock, ScaledBlock};
pub use error::{Error, Location, Result};
pub use file::NwbFile;
pub use model::{
    Channel, DiscoverOptions, Discovery, RawDtype, Scaling, SegmentReport, SeriesInfo,
    SkippedObject, StorageInfo, TimeBase,
};
pub use series::SeriesReader;
pub use stored::{MAX_STORED_CHUNK_BYTES, StoredBlock};
pub use time::{ReferenceTime, parse_iso8601_micros};
