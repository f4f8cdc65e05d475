//! How a series' `data` is stored: link kinds, external link targets, layout and filter pipeline
//! ([`StorageInfo`]), and the names of registered HDF5 filters.

use hdf5::{Dataset, Group, LinkType};

use crate::model::StorageInfo;

/// The kind of link `name` is in `group`, if it exists.
pub(crate) fn link_type(group: &Group, name: &str) -> Option<LinkType> {
    let mut found = None;
    let _ = group.iter_visit_default(|n, info| {
        if n == name {
            found = Some(info.link_type);
        }
        Ok(())
    });
    found
}

/// The file an external link points to, for messages.
pub(crate) fn external_target(group: &Group, name: &str) -> String {
    use hdf5_sys::h5l;
    let Ok(cname) = std::ffi::CString::new(name) else {
        return "(unknown)".into();
    };
    hdf5::sync::sync(|| unsafe {
        let mut buf = vec![0u8; 4096];
        if h5l::H5Lget_val(
            group.id(),
            cname.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            hdf5_sys::h5p::H5P_DEFAULT,
        ) < 0
        {
            return "(unknown)".into();
        }
        let mut file: *const std::ffi::c_char = std::ptr::null();
        let mut obj: *const std::ffi::c_char = std::ptr::null();
        let mut flags = 0u32;
        if h5l::H5Lunpack_elink_val(
            buf.as_ptr().cast(),
            buf.len(),
            &mut flags,
            &mut file,
            &mut obj,
        ) < 0
            || file.is_null()
        {
            return "(unknown)".into();
        }
        let file = std::ffi::CStr::from_ptr(file).to_string_lossy();
        let obj = if obj.is_null() {
            "".into()
        } else {
            std::ffi::CStr::from_ptr(obj).to_string_lossy()
        };
        format!("{file}:{obj}")
    })
}

/// Layout, chunk shape and filters of `data`; `external` names the linked file, if any.
pub(crate) fn storage_info(data: &Dataset, external: Option<String>) -> StorageInfo {
    use hdf5::filters::Filter;
    let layout = match data.layout() {
        hdf5::dataset::Layout::Contiguous => "contiguous",
        hdf5::dataset::Layout::Chunked => "chunked",
        hdf5::dataset::Layout::Compact => "compact",
        _ => "virtual",
    }
    .to_owned();
    let filters = data.filters();
    let mut missing = Vec::new();
    let names = filters
        .iter()
        .map(|f| match f {
            Filter::Deflate(level) => format!("gzip({level})"),
            Filter::Shuffle => "shuffle".into(),
            Filter::Fletcher32 => "fletcher32".into(),
            Filter::SZip(..) => "szip".into(),
            Filter::NBit => "nbit".into(),
            Filter::ScaleOffset(_) => "scaleoffset".into(),
            Filter::User(id, _) => {
                let id = *id as u32;
                let available =
                    hdf5::sync::sync(|| unsafe { hdf5_sys::h5z::H5Zfilter_avail(id as _) }) > 0;
                if !available {
                    missing.push(id);
                }
                format!("filter {id} ({})", filter_name(id))
            }
            #[allow(unreachable_patterns)]
            other => format!("{other:?}"),
        })
        .collect();
    StorageInfo {
        layout,
        chunk_shape: data.chunk().map(|c| c.iter().map(|&d| d as u64).collect()),
        filters: names,
        external,
        missing_filters: missing,
    }
}

/// Names of registered HDF5 filters that turn up in NWB files (nwb-layout.md §9).
pub(crate) fn filter_name(id: u32) -> &'static str {
    match id {
        1 => "deflate",
        2 => "shuffle",
        3 => "fletcher32",
        4 => "szip",
        32000 => "lzf",
        32001 => "blosc",
        32004 => "lz4",
        32008 => "bitshuffle",
        32015 => "zstd",
        32026 => "blosc2",
        _ => "unregistered",
    }
}
