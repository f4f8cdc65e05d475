//! A picture of what was converted: renders a PNG preview of a Pennsieve chunked time-series
//! output directory (as written by `ts-processor convert`).
//!
//! [`render`] draws the chosen channels' samples (µV) against time, one row per channel, each
//! labelled with the channel's index, name, group and rate from its `channel-NNNNN.metadata.json`.
//! Time is in seconds after the first sample of the channels shown; the title gives that instant in
//! UTC. Segments are never joined across a gap (consecutive chunks more than two sample periods
//! apart), so gaps stay visible.
//!
//! Only the requested window is read: chunks outside it are not opened, and chunks overlapping it
//! are decompressed as a stream that stops after the window. Each channel keeps only the minimum and
//! maximum sample of each pixel column (about two points per column), so memory and drawing time
//! depend on the image size and the number of channels, not on the recording's length. At most
//! [`MAX_CHANNELS`] channels are drawn ([`DEFAULT_CHANNELS`] unless asked).
//!
//! Text uses a subset of DejaVu Sans bundled in the crate (`assets/`, Bitstream Vera licence), so no
//! system font or C library is needed.
//!
//! ```
//! use std::path::Path;
//! use ts_chunk_format::{ChannelMetadata, ChunkName, ChunkWriter};
//! use ts_preview::{PreviewOptions, render};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! // Channel 0 at 1 kHz: 0.5 s of a sine wave, a 0.5 s gap, then another 0.5 s.
//! let start_us: i64 = 1_609_459_200_000_000; // 2021-01-01T00:00:00Z
//! let samples: Vec<f64> = (0..500).map(|i| 100.0 * (i as f64 / 25.0).sin()).collect();
//! let mut writer = ChunkWriter::new(0);
//! for segment_start in [start_us, start_us + 1_000_000] {
//!     let name = ChunkName::local(0, segment_start, segment_start + 499_000);
//!     writer.write(dir.path(), &name, &samples)?;
//! }
//! ChannelMetadata::continuous("CH0", "shank0", start_us, start_us + 1_499_000, 1000.0)
//!     .write_atomic(dir.path(), 0)?;
//!
//! let png = dir.path().join("preview.png");
//! let summary = render(dir.path(), &PreviewOptions::default(), &png)?;
//! assert_eq!(summary.channels.len(), 1);
//! assert_eq!(summary.channels[0].name, "CH0");
//! assert_eq!(summary.channels[0].samples, 1000);
//! assert_eq!(summary.channels[0].segments, 2); // the gap is not bridged
//! assert!((summary.seconds - 1.499).abs() < 1e-9);
//! assert!(std::fs::metadata(&png)?.len() > 1000);
//! println!("{summary}");
//!
//! // Only the second segment, and errors that name what is wrong.
//! let options = PreviewOptions { from_s: Some(1.0), ..PreviewOptions::default() };
//! assert_eq!(render(dir.path(), &options, &png)?.channels[0].segments, 1);
//! let options = PreviewOptions { channels: Some(0..3), ..PreviewOptions::default() };
//! let error = render(dir.path(), &options, &png).unwrap_err();
//! assert!(error.to_string().contains("has no channel 1..3"), "{error}");
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod draw;
mod error;
mod read;

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use ts_chunk_format::{ChannelMetadata, ScannedChannel, scan_output_dir};

pub use error::{Error, Result};

use read::{ChannelSource, Window};

/// Channels drawn when [`PreviewOptions::channels`] is `None`: the first this many present.
pub const DEFAULT_CHANNELS: u32 = 8;
/// The most channels one preview draws.
pub const MAX_CHANNELS: u32 = 64;
/// Default image width, pixels.
pub const DEFAULT_WIDTH: u32 = 1200;
/// Default image height, pixels.
pub const DEFAULT_HEIGHT: u32 = 800;
/// Smallest image width, pixels.
pub const MIN_WIDTH: u32 = 320;
/// Largest image width or height, pixels (bounds the image buffer to 48 MiB).
pub const MAX_SIDE: u32 = 4096;

/// What to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct PreviewOptions {
    /// Channel indices to draw (`k` of `channel-{k:05}`), end exclusive; every one must be present.
    /// `None`: the first [`DEFAULT_CHANNELS`] channels present.
    pub channels: Option<Range<u32>>,
    /// Start of the window, seconds after the first sample of the chosen channels (default 0).
    pub from_s: Option<f64>,
    /// Length of the window in seconds (default: to the last sample).
    pub seconds: Option<f64>,
    /// Image width in pixels ([`MIN_WIDTH`]..=[`MAX_SIDE`]).
    pub width: u32,
    /// Image height in pixels (at most [`MAX_SIDE`], and enough for a readable row per channel).
    pub height: u32,
}

impl Default for PreviewOptions {
    fn default() -> Self {
        PreviewOptions {
            channels: None,
            from_s: None,
            seconds: None,
            width: DEFAULT_WIDTH,
            height: DEFAULT_HEIGHT,
        }
    }
}

/// What [`render`] drew.
#[derive(Debug, Clone, PartialEq)]
pub struct PreviewSummary {
    /// The PNG file written.
    pub png: PathBuf,
    /// Image width, pixels.
    pub width: u32,
    /// Image height, pixels.
    pub height: u32,
    /// Time origin (x = 0): the first sample of the channels shown, µs since the Unix epoch.
    pub origin_us: i64,
    /// Window start, seconds after the origin.
    pub from_s: f64,
    /// Window length, seconds.
    pub seconds: f64,
    /// Pixel columns of the plotting area (the same in every row).
    pub plot_x: Range<u32>,
    /// The channels drawn, top to bottom.
    pub channels: Vec<ShownChannel>,
}

/// One row of a preview.
#[derive(Debug, Clone, PartialEq)]
pub struct ShownChannel {
    /// Channel index.
    pub channel: u32,
    /// Name from the metadata.
    pub name: String,
    /// Group from the metadata.
    pub group: String,
    /// Sampling rate from the metadata, Hz.
    pub rate: f64,
    /// Samples read inside the window.
    pub samples: u64,
    /// Separate runs drawn (gaps and non-finite samples split them).
    pub segments: usize,
    /// Smallest and largest finite sample inside the window, µV.
    pub range_uv: Option<(f64, f64)>,
    /// Pixel rows of this channel's plotting area.
    pub plot_y: Range<u32>,
}

impl PreviewSummary {
    /// The image column of a time (seconds after [`PreviewSummary::origin_us`]), if inside the
    /// plotting area.
    pub fn column_of(&self, seconds: f64) -> Option<u32> {
        let fraction = (seconds - self.from_s) / self.seconds;
        if !(0.0..=1.0).contains(&fraction) {
            return None;
        }
        let width = f64::from(self.plot_x.end - self.plot_x.start);
        Some(self.plot_x.start + (fraction * width).round().min(width - 1.0).max(0.0) as u32)
    }
}

impl fmt::Display for PreviewSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let indices: Vec<u32> = self.channels.iter().map(|c| c.channel).collect();
        write!(
            f,
            "drew {} channel{} ({}) from {:.3} s to {:.3} s after {} into {} ({}x{})",
            indices.len(),
            if indices.len() == 1 { "" } else { "s" },
            format_channel_list(&indices),
            self.from_s,
            self.from_s + self.seconds,
            format_utc(self.origin_us),
            self.png.display(),
            self.width,
            self.height,
        )
    }
}

/// Parses a channel range as given on a command line: `A..B` (end exclusive), `A..=B`, or a
/// single index `A`.
///
/// ```
/// assert_eq!(ts_preview::parse_channel_range("0..8").unwrap(), 0..8);
/// assert_eq!(ts_preview::parse_channel_range("2..=3").unwrap(), 2..4);
/// assert_eq!(ts_preview::parse_channel_range("5").unwrap(), 5..6);
/// assert!(ts_preview::parse_channel_range("8..2").is_err());
/// ```
pub fn parse_channel_range(text: &str) -> Result<Range<u32>> {
    let invalid = |problem: &str| Error::InvalidChannelRange {
        text: text.to_owned(),
        problem: problem.to_owned(),
    };
    let number = |s: &str| {
        s.trim()
            .parse::<u32>()
            .map_err(|_| invalid("expected A..B (end exclusive), A..=B or A, with whole numbers"))
    };
    let range = if let Some((a, b)) = text.split_once("..=") {
        let end = number(b)?
            .checked_add(1)
            .ok_or_else(|| invalid("end too large"))?;
        number(a)?..end
    } else if let Some((a, b)) = text.split_once("..") {
        number(a)?..number(b)?
    } else {
        let a = number(text)?;
        a..a.checked_add(1).ok_or_else(|| invalid("index too large"))?
    };
    if range.is_empty() {
        return Err(invalid("the range is empty (the end is exclusive)"));
    }
    Ok(range)
}

/// Renders the preview of output directory `dir` into the PNG file `png` (written through a
/// temporary file and renamed, so it never holds a partial image).
pub fn render(dir: &Path, options: &PreviewOptions, png: &Path) -> Result<PreviewSummary> {
    let scan = scan_output_dir(dir).map_err(|source| Error::Scan {
        dir: dir.to_owned(),
        source,
    })?;
    if scan.channels.is_empty() {
        return Err(Error::NoChannels {
            dir: dir.to_owned(),
        });
    }
    let chosen = choose_channels(dir, &scan.channels, options.channels.clone())?;
    check_size(options.width, options.height, chosen.len() as u32)?;

    // Metadata: name, group, rate.
    let mut metas = Vec::with_capacity(chosen.len());
    for channel in &chosen {
        metas.push(channel_metadata(dir, channel)?);
    }

    // Time origin and extent of the chosen channels.
    let mut first = i64::MAX;
    let mut last = i64::MIN;
    for (channel, meta) in chosen.iter().zip(&metas) {
        first = first.min(meta.start);
        last = last.max(meta.end);
        if let (Some(a), Some(b)) = (channel.chunks.first(), channel.chunks.last()) {
            first = first.min(a.name.start_us);
            last = last.max(b.name.end_us);
        }
    }
    let duration_s = ((i128::from(last) - i128::from(first)).max(0) as f64) / 1e6;
    let max_rate = metas.iter().map(|m| m.rate).fold(0.0, f64::max);

    let from_s = options.from_s.unwrap_or(0.0);
    if !from_s.is_finite() || from_s < 0.0 {
        return Err(Error::InvalidWindow {
            problem: format!("start {from_s} s: expected a number of seconds, 0 or more"),
        });
    }
    if from_s > duration_s {
        return Err(Error::WindowAfterEnd {
            dir: dir.to_owned(),
            from_s,
            duration_s,
        });
    }
    let seconds = match options.seconds {
        Some(s) if !s.is_finite() || s <= 0.0 => {
            return Err(Error::InvalidWindow {
                problem: format!("length {s} s: expected a positive number of seconds"),
            });
        }
        Some(s) => s,
        // To the last sample; at least one sample period so a single sample still has a width.
        None => (duration_s - from_s).max(1.0 / max_rate),
    };

    let window = Window {
        start_us: from_s * 1e6,
        end_us: (from_s + seconds) * 1e6,
        columns: draw::plot_width(options.width).max(1) as usize,
    };
    let mut traces = Vec::with_capacity(chosen.len());
    for (channel, meta) in chosen.iter().zip(&metas) {
        let source = ChannelSource {
            chunks: &channel.chunks,
            rate: meta.rate,
            origin_us: first,
        };
        traces.push(read::read_window(&source, &window)?);
    }

    let rows = chosen
        .iter()
        .zip(&metas)
        .zip(&traces)
        .map(|((channel, meta), trace)| {
            let mut label = format!(
                "#{}  {}  •  group {}  •  {} Hz",
                channel.channel,
                meta.name,
                meta.group,
                draw_rate(meta.rate)
            );
            if trace.samples == 0 {
                label.push_str("  •  no samples in this window");
            }
            draw::Row { label, trace }
        })
        .collect();
    let indices: Vec<u32> = chosen.iter().map(|c| c.channel).collect();
    let dir_name = dir.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let picture = draw::Picture {
        width: options.width,
        height: options.height,
        title: format!(
            "{dir_name}: channel{} {}, {:.3}–{:.3} s after {}",
            if indices.len() == 1 { "" } else { "s" },
            format_channel_list(&indices),
            from_s,
            from_s + seconds,
            format_utc(first)
        ),
        x_range: (from_s, from_s + seconds),
        rows,
    };
    let (rgb, geometry) = draw::draw(&picture, png)?;
    draw::write_png(png, &rgb, options.width, options.height)?;

    let channels = chosen
        .iter()
        .zip(metas)
        .zip(traces)
        .zip(geometry.rows_y)
        .map(|(((channel, meta), trace), plot_y)| ShownChannel {
            channel: channel.channel,
            name: meta.name,
            group: meta.group,
            rate: meta.rate,
            samples: trace.samples,
            segments: trace.segments.len(),
            range_uv: trace.range,
            plot_y,
        })
        .collect();
    Ok(PreviewSummary {
        png: png.to_owned(),
        width: options.width,
        height: options.height,
        origin_us: first,
        from_s,
        seconds,
        plot_x: geometry.plot_x,
        channels,
    })
}

/// The channels to draw, in index order.
fn choose_channels<'a>(
    dir: &Path,
    present: &'a [ScannedChannel],
    requested: Option<Range<u32>>,
) -> Result<Vec<&'a ScannedChannel>> {
    let Some(requested) = requested else {
        return Ok(present.iter().take(DEFAULT_CHANNELS as usize).collect());
    };
    if requested.is_empty() {
        return Err(Error::EmptyChannelRange { requested });
    }
    let count = u64::from(requested.end - requested.start);
    if count > u64::from(MAX_CHANNELS) {
        return Err(Error::TooManyChannels {
            requested,
            count,
            max: MAX_CHANNELS,
        });
    }
    let chosen: Vec<&ScannedChannel> = present
        .iter()
        .filter(|c| requested.contains(&c.channel))
        .collect();
    if chosen.len() as u64 != count {
        let missing = requested
            .clone()
            .filter(|k| !chosen.iter().any(|c| c.channel == *k))
            .collect();
        let indices: Vec<u32> = present.iter().map(|c| c.channel).collect();
        return Err(Error::ChannelsNotPresent {
            dir: dir.to_owned(),
            requested,
            missing,
            present: format_channel_list(&indices),
        });
    }
    Ok(chosen)
}

fn channel_metadata(dir: &Path, channel: &ScannedChannel) -> Result<ChannelMetadata> {
    let Some(path) = &channel.metadata_path else {
        return Err(Error::MissingMetadata {
            dir: dir.to_owned(),
            channel: channel.channel,
        });
    };
    let meta = match &channel.metadata {
        Some(meta) => meta.clone(),
        // The scan found it invalid: read it again for the error.
        None => ChannelMetadata::read(path).map_err(|source| Error::Metadata {
            channel: channel.channel,
            source,
        })?,
    };
    if !(meta.rate.is_finite() && meta.rate > 0.0) {
        return Err(Error::InvalidRate {
            path: path.clone(),
            rate: meta.rate,
        });
    }
    Ok(meta)
}

fn check_size(width: u32, height: u32, rows: u32) -> Result<()> {
    let problem = if !(MIN_WIDTH..=MAX_SIDE).contains(&width) {
        format!("the width must be {MIN_WIDTH} to {MAX_SIDE} pixels")
    } else if height > MAX_SIDE {
        format!("the height must be at most {MAX_SIDE} pixels")
    } else if height < draw::min_height(rows) {
        format!(
            "{rows} row(s) need a height of at least {} pixels",
            draw::min_height(rows)
        )
    } else {
        return Ok(());
    };
    Err(Error::InvalidSize {
        width,
        height,
        problem,
    })
}

fn draw_rate(rate: f64) -> String {
    if rate.fract() == 0.0 {
        format!("{rate:.0}")
    } else {
        format!("{rate:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
    }
}

/// `0..4` for consecutive indices, else `0, 2, 5` (shortened after 12).
pub(crate) fn format_channel_list(indices: &[u32]) -> String {
    match indices {
        [] => "none".to_owned(),
        [one] => one.to_string(),
        [a, .., b] if u64::from(*b - *a) + 1 == indices.len() as u64 => format!("{a}..{}", b + 1),
        _ => {
            let mut parts: Vec<String> = indices.iter().take(12).map(u32::to_string).collect();
            if indices.len() > 12 {
                parts.push(format!("… ({} in all)", indices.len()));
            }
            parts.join(", ")
        }
    }
}

/// `2021-01-01 00:00:00.000 UTC` for µs since the Unix epoch.
fn format_utc(us: i64) -> String {
    let secs = us.div_euclid(1_000_000);
    let millis = us.rem_euclid(1_000_000) / 1000;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{millis:03} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formatting() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00.000 UTC");
        assert_eq!(
            format_utc(1_609_459_200_000_000),
            "2021-01-01 00:00:00.000 UTC"
        );
        assert_eq!(
            format_utc(951_827_696_789_000),
            "2000-02-29 12:34:56.789 UTC"
        );
        assert_eq!(format_utc(-1_000), "1969-12-31 23:59:59.999 UTC");
    }

    #[test]
    fn channel_lists() {
        assert_eq!(format_channel_list(&[3]), "3");
        assert_eq!(format_channel_list(&[0, 1, 2]), "0..3");
        assert_eq!(format_channel_list(&[0, 2, 5]), "0, 2, 5");
    }

    #[test]
    fn channel_ranges() {
        assert_eq!(parse_channel_range(" 1 .. 4").unwrap(), 1..4);
        for bad in ["", "a..b", "3..3", "-1..2", "1..", "..=4294967295"] {
            assert!(parse_channel_range(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rates() {
        assert_eq!(draw_rate(30000.0), "30000");
        assert_eq!(draw_rate(1017.25), "1017.25");
    }
}
