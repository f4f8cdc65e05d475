//! Series discovery (spec "Which series", "Per series"): walking `/acquisition` and `/processing`,
//! classifying typed groups through the type hierarchy, and building each [`SeriesInfo`]: shape
//! and stored type, scaling, time base, channels and storage.

use std::collections::HashSet;

use hdf5::{Dataset, Group, LinkType};

use crate::electrodes::read_channels;
use crate::error::{Error, Result};
use crate::file::NwbFile;
use crate::h5util::{
    attr_f64, attr_string, attr_text, check_stored, object_key, read_f64_range, read_f64s,
};
use crate::model::{
    DiscoverOptions, Discovery, RawDtype, Scaling, SeriesInfo, SkippedObject, TimeBase, unit_factor,
};
use crate::specs::SeriesKind;
use crate::storage::{external_target, link_type, storage_info};
use crate::time::{infer_rate, rates_agree, rounded_rate};

impl NwbFile {
    /// Finds the series to convert (spec "Which series") and resolves each one's channels, time
    /// base and scaling. A series that breaks the spec's rules is an error naming it.
    pub fn discover(&self, opts: &DiscoverOptions) -> Result<Discovery> {
        let mut found = Found::default();
        let mut walk = Walk::default();
        if self.hdf5().link_exists("acquisition") {
            self.scan_group(
                "/acquisition",
                opts.include_processing,
                0,
                &mut walk,
                &mut found,
            )?;
        }
        let mut series = std::mem::take(&mut found.direct);
        if opts.include_processing {
            if self.hdf5().link_exists("processing") {
                self.scan_group("/processing", true, 0, &mut walk, &mut found)?;
            }
            found
                .nested
                .sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
            series.extend(found.nested);
        }
        Ok(Discovery {
            series,
            skipped: found.skipped,
            typed_objects: self.typed_groups()?,
        })
    }

    /// Every typed group reached through hard links (soft links would list objects twice and
    /// could loop), each object once however many hard links lead to it, within the walk limits.
    fn typed_groups(&self) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        let root: &Group = self.hdf5();
        let mut walk = Walk::default();
        walk.first_visit(self, "/", root, 0)?;
        let mut pending = vec![(String::new(), root.clone(), 0usize)];
        while let Some((path, group, depth)) = pending.pop() {
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
                if !walk.first_visit(self, &child_path, &child, depth + 1)? {
                    continue;
                }
                if let Ok(Some(t)) = attr_string(&child, "neurodata_type") {
                    out.push((child_path.clone(), t));
                }
                pending.push((child_path, child, depth + 1));
            }
        }
        out.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        Ok(out)
    }

    /// Classifies the members of `path` in byte order of their names; recurses into containers
    /// when `nested` is set (their series go to `found.nested`), each object once and within
    /// the walk limits.
    fn scan_group(
        &self,
        path: &str,
        nested: bool,
        depth: usize,
        walk: &mut Walk,
        found: &mut Found,
    ) -> Result<()> {
        let group = self.h5(path, "opening the group", self.hdf5().group(path))?;
        if !walk.first_visit(self, path, &group, depth)? {
            return Ok(());
        }
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
                .map(|t| self.types().classify(t, namespace.as_deref()));
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
                _ if nested => self.scan_group(&child_path, true, depth + 1, walk, found)?,
                _ => {}
            }
        }
        Ok(())
    }

    /// Everything about the series group `group` at `path` that discovery reports.
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
        if num_channels == 0 {
            return Err(self.invalid(&data_path, format!("has no channels (shape {shape:?})")));
        }
        check_stored(&data, "samples").map_err(|what| self.invalid(&data_path, what))?;
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
        let channels = read_channels(self, group, path, num_channels, &mut warnings)?;
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

    /// The series' scaling to microvolts; an unknown unit adds a warning.
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
        let unit = self
            .h5(&data_path, "reading unit", attr_text(data, "unit"))?
            .map(|bytes| self.utf8(&data_path, "attribute unit", bytes))
            .transpose()?;
        let (unit_factor, unknown) = unit_factor(unit.as_deref());
        if unknown {
            warnings.push(format!(
                "{path}: unknown data unit {:?}; treated as volts as the schema requires",
                unit.as_deref().unwrap_or("")
            ));
        }
        let channel_conversion = if group.link_exists("channel_conversion") {
            let cc_path = format!("{path}/channel_conversion");
            let ds = self.h5(
                &cc_path,
                "opening channel_conversion",
                group.dataset("channel_conversion"),
            )?;
            if ds.ndim() != 1 || ds.size() != channels {
                return Err(self.invalid(
                    &cc_path,
                    format!(
                        "has shape {:?}; expected {channels} values (one per channel)",
                        ds.shape()
                    ),
                ));
            }
            check_stored(&ds, "values").map_err(|what| self.invalid(&cc_path, what))?;
            let cc = self.h5(&cc_path, "reading channel_conversion", read_f64s(&ds))?;
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

    /// The series' time base: a rate, or timestamps checked against the rate when both exist.
    fn time_base(&self, group: &Group, path: &str, num_samples: u64) -> Result<TimeBase> {
        let given = if group.link_exists("starting_time") {
            let st_path = format!("{path}/starting_time");
            let ds = self.h5(
                &st_path,
                "opening starting_time",
                group.dataset("starting_time"),
            )?;
            if ds.size() != 1 {
                return Err(
                    self.invalid(&st_path, format!("has {} values; expected one", ds.size()))
                );
            }
            let starting_time = self
                .h5(&st_path, "reading starting_time", read_f64s(&ds))?
                .first()
                .copied()
                .ok_or_else(|| self.invalid(&st_path, "is empty"))?;
            if !starting_time.is_finite() {
                return Err(self.invalid(
                    &st_path,
                    format!("starting_time {starting_time} is not a finite number of seconds"),
                ));
            }
            let rate = self
                .h5(&st_path, "reading rate", attr_f64(&ds, "rate"))?
                .ok_or_else(|| self.invalid(&st_path, "has no rate attribute"))?;
            if !(rate.is_finite() && rate > 0.0) {
                return Err(self.invalid(
                    &st_path,
                    format!("attribute rate {rate} is not a finite positive number of Hz"),
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
        if ts.ndim() != 1 {
            return Err(self.invalid(
                &ts_path,
                format!("has shape {:?}; expected 1-D", ts.shape()),
            ));
        }
        check_stored(&ts, "timestamps").map_err(|what| self.invalid(&ts_path, what))?;
        let first = self.h5(
            &ts_path,
            "reading timestamps",
            read_f64_range(&ts, 0, len.min(10) as usize),
        )?;
        if let Some(i) = first.iter().position(|t| !t.is_finite()) {
            return Err(self.invalid(
                &ts_path,
                format!("timestamp {i} is {}, not a finite time", first[i]),
            ));
        }
        // The spec infers the rate from the stored (relative) timestamps, never from the
        // absolute times: at today's epoch float64 resolves those only to about 2.4e-7 s.
        let inferred = infer_rate(&first)
            .filter(|r| r.is_finite() && *r > 0.0)
            .ok_or_else(|| {
                self.invalid(
                    &ts_path,
                    "cannot infer a sampling rate (the median difference of the first timestamps is not positive)",
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
}

/// Deepest group nesting a walk follows (the NWB schema needs fewer than ten levels).
pub(crate) const MAX_WALK_DEPTH: usize = 64;
/// Most objects a walk visits.
pub(crate) const MAX_WALK_OBJECTS: usize = 100_000;

/// The state of a walk over groups: which objects were seen (so hard links back to an ancestor,
/// or many links to one group, are followed once) and how many.
#[derive(Default)]
struct Walk {
    seen: HashSet<(u64, String)>,
}

impl Walk {
    /// Records `group` at `path`, `depth` levels below the walk's start. `false` when it was
    /// visited before; an error past the depth or object limit.
    fn first_visit(
        &mut self,
        file: &NwbFile,
        path: &str,
        group: &Group,
        depth: usize,
    ) -> Result<bool> {
        if depth > MAX_WALK_DEPTH {
            return Err(Error::LimitExceeded {
                at: file.at(path),
                what: format!("groups are nested more than {MAX_WALK_DEPTH} levels deep"),
            });
        }
        let key = file.h5(path, "reading the object address", object_key(group))?;
        if !self.seen.insert(key) {
            return Ok(false);
        }
        if self.seen.len() > MAX_WALK_OBJECTS {
            return Err(Error::LimitExceeded {
                at: file.at(path),
                what: format!("the file has more than {MAX_WALK_OBJECTS} groups to walk"),
            });
        }
        Ok(true)
    }
}

/// Series found so far: directly in `/acquisition`, nested deeper, and skipped.
#[derive(Default)]
struct Found {
    direct: Vec<SeriesInfo>,
    nested: Vec<SeriesInfo>,
    skipped: Vec<SkippedObject>,
}
