//! `cargo xtask bench`: end-to-end conversion throughput and memory against a floor measured in
//! the same run, on three generated inputs (issue #4). Nothing here is a pass/fail test: it prints
//! a table of wall seconds, MB/s of raw input, peak RSS and ratios.
//!
//! Floor = the time to read the same dataset blocks into memory with no output (HDF5, same block
//! size, chunk-aligned) plus the time to write the same number of output bytes in as many files.
//! Our conversion overlaps these two, so a ratio near 1.0 means we are at the hardware limit.
//!
//! The Python baseline (`xtask/bench/python_baseline.py`) re-creates the original processor's
//! conversion loop (pynwb, per-chunk reads of all channels, numpy scaling, gzip level 0 per channel
//! in a thread pool). It is our re-creation, not the original's code; it runs only when a Python
//! with pynwb is available (the oracle's venv, `target/oracle-venv`), and the table says when not.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ndarray::{ArrayD, IxDyn};

use crate::fixtures::builder::{
    ElectrodesTable, Header, NwbBuilder, Samples, SeriesSpec, Storage, Time,
};
use crate::util::{build_processor, target_dir, workspace_root};

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Run only these inputs (a, b, c). Default: all three.
    #[arg(long = "only", value_name = "a|b|c")]
    only: Vec<String>,
    /// Scale every input down by this factor (1 = the sizes: 1 GiB, 1 GiB, 512 MiB).
    #[arg(long, default_value_t = 1)]
    shrink: u64,
    /// Runs per input; the table keeps the fastest (and the highest peak RSS).
    #[arg(long, default_value_t = 3)]
    repeat: u32,
    /// Do not run the Python baseline even if pynwb is available.
    #[arg(long)]
    no_python: bool,
    /// Only write the missing inputs (run as a child process, see `run_bench`).
    #[arg(long, hide = true)]
    generate_only: bool,
}

struct Input {
    key: &'static str,
    what: &'static str,
    path: PathBuf,
    raw_bytes: u64,
}

pub fn run_bench(args: &BenchArgs) -> Result<()> {
    let dir = target_dir().join("xtask").join("bench-inputs");
    fs::create_dir_all(&dir)?;
    let wanted = |k: &str| args.only.is_empty() || args.only.iter().any(|o| o == k);
    let inputs: Vec<Input> = ["a", "b", "c"]
        .into_iter()
        .filter(|k| wanted(k))
        .map(|key| input_spec(&dir, key, args.shrink.max(1)))
        .collect();
    let missing: Vec<&Input> = inputs.iter().filter(|i| !i.path.exists()).collect();
    if args.generate_only {
        for input in missing {
            eprintln!("generating {} ...", input.path.display());
            let tmp = input.path.with_extension("nwb.tmp");
            write_input(&tmp, input.key, input.raw_bytes)?;
            fs::rename(&tmp, &input.path)?;
        }
        return Ok(());
    }
    if !missing.is_empty() {
        // Generate in a child: a child's peak RSS (wait4) starts from its parent's resident size
        // at fork, so this process must stay small while it measures.
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.args([
            "bench",
            "--generate-only",
            "--shrink",
            &args.shrink.max(1).to_string(),
        ]);
        for input in &missing {
            cmd.args(["--only", input.key]);
        }
        crate::util::run(&mut cmd)?;
    }
    let bin = build_processor(true)?;
    let python = if args.no_python {
        None
    } else {
        python_with_pynwb()
    };

    let mut rows = Vec::new();
    for input in &inputs {
        eprintln!(
            "bench {}: {} ({})",
            input.key,
            input.what,
            input.path.display()
        );
        let out = target_dir()
            .join("xtask")
            .join(format!("bench-out-{}", input.key));
        // Writing GiBs into the page cache of a shared machine is noisy: alternate our run and
        // the floor `repeat` times and keep the best of each.
        let mut best: Option<(Measured, u64, Duration, Duration)> = None;
        for _ in 0..args.repeat.max(1) {
            let _ = fs::remove_dir_all(&out);
            let ours = measure(
                Command::new(&bin)
                    .arg("convert")
                    .arg(&input.path)
                    .arg("--output")
                    .arg(&out)
                    .env("RUST_LOG", "warn"),
            )?;
            let (files, out_bytes) = dir_size(&out)?;
            let _ = fs::remove_dir_all(&out);
            let read_floor = floor_read(&input.path)?;
            let write_floor = floor_write(&out, files, out_bytes)?;
            let _ = fs::remove_dir_all(&out);
            best = Some(match best {
                None => (ours, out_bytes, read_floor, write_floor),
                Some((b, bytes, r, w)) => (
                    Measured {
                        wall: b.wall.min(ours.wall),
                        peak_rss_kib: b.peak_rss_kib.max(ours.peak_rss_kib),
                    },
                    bytes,
                    r.min(read_floor),
                    w.min(write_floor),
                ),
            });
        }
        let Some((ours, out_bytes, read_floor, write_floor)) = best else {
            continue;
        };
        let floor = read_floor + write_floor;

        let py = match (&python, input.key) {
            (Some(py), "a" | "b") => {
                let py_out = target_dir()
                    .join("xtask")
                    .join(format!("bench-py-{}", input.key));
                let _ = fs::remove_dir_all(&py_out);
                fs::create_dir_all(&py_out)?;
                let script = workspace_root().join("xtask/bench/python_baseline.py");
                let m = measure(Command::new(py).arg(script).arg(&input.path).arg(&py_out))?;
                let _ = fs::remove_dir_all(&py_out);
                Some(m)
            }
            _ => None,
        };
        rows.push(Row {
            input,
            ours,
            out_bytes,
            read_floor,
            write_floor,
            floor,
            py,
        });
    }
    print_table(&rows, python.is_some());
    Ok(())
}

struct Measured {
    wall: Duration,
    peak_rss_kib: u64,
}

struct Row<'a> {
    input: &'a Input,
    ours: Measured,
    out_bytes: u64,
    read_floor: Duration,
    write_floor: Duration,
    floor: Duration,
    py: Option<Measured>,
}

fn print_table(rows: &[Row], python_ran: bool) {
    println!();
    println!(
        "| input | raw MiB | ours s | ours MB/s | peak RSS MiB | floor s (read + write) | ours/floor | python s | python RSS MiB | python/ours |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let secs = r.ours.wall.as_secs_f64();
        let (py_s, py_rss, speedup) = match &r.py {
            Some(p) => (
                format!("{:.2}", p.wall.as_secs_f64()),
                format!("{:.0}", p.peak_rss_kib as f64 / 1024.0),
                format!("{:.1}x", p.wall.as_secs_f64() / secs),
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        println!(
            "| {} {} | {:.0} | {:.2} | {:.0} | {:.0} | {:.2} ({:.2} + {:.2}) | {:.2} | {} | {} | {} |",
            r.input.key,
            r.input.what,
            r.input.raw_bytes as f64 / 1_048_576.0,
            secs,
            r.input.raw_bytes as f64 / 1e6 / secs,
            r.ours.peak_rss_kib as f64 / 1024.0,
            r.floor.as_secs_f64(),
            r.read_floor.as_secs_f64(),
            r.write_floor.as_secs_f64(),
            secs / r.floor.as_secs_f64(),
            py_s,
            py_rss,
            speedup,
        );
        let _ = r.out_bytes;
    }
    if !python_ran {
        println!(
            "\nPython baseline NOT run: no python3 with pynwb found (target/oracle-venv is created by \
             the pynwb oracle test, `./x test`; or pass a venv via NWB_BENCH_PYTHON)."
        );
    }
}

/// Runs a command to completion; wall time and the child's peak resident set (wait4 rusage).
fn measure(cmd: &mut Command) -> Result<Measured> {
    let started = Instant::now();
    let child = cmd
        .spawn()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: plain wait4 on our own child with valid out-pointers.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    if rc < 0 {
        bail!("wait4 failed for {cmd:?}");
    }
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        bail!("{cmd:?} failed (status {status})");
    }
    std::mem::forget(child); // already reaped
    Ok(Measured {
        wall,
        peak_rss_kib: usage.ru_maxrss as u64,
    })
}

fn dir_size(dir: &Path) -> Result<(u64, u64)> {
    let (mut files, mut bytes) = (0, 0);
    for entry in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().ends_with(".bin.gz") {
            files += 1;
            bytes += entry.metadata()?.len();
        }
    }
    Ok((files, bytes))
}

/// Reads every sample of the input's series in chunk-aligned ~8 MiB blocks, keeping nothing.
fn floor_read(path: &Path) -> Result<Duration> {
    let file = hdf5::File::open(path)?;
    let mut total = Duration::ZERO;
    for name in file.group("acquisition")?.member_names()? {
        let ds = file.dataset(&format!("/acquisition/{name}/data"))?;
        let shape = ds.shape();
        let (n, c) = (shape[0], shape.get(1).copied().unwrap_or(1));
        let elem = ds.dtype()?.size();
        let mut block = ((8usize << 20) / (c * elem)).max(1);
        if let Some(chunk) = ds.chunk() {
            block = block.div_ceil(chunk[0]) * chunk[0];
        }
        let ds = file.dataset(&format!("/acquisition/{name}/data"))?;
        let started = Instant::now();
        let mut pos = 0;
        while pos < n {
            let end = (pos + block).min(n);
            let bytes = match elem {
                2 => ds.read_slice_2d::<i16, _>(ndarray::s![pos..end, ..])?.len() * 2,
                _ => ds.read_slice_2d::<f64, _>(ndarray::s![pos..end, ..])?.len() * 8,
            };
            std::hint::black_box(bytes);
            pos = end;
        }
        total += started.elapsed();
    }
    Ok(total)
}

/// Writes `bytes` spread over `files` files in 1 MiB writes, then removes them.
fn floor_write(dir: &Path, files: u64, bytes: u64) -> Result<Duration> {
    fs::create_dir_all(dir)?;
    let buf = vec![0x5Au8; 1 << 20];
    let per_file = bytes / files.max(1);
    let started = Instant::now();
    for i in 0..files.max(1) {
        let mut f = std::io::BufWriter::new(fs::File::create(dir.join(format!("floor-{i}.bin")))?);
        let mut left = per_file;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            f.write_all(&buf[..n])?;
            left -= n as u64;
        }
        f.flush()?;
    }
    Ok(started.elapsed())
}

/// A python3 that can import pynwb: NWB_BENCH_PYTHON, else the oracle venv.
fn python_with_pynwb() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("NWB_BENCH_PYTHON").map(PathBuf::from),
        Some(target_dir().join("oracle-venv").join("bin").join("python")),
    ];
    candidates.into_iter().flatten().find(|py| {
        Command::new(py)
            .args(["-c", "import pynwb"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// Where input `key` lives and what it is (`run_bench` generates it when missing; the name
/// encodes the size).
fn input_spec(dir: &Path, key: &'static str, shrink: u64) -> Input {
    let gib = 1u64 << 30;
    let (what, raw_bytes) = match key {
        "a" => ("float64 2 ch contiguous, rate", gib / shrink),
        "b" => (
            "int16 64 ch chunked gzip4+shuffle, channel_conversion",
            gib / shrink,
        ),
        _ => ("int16 384 ch timestamps with gaps", gib / 2 / shrink),
    };
    Input {
        key,
        what,
        path: dir.join(format!("{key}-{}MiB.nwb", raw_bytes >> 20)),
        raw_bytes,
    }
}

/// A deterministic, compressible-like-real-data signal: a slow wave per channel plus noise.
fn signal(t: usize, c: usize, state: &mut u64) -> f64 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let noise = ((*state >> 33) as f64 / (1u64 << 31) as f64) - 0.5;
    ((t as f64 * 0.01 + c as f64).sin() * 800.0) + noise * 60.0
}

fn write_input(path: &Path, key: &str, raw_bytes: u64) -> Result<()> {
    let mut b = NwbBuilder::create(path, &format!("bench-{key}"), Header::standard())?;
    let mut state = 42u64;
    let spec = match key {
        "a" => {
            let c = 2;
            let n = (raw_bytes / 8 / c as u64) as usize;
            b.add_electrodes(ElectrodesTable::simple(c))?;
            let a =
                ArrayD::from_shape_fn(IxDyn(&[n, c]), |ix| signal(ix[0], ix[1], &mut state) * 1e-6);
            SeriesSpec::new(
                "/acquisition/ElectricalSeries",
                Samples::F64(a),
                Time::Rate {
                    rate: 30_000.0,
                    starting_time: 0.0,
                },
                (0..c as i64).collect(),
            )
        }
        "b" => {
            let c = 64;
            let n = (raw_bytes / 2 / c as u64) as usize;
            b.add_electrodes(ElectrodesTable::simple(c))?;
            let a =
                ArrayD::from_shape_fn(IxDyn(&[n, c]), |ix| signal(ix[0], ix[1], &mut state) as i16);
            let mut s = SeriesSpec::new(
                "/acquisition/ElectricalSeriesAP",
                Samples::I16(a),
                Time::Rate {
                    rate: 30_000.0,
                    starting_time: 0.0,
                },
                (0..c as i64).collect(),
            );
            s.conversion = Some(1e-6);
            s.channel_conversion = Some((0..c).map(|k| 0.195 + k as f64 * 1e-3).collect());
            // neuroconv-like chunks: ~5 MB time windows across all channels.
            s.storage = Storage::Chunked {
                chunk: vec![40_000, c],
                gzip: Some(4),
                shuffle: true,
                fletcher32: false,
            };
            s
        }
        _ => {
            let c = 384;
            let n = (raw_bytes / 2 / c as u64) as usize;
            b.add_electrodes(ElectrodesTable::simple(c))?;
            let a =
                ArrayD::from_shape_fn(IxDyn(&[n, c]), |ix| signal(ix[0], ix[1], &mut state) as i16);
            // 30 kHz with a 2 s gap every 100,000 samples.
            let ts: Vec<f64> = (0..n)
                .map(|i| i as f64 / 30_000.0 + (i / 100_000) as f64 * 2.0)
                .collect();
            let mut s = SeriesSpec::new(
                "/acquisition/ElectricalSeries",
                Samples::I16(a),
                Time::Timestamps(ts),
                (0..c as i64).collect(),
            );
            s.conversion = Some(0.195e-6);
            s.storage = Storage::Chunked {
                chunk: vec![8_192, c],
                gzip: None,
                shuffle: false,
                fletcher32: false,
            };
            s
        }
    };
    b.add_series(spec)?;
    b.finish()?;
    Ok(())
}
