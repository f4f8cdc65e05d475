//! Convert the `ElectricalSeries` of an NWB file into Pennsieve's chunked time-series files:
//! first [`plan`] (which series, channel numbers, segments, chunk names and times, without
//! reading samples), then [`execute`] the plan into an [`OutputDir`].
//!
//! ```
//! use ts_convert::{ExecOptions, ExistingOutput, NwbFile, Options, OutputDir};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/sample.nwb");
//! let file = NwbFile::open(sample)?;
//! let plan = ts_convert::plan(&file, &Options::default())?;
//! let out = OutputDir::prepare(dir.path(), ExistingOutput::Refuse)?;
//! let summary = ts_convert::execute(&plan, &out, &ExecOptions::default(), |_progress| {})?;
//! assert_eq!(summary.chunks, plan.chunk_files());
//! # Ok(())
//! # }
//! ```
//!
//! Output names and bytes depend only on the input and [`Options`], never on [`ExecOptions`]
//! (threads, block size) — the spec's rules are in `shared/spec/conversion.md`. A failed
//! [`execute`] removes the files it wrote. The HDF5 reads happen on the calling thread;
//! scaling, encoding and writing on a rayon pool. A corrupt file can crash or hang the HDF5 C
//! library itself: [`isolation`] runs the work in a supervised child process instead.

#![warn(missing_docs)]

mod error;
mod execute;
pub mod isolation;
mod plan;

pub use error::{Error, Result};
pub use execute::{ExecOptions, Progress, Summary, execute, execute_with_files};
pub use plan::{
    DEFAULT_MAX_FILES, MAX_CHUNKS_PER_CHANNEL, Options, Plan, PlannedChunk, SeriesPlan,
    chunk_samples, micros, plan,
};

// The types a caller needs alongside the plan, so one dependency is enough.
pub use nwb_reader::NwbFile;
pub use ts_chunk_format::{ExistingOutput, OutputDir};
