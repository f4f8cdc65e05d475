//! `cargo xtask <task>`: project automation that is not part of the product.
//! Every task is plain Rust so it runs the same on a laptop and in CI.

use clap::{Parser, Subcommand};

mod fixtures;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Project automation for nwb2pennsieve")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Write the NWB fixture files (small ones into testdata/, big ones under target/).
    Fixtures(fixtures::FixturesArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Fixtures(args) => fixtures::run(&args),
    }
}
