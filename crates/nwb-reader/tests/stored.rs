//! Stored chunks decoded by nwb-reader give exactly what HDF5's own reads give, for every layout
//! and filter combination it accepts; everything else is refused with a reason; corrupt chunks
//! are errors, not panics.

mod common;

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use common::{Chunking, Timing, write_nwb_with};
use hdf5::H5Type;
use ndarray::Array2;
use nwb_reader::{DiscoverOptions, NwbFile, RawBlock, SeriesReader};

fn timing() -> Timing {
    Timing {
        rate: Some((1000.0, 0.0)),
        timestamps: None,
    }
}

fn open(path: &Path) -> (NwbFile, nwb_reader::SeriesInfo) {
    let file = NwbFile::open(path).unwrap();
    let found = file.discover(&DiscoverOptions::default()).unwrap();
    let info = found.series[0].clone();
    (file, info)
}

/// Every channel of `block` scaled, as bit patterns (so NaNs compare too).
fn columns(block: &RawBlock, reader: &SeriesReader) -> Vec<Vec<u64>> {
    let mut out = Vec::new();
    let mut scratch = Vec::new();
    for k in 0..block.channels() {
        block.scale_channel_into(k, &reader.info().scaling, &mut scratch);
        out.push(scratch.iter().map(|v| v.to_bits()).collect());
    }
    out
}

fn check_same<T: H5Type + Clone>(data: &Array2<T>, chunking: Chunking) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stored.nwb");
    write_nwb_with(&path, data, &timing(), Some(chunking));
    let (file, info) = open(&path);
    let reader = file.open_series(&info).unwrap();
    assert_eq!(reader.stored_chunks(), Ok(()), "{chunking:?}");
    let n = data.nrows() as u64;
    let mut spare = None;
    for range in [0..n, 3..n.min(17), n / 2..n / 2, n - 1..n, 1..n - 1, 0..n] {
        let stored = reader.read_stored(range.clone()).unwrap();
        assert_eq!(stored.range(), range);
        // Decoding into the previous block's memory (larger, smaller or empty) changes nothing.
        let decoded = stored.decode_reusing(spare.take()).unwrap();
        let expected = reader.read_raw(range.clone()).unwrap();
        assert_eq!(decoded.len(), expected.len());
        assert_eq!(decoded.channels(), expected.channels());
        assert_eq!(
            columns(&decoded, &reader),
            columns(&expected, &reader),
            "{chunking:?} {range:?}"
        );
        spare = Some(decoded);
    }
}

fn chunking(rows: usize, cols: usize, shuffle: bool, deflate: Option<u8>) -> Chunking {
    Chunking {
        rows,
        cols,
        shuffle,
        deflate,
        fletcher32: false,
    }
}

#[test]
fn every_filter_combination_and_chunk_shape_decodes_like_hdf5() {
    let (n, c) = (50, 5);
    let i16s = Array2::from_shape_fn((n, c), |(t, k)| (t as i16 * 37 - 900) * (k as i16 + 1));
    let f64s = Array2::from_shape_fn((n, c), |(t, k)| (t as f64 * 0.37).sin() * 1e3 + k as f64);
    let f32s = f64s.mapv(|v| v as f32);
    let u8s = Array2::from_shape_fn((n, c), |(t, k)| (t * 7 + k) as u8);
    let i64s = Array2::from_shape_fn((n, c), |(t, k)| (t as i64 - 25) << (k * 9));
    for (shuffle, deflate) in [
        (true, Some(4)),
        (false, Some(1)),
        (true, None),
        (false, None),
    ] {
        // Chunks spanning all channels, channel groups with partial edge chunks in both
        // dimensions, and one chunk almost the size of the whole dataset.
        for (rows, cols) in [(7, c), (8, 2), (48, 5), (1, 1)] {
            let layout = chunking(rows, cols, shuffle, deflate);
            check_same(&i16s, layout);
            check_same(&f64s, layout);
            check_same(&f32s, layout);
            check_same(&u8s, layout);
            check_same(&i64s, layout);
        }
    }
}

#[test]
fn other_layouts_and_filters_are_refused_with_a_reason() {
    let data = Array2::from_shape_fn((20, 3), |(t, k)| (t * 3 + k) as i16);
    let dir = tempfile::tempdir().unwrap();
    let contiguous = dir.path().join("contiguous.nwb");
    write_nwb_with(&contiguous, &data, &timing(), None);
    let (file, info) = open(&contiguous);
    let reader = file.open_series(&info).unwrap();
    assert_eq!(reader.stored_chunks(), Err("contiguous layout"));
    let err = reader.read_stored(0..5).unwrap_err().to_string();
    assert!(
        err.contains("cannot read stored chunks: contiguous layout"),
        "{err}"
    );

    let checksummed = dir.path().join("fletcher.nwb");
    let mut layout = chunking(4, 3, true, Some(4));
    layout.fletcher32 = true;
    write_nwb_with(&checksummed, &data, &timing(), Some(layout));
    let (file, info) = open(&checksummed);
    let reader = file.open_series(&info).unwrap();
    let why = reader.stored_chunks().unwrap_err();
    assert!(why.contains("Fletcher32"), "{why}");
}

#[test]
fn a_corrupt_chunk_is_an_error_naming_it() {
    let data = Array2::from_shape_fn((4000, 4), |(t, k)| ((t * 13 + k * 101) % 3000) as i16);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corrupt.nwb");
    write_nwb_with(
        &path,
        &data,
        &timing(),
        Some(chunking(1000, 4, true, Some(4))),
    );
    // Find the second chunk's bytes through HDF5, then overwrite its middle on disk.
    let (addr, size) = {
        let f = hdf5::File::open(&path).unwrap();
        let ds = f.dataset("acquisition/ElectricalSeries/data").unwrap();
        let info = ds.chunk_info(1).unwrap();
        (info.addr, info.size)
    };
    let mut raw = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    raw.seek(SeekFrom::Start(addr + size / 2)).unwrap();
    raw.write_all(&[0xFF; 64]).unwrap();
    drop(raw);

    let (file, info) = open(&path);
    let reader = file.open_series(&info).unwrap();
    // The first chunk is intact.
    reader.read_stored(0..1000).unwrap().decode().unwrap();
    let err = reader
        .read_stored(0..4000)
        .unwrap()
        .decode()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("corrupt.nwb: /acquisition/ElectricalSeries/data"),
        "{err}"
    );
    assert!(
        err.contains("the chunk at sample 1000, channel 0 does not inflate"),
        "{err}"
    );
}

#[test]
fn a_one_dimensional_chunked_series_decodes_like_hdf5() {
    let n = 1000;
    let column = Array2::from_shape_fn((n, 1), |(t, _)| (t as i16 * 29) - 7000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("one_d.nwb");
    write_nwb_with(&path, &column, &timing(), None);
    {
        // Replace the (n, 1) data by the same samples in one dimension, chunked and filtered.
        let file = hdf5::File::open_rw(&path).unwrap();
        let series = file.group("acquisition/ElectricalSeries").unwrap();
        series.unlink("data").unwrap();
        let flat: Vec<i16> = column.iter().copied().collect();
        let data = series
            .new_dataset_builder()
            .chunk(64)
            .shuffle()
            .deflate(6)
            .with_data(&flat)
            .create("data")
            .unwrap();
        data.new_attr::<f64>()
            .create("conversion")
            .unwrap()
            .write_scalar(&1.95e-7)
            .unwrap();
        common::text_attr(&data, "unit", "volts");
    }
    let (file, info) = open(&path);
    assert_eq!(info.shape, vec![n as u64]);
    let reader = file.open_series(&info).unwrap();
    assert_eq!(reader.stored_chunks(), Ok(()));
    for range in [0..n as u64, 63..65, 900..1000] {
        let decoded = reader.read_stored(range.clone()).unwrap().decode().unwrap();
        let expected = reader.read_raw(range.clone()).unwrap();
        assert_eq!(
            columns(&decoded, &reader),
            columns(&expected, &reader),
            "{range:?}"
        );
    }
}

#[test]
fn shuffle_applied_after_deflate_reads_through_hdf5() {
    // Unusual but valid: deflate first, then shuffle of the compressed bytes. Stored chunks are
    // only decoded here when shuffle comes first; this order is left to HDF5.
    let data = Array2::from_shape_fn((200, 3), |(t, k)| (t * 3 + k) as i16);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deflate_then_shuffle.nwb");
    write_nwb_with(&path, &data, &timing(), None);
    {
        let file = hdf5::File::open_rw(&path).unwrap();
        let series = file.group("acquisition/ElectricalSeries").unwrap();
        series.unlink("data").unwrap();
        // The hdf5 crate refuses this order, so the dataset is made with the C calls.
        let name = std::ffi::CString::new("data").unwrap();
        let flat: Vec<i16> = data.iter().copied().collect();
        let status = hdf5::sync::sync(|| unsafe {
            use hdf5_sys::{h5d, h5p, h5s, h5t};
            let dims = [200u64, 3];
            let chunk = [16u64, 3];
            let space = h5s::H5Screate_simple(2, dims.as_ptr(), std::ptr::null());
            let dcpl = h5p::H5Pcreate(*h5p::H5P_CLS_DATASET_CREATE);
            h5p::H5Pset_chunk(dcpl, 2, chunk.as_ptr());
            h5p::H5Pset_deflate(dcpl, 4);
            h5p::H5Pset_shuffle(dcpl);
            let ty = *h5t::H5T_NATIVE_INT16;
            let ds = h5d::H5Dcreate2(
                series.id(),
                name.as_ptr(),
                ty,
                space,
                h5p::H5P_DEFAULT,
                dcpl,
                h5p::H5P_DEFAULT,
            );
            let written = h5d::H5Dwrite(
                ds,
                ty,
                h5s::H5S_ALL,
                h5s::H5S_ALL,
                h5p::H5P_DEFAULT,
                flat.as_ptr().cast(),
            );
            h5d::H5Dclose(ds);
            h5p::H5Pclose(dcpl);
            h5s::H5Sclose(space);
            if ds < 0 { ds as i32 } else { written }
        });
        assert!(status >= 0, "creating the dataset failed");
        let ds = series.dataset("data").unwrap();
        common::text_attr(&ds, "unit", "volts");
        assert_eq!(
            ds.filters(),
            vec![
                hdf5::filters::Filter::Deflate(4),
                hdf5::filters::Filter::Shuffle
            ]
        );
    }
    let (file, info) = open(&path);
    let reader = file.open_series(&info).unwrap();
    let why = reader.stored_chunks().unwrap_err();
    assert!(why.contains("shuffle after deflate"), "{why}");
    assert_eq!(reader.read_raw(0..200).unwrap().len(), 200);
}
