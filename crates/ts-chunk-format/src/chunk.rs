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

/// Appends `samples` to `out` as big-endian IEEE-754 float64 (8 bytes each, bit-exact: NaN payloads,
/// -0.0 and subnormals are kept).
pub fn encode_samples(samples: &[f64], out: &mut Vec<u8>) {
    out.reserve(samples.len() * 8);
    for sample in samples {
        out.extend_from_slice(&sample.to_be_bytes());
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
        self.raw.clear();
        encode_samples(samples, &mut self.raw);

        // Compress into the reused buffer, then write once: one syscall per chunk.
        let mut gz_out = std::mem::take(&mut self.gz);
        gz_out.clear();
        let mut encoder = GzEncoder::new(gz_out, self.level);
        let compressed = encoder.write_all(&self.raw).and_then(|()| encoder.finish());
        let gz_out = compressed.map_err(io_err("compress chunk", dir.join(&final_name)))?;

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
        let (temp, file) = TempFile::create(dir, &name.to_string())?;
        Ok(ChunkFile {
            encoder: GzEncoder::new(
                std::io::BufWriter::with_capacity(32 * 1024, file),
                self.level,
            ),
            raw: Vec::with_capacity(APPEND_STEP_SAMPLES * 8),
            temp,
        })
    }
}

/// A chunk file being written by [`ChunkWriter::begin`]. Dropping it without
/// [`ChunkFile::finish`] removes the temporary file.
pub struct ChunkFile {
    encoder: GzEncoder<std::io::BufWriter<File>>,
    raw: Vec<u8>,
    // Declared after `encoder` so the file handle closes before the temporary file is removed.
    temp: TempFile,
}

impl ChunkFile {
    /// Appends samples to the chunk.
    pub fn append(&mut self, samples: &[f64]) -> Result<()> {
        for piece in samples.chunks(APPEND_STEP_SAMPLES) {
            self.raw.clear();
            encode_samples(piece, &mut self.raw);
            self.encoder
                .write_all(&self.raw)
                .map_err(io_err("write chunk file", self.temp.temp_path()))?;
        }
        Ok(())
    }

    /// Completes the gzip stream, flushes, and renames the file into place.
    pub fn finish(self) -> Result<Written> {
        let ChunkFile { encoder, temp, .. } = self;
        let finished = encoder
            .finish()
            .and_then(|buffered| buffered.into_inner().map_err(|e| e.into_error()))
            .and_then(|file| Ok(file.metadata()?.len()));
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
