//! `ts-processor inspect`: what a file holds and how it would be converted.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use serde::Serialize;
use ts_convert::{NwbFile, Options, SeriesPlan};

#[derive(Debug, Serialize)]
pub struct InspectReport {
    pub file: String,
    pub nwb_version: String,
    pub reference_time: String,
    pub reference_time_us: i64,
    pub series: Vec<SeriesReport>,
    pub skipped: Vec<SkippedReport>,
}

#[derive(Debug, Serialize)]
pub struct SeriesReport {
    pub path: String,
    pub neurodata_type: String,
    pub dtype: String,
    pub shape: Vec<u64>,
    pub rate_hz: f64,
    /// `rate` or `timestamps`.
    pub time_base: &'static str,
    pub starting_time_s: Option<f64>,
    pub start_us: i64,
    pub end_us: i64,
    pub duration_s: f64,
    pub segments: usize,
    /// Largest jump between segments, in seconds.
    pub largest_gap_s: Option<f64>,
    pub conversion: f64,
    pub offset: f64,
    pub channel_conversion: bool,
    pub stored_unit: Option<String>,
    pub unit_factor: f64,
    pub layout: String,
    pub chunk_shape: Option<Vec<u64>>,
    pub filters: Vec<String>,
    pub external: Option<String>,
    pub channels: Vec<ChannelReport>,
}

#[derive(Debug, Serialize)]
pub struct ChannelReport {
    /// Output channel index (runs across series).
    pub index: u32,
    pub electrode_row: u64,
    pub id: i64,
    pub name: String,
    pub group: String,
}

#[derive(Debug, Serialize)]
pub struct SkippedReport {
    pub path: String,
    pub neurodata_type: String,
    pub reason: String,
}

/// What `inspect` shows: the conversion plan of `path` with every series, channels numbered as
/// `convert` would number them (a file without series is shown, not refused).
pub fn inspect(path: &Path, include_processing: bool) -> Result<InspectReport> {
    let file = NwbFile::open(path)?;
    let options = Options {
        include_processing,
        ..Options::default()
    };
    let plan = ts_convert::plan(&file, &options)?;
    Ok(InspectReport {
        file: path.display().to_string(),
        nwb_version: file.nwb_version().to_owned(),
        reference_time: file.reference_time().text.clone(),
        reference_time_us: file.reference_time().epoch_micros,
        series: plan.series.iter().map(series_report).collect(),
        skipped: plan
            .skipped
            .iter()
            .map(|s| SkippedReport {
                path: s.path.clone(),
                neurodata_type: s.neurodata_type.clone(),
                reason: s.reason.clone(),
            })
            .collect(),
    })
}

fn series_report(series: &SeriesPlan) -> SeriesReport {
    let info = &series.info;
    let channels = info
        .channels
        .iter()
        .enumerate()
        .map(|(k, c)| ChannelReport {
            index: series.channel_index(k),
            electrode_row: c.row,
            id: c.id,
            name: c.name.clone(),
            group: c.group.clone(),
        })
        .collect();
    SeriesReport {
        path: info.path.clone(),
        neurodata_type: info.neurodata_type.clone(),
        dtype: info.dtype.to_string(),
        shape: info.shape.clone(),
        rate_hz: series.rate,
        time_base: info.time.kind_name(),
        starting_time_s: info.time.starting_time(),
        start_us: series.start_us,
        end_us: series.end_us,
        // From the truncated microseconds: the float difference of two epoch-scale times
        // would show digits that are not there.
        duration_s: (series.end_us - series.start_us) as f64 / 1e6,
        segments: series.segments.len(),
        largest_gap_s: series.largest_gap_s,
        conversion: info.scaling.conversion,
        offset: info.scaling.offset,
        channel_conversion: info.scaling.channel_conversion.is_some(),
        stored_unit: info.scaling.unit.clone(),
        unit_factor: info.scaling.unit_factor,
        layout: info.storage.layout.clone(),
        chunk_shape: info.storage.chunk_shape.clone(),
        filters: info.storage.filters.clone(),
        external: info.storage.external.clone(),
        channels,
    }
}

/// The human-readable form.
pub fn render_text(report: &InspectReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}  (NWB {})", report.file, report.nwb_version);
    let _ = writeln!(out, "reference time  {}", report.reference_time);
    for s in &report.series {
        let _ = writeln!(out);
        let _ = writeln!(out, "{}  [{}]", s.path, s.neurodata_type);
        let shape: Vec<String> = s.shape.iter().map(u64::to_string).collect();
        let _ = writeln!(out, "  data        {} ({})", s.dtype, shape.join(" x "));
        let start = s
            .starting_time_s
            .map(|t| format!(", starting at {t} s"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  time        {} Hz from {}{}",
            s.rate_hz, s.time_base, start
        );
        let gap = s
            .largest_gap_s
            .map(|g| format!(", largest gap {g:.6} s"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  span        {:.6} s, {} segment(s){}",
            s.duration_s, s.segments, gap
        );
        let _ = writeln!(
            out,
            "  scaling     conversion {}, offset {}, channel_conversion {}, unit {} (x{})",
            s.conversion,
            s.offset,
            if s.channel_conversion { "yes" } else { "no" },
            s.stored_unit.as_deref().unwrap_or("(none)"),
            s.unit_factor
        );
        let chunks = s
            .chunk_shape
            .as_ref()
            .map(|c| format!(" {:?}", c))
            .unwrap_or_default();
        let filters = if s.filters.is_empty() {
            "no filters".to_owned()
        } else {
            s.filters.join("+")
        };
        let external = s
            .external
            .as_ref()
            .map(|e| format!(", external link to {e}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  storage     {}{}, {}{}",
            s.layout, chunks, filters, external
        );
        let _ = writeln!(
            out,
            "  channels    {:>5}  {:>5}  {:>8}  {:<24} group",
            "index", "row", "id", "name"
        );
        for c in &s.channels {
            let _ = writeln!(
                out,
                "              {:>5}  {:>5}  {:>8}  {:<24} {}",
                c.index, c.electrode_row, c.id, c.name, c.group
            );
        }
    }
    for s in &report.skipped {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "skipped {}  [{}]: {}",
            s.path, s.neurodata_type, s.reason
        );
    }
    out
}
