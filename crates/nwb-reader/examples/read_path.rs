//! The stored-chunk read path alone, for `cargo xtask bench`: this thread reads every series'
//! stored chunks through HDF5 and THREADS threads decode them into channel-major blocks (one
//! block each at a time); nothing is written.
//!
//! `cargo run --release -p nwb-reader --example read_path -- FILE.nwb THREADS`

use std::sync::{Mutex, mpsc};

use nwb_reader::{DiscoverOptions, NwbFile, StoredBlock};

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(threads)) = (args.next(), args.next()) else {
        return Err("usage: read_path FILE.nwb THREADS".into());
    };
    let threads: usize = threads.parse()?;
    // `StoredBlock::decode` runs on the global pool: give it exactly THREADS threads.
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build_global()?;
    let file = NwbFile::open(&path)?;
    let found = file.discover(&DiscoverOptions::default())?;
    for info in &found.series {
        let reader = file.open_series(info)?;
        if let Err(why) = reader.stored_chunks() {
            return Err(format!("{}: not read as stored chunks: {why}", info.path).into());
        }
        let step = reader.preferred_block_len(8 << 20);
        let n = info.num_samples;
        let (tx, rx) = mpsc::sync_channel::<StoredBlock>(threads);
        let rx = Mutex::new(rx);
        let rx = &rx;
        std::thread::scope(
            |scope| -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
                let decoders: Vec<_> = (0..threads.max(1))
                    .map(|_| {
                        scope.spawn(move || -> Result<(), nwb_reader::Error> {
                            // Each thread decodes into its previous block, as a conversion does.
                            let mut spare = None;
                            loop {
                                let next = match rx.lock() {
                                    Ok(rx) => rx.recv(),
                                    Err(_) => return Ok(()),
                                };
                                let Ok(block) = next else { return Ok(()) };
                                let decoded = block.decode_reusing(spare.take())?;
                                std::hint::black_box(decoded.len());
                                spare = Some(decoded);
                            }
                        })
                    })
                    .collect();
                let mut pos = 0;
                while pos < n {
                    let end = (pos + step).min(n);
                    if tx.send(reader.read_stored(pos..end)?).is_err() {
                        break;
                    }
                    pos = end;
                }
                drop(tx);
                for decoder in decoders {
                    decoder.join().map_err(|_| "a decoder panicked")??;
                }
                Ok(())
            },
        )?;
    }
    Ok(())
}
