//! Hostile and damaged inputs: link cycles, exponential link trees, sizes declared but not
//! stored, non-finite times, invalid UTF-8 and paths that are not regular files. Each must end
//! quickly with a clear, typed error (or success), never a panic, a hang or a huge allocation.

mod common;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use common::{Timing, write_nwb};
use hdf5::types::VarLenUnicode;
use hdf5::{Group, ObjectReference1};
use ndarray::Array2;
use nwb_reader::{DiscoverOptions, Error, NwbFile, TimeBase};

const CHANNELS: usize = 4;

/// A valid 4-channel file at 1 kHz; `edit` then changes it through the `hdf5` crate.
fn craft(timing: Timing, edit: impl FnOnce(&hdf5::File)) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hostile.nwb");
    let data = Array2::from_shape_fn((100, CHANNELS), |(i, c)| (i * 4 + c) as i16);
    write_nwb(&path, &data, &timing, Some(64));
    {
        let file = hdf5::File::open_rw(&path).unwrap();
        edit(&file);
    }
    (dir, path)
}

fn rate() -> Timing {
    Timing {
        rate: Some((1000.0, 0.0)),
        timestamps: None,
    }
}

fn timestamps(ts: Vec<f64>) -> Timing {
    Timing {
        rate: None,
        timestamps: Some(ts),
    }
}

/// Runs `f` on another thread and fails the test if it takes longer than `secs` (a hang of the
/// old code must fail the test, not stall the suite).
fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs))
        .unwrap_or_else(|_| panic!("did not finish within {secs} s"))
}

fn discover(path: &Path, include_processing: bool) -> Result<nwb_reader::Discovery, Error> {
    NwbFile::open(path)?.discover(&DiscoverOptions { include_processing })
}

fn series(file: &hdf5::File) -> Group {
    file.group("acquisition/ElectricalSeries").unwrap()
}

/// Writes `bytes` (any bytes, not necessarily UTF-8) as variable-length UTF-8 text values of the
/// attribute or dataset `id` of type `ty`, bypassing the `hdf5` crate's `str` checks.
fn write_raw_texts(
    id: hdf5_sys::h5i::hid_t,
    ty: hdf5_sys::h5i::hid_t,
    attr: bool,
    values: &[&[u8]],
) {
    let owned: Vec<std::ffi::CString> = values
        .iter()
        .map(|b| std::ffi::CString::new(b.to_vec()).unwrap())
        .collect();
    let ptrs: Vec<*const std::ffi::c_char> = owned.iter().map(|c| c.as_ptr()).collect();
    let status = hdf5::sync::sync(|| unsafe {
        if attr {
            hdf5_sys::h5a::H5Awrite(id, ty, ptrs.as_ptr().cast())
        } else {
            hdf5_sys::h5d::H5Dwrite(
                id,
                ty,
                hdf5_sys::h5s::H5S_ALL,
                hdf5_sys::h5s::H5S_ALL,
                hdf5_sys::h5p::H5P_DEFAULT,
                ptrs.as_ptr().cast(),
            )
        }
    });
    assert!(status >= 0, "writing raw text failed");
}

/// Replaces the scalar text attribute `name` of `loc` with raw `bytes`.
fn raw_text_attr(loc: &hdf5::Location, name: &str, bytes: &[u8]) {
    if loc.attr_names().unwrap().iter().any(|n| n == name) {
        loc.delete_attr(name).unwrap();
    }
    let attr = loc.new_attr::<VarLenUnicode>().create(name).unwrap();
    let ty = attr.dtype().unwrap();
    write_raw_texts(attr.id(), ty.id(), true, &[bytes]);
}

/// Replaces the text dataset `name` of `group` with raw `values`.
fn raw_text_dataset(group: &Group, name: &str, values: &[&[u8]]) {
    if group.link_exists(name) {
        group.unlink(name).unwrap();
    }
    let ds = group
        .new_dataset::<VarLenUnicode>()
        .shape(values.len())
        .create(name)
        .unwrap();
    let ty = ds.dtype().unwrap();
    write_raw_texts(ds.id(), ty.id(), false, values);
}

fn invalid_text(e: &Error) -> String {
    assert!(
        matches!(e, Error::Invalid { .. } | Error::LimitExceeded { .. }),
        "{e:?}"
    );
    e.to_string()
}

// ---------------------------------------------------------------------------------------------
// 1. Bounded walks

#[test]
fn a_hard_link_from_acquisition_back_to_the_root_is_walked_once() {
    let (dir, path) = craft(rate(), |f| {
        f.link_hard("/", "/acquisition/cycle").unwrap();
    });
    for include_processing in [false, true] {
        let p = path.clone();
        let d = within(30, move || discover(&p, include_processing)).unwrap();
        assert_eq!(d.series.len(), 1, "{:?}", d.series);
        let es: Vec<_> = d
            .typed_objects
            .iter()
            .filter(|(_, t)| t == "ElectricalSeries")
            .collect();
        assert_eq!(es.len(), 1, "{:?}", d.typed_objects);
    }
    drop(dir);
}

#[test]
fn forty_levels_of_doubled_hard_links_finish_quickly() {
    // g0 -> (a, b) -> g1 -> (a, b) -> g2 ... g40: 2^40 paths to g40, 41 objects.
    let (_dir, path) = craft(rate(), |f| {
        for i in 0..=40 {
            f.create_group(&format!("h/g{i}")).unwrap();
        }
        for i in 0..40 {
            for link in ["a", "b"] {
                f.link_hard(&format!("/h/g{}", i + 1), &format!("/h/g{i}/{link}"))
                    .unwrap();
            }
        }
        f.link_hard("/h/g0", "/acquisition/deep").unwrap();
        f.unlink("h").unwrap();
    });
    for include_processing in [false, true] {
        let p = path.clone();
        let d = within(30, move || discover(&p, include_processing)).unwrap();
        assert_eq!(d.series.len(), 1);
    }
}

#[test]
fn nesting_deeper_than_the_limit_is_a_clear_error() {
    let (_dir, path) = craft(rate(), |f| {
        let deep = vec!["n"; 80].join("/");
        f.create_group(&format!("acquisition/deep/{deep}")).unwrap();
    });
    let e = within(30, move || discover(&path, false)).unwrap_err();
    assert!(matches!(e, Error::LimitExceeded { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("hostile.nwb") && msg.contains("64 levels"),
        "{msg}"
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Validation before allocation

#[test]
fn data_declaring_1e11_rows_without_stored_chunks_is_an_error() {
    let (_dir, path) = craft(rate(), |f| {
        let s = series(f);
        s.unlink("data").unwrap();
        s.new_dataset::<i16>()
            .chunk((1024, CHANNELS))
            .shape((100_000_000_000usize, CHANNELS))
            .create("data")
            .unwrap();
    });
    assert!(std::fs::metadata(&path).unwrap().len() < 1 << 20);
    let e = within(30, move || discover(&path, false)).unwrap_err();
    let msg = invalid_text(&e);
    assert!(
        msg.contains("/acquisition/ElectricalSeries/data")
            && msg.contains("declares 100000000000 samples")
            && msg.contains("stores only 0 of 97656250 chunks"),
        "{msg}"
    );
}

#[test]
fn contiguous_data_that_stores_less_than_it_declares_is_an_error() {
    let (_dir, path) = craft(rate(), |f| {
        let s = series(f);
        s.unlink("data").unwrap();
        s.new_dataset::<i16>()
            .shape((1usize << 28, CHANNELS))
            .create("data")
            .unwrap();
    });
    let e = within(30, move || discover(&path, false)).unwrap_err();
    let msg = invalid_text(&e);
    assert!(
        msg.contains("/data") && msg.contains("but stores only 0 bytes"),
        "{msg}"
    );
}

/// A chunked dataset of `len` declared values (int64) with nothing written.
fn huge_i64(group: &Group, name: &str, len: usize) {
    if group.link_exists(name) {
        group.unlink(name).unwrap();
    }
    group
        .new_dataset::<i64>()
        .chunk(1024)
        .shape(len)
        .create(name)
        .unwrap();
}

#[test]
fn an_electrodes_region_declaring_2_pow_40_entries_is_an_error_before_reading() {
    let (_dir, path) = craft(rate(), |f| {
        let s = series(f);
        huge_i64(&s, "electrodes", 1 << 40);
        let table_ref: ObjectReference1 = f
            .reference("/general/extracellular_ephys/electrodes")
            .unwrap();
        s.dataset("electrodes")
            .unwrap()
            .new_attr::<ObjectReference1>()
            .create("table")
            .unwrap()
            .write_scalar(&table_ref)
            .unwrap();
    });
    let e = within(30, move || discover(&path, false)).unwrap_err();
    let msg = invalid_text(&e);
    assert!(
        msg.contains("/electrodes") && msg.contains("has 1099511627776 entries; expected 4"),
        "{msg}"
    );
}

#[test]
fn an_id_column_declaring_2_pow_40_rows_is_an_error_before_reading() {
    let (_dir, path) = craft(rate(), |f| {
        let table = f.group("general/extracellular_ephys/electrodes").unwrap();
        huge_i64(&table, "id", 1 << 40);
    });
    let e = within(30, move || discover(&path, false)).unwrap_err();
    let msg = invalid_text(&e);
    assert!(
        msg.contains("electrodes/id") && msg.contains("declares 1099511627776 rows"),
        "{msg}"
    );
}

#[test]
fn channel_conversion_of_the_wrong_length_is_an_error_before_reading() {
    let (_dir, path) = craft(rate(), |f| {
        let s = series(f);
        s.new_dataset::<f32>()
            .chunk(1024)
            .shape(1usize << 40)
            .create("channel_conversion")
            .unwrap();
    });
    let e = within(30, move || discover(&path, false)).unwrap_err();
    let msg = invalid_text(&e);
    assert!(
        msg.contains("/channel_conversion") && msg.contains("expected 4 values"),
        "{msg}"
    );
}

#[test]
fn a_group_reference_column_shorter_than_the_table_is_an_error() {
    let (_dir, path) = craft(rate(), |f| {
        let table = f.group("general/extracellular_ephys/electrodes").unwrap();
        table.unlink("group_name").unwrap();
        table.delete_attr("colnames").unwrap();
        let colnames: Vec<VarLenUnicode> =
            vec!["channel_name".parse().unwrap(), "group".parse().unwrap()];
        table
            .new_attr_builder()
            .with_data(&colnames)
            .create("colnames")
            .unwrap();
        f.create_group("general/extracellular_ephys/shank0")
            .unwrap();
        let r: ObjectReference1 = f.reference("/general/extracellular_ephys/shank0").unwrap();
        table
            .new_dataset_builder()
            .with_data(&[r, r])
            .create("group")
            .unwrap();
    });
    let e = within(30, move || discover(&path, false)).unwrap_err();
    let msg = invalid_text(&e);
    assert!(
        msg.contains("electrodes/group")
            && msg.contains("has 2 rows")
            && msg.contains("the table has 4"),
        "{msg}"
    );
}

#[test]
fn data_without_channels_is_an_error() {
    let (_dir, path) = craft(rate(), |f| {
        let s = series(f);
        s.unlink("data").unwrap();
        s.new_dataset::<i16>()
            .shape((10, 0))
            .create("data")
            .unwrap();
        s.unlink("electrodes").unwrap();
        s.new_dataset::<i64>()
            .shape(0)
            .create("electrodes")
            .unwrap();
    });
    let e = within(30, move || discover(&path, false)).unwrap_err();
    let msg = invalid_text(&e);
    assert!(
        msg.contains("/data") && msg.contains("has no channels"),
        "{msg}"
    );
}

#[test]
fn timestamps_declaring_more_than_they_store_are_an_error() {
    let (_dir, path) = craft(
        timestamps((0..100).map(|i| i as f64 / 1000.0).collect()),
        |f| {
            let s = series(f);
            s.unlink("timestamps").unwrap();
            s.new_dataset::<f64>()
                .chunk(16)
                .shape(100)
                .create("timestamps")
                .unwrap();
        },
    );
    let e = within(30, move || discover(&path, false)).unwrap_err();
    let msg = invalid_text(&e);
    assert!(
        msg.contains("/timestamps") && msg.contains("stores only 0 of 7 chunks"),
        "{msg}"
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Time rules

#[test]
fn the_rate_is_inferred_from_relative_timestamps_not_absolute_times() {
    let ts: Vec<f64> = (0..100).map(|i| i as f64 / 30_000.0).collect();
    let (_dir, path) = craft(timestamps(ts), |_| {});
    let d = discover(&path, false).unwrap();
    let info = &d.series[0];
    assert_eq!(info.time.rate(), 30_000.0);
    match info.time {
        TimeBase::Timestamps { inferred_rate, .. } => {
            assert!((inferred_rate - 30_000.0).abs() < 1e-6, "{inferred_rate}")
        }
        ref other => panic!("{other:?}"),
    }
}

#[test]
fn time_that_stands_still_or_goes_back_starts_a_segment_with_a_warning() {
    let mut ts: Vec<f64> = (0..100).map(|i| i as f64 / 1000.0).collect();
    ts[40] = ts[39]; // stands still
    ts[70] = ts[69] - 0.0005; // goes back
    let (_dir, path) = craft(timestamps(ts), |_| {});
    let file = NwbFile::open(&path).unwrap();
    let info = file
        .discover(&DiscoverOptions::default())
        .unwrap()
        .series
        .remove(0);
    let reader = file.open_series(&info).unwrap();
    let report = reader.segments_report().unwrap();
    assert_eq!(report.segments, vec![0..40, 40..70, 70..71, 71..100]);
    assert_eq!(report.first_non_increasing, Some(40));
    assert_eq!(report.non_increasing, 2);
    let w = report.warning.unwrap();
    assert!(
        w.contains("/acquisition/ElectricalSeries") && w.contains("sample 40"),
        "{w}"
    );
    assert_eq!(reader.segments().unwrap(), report.segments);
}

fn with_rate(rate: f64, starting_time: f64) -> Timing {
    Timing {
        rate: Some((rate, starting_time)),
        timestamps: None,
    }
}

#[test]
fn rates_and_starting_times_that_are_not_finite_or_positive_are_errors() {
    for (timing, expect) in [
        (with_rate(f64::NAN, 0.0), "attribute rate NaN"),
        (with_rate(0.0, 0.0), "attribute rate 0"),
        (with_rate(-30.0, 0.0), "attribute rate -30"),
        (with_rate(f64::INFINITY, 0.0), "attribute rate inf"),
        (with_rate(1000.0, f64::INFINITY), "starting_time inf"),
        (with_rate(1000.0, f64::NAN), "starting_time NaN"),
    ] {
        let (_dir, path) = craft(timing, |_| {});
        let e = discover(&path, false).unwrap_err();
        let msg = invalid_text(&e);
        assert!(
            msg.contains("/acquisition/ElectricalSeries/starting_time") && msg.contains(expect),
            "{msg} lacks {expect}"
        );
    }
}

#[test]
fn timestamps_that_are_not_finite_are_errors_naming_the_index() {
    // Within the first ten: discovery fails.
    let mut ts: Vec<f64> = (0..100).map(|i| i as f64 / 1000.0).collect();
    ts[5] = f64::NAN;
    let (_dir, path) = craft(timestamps(ts), |_| {});
    let msg = invalid_text(&discover(&path, false).unwrap_err());
    assert!(
        msg.contains("/timestamps") && msg.contains("timestamp 5 is NaN"),
        "{msg}"
    );

    // Later: the segment scan and time_at fail.
    let mut ts: Vec<f64> = (0..100).map(|i| i as f64 / 1000.0).collect();
    ts[50] = f64::INFINITY;
    let (_dir, path) = craft(timestamps(ts), |_| {});
    let file = NwbFile::open(&path).unwrap();
    let info = file
        .discover(&DiscoverOptions::default())
        .unwrap()
        .series
        .remove(0);
    let reader = file.open_series(&info).unwrap();
    let msg = invalid_text(&reader.segments_report().unwrap_err());
    assert!(
        msg.contains("/acquisition/ElectricalSeries/timestamps")
            && msg.contains("timestamp 50 is inf"),
        "{msg}"
    );
    let msg = invalid_text(&reader.time_at(50).unwrap_err());
    assert!(msg.contains("timestamp 50"), "{msg}");
    assert!(reader.time_at(100).is_err());
    assert!(reader.read_raw(90..101).is_err());
    #[allow(clippy::reversed_empty_ranges)]
    let reversed = reader.read_raw(10..5);
    assert!(reversed.is_err());
}

// ---------------------------------------------------------------------------------------------
// 4. UTF-8

#[test]
fn a_unit_that_is_not_utf8_is_an_error_naming_the_attribute() {
    let (_dir, path) = craft(rate(), |f| {
        let data = series(f).dataset("data").unwrap();
        raw_text_attr(&data, "unit", b"volts\xff");
    });
    let e = discover(&path, false).unwrap_err();
    assert!(
        matches!(
            e,
            Error::NotUtf8 {
                offset: 5,
                byte: 0xFF,
                ..
            }
        ),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("/acquisition/ElectricalSeries/data") && msg.contains("attribute unit"),
        "{msg}"
    );
}

#[test]
fn a_reference_time_that_is_not_utf8_is_an_error_naming_it() {
    let (_dir, path) = craft(rate(), |f| {
        raw_text_dataset(
            f,
            "timestamps_reference_time",
            &[b"2024-03-15T09:30:00\xc3+02:00"],
        );
    });
    let e = NwbFile::open(&path).err().unwrap();
    assert!(matches!(e, Error::NotUtf8 { offset: 19, .. }), "{e:?}");
    assert!(e.to_string().contains("/timestamps_reference_time"), "{e}");
}

#[test]
fn invalid_bytes_in_names_and_groups_are_escaped_with_a_warning() {
    let (_dir, path) = craft(rate(), |f| {
        let table = f.group("general/extracellular_ephys/electrodes").unwrap();
        raw_text_dataset(&table, "channel_name", &[b"ch\xff0", b"  ", b"ch2", b"ch3"]);
        raw_text_dataset(
            &table,
            "group_name",
            &[b"sh\xfeank", b"shank0", b"", b" s "],
        );
    });
    let d = discover(&path, false).unwrap();
    let info = &d.series[0];
    let names: Vec<&str> = info.channels.iter().map(|c| c.name.as_str()).collect();
    let groups: Vec<&str> = info.channels.iter().map(|c| c.group.as_str()).collect();
    // A blank name falls back to the row's id; groups keep their (trimmed) text.
    assert_eq!(names, ["ch\\xFF0", "1", "ch2", "ch3"]);
    assert_eq!(groups, ["sh\\xFEank", "shank0", "", "s"]);
    assert_eq!(info.warnings.len(), 2, "{:?}", info.warnings);
    assert!(
        info.warnings[0].contains("channel_name row 0"),
        "{:?}",
        info.warnings
    );
    assert!(
        info.warnings[1].contains("group_name row 0"),
        "{:?}",
        info.warnings
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Paths that are not regular files

#[test]
fn a_fifo_is_refused_before_anything_opens_it() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.nwb");
    // mkfifo(3), not the mkfifo program: a child process forked now would inherit the HDF5
    // files other tests have open (libhdf5 does not set O_CLOEXEC) and their locks with them.
    let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let e = within(20, move || NwbFile::open(&fifo).err().unwrap());
    assert!(matches!(e, Error::Open { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("pipe.nwb") && msg.contains("FIFO"), "{msg}");
}

#[test]
fn a_device_is_refused() {
    let e = within(20, || NwbFile::open("/dev/null").err().unwrap());
    assert!(matches!(e, Error::Open { .. }), "{e:?}");
    assert!(e.to_string().contains("character device"), "{e}");
}

#[test]
fn a_missing_file_reports_the_os_error() {
    let e = NwbFile::open("/nonexistent/x.nwb").err().unwrap();
    assert!(matches!(e, Error::Open { .. }), "{e:?}");
    assert!(e.to_string().contains("No such file"), "{e}");
}
