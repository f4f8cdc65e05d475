//! `cargo xtask <task>`: project automation that is not part of the product.
//! Every task is plain Rust so it runs the same on a laptop and in CI.

use clap::{Parser, Subcommand};

mod bench;
mod bench_workflow;
mod docker;
mod e2e;
mod fixtures;
mod util;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Project automation for nwb2pennsieve")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Write the NWB fixture files (small ones into testdata/).
    Fixtures(fixtures::FixturesArgs),
    /// End-to-end throughput and peak memory on three generated inputs, against a floor.
    Bench(bench::BenchArgs),
    /// The binary in container mode, importer on, against the fake Pennsieve; checks every upload.
    E2e,
    /// Build the container image from docker/Dockerfile (needs a Docker engine).
    Docker {
        #[arg(long, default_value = "ts-processor:dev")]
        tag: String,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Fixtures(args) => fixtures::run(&args),
        Task::Bench(args) => bench::run_bench(&args),
        Task::E2e => e2e::run_e2e(),
        Task::Docker { tag } => docker::run_docker(&tag),
    }
}
