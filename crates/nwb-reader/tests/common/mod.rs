//! Writes minimal NWB 2.x files for tests and benches: one ElectricalSeries
//! `/acquisition/ElectricalSeries` over an electrodes table with `channel_name` and `group_name`.

#![allow(dead_code)]

use std::path::Path;

use hdf5::types::VarLenUnicode;
use hdf5::{File, Group, H5Type, ObjectReference1};
use ndarray::Array2;

pub fn text(s: &str) -> VarLenUnicode {
    s.parse().unwrap()
}

pub fn text_attr(loc: &hdf5::Location, name: &str, value: &str) {
    loc.new_attr::<VarLenUnicode>()
        .create(name)
        .unwrap()
        .write_scalar(&text(value))
        .unwrap();
}

/// How the synthetic series keeps time.
pub struct Timing {
    /// `(rate, starting_time)` written as `starting_time` with a `rate` attribute.
    pub rate: Option<(f64, f64)>,
    /// Written as `timestamps`.
    pub timestamps: Option<Vec<f64>>,
}

/// Chunk shape and filters of the synthetic `data`.
#[derive(Clone, Copy, Debug)]
pub struct Chunking {
    pub rows: usize,
    pub cols: usize,
    pub shuffle: bool,
    pub deflate: Option<u8>,
    pub fletcher32: bool,
}

/// Writes the file; `chunk` (samples per chunk) turns on chunking with shuffle + gzip 4.
pub fn write_nwb<T: H5Type>(path: &Path, data: &Array2<T>, timing: &Timing, chunk: Option<usize>) {
    let chunking = chunk.map(|rows| Chunking {
        rows,
        cols: data.ncols(),
        shuffle: true,
        deflate: Some(4),
        fletcher32: false,
    });
    write_nwb_with(path, data, timing, chunking)
}

/// Writes the file with `data` stored as `chunking` says (contiguous when `None`).
pub fn write_nwb_with<T: H5Type>(
    path: &Path,
    data: &Array2<T>,
    timing: &Timing,
    chunking: Option<Chunking>,
) {
    let channels = data.ncols();
    let file = File::create(path).unwrap();
    text_attr(&file, "neurodata_type", "NWBFile");
    text_attr(&file, "namespace", "core");
    text_attr(&file, "nwb_version", "2.11.0");
    for name in ["session_start_time", "timestamps_reference_time"] {
        file.new_dataset::<VarLenUnicode>()
            .create(name)
            .unwrap()
            .write_scalar(&text("2024-03-15T09:30:00.123456+02:00"))
            .unwrap();
    }
    let table: Group = file
        .create_group("general/extracellular_ephys/electrodes")
        .unwrap();
    text_attr(&table, "neurodata_type", "ElectrodesTable");
    let colnames: Vec<VarLenUnicode> = vec![text("group_name"), text("channel_name")];
    table
        .new_attr_builder()
        .with_data(&colnames)
        .create("colnames")
        .unwrap();
    let ids: Vec<i64> = (0..channels as i64).collect();
    table
        .new_dataset_builder()
        .with_data(&ids)
        .create("id")
        .unwrap();
    let groups: Vec<VarLenUnicode> = (0..channels).map(|_| text("shank0")).collect();
    table
        .new_dataset_builder()
        .with_data(&groups)
        .create("group_name")
        .unwrap();
    let names: Vec<VarLenUnicode> = (0..channels).map(|c| text(&format!("ch{c}"))).collect();
    table
        .new_dataset_builder()
        .with_data(&names)
        .create("channel_name")
        .unwrap();

    let series = file.create_group("acquisition/ElectricalSeries").unwrap();
    text_attr(&series, "neurodata_type", "ElectricalSeries");
    text_attr(&series, "namespace", "core");
    let region = series
        .new_dataset_builder()
        .with_data(&ids)
        .create("electrodes")
        .unwrap();
    let table_ref: ObjectReference1 = file
        .reference("/general/extracellular_ephys/electrodes")
        .unwrap();
    region
        .new_attr::<ObjectReference1>()
        .create("table")
        .unwrap()
        .write_scalar(&table_ref)
        .unwrap();
    if let Some((rate, starting_time)) = timing.rate {
        let st = series.new_dataset::<f64>().create("starting_time").unwrap();
        st.write_scalar(&starting_time).unwrap();
        st.new_attr::<f64>()
            .create("rate")
            .unwrap()
            .write_scalar(&rate)
            .unwrap();
    }
    if let Some(ts) = &timing.timestamps {
        series
            .new_dataset_builder()
            .with_data(ts)
            .create("timestamps")
            .unwrap();
    }
    let mut builder = series.new_dataset_builder();
    if let Some(c) = chunking {
        builder = builder.chunk((c.rows, c.cols));
        if c.shuffle {
            builder = builder.shuffle();
        }
        if let Some(level) = c.deflate {
            builder = builder.deflate(level);
        }
        if c.fletcher32 {
            builder = builder.fletcher32();
        }
    }
    let ds = builder.with_data(data).create("data").unwrap();
    ds.new_attr::<f64>()
        .create("conversion")
        .unwrap()
        .write_scalar(&1.95e-7)
        .unwrap();
    ds.new_attr::<f64>()
        .create("offset")
        .unwrap()
        .write_scalar(&0.0)
        .unwrap();
    text_attr(&ds, "unit", "volts");
}
