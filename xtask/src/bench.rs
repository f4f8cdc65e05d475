//! `cargo xtask bench`: conversion CPU time, wall time and memory against a floor measured in the
//! same run, on seven generated inputs (issues #4 and #12). Nothing here is a pass/fail test: it
//! prints a table of CPU-seconds, wall seconds, peak RSS and ratios.
//!
//! Floor = the CPU-seconds to read the same samples through HDF5 with no output (chunk-aligned
//! ~8 MiB blocks) plus those to write the same number of output bytes into as many files, each
//! measured in its own process from a settled state. Wall time of write-heavy runs swings 2x on
//! shared VMs; CPU-seconds do not, so the ratio that matters is ours ÷ floor in CPU-seconds.
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
    /// Run only these inputs (a … g, and w: the workflow step on input d). Default: all.
    #[arg(long = "only", value_name = "KEY")]
    only: Vec<String>,
    /// Scale every input down by this factor (1 = full size: 256 MiB to 1 GiB each).
    #[arg(long, default_value_t = 1)]
    shrink: u64,
    /// Runs per input; the table keeps the lowest CPU-seconds of each measurement.
    #[arg(long, default_value_t = 3)]
    repeat: u32,
    /// Do not run the Python baseline even if pynwb is available.
    #[arg(long)]
    no_python: bool,
    /// Only write the missing inputs (run as a child process, see `run_bench`).
    #[arg(long, hide = true)]
    generate_only: bool,
    /// Child mode: one floor measurement (`read`, `write`, `decode1`, `decode2`), see `probe`.
    #[arg(long, hide = true, num_args = 1.., value_name = "ARGS")]
    probe: Vec<String>,
}

struct Input {
    key: &'static str,
    what: &'static str,
    path: PathBuf,
    raw_bytes: u64,
}

const KEYS: [&str; 7] = ["a", "b", "c", "d", "e", "f", "g"];

pub fn run_bench(args: &BenchArgs) -> Result<()> {
    if !args.probe.is_empty() {
        return probe(&args.probe);
    }
    let dir = target_dir().join("xtask").join("bench-inputs");
    fs::create_dir_all(&dir)?;
    let wanted = |k: &str| args.only.is_empty() || args.only.iter().any(|o| o == k);
    let inputs: Vec<Input> = KEYS
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
    let read_path = crate::util::build_release_example("nwb-reader", "read_path")?;
    let me = std::env::current_exe()?;
    let python = if args.no_python {
        None
    } else {
        python_with_pynwb()
    };
    let dropped = settle(None);
    if !dropped {
        eprintln!("note: cannot drop the page cache (not root?): inputs are only pre-read");
    }

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
        let path = input.path.to_string_lossy().into_owned();
        let chunked_gzip = matches!(input.key, "b" | "d" | "e" | "f");
        // Each measurement starts settled (outputs gone, `sync`, caches dropped, input read
        // once); each keeps its lowest CPU-seconds over `repeat` alternating runs.
        let mut row = Row::new(input);
        for _ in 0..args.repeat.max(1) {
            let _ = fs::remove_dir_all(&out);
            settle(Some(&input.path));
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
            row.out = Some((files, out_bytes));
            keep(&mut row.ours, ours);

            settle(Some(&input.path));
            let read = measure(Command::new(&me).args(["bench", "--probe", "read", &path]))?;
            keep(&mut row.read_floor, read);
            fs::create_dir_all(&out)?;
            settle(Some(&input.path));
            let write = measure(Command::new(&me).args([
                "bench",
                "--probe",
                "write",
                &out.to_string_lossy(),
                &files.to_string(),
                &out_bytes.to_string(),
            ]))?;
            keep(&mut row.write_floor, write);
            let _ = fs::remove_dir_all(&out);
            if chunked_gzip {
                for (threads, slot) in [("1", &mut row.decode1), ("2", &mut row.decode2)] {
                    settle(Some(&input.path));
                    let m = measure(Command::new(&read_path).args([&path, threads]))?;
                    keep(slot, m);
                }
            }
        }

        if let (Some(py), "a" | "b" | "d") = (&python, input.key) {
            let py_out = target_dir()
                .join("xtask")
                .join(format!("bench-py-{}", input.key));
            let _ = fs::remove_dir_all(&py_out);
            fs::create_dir_all(&py_out)?;
            settle(Some(&input.path));
            let script = workspace_root().join("xtask/bench/python_baseline.py");
            row.py = Some(measure(
                Command::new(py).arg(script).arg(&input.path).arg(&py_out),
            )?);
            let _ = fs::remove_dir_all(&py_out);
        }
        rows.push(row);
    }
    print_table(&rows, python.is_some(), dropped);

    if wanted("w") {
        let d = input_spec(&dir, "d", args.shrink.max(1));
        if !d.path.exists() {
            let mut cmd = Command::new(&me);
            cmd.args(["bench", "--generate-only", "--only", "d", "--shrink"])
                .arg(args.shrink.max(1).to_string());
            crate::util::run(&mut cmd)?;
        }
        eprintln!("bench w: the workflow step on {}", d.path.display());
        let concurrency = 32; // the default UPLOAD_CONCURRENCY
        let row = crate::bench_workflow::bench_workflow(&bin, &d.path, concurrency)?;
        print_workflow(&row, &d, concurrency);
    }
    Ok(())
}

fn print_workflow(row: &crate::bench_workflow::WorkflowRow, input: &Input, concurrency: u32) {
    use crate::bench_workflow::{CONNECT_MS, LATENCY_MS, MB_PER_S};
    let mib = |b: u64| b as f64 / 1_048_576.0;
    println!(
        "\nWorkflow step on {} ({:.0} MiB raw → {} chunk files, {:.0} MiB), fake Pennsieve with \
         {LATENCY_MS} ms per reply, {MB_PER_S} MB/s per connection, {CONNECT_MS} ms per new \
         connection; {concurrency} upload workers:\n",
        input.key,
        mib(input.raw_bytes),
        row.files,
        mib(row.bytes)
    );
    println!("| run | wall s | CPU-s | fake's CPU-s | peak RSS MiB | peak output dir MiB |");
    println!("|---|---|---|---|---|---|");
    for (what, run) in [
        ("convert alone", &row.convert),
        ("upload alone (`import`)", &row.upload),
        ("convert + import, streaming", &row.streaming),
        ("… with DELETE_AFTER_UPLOAD", &row.streaming_delete),
    ] {
        println!(
            "| {what} | {:.2} | {:.2} | {} | {:.0} | {:.0} |",
            secs(run.measured.wall),
            secs(run.measured.cpu),
            run.fake_cpu.map_or("-".into(), |c| format!("{c:.2}")),
            run.measured.peak_rss_kib as f64 / 1024.0,
            mib(run.peak_disk)
        );
    }
    let bound = row.convert.measured.wall.max(row.upload.measured.wall);
    let files_per_s = row.files as f64 / secs(row.upload.measured.wall);
    println!(
        "\nstreaming ÷ max(convert, upload) = {:.2} (sequential would be {:.2}); upload alone \
         {files_per_s:.0} files/s, {:.0} MB/s",
        secs(row.streaming.measured.wall) / secs(bound),
        (secs(row.convert.measured.wall) + secs(row.upload.measured.wall)) / secs(bound),
        row.bytes as f64 / 1e6 / secs(row.upload.measured.wall),
    );
}

/// One input's measurements, each the run with the fewest CPU-seconds.
struct Row<'a> {
    input: &'a Input,
    out: Option<(u64, u64)>,
    ours: Option<Measured>,
    read_floor: Option<Measured>,
    write_floor: Option<Measured>,
    decode1: Option<Measured>,
    decode2: Option<Measured>,
    py: Option<Measured>,
}

impl<'a> Row<'a> {
    fn new(input: &'a Input) -> Self {
        Row {
            input,
            out: None,
            ours: None,
            read_floor: None,
            write_floor: None,
            decode1: None,
            decode2: None,
            py: None,
        }
    }
}

#[derive(Clone, Copy)]
pub(crate) struct Measured {
    pub wall: Duration,
    pub cpu: Duration,
    pub peak_rss_kib: u64,
}

/// Keeps the run with fewer CPU-seconds (and the highest peak RSS seen).
fn keep(slot: &mut Option<Measured>, m: Measured) {
    *slot = Some(match *slot {
        None => m,
        Some(old) => {
            let mut best = if m.cpu < old.cpu { m } else { old };
            best.peak_rss_kib = old.peak_rss_kib.max(m.peak_rss_kib);
            best
        }
    });
}

/// `sync`, drop the page cache (when allowed), then read `input` once so every run starts from
/// the same state: input cached, no dirty pages of earlier runs being written back. Returns
/// whether the cache could be dropped.
pub(crate) fn settle(input: Option<&Path>) -> bool {
    let _ = Command::new("sync").status();
    let dropped = fs::write("/proc/sys/vm/drop_caches", "3").is_ok();
    if let Some(path) = input
        && let Ok(mut f) = fs::File::open(path)
    {
        let _ = std::io::copy(&mut f, &mut std::io::sink());
    }
    dropped
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn print_table(rows: &[Row], python_ran: bool, dropped: bool) {
    println!();
    println!(
        "| input | raw MiB | ours wall s | ours CPU-s | cores used | floor CPU-s (read + write) | CPU / floor | peak RSS MiB | decode 1→2 threads | python wall s | python/ours wall |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let (Some(ours), Some(read), Some(write)) = (r.ours, r.read_floor, r.write_floor) else {
            continue;
        };
        let floor = read.cpu + write.cpu;
        let decode = match (r.decode1, r.decode2) {
            (Some(one), Some(two)) => format!(
                "{:.2} → {:.2} s ({:.2}x)",
                secs(one.wall),
                secs(two.wall),
                secs(one.wall) / secs(two.wall)
            ),
            _ => "-".into(),
        };
        let (py_s, speedup) = match &r.py {
            Some(p) => (
                format!("{:.2}", secs(p.wall)),
                format!("{:.1}x", secs(p.wall) / secs(ours.wall)),
            ),
            None => ("-".into(), "-".into()),
        };
        println!(
            "| {} {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} ({:.2} + {:.2}) | {:.2} | {:.0} | {} | {} | {} |",
            r.input.key,
            r.input.what,
            r.input.raw_bytes as f64 / 1_048_576.0,
            secs(ours.wall),
            secs(ours.cpu),
            secs(ours.cpu) / secs(ours.wall),
            secs(floor),
            secs(read.cpu),
            secs(write.cpu),
            secs(ours.cpu) / secs(floor),
            ours.peak_rss_kib as f64 / 1024.0,
            decode,
            py_s,
            speedup,
        );
    }
    println!(
        "\nCPU-s = user + system seconds of the process (wait4). Floor: reading the same samples \
         through HDF5 with no output, plus writing the same bytes into as many files, each \
         measured alone. decode: our read path alone (stored chunks read, inflated and \
         unshuffled, no output), wall seconds with 1 and 2 threads. Page cache {}.",
        if dropped {
            "dropped before every run"
        } else {
            "NOT dropped (not root): inputs were only pre-read"
        }
    );
    if !python_ran {
        println!(
            "\nPython baseline NOT run: no python3 with pynwb found (target/oracle-venv is created by \
             the pynwb oracle test, `./x test`; or pass a venv via NWB_BENCH_PYTHON)."
        );
    }
}

/// Runs a command to completion; wall time, CPU time and peak resident set (wait4 rusage).
pub(crate) fn measure(cmd: &mut Command) -> Result<Measured> {
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
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Ok(Measured {
        wall,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        peak_rss_kib: usage.ru_maxrss as u64,
    })
}

pub(crate) fn dir_size(dir: &Path) -> Result<(u64, u64)> {
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

/// Child-process measurements, so each is timed alone by `measure`:
/// - `read PATH`: every sample of every series through HDF5 in chunk-aligned ~8 MiB blocks;
/// - `write DIR FILES BYTES`: that many bytes into that many files in 1 MiB writes.
fn probe(args: &[String]) -> Result<()> {
    let arg = |i: usize| {
        args.get(i)
            .map(String::as_str)
            .context("missing probe argument")
    };
    match arg(0)? {
        "read" => floor_read(Path::new(arg(1)?)),
        "write" => floor_write(Path::new(arg(1)?), arg(2)?.parse()?, arg(3)?.parse()?),
        other => bail!("unknown probe {other}"),
    }
}

/// Reads every sample of the input's series in chunk-aligned ~8 MiB blocks, keeping nothing.
fn floor_read(path: &Path) -> Result<()> {
    let file = hdf5::File::open(path)?;
    for name in file.group("acquisition")?.member_names()? {
        let ds = file.dataset(&format!("/acquisition/{name}/data"))?;
        let shape = ds.shape();
        let (n, c) = (shape[0], shape.get(1).copied().unwrap_or(1));
        let elem = ds.dtype()?.size();
        let mut block = ((8usize << 20) / (c * elem)).max(1);
        if let Some(chunk) = ds.chunk() {
            block = block.div_ceil(chunk[0]) * chunk[0];
        }
        let mut pos = 0;
        while pos < n {
            let end = (pos + block).min(n);
            let bytes = match elem {
                2 => ds.read_slice_2d::<i16, _>(ndarray::s![pos..end, ..])?.len() * 2,
                4 => ds.read_slice_2d::<f32, _>(ndarray::s![pos..end, ..])?.len() * 4,
                _ => ds.read_slice_2d::<f64, _>(ndarray::s![pos..end, ..])?.len() * 8,
            };
            std::hint::black_box(bytes);
            pos = end;
        }
    }
    Ok(())
}

/// Writes `bytes` spread over `files` files in 1 MiB writes.
fn floor_write(dir: &Path, files: u64, bytes: u64) -> Result<()> {
    fs::create_dir_all(dir)?;
    let buf = vec![0x5Au8; 1 << 20];
    let per_file = bytes / files.max(1);
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
    Ok(())
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
        "c" => ("int16 384 ch timestamps with gaps", gib / 2 / shrink),
        "d" => (
            "int16 384 ch gzip4+shuffle, 6 MiB chunks across all channels",
            gib / 2 / shrink,
        ),
        "e" => (
            "int16 1024 ch gzip4+shuffle, 6 MiB chunks across all channels",
            gib / 2 / shrink,
        ),
        "f" => (
            "int16 384 ch gzip4+shuffle, chunks of 64 channels",
            gib / 4 / shrink,
        ),
        _ => ("float32 64 ch explicit timestamps", gib / 4 / shrink),
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
        "d" | "e" | "f" => {
            let c = if key == "e" { 1024 } else { 384 };
            let n = (raw_bytes / 2 / c as u64) as usize;
            b.add_electrodes(ElectrodesTable::simple(c))?;
            let a =
                ArrayD::from_shape_fn(IxDyn(&[n, c]), |ix| signal(ix[0], ix[1], &mut state) as i16);
            let mut s = SeriesSpec::new(
                "/acquisition/ElectricalSeries",
                Samples::I16(a),
                Time::Rate {
                    rate: 30_000.0,
                    starting_time: 0.0,
                },
                (0..c as i64).collect(),
            );
            s.conversion = Some(0.195e-6);
            // As pynwb/neuroconv write them: ~6 MiB chunks spanning all channels, or chunks of
            // a 64-channel group (a chunk of 16384 x 64 int16 is 2 MiB).
            let chunk = match key {
                "f" => vec![16_384, 64],
                _ => vec![(6 << 20) / (2 * c), c],
            };
            s.storage = Storage::Chunked {
                chunk,
                gzip: Some(4),
                shuffle: true,
                fletcher32: false,
            };
            s
        }
        "g" => {
            let c = 64;
            let n = (raw_bytes / 4 / c as u64) as usize;
            b.add_electrodes(ElectrodesTable::simple(c))?;
            let a = ArrayD::from_shape_fn(IxDyn(&[n, c]), |ix| {
                (signal(ix[0], ix[1], &mut state) * 1e-6) as f32
            });
            let ts: Vec<f64> = (0..n).map(|i| 12.5 + i as f64 / 20_000.0).collect();
            SeriesSpec::new(
                "/acquisition/ElectricalSeries",
                Samples::F32(a),
                Time::Timestamps(ts),
                (0..c as i64).collect(),
            )
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
