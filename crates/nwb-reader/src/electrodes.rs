//! Channels from the electrodes table: resolving a series' `electrodes` region to table rows and
//! reading each row's id, name, group and other simple columns into a [`Channel`].
//!
//! Every declared size is checked before anything of that size is allocated: the region must
//! have one entry per channel and fit the table, every column must have a row per table row and
//! store what it declares, and only the rows the region names are read, in bounded batches.

use hdf5::types::TypeDescriptor;
use hdf5::{Dataset, Group, ObjectReference1, ReferencedObject};
use serde_json::Value;

use crate::error::Result;
use crate::file::NwbFile;
use crate::h5util::{
    check_stored, escape_utf8, is_text, object_name, read_attr_strings, read_f64_range,
    read_i64_range, read_text_range,
};
use crate::model::Channel;

/// Rows read from a column at a time.
const ROW_BATCH: u64 = 4096;
/// Most values one row of a ragged column may hold.
const MAX_RAGGED_ROW: u64 = 1 << 16;

/// The channels of the series at `path` (group `group`): one per entry of its `electrodes`
/// region, which must have `num_channels` entries pointing into the referenced table. Names and
/// groups with bytes that are not UTF-8 get them as `\xNN` and a warning in `warnings`.
pub(crate) fn read_channels(
    file: &NwbFile,
    group: &Group,
    path: &str,
    num_channels: usize,
    warnings: &mut Vec<String>,
) -> Result<Vec<Channel>> {
    let region_path = format!("{path}/electrodes");
    if !group.link_exists("electrodes") {
        return Err(file.invalid(path, "has no electrodes region"));
    }
    let region_ds = file.h5(
        &region_path,
        "opening the region",
        group.dataset("electrodes"),
    )?;
    let entries = region_ds.size();
    if region_ds.ndim() != 1 || entries != num_channels || entries == 0 {
        let shape = if region_ds.ndim() == 1 {
            String::new()
        } else {
            format!(" (shape {:?})", region_ds.shape())
        };
        return Err(file.invalid(
            &region_path,
            format!(
                "has {entries} entries{shape}; expected {num_channels} (one per channel of data)"
            ),
        ));
    }
    let table_ref = file.h5(
        &region_path,
        "reading the table reference",
        region_ds
            .attr("table")
            .and_then(|a| a.read_scalar::<ObjectReference1>()),
    )?;
    let table = match file.h5(
        &region_path,
        "following the table reference",
        region_ds.dereference(&table_ref),
    )? {
        ReferencedObject::Group(g) => g,
        _ => return Err(file.invalid(&region_path, "@table does not point to a group")),
    };
    let table_path = escape_utf8(&object_name(table.id())).0;
    let ids_path = format!("{table_path}/id");
    let ids_ds = file.h5(&ids_path, "opening the id column", table.dataset("id"))?;
    if ids_ds.ndim() != 1 {
        return Err(file.invalid(
            &ids_path,
            format!("has shape {:?}; expected 1-D", ids_ds.shape()),
        ));
    }
    let rows = ids_ds.size() as u64;
    if entries as u64 > rows {
        return Err(file.invalid(
            &region_path,
            format!(
                "has {entries} entries but the electrodes table {table_path} has only {rows} rows"
            ),
        ));
    }
    check_stored(&region_ds, "entries").map_err(|what| file.invalid(&region_path, what))?;
    let region = file.h5(
        &region_path,
        "reading the region",
        region_ds.read_raw::<i64>(),
    )?;
    let mut needed = Vec::with_capacity(region.len());
    for &row in &region {
        if row < 0 || row as u64 >= rows {
            return Err(file.invalid(
                &region_path,
                format!("row {row} is outside the electrodes table {table_path} ({rows} rows)"),
            ));
        }
        needed.push(row as u64);
    }
    check_stored(&ids_ds, "rows").map_err(|what| file.invalid(&ids_path, what))?;
    let ids = file.h5(
        &ids_path,
        "reading the id column",
        read_rows(&needed, |a, b| read_i64_range(&ids_ds, a, b)),
    )?;
    let table = Table::read(file, &table, &table_path, rows, &needed)?;
    (0..needed.len())
        .map(|k| table.channel(file, k, needed[k], ids[k], &table_path, warnings))
        .collect()
}

/// One value of a column.
#[derive(Clone)]
enum Cell {
    /// Text as stored (not necessarily UTF-8).
    Text(Vec<u8>),
    Int(i64),
    Float(f64),
    /// A row of a ragged column.
    List(Vec<Cell>),
}

impl Cell {
    /// As JSON; invalid UTF-8 becomes `\xNN`.
    fn value(&self) -> Value {
        match self {
            Cell::Text(b) => Value::from(escape_utf8(b).0),
            Cell::Int(v) => Value::from(*v),
            Cell::Float(v) => serde_json::Number::from_f64(*v)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            Cell::List(items) => Value::from(items.iter().map(Cell::value).collect::<Vec<_>>()),
        }
    }

    /// As text, and whether invalid UTF-8 was escaped; list items are joined with commas.
    fn text(&self) -> (String, bool) {
        match self {
            Cell::Text(b) => escape_utf8(b),
            Cell::List(items) => {
                let mut escaped = false;
                let parts: Vec<String> = items
                    .iter()
                    .map(|c| {
                        let (t, e) = c.text();
                        escaped |= e;
                        t
                    })
                    .collect();
                (parts.join(","), escaped)
            }
            other => (other.value().to_string(), false),
        }
    }
}

/// The columns of the electrodes table at the rows a series needs, in the series' channel order.
struct Table {
    /// `(name, one cell per channel)`.
    columns: Vec<(String, Vec<Cell>)>,
    /// The `group` reference of each channel's row, when the table has that column.
    group_refs: Option<Vec<ObjectReference1>>,
    group_obj: Group,
}

impl Table {
    /// Reads rows `needed` of every simple column of `table` (at `path`, `rows` rows).
    fn read(file: &NwbFile, table: &Group, path: &str, rows: u64, needed: &[u64]) -> Result<Table> {
        let colnames = match table.attr("colnames") {
            Ok(attr) => file.h5(path, "reading colnames", read_attr_strings(&attr))?,
            Err(_) => Vec::new(),
        };
        let mut columns = Vec::new();
        let mut group_refs = None;
        for name in &colnames {
            let Ok(ds) = table.dataset(name) else {
                continue;
            };
            let col_path = format!("{path}/{name}");
            let desc = file.h5(
                &col_path,
                "reading the column type",
                ds.dtype().and_then(|t| t.to_descriptor()),
            )?;
            let is_ref = matches!(desc, TypeDescriptor::Reference(_));
            if is_ref && name != "group" {
                continue;
            }
            if !is_ref && !is_simple(&desc) {
                continue; // enums (bool) and compound columns are not needed for channels
            }
            let index_name = format!("{name}_index");
            let ragged = !is_ref && table.link_exists(&index_name);
            // The dataset with one entry per table row: the column, or its index.
            let (row_ds, row_path) = if ragged {
                let index_path = format!("{path}/{index_name}");
                let index = file.h5(
                    &index_path,
                    "opening the column index",
                    table.dataset(&index_name),
                )?;
                (index, index_path)
            } else {
                (ds.clone(), col_path.clone())
            };
            check_rows(file, &row_ds, &row_path, rows)?;
            if is_ref {
                let refs = file.h5(
                    &col_path,
                    "reading group references",
                    read_rows(needed, |a, b| {
                        Ok(row_ds.read_slice_1d::<ObjectReference1, _>(a..b)?.to_vec())
                    }),
                )?;
                group_refs = Some(refs);
                continue;
            }
            let cells = if ragged {
                read_ragged(file, &ds, &desc, &row_ds, &col_path, needed)?
            } else {
                file.h5(
                    &col_path,
                    "reading the column",
                    read_rows(needed, |a, b| read_cells(&ds, &desc, a, b)),
                )?
            };
            columns.push((name.clone(), cells));
        }
        Ok(Table {
            columns,
            group_refs,
            group_obj: table.clone(),
        })
    }

    /// The column called `name`, if read.
    fn column(&self, name: &str) -> Option<&[Cell]> {
        self.columns
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| c.as_slice())
    }

    /// Channel `k`, table row `row` with id `id`; follows a `group` reference when there is no
    /// `group_name`.
    fn channel(
        &self,
        file: &NwbFile,
        k: usize,
        row: u64,
        id: i64,
        path: &str,
        warnings: &mut Vec<String>,
    ) -> Result<Channel> {
        let name_column = ["channel_name", "label"]
            .into_iter()
            .find_map(|c| self.column(c).map(|cells| (c, cells)));
        let mut name = String::new();
        if let Some((column, cells)) = name_column {
            let (text, escaped) = cells[k].text();
            if escaped {
                warnings.push(format!(
                    "{path}/{column} row {row}: bytes that are not UTF-8 are written as \\xNN: {text:?}"
                ));
            }
            name = text.trim().to_owned();
        }
        if name.is_empty() {
            // A missing column or a blank name: the id, as the spec says.
            name = id.to_string();
        }
        let (group, escaped, column) = match (self.column("group_name"), &self.group_refs) {
            (Some(cells), _) => {
                let (t, e) = cells[k].text();
                (t, e, "group_name")
            }
            (None, Some(refs)) => {
                match file.h5(
                    path,
                    "following a group reference",
                    self.group_obj.dereference(&refs[k]),
                )? {
                    ReferencedObject::Group(g) => {
                        let full = object_name(g.id());
                        let last = full.rsplit(|&b| b == b'/').next().unwrap_or_default();
                        let (t, e) = escape_utf8(last);
                        (t, e, "group")
                    }
                    _ => (String::new(), false, "group"),
                }
            }
            (None, None) => (String::new(), false, "group_name"),
        };
        if escaped {
            warnings.push(format!(
                "{path}/{column} row {row}: bytes that are not UTF-8 are written as \\xNN: {group:?}"
            ));
        }
        let group = group.trim().to_owned();
        let properties = self
            .columns
            .iter()
            .filter(|(n, _)| !matches!(n.as_str(), "channel_name" | "label" | "group_name"))
            .map(|(n, c)| (n.clone(), c[k].value()))
            .collect();
        Ok(Channel {
            row,
            id,
            name,
            group,
            properties,
        })
    }
}

/// Whether a column type is one [`read_cells`] reads.
fn is_simple(desc: &TypeDescriptor) -> bool {
    is_text(desc)
        || matches!(
            desc,
            TypeDescriptor::Integer(_) | TypeDescriptor::Unsigned(_) | TypeDescriptor::Float(_)
        )
}

/// Checks that `ds` (at `path`) is 1-D with at least `rows` entries, all stored.
fn check_rows(file: &NwbFile, ds: &Dataset, path: &str, rows: u64) -> Result<()> {
    let len = ds.size() as u64;
    if ds.ndim() != 1 || len < rows {
        return Err(file.invalid(
            path,
            format!(
                "has {len} rows (shape {:?}); the table has {rows}",
                ds.shape()
            ),
        ));
    }
    check_stored(ds, "rows").map_err(|what| file.invalid(path, what))
}

/// Values `[a, b)` of a simple column.
fn read_cells(ds: &Dataset, desc: &TypeDescriptor, a: usize, b: usize) -> hdf5::Result<Vec<Cell>> {
    Ok(match desc {
        d if is_text(d) => read_text_range(ds, a, b)?
            .into_iter()
            .map(Cell::Text)
            .collect(),
        TypeDescriptor::Integer(_) | TypeDescriptor::Unsigned(_) => read_i64_range(ds, a, b)?
            .into_iter()
            .map(Cell::Int)
            .collect(),
        _ => read_f64_range(ds, a, b)?
            .into_iter()
            .map(Cell::Float)
            .collect(),
    })
}

/// The rows `needed` of the ragged column with values `values` (at `path`) and index `index`.
fn read_ragged(
    file: &NwbFile,
    values: &Dataset,
    desc: &TypeDescriptor,
    index: &Dataset,
    path: &str,
    needed: &[u64],
) -> Result<Vec<Cell>> {
    let index_path = format!("{path}_index");
    // Row r spans values [index[r - 1], index[r]) (from 0 for the first row).
    let ends = file.h5(
        &index_path,
        "reading the column index",
        read_rows(needed, |a, b| read_i64_range(index, a, b)),
    )?;
    let before: Vec<u64> = needed.iter().map(|&r| r.saturating_sub(1)).collect();
    let starts = file.h5(
        &index_path,
        "reading the column index",
        read_rows(&before, |a, b| read_i64_range(index, a, b)),
    )?;
    let total = values.size() as u64;
    if values.ndim() != 1 {
        return Err(file.invalid(
            path,
            format!("has shape {:?}; expected 1-D", values.shape()),
        ));
    }
    let mut out = Vec::with_capacity(needed.len());
    for (k, &row) in needed.iter().enumerate() {
        let start = if row == 0 { 0 } else { starts[k] };
        let end = ends[k];
        if start < 0 || end < start || end as u64 > total || (end - start) as u64 > MAX_RAGGED_ROW {
            return Err(file.invalid(
                &index_path,
                format!(
                    "row {row} spans values [{start}, {end}) of {total} (at most {MAX_RAGGED_ROW} per row)"
                ),
            ));
        }
        if end > start {
            check_stored(values, "values").map_err(|what| file.invalid(path, what))?;
        }
        let cells = file.h5(
            path,
            "reading the column",
            read_cells(values, desc, start as usize, end as usize),
        )?;
        out.push(Cell::List(cells));
    }
    Ok(out)
}

/// Values at positions `needed` (in that order) of a 1-D dataset, read as ranges of at most
/// [`ROW_BATCH`] rows through `read(a, b)`, which returns values `[a, b)`.
fn read_rows<T: Clone>(
    needed: &[u64],
    mut read: impl FnMut(usize, usize) -> hdf5::Result<Vec<T>>,
) -> hdf5::Result<Vec<T>> {
    let mut order: Vec<usize> = (0..needed.len()).collect();
    order.sort_by_key(|&i| needed[i]);
    let Some(&last) = order.last() else {
        return Ok(Vec::new());
    };
    let last = needed[last];
    let mut out: Vec<Option<T>> = vec![None; needed.len()];
    let mut k = 0;
    while k < order.len() {
        let a = needed[order[k]];
        let b = a.saturating_add(ROW_BATCH).min(last + 1);
        let values = read(a as usize, b as usize)?;
        if values.len() as u64 != b - a {
            return Err("short read".into());
        }
        while k < order.len() && needed[order[k]] < b {
            out[order[k]] = Some(values[(needed[order[k]] - a) as usize].clone());
            k += 1;
        }
    }
    Ok(out.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_read_in_bounded_batches_in_the_order_asked() {
        let mut reads = Vec::new();
        let needed = [5u64, 0, 10_000, 1];
        let got = read_rows(&needed, |a, b| {
            reads.push((a, b));
            assert!(b - a <= ROW_BATCH as usize);
            Ok((a..b).map(|i| i as u64 * 10).collect())
        })
        .unwrap();
        assert_eq!(got, vec![50, 0, 100_000, 10]);
        assert_eq!(reads, vec![(0, 4096), (10_000, 10_001)]);
    }
}
