//! Stored chunks: a chunked series read as the compressed chunks on disk (one HDF5 call each, on
//! the thread that owns the file) and decoded — inflate, unshuffle — elsewhere, in parallel.
//!
//! Why: libhdf5 serialises every call behind one lock, so when it inflates, a conversion cannot
//! use more than one core. Reading the stored bytes is cheap; decoding them is most of the work.
//! Only the filters NWB writers use for samples are decoded here (deflate and shuffle, in any
//! order, as the chunk's filter mask says); any other layout reads through HDF5 as before
//! ([`SeriesReader::stored_chunks`](crate::SeriesReader::stored_chunks) says why not).

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use bytemuck::Pod;
use hdf5::Dataset;
use ndarray::{Array2, ShapeBuilder};
use rayon::prelude::*;

use crate::block::RawBlock;
use crate::error::{Error, Result};
use crate::model::{RawDtype, SeriesInfo};

/// Chunks larger than this (decoded) are read through HDF5: a block holds several of them.
pub const MAX_STORED_CHUNK_BYTES: u64 = 64 << 20;

/// Channels transposed together: a row's values for them span a cache line or more.
const GATHER_CHANNELS: usize = 32;

/// Rows transposed together (a tile of 64 rows of a 384-channel int16 chunk is 48 KiB).
const GATHER_ROWS: usize = 64;

/// One stage of the filter pipeline that this module can undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Deflate,
    Shuffle,
}

/// How a series' chunks are laid out and filtered; shared by the blocks read from it.
#[derive(Debug)]
pub(crate) struct ChunkLayout {
    file: PathBuf,
    object: String,
    dtype: RawDtype,
    channels: usize,
    chunk_rows: u64,
    chunk_cols: usize,
    rank2: bool,
    /// The pipeline in the order it was applied when writing; bit `i` of a chunk's filter mask
    /// says stage `i` was skipped for that chunk.
    pipeline: Vec<Stage>,
    /// Decoded-chunk buffers kept between blocks.
    buffers: std::sync::Mutex<Vec<Vec<u64>>>,
    /// Stored-chunk buffers kept between blocks.
    stored_buffers: std::sync::Mutex<Vec<Vec<u8>>>,
}

/// At most this many bytes of stored-chunk buffers are kept for reuse.
const MAX_KEPT_STORED_BYTES: usize = 32 << 20;

impl ChunkLayout {
    /// The layout of `data` if its chunks can be decoded here, else why not.
    pub(crate) fn detect(
        data: &Dataset,
        info: &SeriesInfo,
        file: PathBuf,
    ) -> std::result::Result<ChunkLayout, String> {
        use hdf5::filters::Filter;
        let Some(chunk) = data.chunk() else {
            return Err(format!("{} layout", info.storage.layout));
        };
        let rank = info.shape.len();
        if !(rank == 1 || rank == 2) || chunk.len() != rank {
            return Err(format!("rank {rank} with chunks of rank {}", chunk.len()));
        }
        let chunk_rows = chunk[0] as u64;
        let chunk_cols = if rank == 2 { chunk[1] } else { 1 };
        let elem = info.dtype.size() as u64;
        let chunk_bytes = chunk_rows
            .checked_mul(chunk_cols as u64)
            .and_then(|n| n.checked_mul(elem));
        match chunk_bytes {
            Some(b) if b > 0 && b <= MAX_STORED_CHUNK_BYTES => {}
            _ => return Err(format!("chunks of {chunk:?} elements")),
        }
        let mut pipeline = Vec::new();
        for filter in data.filters() {
            let stage = match filter {
                Filter::Deflate(_) => Stage::Deflate,
                Filter::Shuffle => Stage::Shuffle,
                other => return Err(format!("filter {other:?}")),
            };
            if pipeline.contains(&stage) {
                return Err(format!("{stage:?} twice in the filter pipeline"));
            }
            // Undoing deflate must give the chunk's decoded size before unshuffling; shuffled
            // compressed bytes (valid, but nobody writes them) are left to HDF5.
            if stage == Stage::Shuffle && pipeline.contains(&Stage::Deflate) {
                return Err("shuffle after deflate in the filter pipeline".into());
            }
            pipeline.push(stage);
        }
        if !stored_little_endian(data) || cfg!(target_endian = "big") {
            return Err("byte order other than this machine's".into());
        }
        Ok(ChunkLayout {
            file,
            object: format!("{}/data", info.path),
            dtype: info.dtype,
            channels: if rank == 2 { info.shape[1] as usize } else { 1 },
            chunk_rows,
            chunk_cols,
            rank2: rank == 2,
            pipeline,
            buffers: std::sync::Mutex::new(Vec::new()),
            stored_buffers: std::sync::Mutex::new(Vec::new()),
        })
    }

    fn elem(&self) -> usize {
        self.dtype.size()
    }

    fn chunk_elems(&self) -> usize {
        self.chunk_rows as usize * self.chunk_cols
    }

    fn chunk_bytes(&self) -> usize {
        self.chunk_elems() * self.elem()
    }

    fn invalid(&self, what: String) -> Error {
        Error::invalid_at(&self.file, &self.object, what)
    }

    /// Reads the stored bytes of every chunk that holds samples `range` (the caller checked the
    /// range). One HDF5 call per chunk; nothing is decoded.
    pub(crate) fn read(self: &Arc<Self>, data: &Dataset, range: Range<u64>) -> Result<StoredBlock> {
        let mut chunks = Vec::new();
        if range.start < range.end {
            let first = range.start / self.chunk_rows;
            let last = (range.end - 1) / self.chunk_rows;
            for row_chunk in first..=last {
                for col0 in (0..self.channels).step_by(self.chunk_cols) {
                    let row0 = row_chunk * self.chunk_rows;
                    chunks.push(self.read_chunk(data, row0, col0)?);
                }
            }
        }
        Ok(StoredBlock {
            layout: Arc::clone(self),
            range,
            chunks,
        })
    }

    fn read_chunk(&self, data: &Dataset, row0: u64, col0: usize) -> Result<StoredChunk> {
        use hdf5_sys::h5d::{H5Dget_chunk_info_by_coord, H5Dread_chunk1};
        let offset = [row0, col0 as u64];
        let offset = if self.rank2 {
            &offset[..]
        } else {
            &offset[..1]
        };
        let at = || format!("the chunk at sample {row0}, channel {col0}");
        let id = data.id();
        // Size first, so nothing is allocated from an unchecked number.
        let (mut mask, mut addr, mut size) = (0u32, 0u64, 0u64);
        let rc = hdf5::sync::sync(|| unsafe {
            H5Dget_chunk_info_by_coord(id, offset.as_ptr(), &mut mask, &mut addr, &mut size)
        });
        if rc < 0 || addr == hdf5_sys::h5::HADDR_UNDEF {
            return Err(self.invalid(format!("{} is not stored", at())));
        }
        // Deflate can grow incompressible data by a few bytes per 16 KiB block; anything far
        // beyond the decoded size is a corrupt chunk index.
        let limit = self.chunk_bytes() as u64 + self.chunk_bytes() as u64 / 64 + 1024;
        if size == 0 || size > limit {
            return Err(self.invalid(format!(
                "{} is stored in {size} bytes, impossible for {} decoded bytes",
                at(),
                self.chunk_bytes()
            )));
        }
        let mut bytes = self.take_stored(size as usize);
        let mut read_mask = 0u32;
        let rc = hdf5::sync::sync(|| unsafe {
            H5Dread_chunk1(
                id,
                hdf5_sys::h5p::H5P_DEFAULT,
                offset.as_ptr(),
                &mut read_mask,
                bytes.as_mut_ptr().cast(),
            )
        });
        if rc < 0 {
            return Err(self.invalid(format!("HDF5 could not read {}", at())));
        }
        Ok(StoredChunk {
            row0,
            col0,
            filter_mask: read_mask,
            bytes,
        })
    }
}

/// Whether the dataset's element type is stored little-endian.
fn stored_little_endian(data: &Dataset) -> bool {
    use hdf5_sys::h5d::H5Dget_type;
    use hdf5_sys::h5i::H5I_INVALID_HID;
    use hdf5_sys::h5t::{H5T_order_t, H5Tclose, H5Tget_order};
    let id = data.id();
    hdf5::sync::sync(|| unsafe {
        let t = H5Dget_type(id);
        if t == H5I_INVALID_HID || t < 0 {
            return false;
        }
        let order = H5Tget_order(t);
        H5Tclose(t);
        order == H5T_order_t::H5T_ORDER_LE
    })
}

/// One chunk as stored: its first sample and channel, which filters were skipped, its bytes.
struct StoredChunk {
    row0: u64,
    col0: usize,
    filter_mask: u32,
    bytes: Vec<u8>,
}

/// Samples `range` of every channel as the stored (still compressed) chunks that hold them,
/// from [`SeriesReader::read_stored`](crate::SeriesReader::read_stored). [`StoredBlock::decode`]
/// turns it into a [`RawBlock`] without touching HDF5, so it can run on any thread.
pub struct StoredBlock {
    layout: Arc<ChunkLayout>,
    range: Range<u64>,
    chunks: Vec<StoredChunk>,
}

impl std::fmt::Debug for StoredBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredBlock")
            .field("range", &self.range)
            .field("chunks", &self.chunks.len())
            .field("stored_bytes", &self.stored_bytes())
            .finish()
    }
}

impl StoredBlock {
    /// The samples this block holds.
    pub fn range(&self) -> Range<u64> {
        self.range.clone()
    }

    /// Bytes of stored chunks held (what a block costs in memory before decoding).
    pub fn stored_bytes(&self) -> u64 {
        self.chunks.iter().map(|c| c.bytes.len() as u64).sum()
    }

    /// Inflates and unshuffles every chunk — in parallel on the current rayon pool — and
    /// returns the samples channel-major (each channel contiguous), identical to what
    /// [`SeriesReader::read_raw`](crate::SeriesReader::read_raw) returns for the same range.
    pub fn decode(self) -> Result<RawBlock> {
        self.decode_reusing(None)
    }

    /// [`decode`](Self::decode) into the memory of `spare`, a block this series decoded
    /// earlier and the caller is done with (its samples are overwritten). Reusing it saves
    /// allocating and faulting in a fresh block every time.
    pub fn decode_reusing(self, spare: Option<RawBlock>) -> Result<RawBlock> {
        macro_rules! each {
            ($($dtype:ident => $variant:ident),*) => {
                match self.layout.dtype {
                    $(RawDtype::$dtype => {
                        let spare = match spare {
                            Some(RawBlock::$variant(a)) => Some(a),
                            _ => None,
                        };
                        RawBlock::$variant(self.decode_as(spare)?)
                    })*
                }
            };
        }
        Ok(
            each!(I8 => I8, I16 => I16, I32 => I32, I64 => I64, U8 => U8, U16 => U16,
            U32 => U32, U64 => U64, F32 => F32, F64 => F64),
        )
    }

    fn decode_as<T: Pod + Send + Sync>(self, spare: Option<Array2<T>>) -> Result<Array2<T>> {
        let layout = &*self.layout;
        let n = (self.range.end - self.range.start) as usize;
        let positions: Vec<(u64, usize)> = self.chunks.iter().map(|c| (c.row0, c.col0)).collect();
        // Every chunk decodes into its own slot of one buffer, kept for the next block. Slots
        // are whole u64 words, so each is aligned for any sample type.
        let slot_words = layout.chunk_bytes().div_ceil(8);
        let mut slots = layout.take_buffer(slot_words * self.chunks.len());
        let decoded: Result<()> = slots
            .par_chunks_mut(slot_words.max(1))
            .zip(self.chunks.par_iter())
            .try_for_each(|(slot, chunk)| {
                let bytes: &mut [u8] = bytemuck::cast_slice_mut(slot);
                decode_chunk(layout, chunk, &mut bytes[..layout.chunk_bytes()])
            });
        layout.give_stored(self.chunks.into_iter().map(|chunk| chunk.bytes));
        if let Err(err) = decoded {
            layout.give_buffer(slots);
            return Err(err);
        }
        let decoded: Vec<&[T]> = slots
            .chunks(slot_words.max(1))
            .map(|slot| &bytemuck::cast_slice::<u64, T>(slot)[..layout.chunk_elems()])
            .collect();

        // Every sample of the output is written below, so a spare block needs no clearing.
        let len = n * layout.channels;
        let mut out: Vec<T> = match spare.map(Array2::into_raw_vec_and_offset) {
            Some((mut v, None | Some(0))) if v.capacity() >= len => {
                v.resize(len, T::zeroed());
                v
            }
            _ => bytemuck::zeroed_vec(len),
        };
        if n > 0 {
            let (a, b) = (self.range.start, self.range.end);
            let cc = layout.chunk_cols;
            // The transpose to channel-major happens here, once, in parallel over groups of
            // channels. Within a group, rows are walked in order and each row's few adjacent
            // values copied out: every cache line of a chunk is read once per group, not once
            // per channel.
            out.par_chunks_mut(n * GATHER_CHANNELS)
                .enumerate()
                .for_each(|(g, group)| {
                    let first = g * GATHER_CHANNELS;
                    let last = first + group.len() / n; // exclusive
                    for (&(row0, col0), values) in positions.iter().zip(&decoded) {
                        let (k0, k1) = (first.max(col0), last.min(col0 + cc));
                        if k0 >= k1 {
                            continue;
                        }
                        let lo = a.max(row0);
                        let hi = b.min(row0 + layout.chunk_rows);
                        // Tiles of rows small enough to stay in L1 while each channel's run of
                        // them is written out contiguously.
                        for t0 in (lo..hi).step_by(GATHER_ROWS) {
                            let t1 = (t0 + GATHER_ROWS as u64).min(hi);
                            let from = (t0 - row0) as usize * cc;
                            for k in k0..k1 {
                                let at = (k - first) * n;
                                let column =
                                    &mut group[at + (t0 - a) as usize..at + (t1 - a) as usize];
                                let src = values[from + (k - col0)..].iter().step_by(cc);
                                for (o, v) in column.iter_mut().zip(src) {
                                    *o = *v;
                                }
                            }
                        }
                    }
                });
        }
        drop(decoded);
        layout.give_buffer(slots);
        Array2::from_shape_vec((n, layout.channels).f(), out)
            .map_err(|e| layout.invalid(format!("decoded block has the wrong shape: {e}")))
    }
}

impl ChunkLayout {
    /// A buffer of at least `words` words (contents unspecified), reused when one is free.
    fn take_buffer(&self, words: usize) -> Vec<u64> {
        let mut buffer = self
            .buffers
            .lock()
            .ok()
            .and_then(|mut free| free.pop())
            .unwrap_or_default();
        if buffer.len() < words {
            buffer.resize(words, 0);
        }
        buffer.truncate(words);
        buffer
    }

    /// Keeps `buffer` for the next block (a few at most: one per block being decoded).
    fn give_buffer(&self, buffer: Vec<u64>) {
        if let Ok(mut free) = self.buffers.lock()
            && free.len() < 2
        {
            free.push(buffer);
        }
    }

    /// A buffer for `len` stored bytes, reused when one is free.
    fn take_stored(&self, len: usize) -> Vec<u8> {
        let mut buffer = self
            .stored_buffers
            .lock()
            .ok()
            .and_then(|mut free| free.pop())
            .unwrap_or_default();
        buffer.clear();
        buffer.resize(len, 0);
        buffer
    }

    /// Keeps the stored chunks' buffers of a decoded block for the next reads (as many as a
    /// block holds; fewer when chunks are large).
    fn give_stored(&self, buffers: impl Iterator<Item = Vec<u8>>) {
        if let Ok(mut free) = self.stored_buffers.lock() {
            let mut kept: usize = free.iter().map(Vec::capacity).sum();
            for buffer in buffers {
                if kept + buffer.capacity() > MAX_KEPT_STORED_BYTES {
                    break;
                }
                kept += buffer.capacity();
                free.push(buffer);
            }
        }
    }
}

thread_local! {
    /// The result between two filter stages (inflated, still shuffled), reused.
    static STAGE_SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Undoes the chunk's filters (last applied first) into `out`, its decoded bytes. The pipeline
/// holds each filter at most once ([`ChunkLayout::detect`]), so there are at most two stages.
fn decode_chunk(layout: &ChunkLayout, chunk: &StoredChunk, out: &mut [u8]) -> Result<()> {
    let expected = out.len();
    let at = || format!("the chunk at sample {}, channel {}", chunk.row0, chunk.col0);
    let stages: Vec<Stage> = layout
        .pipeline
        .iter()
        .enumerate()
        .rev()
        .filter(|(i, _)| chunk.filter_mask & (1 << i) == 0)
        .map(|(_, s)| *s)
        .collect();
    let undo = |stage: Stage, input: &[u8], target: &mut [u8]| -> Result<()> {
        match stage {
            Stage::Deflate => {
                let (inflated, rc) =
                    zlib_rs::decompress_slice(target, input, zlib_rs::InflateConfig::default());
                if rc != zlib_rs::ReturnCode::Ok {
                    return Err(layout.invalid(format!(
                        "{} does not inflate: its deflate data is corrupt (zlib: {rc:?})",
                        at()
                    )));
                }
                if inflated.len() != expected {
                    return Err(layout.invalid(format!(
                        "{} inflates to {} bytes, not its {expected}",
                        at(),
                        inflated.len()
                    )));
                }
            }
            Stage::Shuffle => {
                if input.len() != expected {
                    return Err(layout.invalid(format!(
                        "{} holds {} bytes before unshuffling, not {expected}",
                        at(),
                        input.len()
                    )));
                }
                unshuffle(input, layout.elem(), target);
            }
        }
        Ok(())
    };
    match stages[..] {
        [] => {
            if chunk.bytes.len() != expected {
                return Err(layout.invalid(format!(
                    "{} holds {} bytes, not {expected}",
                    at(),
                    chunk.bytes.len()
                )));
            }
            out.copy_from_slice(&chunk.bytes);
            Ok(())
        }
        [only] => undo(only, &chunk.bytes, out),
        [first, second] => STAGE_SCRATCH.with_borrow_mut(|scratch| {
            if scratch.len() < expected {
                scratch.resize(expected, 0);
            }
            let between = &mut scratch[..expected];
            undo(first, &chunk.bytes, between)?;
            undo(second, between, out)
        }),
        _ => Err(layout.invalid(format!("{} has more than two filters", at()))),
    }
}

/// HDF5's shuffle filter undone: `src` holds byte 0 of every element, then byte 1 of every
/// element, …; any bytes beyond whole elements are kept as they are.
fn unshuffle(src: &[u8], elem: usize, dst: &mut [u8]) {
    let elems = src.len() / elem.max(1);
    if elem <= 1 || elems <= 1 {
        dst.copy_from_slice(src);
        return;
    }
    match elem {
        2 => unshuffle_as::<2>(src, elems, dst),
        4 => unshuffle_as::<4>(src, elems, dst),
        8 => unshuffle_as::<8>(src, elems, dst),
        _ => {
            for (b, plane) in src[..elems * elem].chunks_exact(elems).enumerate() {
                for (e, &byte) in plane.iter().enumerate() {
                    dst[e * elem + b] = byte;
                }
            }
        }
    }
    let tail = elems * elem;
    dst[tail..].copy_from_slice(&src[tail..]);
}

/// [`unshuffle`] for `E`-byte elements: the output is written in order, one element at a time
/// from `E` input planes.
fn unshuffle_as<const E: usize>(src: &[u8], elems: usize, dst: &mut [u8]) {
    let planes: [&[u8]; E] = std::array::from_fn(|b| &src[b * elems..(b + 1) * elems]);
    for (e, out) in dst[..elems * E].chunks_exact_mut(E).enumerate() {
        for (b, plane) in planes.iter().enumerate() {
            out[b] = plane[e];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shuffle(src: &[u8], elem: usize) -> Vec<u8> {
        let elems = src.len() / elem;
        let mut out = vec![0u8; src.len()];
        for e in 0..elems {
            for b in 0..elem {
                out[b * elems + e] = src[e * elem + b];
            }
        }
        out[elems * elem..].copy_from_slice(&src[elems * elem..]);
        out
    }

    proptest::proptest! {
        #[test]
        fn unshuffle_undoes_hdf5_shuffle(bytes in proptest::collection::vec(0u8..=255, 0..300), elem in 1usize..9) {
            let mut back = vec![0u8; bytes.len()];
            unshuffle(&shuffle(&bytes, elem), elem, &mut back);
            proptest::prop_assert_eq!(back, bytes);
        }
    }
}
