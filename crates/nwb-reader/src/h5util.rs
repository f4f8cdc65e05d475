//! Small HDF5 helpers: strings of every stored kind, numbers widened to f64/i64, attributes.

use hdf5::types::{FloatSize, TypeDescriptor, VarLenAscii, VarLenUnicode};
use hdf5::{Attribute, Container, Dataset, Location};
use hdf5_sys::h5i::hid_t;

/// Strings may be stored variable- or fixed-length, ASCII or UTF-8 (nwb-layout.md §4). HDF5
/// converts none of these into another, so read the stored type, as raw bytes (nothing here
/// assumes the bytes are UTF-8), and trim NUL and space padding at the end.
pub(crate) fn read_attr_texts(attr: &Attribute) -> hdf5::Result<Vec<Vec<u8>>> {
    match attr.dtype()?.to_descriptor()? {
        TypeDescriptor::VarLenUnicode => Ok(attr
            .read_raw::<VarLenUnicode>()?
            .iter()
            .map(|s| clean(s.as_bytes()))
            .collect()),
        TypeDescriptor::VarLenAscii => Ok(attr
            .read_raw::<VarLenAscii>()?
            .iter()
            .map(|s| clean(s.as_bytes()))
            .collect()),
        TypeDescriptor::FixedAscii(n) | TypeDescriptor::FixedUnicode(n) => {
            let total = n
                .checked_mul(attr.size())
                .ok_or("fixed-length text attribute too large")?;
            let bytes = read_fixed(attr.id(), Fixed::Attr, total)?;
            Ok(split_fixed(&bytes, n))
        }
        other => Err(format!("expected text, found {other}").into()),
    }
}

/// Text values `[a, b)` of a 1-D text dataset (or the value of a scalar one, with `a..b` =
/// `0..1`), as raw bytes with the padding trimmed (see [`read_attr_texts`]).
pub(crate) fn read_text_range(ds: &Dataset, a: usize, b: usize) -> hdf5::Result<Vec<Vec<u8>>> {
    if b <= a {
        return Ok(Vec::new());
    }
    let scalar = ds.ndim() == 0;
    if scalar && (a, b) != (0, 1) {
        return Err("a scalar text dataset has one value".into());
    }
    match ds.dtype()?.to_descriptor()? {
        TypeDescriptor::VarLenUnicode => {
            let v = if scalar {
                vec![ds.read_scalar::<VarLenUnicode>()?]
            } else {
                ds.read_slice_1d::<VarLenUnicode, _>(a..b)?.to_vec()
            };
            Ok(v.iter().map(|s| clean(s.as_bytes())).collect())
        }
        TypeDescriptor::VarLenAscii => {
            let v = if scalar {
                vec![ds.read_scalar::<VarLenAscii>()?]
            } else {
                ds.read_slice_1d::<VarLenAscii, _>(a..b)?.to_vec()
            };
            Ok(v.iter().map(|s| clean(s.as_bytes())).collect())
        }
        TypeDescriptor::FixedAscii(n) | TypeDescriptor::FixedUnicode(n) => {
            let total = n
                .checked_mul(b - a)
                .ok_or("fixed-length text selection too large")?;
            let which = if scalar {
                Fixed::Dataset(None)
            } else {
                Fixed::Dataset(Some((a as u64, (b - a) as u64)))
            };
            let bytes = read_fixed(ds.id(), which, total)?;
            Ok(split_fixed(&bytes, n))
        }
        other => Err(format!("expected text, found {other}").into()),
    }
}

/// The first value of a scalar or 1-D text dataset, `None` when it has no values. Reads one
/// value whatever size the dataset declares.
pub(crate) fn read_first_text(ds: &Dataset) -> hdf5::Result<Option<Vec<u8>>> {
    if ds.size() == 0 {
        return Ok(None);
    }
    Ok(read_text_range(ds, 0, 1)?.into_iter().next())
}

fn clean(s: &[u8]) -> Vec<u8> {
    let end = s
        .iter()
        .rposition(|&c| c != 0 && c != b' ')
        .map_or(0, |i| i + 1);
    s[..end].to_vec()
}

fn split_fixed(bytes: &[u8], n: usize) -> Vec<Vec<u8>> {
    if n == 0 {
        return Vec::new();
    }
    bytes.chunks(n).map(clean).collect()
}

/// What [`read_fixed`] reads: an attribute, or a dataset (all of it, or `(start, count)` values
/// of a 1-D one).
enum Fixed {
    Attr,
    Dataset(Option<(u64, u64)>),
}

/// Reads a fixed-length string attribute or dataset as its raw bytes (the stored type as memory
/// type, so HDF5 converts nothing). The safe API needs the length at compile time.
fn read_fixed(id: hid_t, which: Fixed, total: usize) -> hdf5::Result<Vec<u8>> {
    use hdf5_sys::{h5a, h5d, h5p, h5s, h5t};
    let mut buf = vec![0u8; total];
    let status = hdf5::sync::sync(|| unsafe {
        let ty = match which {
            Fixed::Attr => h5a::H5Aget_type(id),
            Fixed::Dataset(_) => h5d::H5Dget_type(id),
        };
        if ty < 0 {
            return -1;
        }
        // The memory type must be exactly as long as the buffer expects.
        if h5t::H5Tget_size(ty).saturating_mul(total.max(1)) == 0 {
            h5t::H5Tclose(ty);
            return -1;
        }
        let status = match which {
            Fixed::Attr => h5a::H5Aread(id, ty, buf.as_mut_ptr().cast()),
            Fixed::Dataset(None) => h5d::H5Dread(
                id,
                ty,
                h5s::H5S_ALL,
                h5s::H5S_ALL,
                h5p::H5P_DEFAULT,
                buf.as_mut_ptr().cast(),
            ),
            Fixed::Dataset(Some((start, count))) => {
                let file_space = h5d::H5Dget_space(id);
                let mem_space = h5s::H5Screate_simple(1, [count].as_ptr(), std::ptr::null());
                let mut status = -1;
                if file_space >= 0
                    && mem_space >= 0
                    && h5s::H5Sselect_hyperslab(
                        file_space,
                        h5s::H5S_seloper_t::H5S_SELECT_SET,
                        [start].as_ptr(),
                        std::ptr::null(),
                        [count].as_ptr(),
                        std::ptr::null(),
                    ) >= 0
                {
                    status = h5d::H5Dread(
                        id,
                        ty,
                        mem_space,
                        file_space,
                        h5p::H5P_DEFAULT,
                        buf.as_mut_ptr().cast(),
                    );
                }
                if mem_space >= 0 {
                    h5s::H5Sclose(mem_space);
                }
                if file_space >= 0 {
                    h5s::H5Sclose(file_space);
                }
                status
            }
        };
        h5t::H5Tclose(ty);
        status
    });
    if status < 0 {
        return Err("cannot read a fixed-length string".into());
    }
    Ok(buf)
}

/// `bytes` as text with each byte that is not part of valid UTF-8 written as `\xNN` (upper-case
/// hex), and whether any was.
pub(crate) fn escape_utf8(bytes: &[u8]) -> (String, bool) {
    let mut out = String::with_capacity(bytes.len());
    let mut escaped = false;
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02X}"));
            escaped = true;
        }
    }
    (out, escaped)
}

/// Every value of a text attribute, which must be UTF-8 (an error otherwise).
pub(crate) fn read_attr_strings(attr: &Attribute) -> hdf5::Result<Vec<String>> {
    read_attr_texts(attr)?
        .into_iter()
        .map(|b| String::from_utf8(b).map_err(|_| "text is not valid UTF-8".into()))
        .collect()
}

/// A scalar text attribute as raw bytes, if present.
pub(crate) fn attr_text(loc: &Location, name: &str) -> hdf5::Result<Option<Vec<u8>>> {
    if !attr_exists(loc, name)? {
        return Ok(None);
    }
    Ok(read_attr_texts(&loc.attr(name)?)?.into_iter().next())
}

/// A scalar text attribute, if present; text that is not UTF-8 is an HDF5-level error.
pub(crate) fn attr_string(loc: &Location, name: &str) -> hdf5::Result<Option<String>> {
    match attr_text(loc, name)? {
        None => Ok(None),
        Some(b) => String::from_utf8(b)
            .map(Some)
            .map_err(|_| format!("attribute {name} is not valid UTF-8").into()),
    }
}

/// Checks that `ds` stores what its shape declares before anything of that size is allocated:
/// every chunk of a chunked dataset, or at least the declared bytes of a contiguous one. `noun`
/// names the rows (`samples`, `rows`, `values`). The error is a sentence fragment.
pub(crate) fn check_stored(ds: &Dataset, noun: &str) -> Result<(), String> {
    let shape = ds.shape();
    let rows = shape.first().copied().unwrap_or(1) as u128;
    let elements: u128 = shape.iter().map(|&d| d as u128).product();
    if elements == 0 {
        return Ok(());
    }
    match ds.layout() {
        hdf5::dataset::Layout::Chunked => {
            let Some(chunk) = ds.chunk() else {
                return Ok(());
            };
            let expected: u128 = shape
                .iter()
                .zip(&chunk)
                .map(|(&d, &c)| (d as u128).div_ceil((c as u128).max(1)))
                .product();
            let stored = ds.num_chunks().ok_or_else(|| {
                format!("declares {rows} {noun} but its stored chunks cannot be counted")
            })? as u128;
            if stored < expected {
                return Err(format!(
                    "declares {rows} {noun} (shape {shape:?}) but stores only {stored} of {expected} chunks"
                ));
            }
        }
        hdf5::dataset::Layout::Contiguous => {
            let stored = ds.storage_size() as u128;
            let numeric = ds
                .dtype()
                .and_then(|t| t.to_descriptor())
                .is_ok_and(|d| !is_text(&d) && !matches!(d, TypeDescriptor::Reference(_)));
            // Text and references: every value takes at least one stored byte.
            let per_value = if numeric {
                ds.dtype().map_or(1, |t| t.size()) as u128
            } else {
                1
            };
            let declared = elements * per_value;
            if stored < declared {
                return Err(format!(
                    "declares {rows} {noun} (shape {shape:?}, {declared} bytes) but stores only {stored} bytes"
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

/// A key that is the same for every path to one object (the file number and the object's
/// address or token), for walks that must visit each object once.
pub(crate) fn object_key(loc: &Location) -> hdf5::Result<(u64, String)> {
    let info = loc.loc_info()?;
    Ok((info.fileno, format!("{:?}", info.token)))
}

/// A scalar numeric attribute widened to f64 (HDF5 converts f32 exactly), if present.
pub(crate) fn attr_f64(loc: &Location, name: &str) -> hdf5::Result<Option<f64>> {
    if !attr_exists(loc, name)? {
        return Ok(None);
    }
    let attr = loc.attr(name)?;
    Ok(read_f64s(&attr)?.first().copied())
}

/// Every value of a numeric dataset or attribute, widened to f64 in Rust from the stored type
/// (float32 widening is exact: 1.95e-7f32 is 1.9499999837080395e-7), whatever HDF5's conversion
/// paths do.
pub(crate) fn read_f64s(c: &Container) -> hdf5::Result<Vec<f64>> {
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
pub(crate) fn read_f64_range(ds: &Dataset, a: usize, b: usize) -> hdf5::Result<Vec<f64>> {
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

/// Whether `loc` has an attribute `name`. Asked by name (`H5Aexists`): listing the attribute
/// names through the `hdf5` crate decodes each one's character-set field into a Rust enum, and a
/// corrupt file with an out-of-range value there made that abort or panic.
pub(crate) fn attr_exists(loc: &Location, name: &str) -> hdf5::Result<bool> {
    let c_name = std::ffi::CString::new(name).map_err(|_| "attribute name contains NUL")?;
    let found = hdf5::sync::sync(|| unsafe { hdf5_sys::h5a::H5Aexists(loc.id(), c_name.as_ptr()) });
    match found {
        n if n > 0 => Ok(true),
        0 => Ok(false),
        _ => Err(format!("cannot look up attribute {name}").into()),
    }
}

/// The HDF5 path of an open object as raw bytes (the `hdf5` crate's `name()` assumes UTF-8).
pub(crate) fn object_name(id: hid_t) -> Vec<u8> {
    use hdf5_sys::h5i::H5Iget_name;
    hdf5::sync::sync(|| unsafe {
        let len = H5Iget_name(id, std::ptr::null_mut(), 0);
        if len <= 0 {
            return Vec::new();
        }
        let mut buf = vec![0u8; len as usize + 1];
        if H5Iget_name(id, buf.as_mut_ptr().cast(), buf.len()) < 0 {
            return Vec::new();
        }
        buf.truncate(len as usize);
        buf
    })
}

/// Values `[a, b)` of a 1-D integer dataset, converted to i64 by HDF5.
pub(crate) fn read_i64_range(ds: &Dataset, a: usize, b: usize) -> hdf5::Result<Vec<i64>> {
    Ok(ds.read_slice_1d::<i64, _>(a..b)?.to_vec())
}

/// Whether the type is text.
pub(crate) fn is_text(desc: &TypeDescriptor) -> bool {
    matches!(
        desc,
        TypeDescriptor::VarLenUnicode
            | TypeDescriptor::VarLenAscii
            | TypeDescriptor::FixedAscii(_)
            | TypeDescriptor::FixedUnicode(_)
    )
}
