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
//! segments split where consecutive times are more than two sample periods apart
//! ([`SeriesReader::segments`]).

mod error;
mod file;
mod h5util;
mod series;
mod specs;
mod time;

pub use error::{Error, Location, Result};
pub use file::{
    Channel, DiscoverOptions, Discovery, NwbFile, RawDtype, Scaling, SeriesInfo, SkippedObject,
    StorageInfo, TimeBase, filter_name, unit_factor,
};
pub use series::{RawBlock, ScaledBlock, SeriesReader};
pub use specs::{SeriesKind, TypeTree};
pub use time::{ReferenceTime, infer_rate, parse_iso8601_micros, rates_agree, rounded_rate};
