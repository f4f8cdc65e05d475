//! `ts-processor`: NWB ElectricalSeries → Pennsieve chunked time series (+ optional import).
//!
//! With no arguments it runs in container mode, configured by environment variables exactly as the
//! Pennsieve workflow expects; with a subcommand it is a CLI for people. The work itself lives in
//! the library crates; this binary only parses settings, wires them up and reports.

mod config;
mod files;
mod import;
mod inspect;
mod pipeline;
mod progress;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use tracing::info;

use crate::config::ContainerConfig;
use crate::files::ExistingOutput;
use crate::pipeline::ConvertOptions;
use crate::progress::Progress;

#[derive(Parser)]
#[command(
    name = "ts-processor",
    version,
    about = "Convert NWB ElectricalSeries to Pennsieve chunked time series and import them.",
    long_about = "Convert NWB ElectricalSeries to Pennsieve chunked time series and import them.\n\n\
        Run with no arguments for container mode (configured by INPUT_DIR, OUTPUT_DIR, \
        CHUNK_SIZE_MB, IMPORTER_ENABLED, ... as in a Pennsieve workflow)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Convert one NWB file into chunk and metadata files.
    Convert(ConvertArgs),
    /// Show the series, channels, time base, scaling and storage of an NWB file.
    Inspect(InspectArgs),
    /// Import a directory of converted files into Pennsieve (credentials from the environment).
    Import(import::ImportArgs),
}

#[derive(clap::Args)]
struct ConvertArgs {
    /// The NWB file.
    input: PathBuf,
    /// Output directory (created if missing).
    #[arg(short, long)]
    output: PathBuf,
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
    /// MiB of raw samples read per block (memory use is a small multiple of this).
    #[arg(long, default_value_t = 8.0, hide = true)]
    block_mb: f64,
}

#[derive(clap::Args)]
struct InspectArgs {
    /// The NWB file.
    input: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Also list series under /processing and in LFP/FilteredEphys containers.
    #[arg(long)]
    include_processing: bool,
}

fn parse_chunk_size(text: &str) -> Result<f64, String> {
    config::parse_chunk_size_mb(text).map_err(|e| format!("{e:#}"))
}

fn main() -> ExitCode {
    let json_logs = std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    init_logging(json_logs);
    let container_mode = std::env::args_os().len() <= 1;
    let result = if container_mode {
        run_container()
    } else {
        run_cli(Cli::parse(), json_logs)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if json_logs {
                tracing::error!(error = %format!("{err:#}"), "failed");
            } else {
                eprintln!("error: {err:#}");
            }
            ExitCode::FAILURE
        }
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
    let config = ContainerConfig::from_env()?;
    info!(?config, "container mode");
    let input = files::find_single_nwb(&config.input_dir)?;
    let options = ConvertOptions {
        chunk_size_mb: config.chunk_size_mb,
        compression_level: config.compression_level,
        // A retried workflow step must not mix its files with a previous attempt's.
        existing_output: ExistingOutput::Replace,
        ..ConvertOptions::default()
    };
    let progress = Progress::hidden();
    let summary = pipeline::convert(&input, &config.output_dir, &options, &progress)?;
    info!("{summary}");
    if config.importer_enabled {
        import::run_from_container(&config)?;
    } else {
        info!(
            "import disabled (IMPORTER_ENABLED / ENVIRONMENT); files left in the output directory"
        );
    }
    Ok(())
}

fn run_cli(cli: Cli, json_logs: bool) -> Result<()> {
    match cli.command {
        Command::Convert(args) => {
            let options = ConvertOptions {
                chunk_size_mb: args.chunk_size_mb,
                compression_level: args.compression_level,
                series: args.series,
                include_processing: args.include_processing,
                block_bytes: ((args.block_mb * 1_048_576.0) as usize).max(1),
                existing_output: if args.overwrite {
                    ExistingOutput::Replace
                } else {
                    ExistingOutput::Refuse
                },
                threads: args.threads,
            };
            let progress = Progress::new(!json_logs);
            let result = pipeline::convert(&args.input, &args.output, &options, &progress);
            progress.finish();
            let summary = result?;
            info!("{summary}");
            Ok(())
        }
        Command::Inspect(args) => {
            let report = inspect::inspect(&args.input, args.include_processing)?;
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).context("encoding the report")?
                );
            } else {
                print!("{}", inspect::render_text(&report));
            }
            Ok(())
        }
        Command::Import(args) => import::run_from_cli(&args),
    }
}
