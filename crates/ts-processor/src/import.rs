//! Importing converted files into Pennsieve (the work is in `pennsieve-client`).

use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::config::ContainerConfig;

#[derive(clap::Args)]
pub struct ImportArgs {
    /// Directory of chunk and metadata files written by `convert`.
    pub dir: PathBuf,
}

pub fn run_from_container(config: &ContainerConfig) -> Result<()> {
    bail!(
        "import of {} requested, but the importer is not wired in yet",
        config.output_dir.display()
    )
}

pub fn run_from_cli(args: &ImportArgs) -> Result<()> {
    bail!(
        "import of {} : the importer is not wired in yet",
        args.dir.display()
    )
}
