//! Drawing the rows into an RGB buffer with plotters, and writing the PNG atomically.

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::error::{Error, Result};
use crate::read::Trace;

/// The bundled font: a subset of DejaVu Sans (see `assets/README.md`).
const FONT_NAME: &str = "DejaVuSans-subset.ttf";
const FONT: &[u8] = include_bytes!("../assets/DejaVuSans-subset.ttf");

/// Layout, in pixels.
pub(crate) const MARGIN: u32 = 8;
pub(crate) const TITLE_HEIGHT: u32 = 30;
pub(crate) const Y_LABEL_WIDTH: u32 = 84;
pub(crate) const X_AXIS_HEIGHT: u32 = 44;
pub(crate) const RIGHT_MARGIN: u32 = 20;
pub(crate) const ROW_GAP: u32 = 4;
/// The smallest row a channel gets.
pub(crate) const MIN_ROW_HEIGHT: u32 = 36;

/// Trace colours (Tableau 10 without its grey): all clearly coloured, so they stand apart from the
/// black and grey of text and grid.
const COLOURS: [RGBColor; 9] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Registers the bundled font under plotters' `sans-serif` family, once per process.
fn register_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(Error::Font { name: FONT_NAME })
    }
}

/// Pixel width of the plotting area for an image `width` wide (the same in every row).
pub(crate) fn plot_width(width: u32) -> u32 {
    width.saturating_sub(MARGIN + Y_LABEL_WIDTH + RIGHT_MARGIN)
}

/// Everything one row shows.
pub(crate) struct Row<'a> {
    pub label: String,
    pub trace: &'a Trace,
}

/// What the whole picture shows.
pub(crate) struct Picture<'a> {
    pub width: u32,
    pub height: u32,
    pub title: String,
    /// x axis range, seconds after the time origin.
    pub x_range: (f64, f64),
    pub rows: Vec<Row<'a>>,
}

/// Where things ended up, in image pixels.
pub(crate) struct Geometry {
    pub plot_x: std::ops::Range<u32>,
    pub rows_y: Vec<std::ops::Range<u32>>,
}

fn draw_err<E: std::error::Error + Send + Sync>(
    png: &Path,
) -> impl Fn(plotters::drawing::DrawingAreaErrorKind<E>) -> Error + '_ {
    move |e| Error::Draw {
        png: png.to_owned(),
        message: e.to_string(),
    }
}

/// Draws `picture` into an RGB buffer.
pub(crate) fn draw(picture: &Picture<'_>, png: &Path) -> Result<(Vec<u8>, Geometry)> {
    register_font()?;
    let (width, height) = (picture.width, picture.height);
    let mut buffer = vec![255u8; width as usize * height as usize * 3];
    let geometry;
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (width, height)).into_drawing_area();
        let err = draw_err(png);
        root.fill(&WHITE).map_err(&err)?;
        let body = root
            .titled(&picture.title, ("sans-serif", 17).into_font().color(&BLACK))
            .map_err(&err)?;
        let body = body.margin(0, MARGIN, 0, 0);
        let areas = split_rows(&body, picture.rows.len());
        let (x0, x1) = picture.x_range;
        let mut rows_y = Vec::new();
        let mut plot_x = 0..0;
        for (index, (row, area)) in picture.rows.iter().zip(&areas).enumerate() {
            let last = index + 1 == picture.rows.len();
            let (y0, y1) = y_range(row.trace.range);
            let mut chart = ChartBuilder::on(area)
                .margin_left(MARGIN)
                .margin_right(RIGHT_MARGIN)
                .margin_bottom(if last { 0 } else { ROW_GAP })
                .x_label_area_size(if last { X_AXIS_HEIGHT } else { 0 })
                .y_label_area_size(Y_LABEL_WIDTH)
                .build_cartesian_2d(x0..x1, y0..y1)
                .map_err(&err)?;
            let mut mesh = chart.configure_mesh();
            mesh.y_labels(3)
                .x_labels(10)
                .y_desc("µV")
                .axis_desc_style(("sans-serif", 13))
                .label_style(("sans-serif", 12))
                .bold_line_style(BLACK.mix(0.12))
                .light_line_style(TRANSPARENT)
                .y_label_formatter(&|v| format_value(*v));
            if last {
                mesh.x_desc("time (s) after the first sample");
            }
            mesh.draw().map_err(&err)?;

            let colour = COLOURS[index % COLOURS.len()];
            for segment in &row.trace.segments {
                let points = segment.iter().map(|&(t_us, v)| (t_us / 1e6, v));
                if segment.len() == 1 {
                    chart
                        .draw_series(points.map(|p| Circle::new(p, 1, colour.filled())))
                        .map_err(&err)?;
                } else {
                    chart
                        .draw_series(LineSeries::new(points, colour))
                        .map_err(&err)?;
                }
            }

            let plotting = chart.plotting_area();
            let (xs, ys) = plotting.get_pixel_range();
            plot_x = to_u32(xs);
            rows_y.push(to_u32(ys));

            // The label, on a light box so a trace under it stays readable around it.
            let label_style = ("sans-serif", 13).into_font().color(&BLACK);
            let (w, h) = plotting
                .estimate_text_size(&row.label, &label_style)
                .map_err(&err)?;
            let base = plotting.get_base_pixel();
            let at = (base.0 + 4, base.1 + 3);
            root.draw(&Rectangle::new(
                [
                    (at.0 - 3, at.1 - 2),
                    (at.0 + w as i32 + 3, at.1 + h as i32 + 3),
                ],
                WHITE.mix(0.8).filled(),
            ))
            .map_err(&err)?;
            root.draw_text(&row.label, &label_style, at).map_err(&err)?;
        }
        root.present().map_err(&err)?;
        geometry = Geometry { plot_x, rows_y };
    }
    Ok((buffer, geometry))
}

fn to_u32(range: std::ops::Range<i32>) -> std::ops::Range<u32> {
    range.start.max(0) as u32..range.end.max(0) as u32
}

/// Splits `area` into `n` rows; the last one also holds the x axis.
fn split_rows<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    n: usize,
) -> Vec<DrawingArea<DB, Shift>> {
    let (_, height) = area.dim_in_pixel();
    let row = height.saturating_sub(X_AXIS_HEIGHT) / n.max(1) as u32;
    let breaks: Vec<i32> = (1..n as u32).map(|i| (i * row) as i32).collect();
    area.split_by_breakpoints::<i32, i32, _, _>([], breaks)
}

/// The height a picture needs for `rows` rows of at least [`MIN_ROW_HEIGHT`].
pub(crate) fn min_height(rows: u32) -> u32 {
    TITLE_HEIGHT + MARGIN + X_AXIS_HEIGHT + rows * (MIN_ROW_HEIGHT + ROW_GAP)
}

/// The y range for a trace: its extremes plus 5 %, or ±1 µV around a constant.
fn y_range(range: Option<(f64, f64)>) -> (f64, f64) {
    match range {
        None => (-1.0, 1.0),
        Some((lo, hi)) if hi - lo > 0.0 && (hi - lo).is_finite() => {
            let pad = (hi - lo) * 0.05;
            (lo - pad, hi + pad)
        }
        Some((lo, hi)) => {
            let pad = (lo.abs() * 0.1).max(1.0);
            (lo - pad, hi + pad)
        }
    }
}

/// Axis numbers: few significant digits, no trailing zeros.
fn format_value(v: f64) -> String {
    let a = v.abs();
    let text = if a == 0.0 {
        "0".to_owned()
    } else if !(1e-3..1e6).contains(&a) {
        format!("{v:.2e}")
    } else {
        let decimals = (2 - a.log10().floor() as i32).clamp(0, 6) as usize;
        let s = format!("{v:.decimals$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s
        }
    };
    if text == "-0" { "0".to_owned() } else { text }
}

/// Encodes `rgb` as a PNG at `path`, through a temporary file in the same directory renamed into
/// place, so `path` never holds a partial image.
pub(crate) fn write_png(path: &Path, rgb: &[u8], width: u32, height: u32) -> Result<()> {
    let file_name = path
        .file_name()
        .ok_or_else(|| Error::WritePng {
            action: "write to",
            path: path.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"),
        })?
        .to_string_lossy();
    let temp = path.with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));
    let write_err = |action, path: &PathBuf| {
        let path = path.clone();
        move |source| Error::WritePng {
            action,
            path,
            source,
        }
    };
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)
        .map_err(write_err("create temporary file", &temp))?;
    let result = (|| {
        let mut out = BufWriter::new(file);
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Balanced);
        let encode_err = |source| Error::EncodePng {
            path: path.to_owned(),
            source,
        };
        let mut writer = encoder.write_header().map_err(encode_err)?;
        writer.write_image_data(rgb).map_err(encode_err)?;
        writer.finish().map_err(encode_err)?;
        out.flush().map_err(write_err("write", &temp))?;
        std::fs::rename(&temp, path).map_err(write_err("rename temporary file to", &path.into()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_short() {
        assert_eq!(format_value(0.0), "0");
        assert_eq!(format_value(-0.0001234), "-1.23e-4");
        assert_eq!(format_value(1234.5678), "1235");
        assert_eq!(format_value(12.5), "12.5");
        assert_eq!(format_value(-0.25), "-0.25");
        assert_eq!(format_value(100.0), "100");
    }

    #[test]
    fn y_range_pads_and_handles_constants() {
        assert_eq!(y_range(None), (-1.0, 1.0));
        assert_eq!(y_range(Some((0.0, 100.0))), (-5.0, 105.0));
        assert_eq!(y_range(Some((50.0, 50.0))), (45.0, 55.0));
        assert_eq!(y_range(Some((0.0, 0.0))), (-1.0, 1.0));
    }
}
