//! Chunk payloads: big-endian float64 samples in one gzip member.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

use crate::atomic::TempFile;
use crate::error::{Error, Result, io_err};
use crate::name::ChunkName;

/// A file that was written and renamed into place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Its final path.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
}

/// Samples encoded per step of [`ChunkFile::append`], so its buffer stays small (16 KiB).
const APPEND_STEP_SAMPLES: usize = 2048;

/// Samples per stored deflate block: a stored block holds at most 65,535 bytes.
const STORED_BLOCK_SAMPLES: usize = 8191;

/// The gzip header flate2 writes by default: deflate, no flags, mtime 0, unknown OS.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// Level 0 written directly, without a deflate stream: gzip header, stored blocks of encoded
/// samples with the CRC taken as they are encoded, trailer. Same decompressed bytes as any
/// level; a compressor's state (hundreds of KiB) is not needed, so an open chunk file costs
/// almost nothing — what keeps memory flat when a thousand channels stream at once.
mod stored {
    use super::{GZIP_HEADER, STORED_BLOCK_SAMPLES};

    /// Appends non-final stored blocks holding `samples` as big-endian float64.
    pub(super) fn blocks(samples: &[f64], crc: &mut crc32fast::Hasher, out: &mut Vec<u8>) {
        out.reserve(samples.len() * 8 + samples.len().div_ceil(STORED_BLOCK_SAMPLES) * 5);
        for piece in samples.chunks(STORED_BLOCK_SAMPLES) {
            let len = (piece.len() * 8) as u16;
            out.push(0); // BFINAL = 0, BTYPE = 00 (stored), byte-aligned
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&(!len).to_le_bytes());
            let data = out.len();
            super::encode_samples(piece, out);
            crc.update(&out[data..]);
        }
    }

    /// The empty final block and the gzip trailer (CRC-32 and length mod 2^32).
    pub(super) fn end(crc: crc32fast::Hasher, len: u64, out: &mut Vec<u8>) {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
        out.extend_from_slice(&crc.finalize().to_le_bytes());
        out.extend_from_slice(&(len as u32).to_le_bytes());
    }

    /// A whole chunk: header, blocks, end.
    pub(super) fn whole(samples: &[f64], out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&GZIP_HEADER);
        let mut crc = crc32fast::Hasher::new();
        blocks(samples, &mut crc, out);
        end(crc, samples.len() as u64 * 8, out);
    }
}

/// Appends `samples` to `out` as big-endian IEEE-754 float64 (8 bytes each, bit-exact: NaN payloads,
/// -0.0 and subnormals are kept).
pub fn encode_samples(samples: &[f64], out: &mut Vec<u8>) {
    // Grown once, then filled in place: the loop compiles to byte swaps without capacity checks.
    let start = out.len();
    out.resize(start + samples.len() * 8, 0);
    for (bytes, sample) in out[start..].chunks_exact_mut(8).zip(samples) {
        bytes.copy_from_slice(&sample.to_be_bytes());
    }
}

/// Decodes big-endian float64 samples; the length must be a multiple of 8.
pub fn decode_samples(bytes: &[u8]) -> Result<Vec<f64>> {
    if !bytes.chunks_exact(8).remainder().is_empty() {
        return Err(Error::SampleBytesLength { len: bytes.len() });
    }
    Ok(bytes
        .chunks_exact(8)
        .map(|word| {
            let mut be = [0u8; 8];
            be.copy_from_slice(word);
            f64::from_be_bytes(be)
        })
        .collect())
}

/// Reads a chunk file: gunzip (several gzip members are accepted and concatenated) and decode.
pub fn read_chunk(path: &Path) -> Result<Vec<f64>> {
    let file = File::open(path).map_err(io_err("open chunk file", path))?;
    let mut bytes = Vec::new();
    MultiGzDecoder::new(std::io::BufReader::new(file))
        .read_to_end(&mut bytes)
        .map_err(io_err("decompress chunk file", path))?;
    decode_samples(&bytes).map_err(|_| Error::ChunkLength {
        path: path.to_owned(),
        len: bytes.len(),
    })
}

/// Writes chunk files at one gzip level, reusing its buffers between chunks.
///
/// Files are written to `.{name}.{pid}.{random}.tmp` in the target directory (created with
/// `O_EXCL`/`O_NOFOLLOW`, so nothing planted there is followed) and renamed into place when
/// complete, so a final name never holds a partial chunk. There is no fsync (for speed): after a
/// machine crash a recent file may be empty or short, but a crashed conversion is rerun anyway.
pub struct ChunkWriter {
    level: Compression,
    /// Encoded samples of the current chunk.
    raw: Vec<u8>,
    /// Gzip output of the current chunk, written to the file in one call.
    gz: Vec<u8>,
}

// Manual Debug impls: the derived ones would print whole sample buffers.
impl std::fmt::Debug for ChunkWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkWriter")
            .field("compression_level", &self.level.level())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ChunkFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkFile")
            .field("temp_path", &self.temp.temp_path())
            .finish_non_exhaustive()
    }
}

impl Default for ChunkWriter {
    /// Level 0 (stored blocks), as the original processor.
    fn default() -> Self {
        ChunkWriter::new(0)
    }
}

impl ChunkWriter {
    /// A writer at gzip level `compression_level` (0 = stored blocks … 9 = best). Levels above 9
    /// are treated as 9; use [`ChunkWriter::try_new`] to reject them instead.
    pub fn new(compression_level: u32) -> Self {
        ChunkWriter {
            level: Compression::new(compression_level.min(9)),
            raw: Vec::new(),
            gz: Vec::new(),
        }
    }

    /// Like [`ChunkWriter::new`], but a level outside 0..=9 is an error.
    pub fn try_new(compression_level: u32) -> Result<Self> {
        if compression_level > 9 {
            return Err(Error::InvalidCompressionLevel {
                level: compression_level,
            });
        }
        Ok(ChunkWriter::new(compression_level))
    }

    /// The gzip level in use.
    pub fn compression_level(&self) -> u32 {
        self.level.level()
    }

    /// Writes one whole chunk to `dir/{name}` atomically.
    pub fn write(&mut self, dir: &Path, name: &ChunkName, samples: &[f64]) -> Result<Written> {
        let final_name = name.to_string();
        // Encode (and compress) into the reused buffer, then write once: one syscall per chunk.
        let mut gz_out = std::mem::take(&mut self.gz);
        if self.level.level() == 0 {
            stored::whole(samples, &mut gz_out);
        } else {
            self.raw.clear();
            encode_samples(samples, &mut self.raw);
            gz_out.clear();
            let mut encoder = GzEncoder::new(gz_out, self.level);
            let compressed = encoder.write_all(&self.raw).and_then(|()| encoder.finish());
            gz_out = compressed.map_err(io_err("compress chunk", dir.join(&final_name)))?;
        }

        let (temp, mut file) = TempFile::create(dir, &final_name)?;
        let written = file.write_all(&gz_out);
        let bytes = gz_out.len() as u64;
        self.gz = gz_out;
        written.map_err(io_err("write chunk file", temp.temp_path()))?;
        drop(file);
        Ok(Written {
            path: temp.commit()?,
            bytes,
        })
    }

    /// Starts a chunk written piece by piece (for chunks that are not in memory at once). The file
    /// appears under its final name only after [`ChunkFile::finish`].
    pub fn begin(&self, dir: &Path, name: &ChunkName) -> Result<ChunkFile> {
        let (temp, mut file) = TempFile::create(dir, &name.to_string())?;
        let encoder = if self.level.level() == 0 {
            file.write_all(&GZIP_HEADER)
                .map_err(io_err("write chunk file", temp.temp_path()))?;
            Encoder::Stored {
                file,
                crc: crc32fast::Hasher::new(),
                len: 0,
            }
        } else {
            Encoder::Deflate {
                encoder: Box::new(GzEncoder::new(
                    std::io::BufWriter::with_capacity(32 * 1024, file),
                    self.level,
                )),
                raw: Vec::with_capacity(APPEND_STEP_SAMPLES * 8),
            }
        };
        Ok(ChunkFile { encoder, temp })
    }
}

/// How a [`ChunkFile`] turns samples into bytes.
enum Encoder {
    /// Level 0: stored blocks written straight to the file (no per-file buffer).
    Stored {
        file: File,
        crc: crc32fast::Hasher,
        len: u64,
    },
    /// Levels 1–9: a deflate stream.
    Deflate {
        // Boxed: the deflate state is large and this variant is the rare one.
        encoder: Box<GzEncoder<std::io::BufWriter<File>>>,
        raw: Vec<u8>,
    },
}

thread_local! {
    /// Stored blocks are assembled here before their one write, so that thousands of open chunk
    /// files need no buffer each.
    static STORED_SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A chunk file being written by [`ChunkWriter::begin`]. Dropping it without
/// [`ChunkFile::finish`] removes the temporary file.
pub struct ChunkFile {
    encoder: Encoder,
    // Declared after `encoder` so the file handle closes before the temporary file is removed.
    temp: TempFile,
}

impl ChunkFile {
    /// Appends samples to the chunk.
    pub fn append(&mut self, samples: &[f64]) -> Result<()> {
        let written = match &mut self.encoder {
            Encoder::Stored { file, crc, len } => STORED_SCRATCH.with_borrow_mut(|buf| {
                // Pieces of 8191 samples: one stored block and one write each.
                samples.chunks(STORED_BLOCK_SAMPLES).try_for_each(|piece| {
                    buf.clear();
                    stored::blocks(piece, crc, buf);
                    *len += piece.len() as u64 * 8;
                    file.write_all(buf)
                })
            }),
            Encoder::Deflate { encoder, raw } => {
                samples.chunks(APPEND_STEP_SAMPLES).try_for_each(|piece| {
                    raw.clear();
                    encode_samples(piece, raw);
                    encoder.write_all(raw)
                })
            }
        };
        written.map_err(io_err("write chunk file", self.temp.temp_path()))
    }

    /// Completes the gzip stream, flushes, and renames the file into place.
    pub fn finish(self) -> Result<Written> {
        let ChunkFile { encoder, temp } = self;
        let finished = match encoder {
            Encoder::Stored {
                mut file, crc, len, ..
            } => {
                let mut end = Vec::with_capacity(13);
                stored::end(crc, len, &mut end);
                file.write_all(&end)
                    .and_then(|()| Ok(file.metadata()?.len()))
            }
            Encoder::Deflate { encoder, .. } => encoder
                .finish()
                .and_then(|buffered| buffered.into_inner().map_err(|e| e.into_error()))
                .and_then(|file| Ok(file.metadata()?.len())),
        };
        let bytes = finished.map_err(io_err("finish chunk file", temp.temp_path()))?;
        Ok(Written {
            path: temp.commit()?,
            bytes,
        })
    }

    /// Path of the temporary file being written.
    pub fn temp_path(&self) -> &Path {
        self.temp.temp_path()
    }

    /// The path the chunk gets when [`ChunkFile::finish`] renames it into place.
    pub fn final_path(&self) -> &Path {
        self.temp.final_path()
    }
}
