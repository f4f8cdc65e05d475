//! Opening an NWB file and discovering its ElectricalSeries (spec "Which series", "Per series").

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use hdf5::types::{FloatSize, IntSize, TypeDescriptor};
use hdf5::{Dataset, Group, LinkType, ObjectReference1, ReferencedObject};
use serde_json::Value;

use crate::error::{Error, Location, Result};
use crate::h5util::{
    attr_f64, attr_string, is_text, read_attr_strings, read_dataset_strings, read_f64_range,
    read_f64s,
};
use crate::series::SeriesReader;
use crate::specs::{SeriesKind, TypeTree};
use crate::time::{ReferenceTime, infer_rate, parse_iso8601_micros, rates_agree, rounded_rate};

/// An open NWB file.
pub struct NwbFile {
    path: PathBuf,
    file: hdf5::File,
    nwb_version: String,
    reference_time: ReferenceTime,
    types: TypeTree,
}

/// What [`NwbFile::discover`] looks at.
#[derive(Debug, Clone, Default)]
pub struct DiscoverOptions {
    /// Also series under `/processing` and inside containers (LFP, FilteredEphys) in `/acquisition`.
    pub include_processing: bool,
}

/// The result of [`NwbFile::discover`].
#[derive(Debug, Clone)]
pub struct Discovery {
    /// The series to convert, in the spec's order.
    pub series: Vec<SeriesInfo>,
    /// Series that are deliberately not converted (SpikeEventSeries), with the reason.
    pub skipped: Vec<SkippedObject>,
    /// Every typed group of the file (outside `/specifications`), `(path, neurodata_type)` in byte
    /// order of the path: what a "no series" message can list.
    pub typed_objects: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedObject {
    pub path: String,
    pub neurodata_type: String,
    pub reason: String,
}

/// The stored sample type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawDtype {
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    F32,
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

    fn from_descriptor(desc: &TypeDescriptor) -> Option<Self> {
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
#[derive(Debug, Clone, PartialEq)]
pub enum TimeBase {
    /// `t(i) = (starting_time + i / rate) + T0`.
    Rate { rate: f64, starting_time: f64 },
    /// `t(i) = timestamps[i] + T0`; `rate` is the rate used: the given one when present, else the
    /// inferred one rounded half to even.
    Timestamps {
        rate: f64,
        given_rate: Option<f64>,
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
}

/// The spec's scaling to microvolts ("Sample values").
#[derive(Debug, Clone, PartialEq)]
pub struct Scaling {
    pub conversion: f64,
    pub offset: f64,
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
pub fn unit_factor(unit: Option<&str>) -> (f64, bool) {
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
pub struct StorageInfo {
    /// `contiguous`, `chunked`, `compact` or `virtual`.
    pub layout: String,
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
pub struct SeriesInfo {
    pub path: String,
    pub name: String,
    pub neurodata_type: String,
    pub dtype: RawDtype,
    pub num_samples: u64,
    pub num_channels: usize,
    pub shape: Vec<u64>,
    pub time: TimeBase,
    pub scaling: Scaling,
    pub channels: Vec<Channel>,
    pub storage: StorageInfo,
    /// Things a user should hear about that do not stop the conversion (e.g. an unknown unit).
    pub warnings: Vec<String>,
}

const HDF5_SIGNATURE: &[u8; 8] = b"\x89HDF\r\n\x1a\n";

impl NwbFile {
    /// Opens `path` and checks that it is an NWB 2.x HDF5 file with a readable reference time.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let meta = fs::metadata(&path).map_err(|e| Error::Open {
            file: path.clone(),
            reason: e.to_string(),
        })?;
        if meta.is_dir() {
            let zarr = path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("zarr"))
                || path.join(".zattrs").exists()
                || path.join(".zgroup").exists();
            if zarr {
                return Err(Error::Zarr { file: path });
            }
            return Err(Error::Open {
                file: path,
                reason: "is a directory, not a file".into(),
            });
        }
        if !has_hdf5_signature(&path, meta.len()) {
            return Err(Error::NotHdf5 { file: path });
        }
        // A 32 MiB chunk cache per dataset (default 1 MiB): blocks are cut at chunk-file
        // boundaries, not HDF5 chunk boundaries, and a compressed HDF5 chunk split between two
        // blocks must not be decompressed twice.
        let file = hdf5::File::with_options()
            .with_fapl(|p| p.chunk_cache(1021, 32 << 20, 1.0))
            .open(&path)
            .map_err(|e| Error::Open {
                file: path.clone(),
                reason: format!("HDF5 cannot open it (truncated or damaged?): {e}"),
            })?;
        let root: &Group = &file;
        let not_nwb = |reason: String| Error::NotNwb {
            file: path.clone(),
            reason,
        };
        let ndtype = attr_string(root, "neurodata_type").ok().flatten();
        if ndtype.as_deref() != Some("NWBFile") {
            return Err(not_nwb(match ndtype {
                Some(t) => format!("root neurodata_type is {t:?}, expected \"NWBFile\""),
                None => "the root group has no neurodata_type attribute".into(),
            }));
        }
        let nwb_version = attr_string(root, "nwb_version")
            .ok()
            .flatten()
            .ok_or_else(|| not_nwb("the root group has no nwb_version attribute".into()))?;
        let time_name = ["timestamps_reference_time", "session_start_time"]
            .into_iter()
            .find(|n| root.link_exists(n))
            .ok_or_else(|| {
                not_nwb("neither timestamps_reference_time nor session_start_time exists".into())
            })?;
        let at = Location {
            file: path.clone(),
            object: format!("/{time_name}"),
        };
        let text = root
            .dataset(time_name)
            .and_then(|ds| read_dataset_strings(&ds))
            .map_err(|source| Error::Hdf5 {
                at: at.clone(),
                action: "reading the reference time",
                source,
            })?
            .into_iter()
            .next()
            .unwrap_or_default();
        let epoch_micros = parse_iso8601_micros(&text).map_err(|why| Error::Invalid {
            at,
            what: format!("{text:?} is not an ISO 8601 time: {why}"),
        })?;
        let types = load_type_tree(&file);
        Ok(Self {
            path,
            file,
            nwb_version,
            reference_time: ReferenceTime {
                text: text.trim_matches(['\0', ' ']).to_owned(),
                epoch_micros,
            },
            types,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn nwb_version(&self) -> &str {
        &self.nwb_version
    }

    /// `timestamps_reference_time`, else `session_start_time`.
    pub fn reference_time(&self) -> &ReferenceTime {
        &self.reference_time
    }

    fn at(&self, object: &str) -> Location {
        Location {
            file: self.path.clone(),
            object: object.to_owned(),
        }
    }

    fn h5<T>(&self, object: &str, action: &'static str, r: hdf5::Result<T>) -> Result<T> {
        r.map_err(|source| Error::Hdf5 {
            at: self.at(object),
            action,
            source,
        })
    }

    fn invalid(&self, object: &str, what: impl Into<String>) -> Error {
        Error::Invalid {
            at: self.at(object),
            what: what.into(),
        }
    }

    /// Finds the series to convert (spec "Which series") and resolves each one's channels, time
    /// base and scaling. A series that breaks the spec's rules is an error naming it.
    pub fn discover(&self, opts: &DiscoverOptions) -> Result<Discovery> {
        let mut found = Found::default();
        if self.file.link_exists("acquisition") {
            self.scan_group("/acquisition", opts.include_processing, &mut found)?;
        }
        let mut series = std::mem::take(&mut found.direct);
        if opts.include_processing {
            if self.file.link_exists("processing") {
                self.scan_group("/processing", true, &mut found)?;
            }
            found
                .nested
                .sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
            series.extend(found.nested);
        }
        Ok(Discovery {
            series,
            skipped: found.skipped,
            typed_objects: self.typed_groups(),
        })
    }

    /// Every typed group reached through hard links (soft links would list objects twice and
    /// could loop).
    fn typed_groups(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let root: &Group = &self.file;
        let mut pending = vec![(String::new(), Some(root.clone()))];
        while let Some((path, group)) = pending.pop() {
            let Some(group) = group else { continue };
            let mut hard = Vec::new();
            let _ = group.iter_visit_default(|name, info| {
                if info.link_type == LinkType::Hard {
                    hard.push(name.to_owned());
                }
                Ok(())
            });
            for name in hard {
                let child_path = format!("{path}/{name}");
                if child_path == "/specifications" {
                    continue;
                }
                let Ok(child) = group.group(&name) else {
                    continue;
                };
                if let Ok(Some(t)) = attr_string(&child, "neurodata_type") {
                    out.push((child_path.clone(), t));
                }
                pending.push((child_path, Some(child)));
            }
        }
        out.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        out
    }

    /// Classifies the members of `path` in byte order of their names; recurses into containers
    /// when `nested` is set (their series go to `found.nested`).
    fn scan_group(&self, path: &str, nested: bool, found: &mut Found) -> Result<()> {
        let group = self.h5(path, "opening the group", self.file.group(path))?;
        let mut names = self.h5(path, "listing the group", group.member_names())?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        let is_acquisition = path == "/acquisition";
        for name in names {
            let child_path = format!("{path}/{name}");
            let Ok(child) = group.group(&name) else {
                continue;
            }; // datasets and broken links
            let ndtype = attr_string(&child, "neurodata_type").ok().flatten();
            let namespace = attr_string(&child, "namespace").ok().flatten();
            let kind = ndtype
                .as_deref()
                .map(|t| self.types.classify(t, namespace.as_deref()));
            match kind {
                Some(SeriesKind::Electrical) => {
                    let info = self.series_info(&child, &child_path, ndtype.unwrap_or_default())?;
                    if is_acquisition {
                        found.direct.push(info);
                    } else {
                        found.nested.push(info);
                    }
                }
                Some(SeriesKind::SpikeEvents) => found.skipped.push(SkippedObject {
                    path: child_path,
                    neurodata_type: ndtype.unwrap_or_default(),
                    reason: "SpikeEventSeries hold waveform snippets, not a continuous signal"
                        .into(),
                }),
                _ if nested => self.scan_group(&child_path, true, found)?,
                _ => {}
            }
        }
        Ok(())
    }

    fn series_info(&self, group: &Group, path: &str, neurodata_type: String) -> Result<SeriesInfo> {
        let data_path = format!("{path}/data");
        let external = link_type(group, "data") == Some(LinkType::External);
        let data = group.dataset("data").map_err(|source| {
            if external {
                Error::DanglingLink {
                    at: self.at(&data_path),
                    target: external_target(group, "data"),
                }
            } else if !group.link_exists("data") {
                self.invalid(path, "has no data dataset")
            } else {
                Error::Hdf5 {
                    at: self.at(&data_path),
                    action: "opening data",
                    source,
                }
            }
        })?;
        let shape: Vec<u64> = data.shape().iter().map(|&d| d as u64).collect();
        let num_channels = match shape.len() {
            1 => 1,
            2 => shape[1] as usize,
            r => {
                return Err(self.invalid(
                    &data_path,
                    format!("has rank {r} (shape {shape:?}); expected 1-D (samples) or 2-D (samples, channels)"),
                ));
            }
        };
        let num_samples = shape[0];
        if num_samples == 0 {
            return Err(self.invalid(&data_path, format!("has no samples (shape {shape:?})")));
        }
        let desc = self.h5(
            &data_path,
            "reading the data type",
            data.dtype().and_then(|t| t.to_descriptor()),
        )?;
        let dtype = RawDtype::from_descriptor(&desc).ok_or_else(|| {
            self.invalid(
                &data_path,
                format!("has type {desc}; expected integers or floats"),
            )
        })?;

        let mut warnings = Vec::new();
        let scaling = self.scaling(group, path, &data, num_channels, &mut warnings)?;
        let time = self.time_base(group, path, num_samples)?;
        let channels = self.channels(group, path, num_channels)?;
        let storage = storage_info(&data, external.then(|| external_target(group, "data")));
        Ok(SeriesInfo {
            path: path.to_owned(),
            name: path.rsplit('/').next().unwrap_or(path).to_owned(),
            neurodata_type,
            dtype,
            num_samples,
            num_channels,
            shape,
            time,
            scaling,
            channels,
            storage,
            warnings,
        })
    }

    fn scaling(
        &self,
        group: &Group,
        path: &str,
        data: &Dataset,
        channels: usize,
        warnings: &mut Vec<String>,
    ) -> Result<Scaling> {
        let data_path = format!("{path}/data");
        let conversion = self
            .h5(
                &data_path,
                "reading conversion",
                attr_f64(data, "conversion"),
            )?
            .unwrap_or(1.0);
        let offset = self
            .h5(&data_path, "reading offset", attr_f64(data, "offset"))?
            .unwrap_or(0.0);
        let unit = self.h5(&data_path, "reading unit", attr_string(data, "unit"))?;
        let (unit_factor, unknown) = unit_factor(unit.as_deref());
        if unknown {
            warnings.push(format!(
                "{path}: unknown data unit {:?}; treated as volts as the schema requires",
                unit.as_deref().unwrap_or("")
            ));
        }
        let channel_conversion = if group.link_exists("channel_conversion") {
            let cc_path = format!("{path}/channel_conversion");
            let cc = self.h5(
                &cc_path,
                "reading channel_conversion",
                group
                    .dataset("channel_conversion")
                    .and_then(|d| read_f64s(&d)),
            )?;
            if cc.len() != channels {
                return Err(self.invalid(
                    &cc_path,
                    format!(
                        "has {} values; expected {channels} (one per channel)",
                        cc.len()
                    ),
                ));
            }
            Some(cc)
        } else {
            None
        };
        Ok(Scaling {
            conversion,
            offset,
            channel_conversion,
            unit,
            unit_factor,
        })
    }

    fn time_base(&self, group: &Group, path: &str, num_samples: u64) -> Result<TimeBase> {
        let given = if group.link_exists("starting_time") {
            let st_path = format!("{path}/starting_time");
            let ds = self.h5(
                &st_path,
                "opening starting_time",
                group.dataset("starting_time"),
            )?;
            let starting_time = self
                .h5(&st_path, "reading starting_time", read_f64s(&ds))?
                .first()
                .copied()
                .ok_or_else(|| self.invalid(&st_path, "is empty"))?;
            let rate = self
                .h5(&st_path, "reading rate", attr_f64(&ds, "rate"))?
                .ok_or_else(|| self.invalid(&st_path, "has no rate attribute"))?;
            if !(rate.is_finite() && rate > 0.0) {
                return Err(self.invalid(
                    &st_path,
                    format!("rate {rate} is not a positive number of Hz"),
                ));
            }
            Some((rate, starting_time))
        } else {
            None
        };
        if !group.link_exists("timestamps") {
            return match given {
                Some((rate, starting_time)) => Ok(TimeBase::Rate {
                    rate,
                    starting_time,
                }),
                None => {
                    Err(self.invalid(path, "has neither starting_time (with rate) nor timestamps"))
                }
            };
        }
        let ts_path = format!("{path}/timestamps");
        let ts = group
            .dataset("timestamps")
            .map_err(|_| self.invalid(&ts_path, "cannot be opened (a broken link?)"))?;
        let len = ts.size() as u64;
        if len != num_samples {
            return Err(self.invalid(
                &ts_path,
                format!("has {len} values; expected {num_samples} (one per sample of data)"),
            ));
        }
        let first = self.h5(
            &ts_path,
            "reading timestamps",
            read_f64_range(&ts, 0, len.min(10) as usize),
        )?;
        let t0 = self.reference_time.seconds();
        let absolute: Vec<f64> = first.iter().map(|t| t + t0).collect();
        let inferred = infer_rate(&absolute)
            .filter(|r| r.is_finite() && *r > 0.0)
            .ok_or_else(|| {
                self.invalid(
                    &ts_path,
                    "cannot infer a sampling rate (fewer than two distinct increasing timestamps)",
                )
            })?;
        match given {
            Some((rate, _)) => {
                if !rates_agree(rate, inferred) {
                    return Err(self.invalid(
                        path,
                        format!("rate {rate} Hz and the rate inferred from timestamps ({inferred:.4} Hz) differ by more than 2 %"),
                    ));
                }
                Ok(TimeBase::Timestamps {
                    rate,
                    given_rate: Some(rate),
                    inferred_rate: inferred,
                })
            }
            None => {
                let rate = rounded_rate(inferred);
                if rate <= 0.0 {
                    return Err(self.invalid(
                        &ts_path,
                        format!("the inferred rate {inferred} Hz rounds to 0"),
                    ));
                }
                Ok(TimeBase::Timestamps {
                    rate,
                    given_rate: None,
                    inferred_rate: inferred,
                })
            }
        }
    }

    fn channels(&self, group: &Group, path: &str, num_channels: usize) -> Result<Vec<Channel>> {
        let region_path = format!("{path}/electrodes");
        if !group.link_exists("electrodes") {
            return Err(self.invalid(path, "has no electrodes region"));
        }
        let region_ds = self.h5(
            &region_path,
            "opening the region",
            group.dataset("electrodes"),
        )?;
        let region = self.h5(
            &region_path,
            "reading the region",
            region_ds.read_raw::<i64>(),
        )?;
        if region.len() != num_channels {
            return Err(self.invalid(
                &region_path,
                format!(
                    "has {} entries; expected {num_channels} (one per channel of data)",
                    region.len()
                ),
            ));
        }
        let table_ref = self.h5(
            &region_path,
            "reading the table reference",
            region_ds
                .attr("table")
                .and_then(|a| a.read_scalar::<ObjectReference1>()),
        )?;
        let table = match self.h5(
            &region_path,
            "following the table reference",
            region_ds.dereference(&table_ref),
        )? {
            ReferencedObject::Group(g) => g,
            _ => return Err(self.invalid(&region_path, "@table does not point to a group")),
        };
        let table_path = table.name();
        let table = Table::read(self, &table, &table_path)?;
        region
            .iter()
            .map(|&row| {
                if row < 0 || row as u64 >= table.len {
                    return Err(self.invalid(
                        &region_path,
                        format!(
                            "row {row} is outside the electrodes table {table_path} ({} rows)",
                            table.len
                        ),
                    ));
                }
                table.channel(self, row as usize, &table_path)
            })
            .collect()
    }

    /// A reader for the samples and times of `info`.
    pub fn open_series(&self, info: &SeriesInfo) -> Result<SeriesReader> {
        let data_path = format!("{}/data", info.path);
        if let Some(&id) = info.storage.missing_filters.first() {
            return Err(Error::FilterUnavailable {
                at: self.at(&data_path),
                id,
                name: filter_name(id),
            });
        }
        let group = self.h5(
            &info.path,
            "opening the series",
            self.file.group(&info.path),
        )?;
        let data = self.h5(&data_path, "opening data", group.dataset("data"))?;
        let timestamps = match info.time {
            TimeBase::Timestamps { .. } => Some(self.h5(
                &info.path,
                "opening timestamps",
                group.dataset("timestamps"),
            )?),
            TimeBase::Rate { .. } => None,
        };
        Ok(SeriesReader::new(
            self.path.clone(),
            info.clone(),
            data,
            timestamps,
            self.reference_time.seconds(),
        ))
    }
}

#[derive(Default)]
struct Found {
    direct: Vec<SeriesInfo>,
    nested: Vec<SeriesInfo>,
    skipped: Vec<SkippedObject>,
}

/// The electrodes table's columns, read once per series (tables are small).
struct Table {
    len: u64,
    ids: Vec<i64>,
    columns: Vec<(String, ColumnData)>,
    group_refs: Option<Vec<ObjectReference1>>,
    group_obj: Group,
}

enum ColumnData {
    Text(Vec<String>),
    Int(Vec<i64>),
    Float(Vec<f64>),
    /// Ragged column: values and cumulative end offsets.
    Ragged(Vec<Value>, Vec<u64>),
}

impl ColumnData {
    fn value(&self, row: usize) -> Value {
        match self {
            ColumnData::Text(v) => Value::from(v[row].clone()),
            ColumnData::Int(v) => Value::from(v[row]),
            ColumnData::Float(v) => serde_json::Number::from_f64(v[row])
                .map(Value::Number)
                .unwrap_or(Value::Null),
            ColumnData::Ragged(values, ends) => {
                let start = if row == 0 { 0 } else { ends[row - 1] as usize };
                let end = (ends[row] as usize).min(values.len());
                Value::from(values.get(start..end).unwrap_or_default().to_vec())
            }
        }
    }

    fn text(&self, row: usize) -> String {
        match self.value(row) {
            Value::String(s) => s,
            Value::Array(items) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| v.to_string())
                })
                .collect::<Vec<_>>()
                .join(","),
            other => other.to_string(),
        }
    }
}

impl Table {
    fn read(file: &NwbFile, table: &Group, path: &str) -> Result<Table> {
        let ids_path = format!("{path}/id");
        let ids = file.h5(
            &ids_path,
            "reading the id column",
            table.dataset("id").and_then(|d| d.read_raw::<i64>()),
        )?;
        let colnames = match table.attr("colnames") {
            Ok(attr) => file.h5(path, "reading colnames", read_attr_strings(&attr))?,
            Err(_) => Vec::new(),
        };
        let mut columns = Vec::new();
        let mut group_refs = None;
        for name in &colnames {
            let Ok(ds) = table.dataset(name) else {
                continue;
            };
            let col_path = format!("{path}/{name}");
            let desc = file.h5(
                &col_path,
                "reading the column type",
                ds.dtype().and_then(|t| t.to_descriptor()),
            )?;
            if matches!(desc, TypeDescriptor::Reference(_)) {
                if name == "group" {
                    group_refs = Some(file.h5(
                        &col_path,
                        "reading group references",
                        ds.read_raw::<ObjectReference1>(),
                    )?);
                }
                continue;
            }
            let values = match read_column(&ds, &desc) {
                Ok(Some(v)) => v,
                _ => continue, // enums (bool) and compound columns are not needed for channels
            };
            let index_name = format!("{name}_index");
            let data = if table.link_exists(&index_name) {
                let ends = file.h5(
                    &col_path,
                    "reading the column index",
                    table.dataset(&index_name).and_then(|d| d.read_raw::<u64>()),
                )?;
                let flat: Vec<Value> = (0..column_len(&values)).map(|i| values.value(i)).collect();
                ColumnData::Ragged(flat, ends)
            } else {
                values
            };
            if column_len(&data) < ids.len() {
                return Err(file.invalid(
                    &col_path,
                    format!(
                        "has {} rows; the table has {}",
                        column_len(&data),
                        ids.len()
                    ),
                ));
            }
            columns.push((name.clone(), data));
        }
        Ok(Table {
            len: ids.len() as u64,
            ids,
            columns,
            group_refs,
            group_obj: table.clone(),
        })
    }

    fn column(&self, name: &str) -> Option<&ColumnData> {
        self.columns.iter().find(|(n, _)| n == name).map(|(_, c)| c)
    }

    fn channel(&self, file: &NwbFile, row: usize, path: &str) -> Result<Channel> {
        let id = self.ids[row];
        let name = self
            .column("channel_name")
            .or_else(|| self.column("label"))
            .map(|c| c.text(row))
            .unwrap_or_else(|| id.to_string())
            .trim()
            .to_owned();
        let group = match (self.column("group_name"), &self.group_refs) {
            (Some(col), _) => col.text(row),
            (None, Some(refs)) => {
                let r = &refs[row];
                match file.h5(
                    path,
                    "following a group reference",
                    self.group_obj.dereference(r),
                )? {
                    ReferencedObject::Group(g) => {
                        g.name().rsplit('/').next().unwrap_or_default().to_owned()
                    }
                    _ => String::new(),
                }
            }
            (None, None) => String::new(),
        }
        .trim()
        .to_owned();
        let properties = self
            .columns
            .iter()
            .filter(|(n, _)| !matches!(n.as_str(), "channel_name" | "label" | "group_name"))
            .map(|(n, c)| (n.clone(), c.value(row)))
            .collect();
        Ok(Channel {
            row: row as u64,
            id,
            name,
            group,
            properties,
        })
    }
}

fn column_len(c: &ColumnData) -> usize {
    match c {
        ColumnData::Text(v) => v.len(),
        ColumnData::Int(v) => v.len(),
        ColumnData::Float(v) => v.len(),
        ColumnData::Ragged(_, ends) => ends.len(),
    }
}

fn read_column(ds: &Dataset, desc: &TypeDescriptor) -> hdf5::Result<Option<ColumnData>> {
    Ok(Some(match desc {
        d if is_text(d) => ColumnData::Text(read_dataset_strings(ds)?),
        TypeDescriptor::Integer(_) | TypeDescriptor::Unsigned(_) => {
            ColumnData::Int(ds.read_raw::<i64>()?)
        }
        TypeDescriptor::Float(_) => ColumnData::Float(read_f64s(ds)?),
        _ => return Ok(None),
    }))
}

fn has_hdf5_signature(path: &Path, len: u64) -> bool {
    let Ok(mut f) = fs::File::open(path) else {
        return false;
    };
    let mut sig = [0u8; 8];
    // The superblock sits at 0, 512, 1024, 2048, ... (after an optional user block).
    let mut offset = 0u64;
    while offset + 8 <= len {
        use std::io::Seek;
        if f.seek(std::io::SeekFrom::Start(offset)).is_err() || f.read_exact(&mut sig).is_err() {
            return false;
        }
        if &sig == HDF5_SIGNATURE {
            return true;
        }
        offset = if offset == 0 { 512 } else { offset * 2 };
    }
    false
}

fn link_type(group: &Group, name: &str) -> Option<LinkType> {
    let mut found = None;
    let _ = group.iter_visit_default(|n, info| {
        if n == name {
            found = Some(info.link_type);
        }
        Ok(())
    });
    found
}

/// The file an external link points to, for messages.
fn external_target(group: &Group, name: &str) -> String {
    use hdf5_sys::h5l;
    let Ok(cname) = std::ffi::CString::new(name) else {
        return "(unknown)".into();
    };
    hdf5::sync::sync(|| unsafe {
        let mut buf = vec![0u8; 4096];
        if h5l::H5Lget_val(
            group.id(),
            cname.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            hdf5_sys::h5p::H5P_DEFAULT,
        ) < 0
        {
            return "(unknown)".into();
        }
        let mut file: *const std::ffi::c_char = std::ptr::null();
        let mut obj: *const std::ffi::c_char = std::ptr::null();
        let mut flags = 0u32;
        if h5l::H5Lunpack_elink_val(
            buf.as_ptr().cast(),
            buf.len(),
            &mut flags,
            &mut file,
            &mut obj,
        ) < 0
            || file.is_null()
        {
            return "(unknown)".into();
        }
        let file = std::ffi::CStr::from_ptr(file).to_string_lossy();
        let obj = if obj.is_null() {
            "".into()
        } else {
            std::ffi::CStr::from_ptr(obj).to_string_lossy()
        };
        format!("{file}:{obj}")
    })
}

fn storage_info(data: &Dataset, external: Option<String>) -> StorageInfo {
    use hdf5::filters::Filter;
    let layout = match data.layout() {
        hdf5::dataset::Layout::Contiguous => "contiguous",
        hdf5::dataset::Layout::Chunked => "chunked",
        hdf5::dataset::Layout::Compact => "compact",
        _ => "virtual",
    }
    .to_owned();
    let filters = data.filters();
    let mut missing = Vec::new();
    let names = filters
        .iter()
        .map(|f| match f {
            Filter::Deflate(level) => format!("gzip({level})"),
            Filter::Shuffle => "shuffle".into(),
            Filter::Fletcher32 => "fletcher32".into(),
            Filter::SZip(..) => "szip".into(),
            Filter::NBit => "nbit".into(),
            Filter::ScaleOffset(_) => "scaleoffset".into(),
            Filter::User(id, _) => {
                let id = *id as u32;
                let available =
                    hdf5::sync::sync(|| unsafe { hdf5_sys::h5z::H5Zfilter_avail(id as _) }) > 0;
                if !available {
                    missing.push(id);
                }
                format!("filter {id} ({})", filter_name(id))
            }
            #[allow(unreachable_patterns)]
            other => format!("{other:?}"),
        })
        .collect();
    StorageInfo {
        layout,
        chunk_shape: data.chunk().map(|c| c.iter().map(|&d| d as u64).collect()),
        filters: names,
        external,
        missing_filters: missing,
    }
}

/// Names of registered HDF5 filters that turn up in NWB files (nwb-layout.md §9).
pub fn filter_name(id: u32) -> &'static str {
    match id {
        1 => "deflate",
        2 => "shuffle",
        3 => "fletcher32",
        4 => "szip",
        32000 => "lzf",
        32001 => "blosc",
        32004 => "lz4",
        32008 => "bitshuffle",
        32015 => "zstd",
        32026 => "blosc2",
        _ => "unregistered",
    }
}

/// The cached specs' type hierarchy, or the built-in one when the file caches none.
fn load_type_tree(file: &hdf5::File) -> TypeTree {
    let mut tree = TypeTree::builtin();
    let Ok(specs) = file.group("specifications") else {
        return tree;
    };
    for namespace in specs.member_names().unwrap_or_default() {
        let Ok(ns_group) = specs.group(&namespace) else {
            continue;
        };
        let mut versions = ns_group.member_names().unwrap_or_default();
        // hdmf loads the last version in byte order of the names.
        versions.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        let Some(version) = versions.last() else {
            continue;
        };
        let Ok(v_group) = ns_group.group(version) else {
            continue;
        };
        for source in v_group.member_names().unwrap_or_default() {
            if source == "namespace" {
                continue;
            }
            let text = v_group
                .dataset(&source)
                .and_then(|d| read_dataset_strings(&d));
            if let Ok(Some(json)) = text.map(|v| v.into_iter().next()) {
                let _ = tree.add_schema_json(&namespace, &json);
            }
        }
    }
    tree
}
