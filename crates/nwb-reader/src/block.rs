//! Blocks of samples: [`RawBlock`] (every channel in the stored type), its channel-major transpose,
//! and scaling to microvolts into plain vectors or a reusable [`ScaledBlock`].

use std::ops::Range;

use ndarray::{Array2, ShapeBuilder, s};

use crate::model::Scaling;

/// Samples `[start, end)` of every channel in the stored type: shape `(samples, channels)`.
/// The variant matches the series' [`RawDtype`](crate::RawDtype).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum RawBlock {
    /// `int8` samples.
    I8(Array2<i8>),
    /// `int16` samples.
    I16(Array2<i16>),
    /// `int32` samples.
    I32(Array2<i32>),
    /// `int64` samples.
    I64(Array2<i64>),
    /// `uint8` samples.
    U8(Array2<u8>),
    /// `uint16` samples.
    U16(Array2<u16>),
    /// `uint32` samples.
    U32(Array2<u32>),
    /// `uint64` samples.
    U64(Array2<u64>),
    /// `float32` samples.
    F32(Array2<f32>),
    /// `float64` samples.
    F64(Array2<f64>),
}

/// A raw value widened to f64 as the spec says (`x` widened first).
trait Widen: Copy {
    fn widen(self) -> f64;
}

macro_rules! widen {
    ($($t:ty),*) => {$(impl Widen for $t { #[inline] fn widen(self) -> f64 { self as f64 } })*};
}
widen!(i8, i16, i32, i64, u8, u16, u32, u64, f32, f64);

macro_rules! each_block {
    ($block:expr, $a:ident => $body:expr) => {
        match $block {
            RawBlock::I8($a) => $body,
            RawBlock::I16($a) => $body,
            RawBlock::I32($a) => $body,
            RawBlock::I64($a) => $body,
            RawBlock::U8($a) => $body,
            RawBlock::U16($a) => $body,
            RawBlock::U32($a) => $body,
            RawBlock::U64($a) => $body,
            RawBlock::F32($a) => $body,
            RawBlock::F64($a) => $body,
        }
    };
}

impl RawBlock {
    /// Number of samples (rows).
    pub fn len(&self) -> usize {
        each_block!(self, a => a.nrows())
    }

    /// Whether the block has no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of channels (columns).
    pub fn channels(&self) -> usize {
        each_block!(self, a => a.ncols())
    }

    /// Replaces `out` with channel `k`'s samples in microvolts (spec "Sample values").
    pub fn scale_channel_into(&self, k: usize, scaling: &Scaling, out: &mut Vec<f64>) {
        self.scale_rows_into(k, 0..self.len(), scaling, out);
    }

    /// Replaces `out` with microvolts of channel `k`, rows `rows` of this block.
    pub fn scale_rows_into(
        &self,
        k: usize,
        rows: Range<usize>,
        scaling: &Scaling,
        out: &mut Vec<f64>,
    ) {
        let factor = scaling.channel_factor(k);
        let (offset, unit) = (scaling.offset, scaling.unit_factor);
        out.clear();
        each_block!(self, a => {
            let column = a.slice(s![rows, k]);
            let scale = |&x: &_| ((Widen::widen(x) * factor) + offset) * unit;
            match column.as_slice() {
                // Channel-major blocks: a contiguous run the compiler vectorises.
                Some(values) => out.extend(values.iter().map(scale)),
                None => out.extend(column.iter().map(scale)),
            }
        })
    }

    /// The same block stored channel by channel (column-major), so that each channel's samples
    /// are contiguous. Scaling many channels one at a time from a row-major block reads every
    /// cache line once per channel; one tiled transpose first reads it once.
    pub fn into_channel_major(self) -> RawBlock {
        macro_rules! each {
            ($($v:ident),*) => {
                match self { $(RawBlock::$v(a) => RawBlock::$v(column_major(a)),)* }
            };
        }
        each!(I8, I16, I32, I64, U8, U16, U32, U64, F32, F64)
    }
}

/// A column-major copy of a row-major array (other layouts and single columns are returned as is).
fn column_major<T: Copy>(a: Array2<T>) -> Array2<T> {
    let (n, c) = a.dim();
    let Some(src) = a.as_slice() else {
        return a;
    };
    let Some(&first) = src.first() else {
        return a;
    };
    if c < 2 {
        return a;
    }
    // Tiles of rows small enough for the cache, copied channel by channel.
    const TILE_ROWS: usize = 256;
    let mut dst = vec![first; n * c];
    for r0 in (0..n).step_by(TILE_ROWS) {
        let r1 = (r0 + TILE_ROWS).min(n);
        for k in 0..c {
            let out = &mut dst[k * n + r0..k * n + r1];
            for (o, i) in out.iter_mut().zip(r0..r1) {
                *o = src[i * c + k];
            }
        }
    }
    match Array2::from_shape_vec((n, c).f(), dst) {
        Ok(transposed) => transposed,
        Err(_) => a, // cannot happen: dst holds exactly n * c values
    }
}

/// Samples of one block in microvolts, one vector per channel (channel-major), so each channel
/// can be encoded on its own thread. Reuse one across blocks to keep its buffers.
#[derive(Debug, Clone, Default)]
pub struct ScaledBlock {
    /// Index of the first sample of the block in the series.
    pub start: u64,
    /// `channels[k][j]` is sample `start + j` of channel `k` in µV.
    pub channels: Vec<Vec<f64>>,
}

impl ScaledBlock {
    /// An empty block (no channels yet); [`fill_from`](Self::fill_from) sizes it.
    pub fn new() -> Self {
        Self::default()
    }

    /// Samples per channel.
    pub fn len(&self) -> usize {
        self.channels.first().map_or(0, Vec::len)
    }

    /// Whether the block has no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Channel `k`'s microvolts.
    pub fn channel(&self, k: usize) -> &[f64] {
        &self.channels[k]
    }

    /// Scales every channel of `raw` (which starts at sample `start`).
    pub fn fill_from(&mut self, start: u64, raw: &RawBlock, scaling: &Scaling) {
        self.start = start;
        self.channels.resize_with(raw.channels(), Vec::new);
        for (k, out) in self.channels.iter_mut().enumerate() {
            raw.scale_channel_into(k, scaling, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// Row-major and channel-major blocks give bit-identical microvolts for every channel and row
    /// range, across shapes around the transpose's tile size.
    #[test]
    fn channel_major_blocks_scale_identically() {
        let scaling = Scaling {
            conversion: 1.95e-7,
            offset: -1e-3,
            channel_conversion: Some((0..70).map(|k| 0.5 + k as f64 * 0.01).collect()),
            unit: Some("volts".into()),
            unit_factor: 1e6,
        };
        for (n, c) in [
            (0, 3),
            (1, 1),
            (5, 1),
            (255, 2),
            (256, 64),
            (257, 3),
            (1000, 70),
        ] {
            let a = Array2::from_shape_fn((n, c), |(i, k)| ((i * 31 + k * 7) % 65_536) as i16);
            let rows = RawBlock::I16(a.clone());
            let cols = RawBlock::I16(a).into_channel_major();
            assert_eq!((cols.len(), cols.channels()), (n, c));
            let (mut x, mut y) = (Vec::new(), Vec::new());
            for k in 0..c {
                for range in [0..n, n / 3..n, 0..n / 2] {
                    rows.scale_rows_into(k, range.clone(), &scaling, &mut x);
                    cols.scale_rows_into(k, range.clone(), &scaling, &mut y);
                    let bits = |v: &[f64]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&x), bits(&y), "{n}x{c}, channel {k}, rows {range:?}");
                    assert_eq!(x.len(), range.len());
                }
            }
        }
        // Float blocks keep NaN payloads and signed zeros through the transpose.
        let f = array![[f64::NAN, -0.0], [f64::INFINITY, 1e-310]];
        let RawBlock::F64(t) = RawBlock::F64(f.clone()).into_channel_major() else {
            panic!("dtype changed")
        };
        assert!(t.t().is_standard_layout(), "column-major");
        for (a, b) in f.iter().zip(t.iter()) {
            assert_eq!(a.to_bits(), b.to_bits());
        }
    }

    fn scaling(cc: Option<Vec<f64>>, unit_factor: f64) -> Scaling {
        Scaling {
            conversion: 1.95e-7,
            offset: -1e-3,
            channel_conversion: cc,
            unit: None,
            unit_factor,
        }
    }

    #[test]
    fn scaling_follows_the_spec_order_bit_for_bit() {
        let sc = scaling(Some(vec![1.0, 2.0, 0.5, 1.5]), 1e6);
        let block = RawBlock::I16(array![[1i16, -2, 3, 7], [i16::MIN, 0, 7, i16::MAX]]);
        let mut out = Vec::new();
        for k in 0..4 {
            block.scale_channel_into(k, &sc, &mut out);
            let cc = [1.0, 2.0, 0.5, 1.5][k];
            let raw = [
                [1i16, -2, 3, 7][k] as f64,
                [i16::MIN, 0, 7, i16::MAX][k] as f64,
            ];
            let expected: Vec<u64> = raw
                .iter()
                .map(|&x| (((x * (cc * 1.95e-7)) + -1e-3) * 1e6).to_bits())
                .collect();
            let got: Vec<u64> = out.iter().map(|v| v.to_bits()).collect();
            assert_eq!(got, expected, "channel {k}");
            for (j, &x) in raw.iter().enumerate() {
                assert_eq!(sc.to_microvolts(k, x).to_bits(), expected[j]);
            }
        }
    }

    #[test]
    fn the_order_matters() {
        // x * (cc * conv) differs from (x * conv) * cc for these values, so the test above
        // would catch an implementation that multiplied left to right as pynwb's docstring
        // writes it (pynwb 4.2's code, like the spec, computes conversion * cc first).
        let (x, conv, cc) = (7.0f64, 1.95e-7f64, 1.5f64);
        assert_ne!((x * (cc * conv)).to_bits(), ((x * conv) * cc).to_bits());
    }

    #[test]
    fn without_channel_conversion_and_with_millivolts() {
        let sc = scaling(None, 1e3);
        let block = RawBlock::U16(array![[0u16], [65535]]);
        let mut out = Vec::new();
        block.scale_channel_into(0, &sc, &mut out);
        assert_eq!(
            out,
            vec![
                ((0.0 * 1.95e-7) + -1e-3) * 1e3,
                ((65535.0 * 1.95e-7) + -1e-3) * 1e3
            ]
        );
    }

    #[test]
    fn special_floats_pass_through() {
        let sc = Scaling {
            conversion: 1.0,
            offset: 0.0,
            channel_conversion: None,
            unit: None,
            unit_factor: 1e6,
        };
        let block = RawBlock::F32(array![
            [f32::NAN],
            [f32::INFINITY],
            [-0.0],
            [f32::MIN_POSITIVE / 4.0]
        ]);
        let mut out = Vec::new();
        block.scale_channel_into(0, &sc, &mut out);
        assert!(out[0].is_nan());
        assert_eq!(out[1], f64::INFINITY);
        // -0.0 * 1.0 + 0.0 is +0.0 in IEEE arithmetic: the formula, not the encoding, decides.
        assert_eq!(out[2].to_bits(), (((-0.0f64 * 1.0) + 0.0) * 1e6).to_bits());
        assert_eq!(out[3], (f32::MIN_POSITIVE / 4.0) as f64 * 1e6);
    }

    /// The spec formula, written out independently of `Scaling::to_microvolts`.
    fn spec_uv(x: f64, k: usize, sc: &Scaling) -> f64 {
        match &sc.channel_conversion {
            Some(cc) => ((x * (cc[k] * sc.conversion)) + sc.offset) * sc.unit_factor,
            None => ((x * sc.conversion) + sc.offset) * sc.unit_factor,
        }
    }

    fn same_bits(got: &[f64], want: &[f64]) -> bool {
        got.len() == want.len()
            && got
                .iter()
                .zip(want)
                .all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()))
    }

    /// Any f64 bit pattern (NaN, ±inf, -0.0, subnormals included) for float attributes.
    fn any_f64() -> impl proptest::strategy::Strategy<Value = f64> {
        proptest::prelude::any::<u64>().prop_map(f64::from_bits)
    }

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn every_dtype_scales_by_the_spec_formula_bit_for_bit(
            bits in proptest::collection::vec(any::<u64>(), 6),
            conversion in prop_oneof![any_f64(), Just(1.95e-7), Just(1.0)],
            offset in prop_oneof![any_f64(), Just(0.0), Just(-1e-3)],
            cc in proptest::option::of(proptest::collection::vec(any_f64(), 2)),
            unit_factor in prop_oneof![Just(1e6), Just(1e3), Just(1.0)],
        ) {
            let sc = Scaling { conversion, offset, channel_conversion: cc, unit: None, unit_factor };
            // Three samples x two channels of each dtype, from the same random bits; the float
            // variants reinterpret the bits, so NaN, ±inf, -0.0 and subnormals all occur.
            macro_rules! check {
                ($variant:ident, $t:ty, $from:expr) => {{
                    let from: fn(u64) -> $t = $from;
                    let values: Vec<$t> = bits.iter().map(|&b| from(b)).collect();
                    let block = RawBlock::$variant(Array2::from_shape_vec((3, 2), values.clone()).unwrap());
                    let mut out = Vec::new();
                    for k in 0..2 {
                        block.scale_channel_into(k, &sc, &mut out);
                        let want: Vec<f64> =
                            (0..3).map(|i| spec_uv(values[i * 2 + k] as f64, k, &sc)).collect();
                        prop_assert!(same_bits(&out, &want), "{} ch {k}: {out:?} vs {want:?}", stringify!($t));
                    }
                }};
            }
            check!(I8, i8, |b| b as i8);
            check!(I16, i16, |b| b as i16);
            check!(I32, i32, |b| b as i32);
            check!(I64, i64, |b| b as i64);
            check!(U8, u8, |b| b as u8);
            check!(U16, u16, |b| b as u16);
            check!(U32, u32, |b| b as u32);
            check!(U64, u64, |b| b);
            check!(F32, f32, |b| f32::from_bits(b as u32));
            check!(F64, f64, f64::from_bits);
        }
    }

    #[test]
    fn negative_zero_keeps_its_sign_when_the_formula_does() {
        // With offset -0.0 (the sum -0.0 + -0.0 is -0.0) the sign survives the whole formula.
        let sc = Scaling {
            conversion: 1.0,
            offset: -0.0,
            channel_conversion: Some(vec![2.0]),
            unit: None,
            unit_factor: 1e6,
        };
        let mut out = Vec::new();
        RawBlock::F64(array![[-0.0f64], [f64::NEG_INFINITY]]).scale_channel_into(0, &sc, &mut out);
        assert_eq!(out[0].to_bits(), (-0.0f64).to_bits());
        assert_eq!(out[1], f64::NEG_INFINITY);
    }

    #[test]
    fn scaled_blocks_are_channel_major() {
        let sc = Scaling {
            conversion: 2.0,
            offset: 0.0,
            channel_conversion: None,
            unit: None,
            unit_factor: 1.0,
        };
        let raw = RawBlock::I8(array![[1i8, 10], [2, 20], [3, 30]]);
        let mut out = ScaledBlock::new();
        out.fill_from(7, &raw, &sc);
        assert_eq!(out.start, 7);
        assert_eq!(out.len(), 3);
        assert_eq!(out.channel(0), &[2.0, 4.0, 6.0]);
        assert_eq!(out.channel(1), &[20.0, 40.0, 60.0]);
    }

    #[test]
    fn raw_blocks_are_send() {
        fn is_send<T: Send>() {}
        is_send::<RawBlock>();
        is_send::<ScaledBlock>();
    }
}
