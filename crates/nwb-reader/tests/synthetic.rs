//! Cases the fixtures do not cover, on files written here: the 2 % rate check and gaps found
//! across several timestamp batches.

mod common;

use common::{Timing, write_nwb};
use ndarray::Array2;
use nwb_reader::{DiscoverOptions, Error, NwbFile, TimeBase};

fn open_with(timing: Timing, samples: usize) -> (tempfile::TempDir, Result<NwbFile, Error>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("synthetic.nwb");
    let data = Array2::from_shape_fn((samples, 2), |(i, c)| (i * 2 + c) as i16);
    write_nwb(&path, &data, &timing, Some(64));
    let file = NwbFile::open(&path);
    (dir, file)
}

fn times(rate: f64, n: usize) -> Vec<f64> {
    (0..n).map(|i| i as f64 / rate).collect()
}

#[test]
fn rate_and_timestamps_more_than_two_percent_apart_are_an_error() {
    // Timestamps at 1030 Hz against a stated 1000 Hz: 3 % apart.
    let (_dir, file) = open_with(
        Timing {
            rate: Some((1000.0, 0.0)),
            timestamps: Some(times(1030.0, 100)),
        },
        100,
    );
    let e = file
        .unwrap()
        .discover(&DiscoverOptions::default())
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Invalid { .. }), "{msg}");
    assert!(
        msg.contains("synthetic.nwb: /acquisition/ElectricalSeries"),
        "{msg}"
    );
    assert!(msg.contains("differ by more than 2 %"), "{msg}");
}

#[test]
fn rate_and_timestamps_within_two_percent_use_the_given_rate() {
    let (_dir, file) = open_with(
        Timing {
            rate: Some((1000.0, 0.0)),
            timestamps: Some(times(1015.0, 100)),
        },
        100,
    );
    let file = file.unwrap();
    let info = file
        .discover(&DiscoverOptions::default())
        .unwrap()
        .series
        .remove(0);
    match info.time {
        TimeBase::Timestamps {
            rate,
            given_rate,
            inferred_rate,
        } => {
            assert_eq!(rate, 1000.0);
            assert_eq!(given_rate, Some(1000.0));
            // Inferred from the stored relative timestamps, so exact to float64 rounding (from
            // absolute times, T0 ~ 1.7e9 s, it would only be good to about 0.25 Hz).
            assert!((inferred_rate - 1015.0).abs() < 1e-6, "{inferred_rate}");
        }
        other => panic!("{other:?}"),
    }
    // Times come from the timestamps, not from the rate.
    let reader = file.open_series(&info).unwrap();
    let t0 = file.reference_time().seconds();
    assert_eq!(reader.time_at(99).unwrap(), 99.0 / 1015.0 + t0);
}

#[test]
fn gaps_are_found_in_a_long_timestamp_series() {
    // 3,000,000 samples at 1 kHz (three timestamp batches), gaps of 1 s before samples
    // 1,048,576 (a batch boundary) and 2,500,000.
    let n = 3_000_000;
    let ts: Vec<f64> = (0..n)
        .map(|i| {
            let mut t = i as f64 / 1000.0;
            if i >= 1 << 20 {
                t += 1.0;
            }
            if i >= 2_500_000 {
                t += 1.0;
            }
            t
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.nwb");
    let data = Array2::<i16>::zeros((n, 1));
    write_nwb(
        &path,
        &data,
        &Timing {
            rate: None,
            timestamps: Some(ts),
        },
        Some(65_536),
    );
    let file = NwbFile::open(&path).unwrap();
    let info = file
        .discover(&DiscoverOptions::default())
        .unwrap()
        .series
        .remove(0);
    assert_eq!(info.time.rate(), 1000.0);
    let segments = file.open_series(&info).unwrap().segments().unwrap();
    assert_eq!(
        segments,
        vec![0..1 << 20, 1 << 20..2_500_000, 2_500_000..3_000_000]
    );
}
