//! The data model: what discovery finds out about a file and its series (stored type, time base,
//! scaling, channels, storage), as plain values. Depends on nothing else in the crate.

use hdf5::types::{FloatSize, IntSize, TypeDescriptor};
use serde_json::Value;

/// What [`NwbFile::discover`](crate::NwbFile::discover) looks at. `Default` looks at
/// `/acquisition` only.
#[derive(Debug, Clone, Default)]
pub struct DiscoverOptions {
    /// Also series under `/processing` and inside containers (LFP, FilteredEphys) in `/acquisition`.
    pub include_processing: bool,
}

/// The result of [`NwbFile::discover`](crate::NwbFile::discover).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Discovery {
    /// The series to convert, in the spec's order.
    pub series: Vec<SeriesInfo>,
    /// Series that are deliberately not converted (SpikeEventSeries), with the reason.
    pub skipped: Vec<SkippedObject>,
    /// Every typed group of the file (outside `/specifications`), `(path, neurodata_type)` in byte
    /// order of the path: what a "no series" message can list.
    pub typed_objects: Vec<(String, String)>,
}

/// A typed object that discovery found and deliberately does not convert.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SkippedObject {
    /// HDF5 path of the object, e.g. `/acquisition/Spikes`.
    pub path: String,
    /// Its `neurodata_type` attribute.
    pub neurodata_type: String,
    /// Why it is not converted, as a sentence for the user.
    pub reason: String,
}

/// The stored sample type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RawDtype {
    /// Signed 8-bit integers.
    I8,
    /// Signed 16-bit integers.
    I16,
    /// Signed 32-bit integers.
    I32,
    /// Signed 64-bit integers.
    I64,
    /// Unsigned 8-bit integers.
    U8,
    /// Unsigned 16-bit integers.
    U16,
    /// Unsigned 32-bit integers.
    U32,
    /// Unsigned 64-bit integers.
    U64,
    /// 32-bit IEEE floats.
    F32,
    /// 64-bit IEEE floats.
    F64,
}

impl RawDtype {
    /// Bytes per value.
    pub fn size(self) -> usize {
        match self {
            RawDtype::I8 | RawDtype::U8 => 1,
            RawDtype::I16 | RawDtype::U16 => 2,
            RawDtype::I32 | RawDtype::U32 | RawDtype::F32 => 4,
            RawDtype::I64 | RawDtype::U64 | RawDtype::F64 => 8,
        }
    }

    /// The sample type of an HDF5 type, or `None` for anything but integers and floats.
    pub(crate) fn from_descriptor(desc: &TypeDescriptor) -> Option<Self> {
        Some(match desc {
            TypeDescriptor::Integer(IntSize::U1) => RawDtype::I8,
            TypeDescriptor::Integer(IntSize::U2) => RawDtype::I16,
            TypeDescriptor::Integer(IntSize::U4) => RawDtype::I32,
            TypeDescriptor::Integer(IntSize::U8) => RawDtype::I64,
            TypeDescriptor::Unsigned(IntSize::U1) => RawDtype::U8,
            TypeDescriptor::Unsigned(IntSize::U2) => RawDtype::U16,
            TypeDescriptor::Unsigned(IntSize::U4) => RawDtype::U32,
            TypeDescriptor::Unsigned(IntSize::U8) => RawDtype::U64,
            TypeDescriptor::Float(FloatSize::U4) => RawDtype::F32,
            TypeDescriptor::Float(FloatSize::U8) => RawDtype::F64,
            _ => return None,
        })
    }
}

/// The numpy name: `int8` ... `uint64`, `float32`, `float64`.
impl std::fmt::Display for RawDtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            RawDtype::I8 => "int8",
            RawDtype::I16 => "int16",
            RawDtype::I32 => "int32",
            RawDtype::I64 => "int64",
            RawDtype::U8 => "uint8",
            RawDtype::U16 => "uint16",
            RawDtype::U32 => "uint32",
            RawDtype::U64 => "uint64",
            RawDtype::F32 => "float32",
            RawDtype::F64 => "float64",
        };
        f.write_str(name)
    }
}

/// How sample `i` gets its time (spec "Time base"), all in seconds relative to the reference time.
/// Callers outside the crate should prefer [`rate`](Self::rate),
/// [`starting_time`](Self::starting_time) and [`kind_name`](Self::kind_name) to matching.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TimeBase {
    /// `t(i) = (starting_time + i / rate) + T0`.
    Rate {
        /// `starting_time@rate` in Hz.
        rate: f64,
        /// The `starting_time` value in seconds.
        starting_time: f64,
    },
    /// `t(i) = timestamps[i] + T0`; `rate` is the rate used: the given one when present, else the
    /// inferred one rounded half to even.
    Timestamps {
        /// The rate used, in Hz.
        rate: f64,
        /// `starting_time@rate` when the series also has one (it agrees within 2 %).
        given_rate: Option<f64>,
        /// `1 / median` of the successive differences of the first `min(10, n)` stored
        /// (relative) timestamps, not rounded.
        inferred_rate: f64,
    },
}

impl TimeBase {
    /// The sampling rate in Hz written to the metadata.
    pub fn rate(&self) -> f64 {
        match self {
            TimeBase::Rate { rate, .. } | TimeBase::Timestamps { rate, .. } => *rate,
        }
    }

    /// The stored `starting_time` in seconds for a rate, `None` with timestamps.
    pub fn starting_time(&self) -> Option<f64> {
        match self {
            TimeBase::Rate { starting_time, .. } => Some(*starting_time),
            TimeBase::Timestamps { .. } => None,
        }
    }

    /// `"rate"` or `"timestamps"`: which kind of time base this is, for reports.
    pub fn kind_name(&self) -> &'static str {
        match self {
            TimeBase::Rate { .. } => "rate",
            TimeBase::Timestamps { .. } => "timestamps",
        }
    }
}

/// The spec's scaling to microvolts ("Sample values").
#[derive(Debug, Clone, PartialEq)]
pub struct Scaling {
    /// `data@conversion` (1.0 when absent).
    pub conversion: f64,
    /// `data@offset` (0.0 when absent).
    pub offset: f64,
    /// The `channel_conversion` dataset, one factor per channel, if present.
    pub channel_conversion: Option<Vec<f64>>,
    /// The stored `data@unit`, if any.
    pub unit: Option<String>,
    /// 1e6 for volts (and unknown units), 1e3 for millivolts, 1 for microvolts.
    pub unit_factor: f64,
}

impl Scaling {
    /// The multiplier applied to raw values of channel `k`: `channel_conversion[k] * conversion`
    /// or `conversion`.
    #[inline]
    pub fn channel_factor(&self, k: usize) -> f64 {
        match &self.channel_conversion {
            Some(cc) => cc[k] * self.conversion,
            None => self.conversion,
        }
    }

    /// Microvolts of raw value `x` of channel `k`: `((x * factor) + offset) * unit_factor`, in
    /// exactly this order in float64.
    #[inline]
    pub fn to_microvolts(&self, k: usize, x: f64) -> f64 {
        ((x * self.channel_factor(k)) + self.offset) * self.unit_factor
    }
}

/// The microvolt factor of a stored unit text, and whether the text was unknown.
pub(crate) fn unit_factor(unit: Option<&str>) -> (f64, bool) {
    let Some(unit) = unit else {
        return (1e6, false);
    };
    match unit.trim().to_ascii_lowercase().as_str() {
        "millivolts" | "millivolt" | "mv" => (1e3, false),
        "microvolts" | "microvolt" | "uv" => (1.0, false),
        "volts" | "volt" | "v" => (1e6, false),
        _ => (1e6, true),
    }
}

/// One channel: an electrode row of the series' region.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Channel {
    /// 0-based row in the electrodes table.
    pub row: u64,
    /// The row's `id` value.
    pub id: i64,
    /// `channel_name`, else `label`, else the id as text; trimmed.
    pub name: String,
    /// `group_name`, else the referenced ElectrodeGroup's name; trimmed.
    pub group: String,
    /// The row's other simple columns.
    pub properties: Vec<(String, Value)>,
}

/// How the data is stored (for `inspect` and read planning).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StorageInfo {
    /// `contiguous`, `chunked`, `compact` or `virtual`.
    pub layout: String,
    /// The HDF5 chunk shape of a chunked dataset.
    pub chunk_shape: Option<Vec<u64>>,
    /// Filters in pipeline order, e.g. `shuffle`, `gzip(4)`, `fletcher32`, `filter 32015`.
    pub filters: Vec<String>,
    /// Set when `data` is an external link (to the named file).
    pub external: Option<String>,
    /// Filter ids in the pipeline that this HDF5 library cannot decode.
    pub missing_filters: Vec<u32>,
}

/// Everything known about one series before reading samples.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SeriesInfo {
    /// HDF5 path of the series group, e.g. `/acquisition/ElectricalSeries`.
    pub path: String,
    /// The last component of `path`.
    pub name: String,
    /// The group's `neurodata_type` (ElectricalSeries or a subtype).
    pub neurodata_type: String,
    /// The stored sample type of `data`.
    pub dtype: RawDtype,
    /// Samples per channel: the first dimension of `data`.
    pub num_samples: u64,
    /// Channels: the second dimension of 2-D `data`, 1 for 1-D `data`.
    pub num_channels: usize,
    /// The shape of `data` as stored (1-D or 2-D).
    pub shape: Vec<u64>,
    /// How sample times are computed.
    pub time: TimeBase,
    /// How raw values become microvolts.
    pub scaling: Scaling,
    /// One entry per channel, in column order of `data`.
    pub channels: Vec<Channel>,
    /// Layout and filters of `data`.
    pub storage: StorageInfo,
    /// Things a user should hear about that do not stop the conversion (e.g. an unknown unit).
    pub warnings: Vec<String>,
}

/// The contiguous segments of a series (spec "Contiguous segments") and what a user should hear
/// about them. Made by [`SeriesReader::segments_report`](crate::SeriesReader::segments_report).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SegmentReport {
    /// The segments `[start, end)` in sample indices, in order, covering the series.
    pub segments: Vec<std::ops::Range<u64>>,
    /// The first index `i` where time stands still or goes back (`t(i) <= t(i-1)`), if any.
    pub first_non_increasing: Option<u64>,
    /// How many indices have `t(i) <= t(i-1)` (each starts a new segment).
    pub non_increasing: u64,
    /// A sentence for the user when time stands still or goes back, naming the series, the
    /// first such index and how many there are.
    pub warning: Option<String>,
}
