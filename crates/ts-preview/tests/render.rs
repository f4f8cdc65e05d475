//! Renders previews of chunk files written here and checks the PNG by pixel statistics (not a
//! golden image): size, trace pixels in each channel's row, none in a gap.

use std::path::Path;

use ts_chunk_format::{ChannelMetadata, ChunkName, ChunkWriter};
use ts_preview::{Error, MAX_CHANNELS, PreviewOptions, PreviewSummary, render};

/// 2021-01-01T00:00:00Z.
const ORIGIN_US: i64 = 1_609_459_200_000_000;
const RATE: f64 = 1000.0;

/// Writes channel `k` at 1 kHz with chunks starting at `starts_s` seconds of `len` samples each.
fn write_channel(dir: &Path, k: u32, chunks: &[(f64, usize)]) {
    let mut writer = ChunkWriter::new(1);
    let period_us = 1e6 / RATE;
    let mut first = i64::MAX;
    let mut last = i64::MIN;
    for &(start_s, len) in chunks {
        let start = ORIGIN_US + (start_s * 1e6).round() as i64;
        let end = start + ((len - 1) as f64 * period_us).round() as i64;
        let samples: Vec<f64> = (0..len)
            .map(|i| {
                let t = start_s + i as f64 / RATE;
                (50.0 + 10.0 * f64::from(k)) * (t * 7.0 * std::f64::consts::TAU).sin()
            })
            .collect();
        writer
            .write(dir, &ChunkName::local(k, start, end), &samples)
            .unwrap();
        first = first.min(start);
        last = last.max(end);
    }
    ChannelMetadata::continuous(
        format!("CH{k}"),
        format!("shank{}", k % 2),
        first,
        last,
        RATE,
    )
    .write_atomic(dir, k)
    .unwrap();
}

/// Two channels: 0–1 s (two contiguous chunks), a gap, 2–3 s.
fn two_channels_with_gap(dir: &Path) {
    for k in 0..2 {
        write_channel(dir, k, &[(0.0, 500), (0.5, 500), (2.0, 1000)]);
    }
}

struct Image {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

impl Image {
    fn read(path: &Path) -> Image {
        let decoder =
            png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut rgb = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut rgb).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgb);
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        rgb.truncate(info.buffer_size());
        Image {
            width: info.width,
            height: info.height,
            rgb,
        }
    }

    /// Pixels that are clearly coloured: traces (text, axes and grid are black or grey).
    fn trace_pixels(&self, xs: std::ops::Range<u32>, ys: std::ops::Range<u32>) -> usize {
        let mut count = 0;
        for y in ys {
            for x in xs.clone() {
                let i = (y * self.width + x) as usize * 3;
                let p = &self.rgb[i..i + 3];
                let (lo, hi) = (p.iter().min().unwrap(), p.iter().max().unwrap());
                if hi - lo >= 60 {
                    count += 1;
                }
            }
        }
        count
    }
}

fn sized(width: u32, height: u32) -> PreviewOptions {
    PreviewOptions {
        width,
        height,
        ..PreviewOptions::default()
    }
}

fn columns(summary: &PreviewSummary, from_s: f64, to_s: f64) -> std::ops::Range<u32> {
    summary.column_of(from_s).unwrap()..summary.column_of(to_s).unwrap()
}

#[test]
fn renders_one_row_per_channel_with_traces_and_a_visible_gap() {
    let dir = tempfile::tempdir().unwrap();
    two_channels_with_gap(dir.path());
    let png = dir.path().join("preview.png");
    let summary = render(dir.path(), &sized(900, 500), &png).unwrap();

    assert_eq!(summary.origin_us, ORIGIN_US);
    assert_eq!(summary.from_s, 0.0);
    assert!(
        (summary.seconds - 2.999).abs() < 1e-9,
        "{}",
        summary.seconds
    );
    assert_eq!(summary.channels.len(), 2);
    for (k, shown) in summary.channels.iter().enumerate() {
        assert_eq!(shown.channel, k as u32);
        assert_eq!(shown.name, format!("CH{k}"));
        assert_eq!(shown.group, format!("shank{}", k % 2));
        assert_eq!(shown.samples, 2000);
        // The contiguous chunk boundary at 0.5 s is joined, the 1 s gap is not.
        assert_eq!(shown.segments, 2);
    }
    let text = summary.to_string();
    assert!(
        text.contains("2 channels (0..2)") && text.contains("2021-01-01 00:00:00.000 UTC"),
        "{text}"
    );

    let image = Image::read(&png);
    assert_eq!((image.width, image.height), (900, 500));
    let (upper, lower) = (&summary.channels[0].plot_y, &summary.channels[1].plot_y);
    assert!(
        upper.end <= lower.start,
        "rows overlap: {upper:?} {lower:?}"
    );
    for shown in &summary.channels {
        let band = shown.plot_y.clone();
        // A 7 Hz sine drawn over ~800 columns: hundreds of trace pixels in each segment ...
        let first = image.trace_pixels(columns(&summary, 0.02, 0.98), band.clone());
        let second = image.trace_pixels(columns(&summary, 2.02, 2.98), band.clone());
        assert!(
            first > 300 && second > 300,
            "channel {}: {first} / {second}",
            shown.channel
        );
        // ... across the joined chunk boundary too ...
        let joint = image.trace_pixels(columns(&summary, 0.49, 0.51), band.clone());
        assert!(joint > 0, "channel {}: nothing at 0.5 s", shown.channel);
        // ... and none in the gap (1–2 s, a pixel's margin on each side).
        let gap = image.trace_pixels(columns(&summary, 1.01, 1.99), band);
        assert_eq!(gap, 0, "channel {}: trace pixels in the gap", shown.channel);
    }
    // Nothing coloured outside the rows' plotting areas but inside the picture's left margin.
    assert_eq!(image.trace_pixels(0..summary.plot_x.start - 2, 0..500), 0);
}

#[test]
fn reads_only_the_requested_window_and_channels() {
    let dir = tempfile::tempdir().unwrap();
    two_channels_with_gap(dir.path());
    let png = dir.path().join("window.png");
    let options = PreviewOptions {
        channels: Some(1..2),
        from_s: Some(2.25),
        seconds: Some(0.5),
        ..sized(640, 300)
    };
    let summary = render(dir.path(), &options, &png).unwrap();
    assert_eq!(summary.channels.len(), 1);
    let shown = &summary.channels[0];
    assert_eq!(shown.channel, 1);
    // 2.250 s ..= 2.750 s at 1 kHz.
    assert!((500..=501).contains(&shown.samples), "{}", shown.samples);
    assert_eq!(shown.segments, 1);
    let image = Image::read(&png);
    assert_eq!((image.width, image.height), (640, 300));
    assert!(image.trace_pixels(summary.plot_x.clone(), shown.plot_y.clone()) > 300);

    // A window inside the gap draws an empty row.
    let options = PreviewOptions {
        from_s: Some(1.1),
        seconds: Some(0.5),
        ..sized(640, 300)
    };
    let summary = render(dir.path(), &options, &png).unwrap();
    assert!(
        summary
            .channels
            .iter()
            .all(|c| c.samples == 0 && c.segments == 0)
    );
    let image = Image::read(&png);
    assert_eq!(image.trace_pixels(0..640, 0..300), 0);
}

#[test]
fn long_windows_are_decimated() {
    let dir = tempfile::tempdir().unwrap();
    // 200 s at 1 kHz in one chunk: 200k samples for ~500 pixel columns.
    write_channel(dir.path(), 0, &[(0.0, 200_000)]);
    let png = dir.path().join("long.png");
    let summary = render(dir.path(), &sized(600, 240), &png).unwrap();
    assert_eq!(summary.channels[0].samples, 200_000);
    assert_eq!(summary.channels[0].segments, 1);
    let range = summary.channels[0].range_uv.unwrap();
    assert!(range.0 < -49.0 && range.1 > 49.0, "{range:?}");
    // A 7 Hz sine over 200 s fills the row: min and max land in almost every column.
    let image = Image::read(&png);
    let band = summary.channels[0].plot_y.clone();
    let width = summary.plot_x.end - summary.plot_x.start;
    let filled = image.trace_pixels(summary.plot_x.clone(), band.clone());
    assert!(
        filled as u32 > width * (band.end - band.start) / 2,
        "{filled}"
    );
}

#[test]
fn an_empty_directory_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let png = dir.path().join("p.png");
    let error = render(dir.path(), &PreviewOptions::default(), &png).unwrap_err();
    assert!(matches!(error, Error::NoChannels { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .contains(&dir.path().display().to_string()),
        "{error}"
    );
    assert!(!png.exists());

    let missing = dir.path().join("missing");
    let error = render(&missing, &PreviewOptions::default(), &png).unwrap_err();
    assert!(matches!(error, Error::Scan { .. }), "{error:?}");
    assert!(error.to_string().contains("missing"), "{error}");
}

#[test]
fn channels_beyond_those_present_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    two_channels_with_gap(dir.path());
    let png = dir.path().join("p.png");
    let render_channels = |channels| {
        let options = PreviewOptions {
            channels: Some(channels),
            ..PreviewOptions::default()
        };
        render(dir.path(), &options, &png).unwrap_err()
    };

    let error = render_channels(0..5);
    match &error {
        Error::ChannelsNotPresent {
            missing, present, ..
        } => {
            assert_eq!(missing, &[2, 3, 4]);
            assert_eq!(present, "0..2");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        error.to_string(),
        format!(
            "output directory {} has no channel 2..5 (requested 0..5; present: 0..2)",
            dir.path().display()
        )
    );
    assert!(matches!(
        render_channels(0..1000),
        Error::TooManyChannels {
            count: 1000,
            max: MAX_CHANNELS,
            ..
        }
    ));
    #[allow(clippy::reversed_empty_ranges)]
    let empty = 1..1;
    assert!(matches!(
        render_channels(empty),
        Error::EmptyChannelRange { .. }
    ));
    assert!(!png.exists());
}

#[test]
fn bad_windows_and_sizes_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    two_channels_with_gap(dir.path());
    let png = dir.path().join("p.png");
    let try_render = |options: PreviewOptions| render(dir.path(), &options, &png).unwrap_err();

    let error = try_render(PreviewOptions {
        from_s: Some(10.0),
        ..PreviewOptions::default()
    });
    assert!(matches!(error, Error::WindowAfterEnd { .. }), "{error:?}");
    assert!(error.to_string().contains("lasts 2.999 s"), "{error}");
    for (from_s, seconds) in [
        (Some(-1.0), None),
        (None, Some(0.0)),
        (Some(f64::NAN), None),
    ] {
        let error = try_render(PreviewOptions {
            from_s,
            seconds,
            ..PreviewOptions::default()
        });
        assert!(matches!(error, Error::InvalidWindow { .. }), "{error:?}");
    }
    for (width, height) in [(10, 800), (1200, 10), (100_000, 800), (1200, 100_000)] {
        let error = try_render(sized(width, height));
        assert!(matches!(error, Error::InvalidSize { .. }), "{error:?}");
    }
    assert!(!png.exists());
}

#[test]
fn a_truncated_chunk_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    write_channel(dir.path(), 0, &[(0.0, 100)]);
    let chunk = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "gz"))
        .unwrap();
    let bytes = std::fs::read(&chunk).unwrap();
    std::fs::write(&chunk, &bytes[..bytes.len() / 2]).unwrap();
    let error = render(
        dir.path(),
        &PreviewOptions::default(),
        &dir.path().join("p.png"),
    )
    .unwrap_err();
    assert!(matches!(error, Error::ChunkIo { .. }), "{error:?}");
    assert!(
        error.to_string().contains(&chunk.display().to_string()),
        "{error}"
    );
}

/// Writes the picture of `renders_one_row_per_channel…` to `$TS_PREVIEW_KEEP` for a person to look at.
#[test]
fn keep_a_picture_when_asked() {
    let Some(out) = std::env::var_os("TS_PREVIEW_KEEP") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    two_channels_with_gap(dir.path());
    render(dir.path(), &sized(900, 500), Path::new(&out)).unwrap();
}
