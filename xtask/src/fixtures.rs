//! NWB fixture files written with the `hdf5` crate, following pynwb's layout.

/// Options of `cargo xtask fixtures`.
#[derive(clap::Args)]
pub struct FixturesArgs {}

pub fn run(_args: &FixturesArgs) -> anyhow::Result<()> {
    anyhow::bail!("fixtures: not written yet")
}
