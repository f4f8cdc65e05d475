//! Small HDF5 helpers: strings of every stored kind, numbers widened to f64/i64, attributes.

use hdf5::types::{FloatSize, TypeDescriptor, VarLenAscii, VarLenUnicode};
use hdf5::{Attribute, Container, Dataset, Location};
use hdf5_sys::h5i::hid_t;

/// Strings may be stored variable- or fixed-length, ASCII or UTF-8 (nwb-layout.md §4). HDF5
/// converts none of these into another, so read the stored type and trim NUL and space padding.
pub fn read_attr_strings(attr: &Attribute) -> hdf5::Result<Vec<String>> {
    match attr.dtype()?.to_descriptor()? {
        TypeDescriptor::VarLenUnicode => Ok(attr
            .read_raw::<VarLenUnicode>()?
            .iter()
            .map(|s| clean(s.as_str()))
            .collect()),
        TypeDescriptor::VarLenAscii => Ok(attr
            .read_raw::<VarLenAscii>()?
            .iter()
            .map(|s| clean(s.as_str()))
            .collect()),
        TypeDescriptor::FixedAscii(n) | TypeDescriptor::FixedUnicode(n) => {
            let count = attr.size();
            let bytes = read_fixed(attr.id(), true, n * count)?;
            Ok(split_fixed(&bytes, n))
        }
        other => Err(format!("expected text, found {other}").into()),
    }
}

/// As [`read_attr_strings`], for a dataset.
pub fn read_dataset_strings(ds: &Dataset) -> hdf5::Result<Vec<String>> {
    match ds.dtype()?.to_descriptor()? {
        TypeDescriptor::VarLenUnicode => Ok(ds
            .read_raw::<VarLenUnicode>()?
            .iter()
            .map(|s| clean(s.as_str()))
            .collect()),
        TypeDescriptor::VarLenAscii => Ok(ds
            .read_raw::<VarLenAscii>()?
            .iter()
            .map(|s| clean(s.as_str()))
            .collect()),
        TypeDescriptor::FixedAscii(n) | TypeDescriptor::FixedUnicode(n) => {
            let bytes = read_fixed(ds.id(), false, n * ds.size())?;
            Ok(split_fixed(&bytes, n))
        }
        other => Err(format!("expected text, found {other}").into()),
    }
}

fn clean(s: &str) -> String {
    s.trim_end_matches(['\0', ' ']).to_owned()
}

fn split_fixed(bytes: &[u8], n: usize) -> Vec<String> {
    if n == 0 {
        return Vec::new();
    }
    bytes
        .chunks(n)
        .map(|c| clean(&String::from_utf8_lossy(c)))
        .collect()
}

/// Reads a fixed-length string attribute or dataset as its raw bytes (the stored type as memory
/// type, so HDF5 converts nothing). The safe API needs the length at compile time.
fn read_fixed(id: hid_t, is_attr: bool, total: usize) -> hdf5::Result<Vec<u8>> {
    use hdf5_sys::{h5a, h5d, h5p, h5s, h5t};
    let mut buf = vec![0u8; total];
    let status = hdf5::sync::sync(|| unsafe {
        let ty = if is_attr {
            h5a::H5Aget_type(id)
        } else {
            h5d::H5Dget_type(id)
        };
        if ty < 0 {
            return -1;
        }
        let status = if is_attr {
            h5a::H5Aread(id, ty, buf.as_mut_ptr().cast())
        } else {
            h5d::H5Dread(
                id,
                ty,
                h5s::H5S_ALL,
                h5s::H5S_ALL,
                h5p::H5P_DEFAULT,
                buf.as_mut_ptr().cast(),
            )
        };
        h5t::H5Tclose(ty);
        status
    });
    if status < 0 {
        return Err("cannot read a fixed-length string".into());
    }
    Ok(buf)
}

/// A scalar text attribute, if present.
pub fn attr_string(loc: &Location, name: &str) -> hdf5::Result<Option<String>> {
    if !loc.attr_names()?.iter().any(|n| n == name) {
        return Ok(None);
    }
    let values = read_attr_strings(&loc.attr(name)?)?;
    Ok(values.into_iter().next())
}

/// A scalar numeric attribute widened to f64 (HDF5 converts f32 exactly), if present.
pub fn attr_f64(loc: &Location, name: &str) -> hdf5::Result<Option<f64>> {
    if !loc.attr_names()?.iter().any(|n| n == name) {
        return Ok(None);
    }
    let attr = loc.attr(name)?;
    Ok(read_f64s(&attr)?.first().copied())
}

/// Every value of a numeric dataset or attribute, widened to f64 in Rust from the stored type
/// (float32 widening is exact: 1.95e-7f32 is 1.9499999837080395e-7), whatever HDF5's conversion
/// paths do.
pub fn read_f64s(c: &Container) -> hdf5::Result<Vec<f64>> {
    Ok(match c.dtype()?.to_descriptor()? {
        TypeDescriptor::Float(FloatSize::U4) => {
            c.read_raw::<f32>()?.into_iter().map(f64::from).collect()
        }
        TypeDescriptor::Integer(_) => c.read_raw::<i64>()?.into_iter().map(|v| v as f64).collect(),
        TypeDescriptor::Unsigned(_) => c.read_raw::<u64>()?.into_iter().map(|v| v as f64).collect(),
        _ => c.read_raw::<f64>()?,
    })
}

/// Values `[a, b)` of a 1-D numeric dataset widened to f64 in Rust (see [`read_f64s`]).
pub fn read_f64_range(ds: &Dataset, a: usize, b: usize) -> hdf5::Result<Vec<f64>> {
    let sel = ndarray::s![a..b];
    Ok(match ds.dtype()?.to_descriptor()? {
        TypeDescriptor::Float(FloatSize::U4) => ds
            .read_slice_1d::<f32, _>(sel)?
            .into_iter()
            .map(f64::from)
            .collect(),
        _ => ds.read_slice_1d::<f64, _>(sel)?.into_raw_vec_and_offset().0,
    })
}

/// Whether the type is text.
pub fn is_text(desc: &TypeDescriptor) -> bool {
    matches!(
        desc,
        TypeDescriptor::VarLenUnicode
            | TypeDescriptor::VarLenAscii
            | TypeDescriptor::FixedAscii(_)
            | TypeDescriptor::FixedUnicode(_)
    )
}
