//! `ts-processor`: NWB ElectricalSeries → Pennsieve chunked time series (+ optional import).
//!
//! With no arguments it runs in container mode, configured by environment variables exactly as the
//! Pennsieve workflow expects; with a subcommand it is a CLI for people. The work itself lives in
//! the library crates; this binary only parses settings, wires them up and reports.

mod convert;
mod files;
mod import;
mod inspect;
mod progress;
mod settings;
mod supervise;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use tracing::info;

use ts_convert::{ExecOptions, ExistingOutput, Options};

use crate::progress::Progress;
use crate::settings::ContainerSettings;

#[derive(Parser)]
#[command(
    name = "ts-processor",
    version,
    about = "Convert NWB ElectricalSeries to Pennsieve chunked time series and import them.",
    long_about = "Convert NWB ElectricalSeries to Pennsieve chunked time series and import them.\n\n\
        Run with no arguments for container mode (configured by INPUT_DIR, OUTPUT_DIR, \
        CHUNK_SIZE_MB, IMPORTER_ENABLED, ... as in a Pennsieve workflow)."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Convert one NWB file into chunk and metadata files.
    Convert(ConvertArgs),
    /// Show the series, channels, time base, scaling and storage of an NWB file.
    Inspect(InspectArgs),
    /// Import a directory of converted files into Pennsieve (credentials from the environment).
    Import(import::ImportArgs),
    /// Draw a PNG preview of converted files: µV against time, one row per channel.
    Preview(PreviewArgs),
}

#[derive(clap::Args)]
pub(crate) struct ConvertArgs {
    /// The NWB file.
    pub(crate) input: PathBuf,
    /// Output directory (created if missing).
    #[arg(short, long)]
    pub(crate) output: PathBuf,
    /// Uncompressed MiB per chunk file; fractions allowed.
    #[arg(long, default_value_t = 1.0, value_parser = parse_chunk_size)]
    chunk_size_mb: f64,
    /// gzip level of the chunk files, 0 (stored, the default) to 9.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=9))]
    compression_level: u32,
    /// Convert only these series (name or path); repeatable. Default: all.
    #[arg(long = "series", value_name = "NAME")]
    series: Vec<String>,
    /// Also convert series under /processing and in LFP/FilteredEphys containers.
    #[arg(long)]
    include_processing: bool,
    /// Worker threads for scaling and writing (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Replace chunk and metadata files an earlier run left in the output directory.
    #[arg(long)]
    overwrite: bool,
    /// The most chunk files to write (a run that would write more fails before starting).
    #[arg(long, env = "MAX_OUTPUT_FILES", default_value_t = ts_convert::DEFAULT_MAX_FILES)]
    max_files: u64,
    /// Import into Pennsieve while converting: each chunk file is uploaded as soon as it is
    /// written (credentials, hosts and limits from the environment, as for `import`).
    #[arg(long)]
    import: bool,
    /// The workflow run to import into (with --import).
    #[arg(long, env = "INTEGRATION_ID")]
    integration_id: Option<String>,
    /// Remove each chunk file once it is uploaded, so the disk holds only the files not uploaded
    /// yet (with --import; also DELETE_AFTER_UPLOAD). The directory then keeps only metadata.
    #[arg(long, requires = "import")]
    delete_after_upload: bool,
    /// MiB of raw samples read per block (memory use is a small multiple of this).
    #[arg(long, default_value_t = 8.0, hide = true)]
    block_mb: f64,
}

#[derive(clap::Args)]
pub(crate) struct InspectArgs {
    /// The NWB file.
    pub(crate) input: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Also list series under /processing and in LFP/FilteredEphys containers.
    #[arg(long)]
    include_processing: bool,
}

#[derive(clap::Args)]
pub(crate) struct PreviewArgs {
    /// Output directory of a conversion (chunk and metadata files).
    pub(crate) dir: PathBuf,
    /// The PNG file to write.
    #[arg(short, long)]
    pub(crate) output: PathBuf,
    /// Channels to draw: A..B (end exclusive), A..=B or A [default: the first 8 present; at most 64].
    #[arg(long, value_parser = ts_preview::parse_channel_range)]
    channels: Option<std::ops::Range<u32>>,
    /// Start, seconds after the first sample [default: 0].
    #[arg(long = "from", value_name = "S")]
    from_s: Option<f64>,
    /// Length of the window, seconds [default: to the last sample].
    #[arg(long, value_name = "N")]
    seconds: Option<f64>,
    /// Image width, pixels.
    #[arg(long, default_value_t = ts_preview::DEFAULT_WIDTH)]
    width: u32,
    /// Image height, pixels.
    #[arg(long, default_value_t = ts_preview::DEFAULT_HEIGHT)]
    height: u32,
}

fn parse_chunk_size(text: &str) -> Result<f64, String> {
    settings::parse_chunk_size_mb(text).map_err(|e| format!("{e:#}"))
}

/// A chunk file that spans several read blocks stays open while they are read, one per channel:
/// a 1,024-channel probe needs more than the usual soft limit of 1,024 open files. Raise the soft
/// limit to the hard one, as Go programs do at start; if that fails, an error names the file
/// that could not be opened.
fn raise_open_file_limit() {
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        // (An unlimited hard limit is not a valid soft one: cap at what Linux allows by default.)
        let wanted = |hard: libc::rlim_t| hard.min(1 << 20);
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0
            && limit.rlim_cur < wanted(limit.rlim_max)
        {
            limit.rlim_cur = wanted(limit.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// Blocks of samples are allocated and freed over and over, a few MiB each. By default glibc
/// returns such allocations to the kernel on free and gets fresh ones by mmap, so every block
/// is faulted in and zeroed by the kernel again (a third of the CPU time on contiguous inputs).
/// Keeping them in the heap reuses the same memory; peak RSS does not change.
fn keep_freed_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets glibc's allocation thresholds.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
    }
}

fn main() -> ExitCode {
    let json_logs = std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    init_logging(json_logs);
    raise_open_file_limit();
    keep_freed_blocks();
    // No arguments: container mode.
    let cli = (std::env::args_os().len() > 1).then(Cli::parse);
    if supervise::wanted() {
        // HDF5 work runs in a supervised copy of this process (see supervise.rs).
        match supervise::targets(cli.as_ref()) {
            Ok(Some(targets)) => return supervise::run(&targets, json_logs),
            Ok(None) => {}
            Err(err) => {
                report_error(&err, json_logs);
                return ExitCode::FAILURE;
            }
        }
    }
    let result = match cli {
        None => run_container(),
        Some(cli) => run_cli(cli, json_logs),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            report_error(&err, json_logs);
            ExitCode::FAILURE
        }
    }
}

/// The one `error:` line (or JSON event). Writing errors are ignored: with stderr closed or full
/// there is nowhere left to report them, and the exit status still says it.
pub(crate) fn report_error(err: &anyhow::Error, json_logs: bool) {
    if json_logs {
        tracing::error!(error = %format!("{err:#}"), "failed");
    } else {
        let _ = writeln!(std::io::stderr(), "error: {err:#}");
    }
}

/// Prints to stdout; a reader that went away (`inspect | head`) ends the output quietly.
fn print_stdout(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing to standard output"),
    }
}

fn init_logging(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    if json {
        builder.json().init();
    } else {
        builder.with_ansi(std::io::stderr().is_terminal()).init();
    }
}

/// Container mode: everything from the environment (spec "Inputs and settings").
fn run_container() -> Result<()> {
    let settings = ContainerSettings::from_env()?;
    info!(?settings, "container mode");
    let input = files::find_single_nwb(&settings.input_dir)?;
    // A retried workflow step must not mix its files with a previous attempt's.
    let existing = ExistingOutput::Replace;
    match settings.import {
        Some(import) => convert::convert_and_import(
            &input,
            &settings.output_dir,
            &settings.options,
            &settings.exec,
            existing,
            &Progress::hidden(),
            &import::Importer::new(import)?,
        ),
        None => {
            let summary = convert::convert(
                &input,
                &settings.output_dir,
                &settings.options,
                &settings.exec,
                existing,
                &Progress::hidden(),
            )?;
            info!("{summary}");
            info!(
                environment = %settings.environment,
                "import disabled (IMPORTER_ENABLED / ENVIRONMENT); files left in the output directory"
            );
            Ok(())
        }
    }
}

/// The importer's settings for `convert --import`: the run from the flag or `INTEGRATION_ID`,
/// the rest from the environment.
pub(crate) fn import_settings(
    integration_id: Option<String>,
    delete_after_upload: bool,
) -> Result<settings::ImportSettings> {
    let run = integration_id
        .context("--import needs the workflow run: pass --integration-id or set INTEGRATION_ID")?;
    let mut settings = settings::ImportSettings::from_env(run)?;
    settings.delete_after_upload |= delete_after_upload;
    Ok(settings)
}

fn run_cli(cli: Cli, json_logs: bool) -> Result<()> {
    match cli.command {
        Command::Convert(args) => {
            let options = Options {
                chunk_size_mb: args.chunk_size_mb,
                series: args.series,
                include_processing: args.include_processing,
                max_files: args.max_files,
            };
            let exec = ExecOptions {
                compression_level: args.compression_level,
                block_bytes: ((args.block_mb * 1_048_576.0) as usize).max(1),
                threads: args.threads,
                ..ExecOptions::default()
            };
            let existing = if args.overwrite {
                ExistingOutput::Replace
            } else {
                ExistingOutput::Refuse
            };
            let progress = Progress::new(!json_logs);
            if args.import {
                let importer = import::Importer::new(import_settings(
                    args.integration_id,
                    args.delete_after_upload,
                )?)?;
                return convert::convert_and_import(
                    &args.input,
                    &args.output,
                    &options,
                    &exec,
                    existing,
                    &progress,
                    &importer,
                );
            }
            let result = convert::convert(
                &args.input,
                &args.output,
                &options,
                &exec,
                existing,
                &progress,
            );
            progress.finish();
            let summary = result?;
            info!("{summary}");
            Ok(())
        }
        Command::Inspect(args) => {
            let report = inspect::inspect(&args.input, args.include_processing)?;
            if args.json {
                let json = serde_json::to_string_pretty(&report).context("encoding the report")?;
                print_stdout(&format!("{json}\n"))
            } else {
                print_stdout(&inspect::render_text(&report))
            }
        }
        Command::Import(args) => import::run_from_cli(&args),
        Command::Preview(args) => {
            let options = ts_preview::PreviewOptions {
                channels: args.channels,
                from_s: args.from_s,
                seconds: args.seconds,
                width: args.width,
                height: args.height,
            };
            let summary = ts_preview::render(&args.dir, &options, &args.output)?;
            print_stdout(&format!("{summary}\n"))
        }
    }
}
