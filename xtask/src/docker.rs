//! `cargo xtask docker`: build the container image (docker/Dockerfile).

use std::process::Command;

use anyhow::{Result, bail};

use crate::util::{run, workspace_root};

pub fn run_docker(tag: &str) -> Result<()> {
    // `docker version` talks to the engine; the client alone answers `--version` but cannot build.
    let engine = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output();
    match engine {
        Err(_) => bail!("docker is not installed; install Docker to build the image"),
        Ok(out) if !out.status.success() => bail!(
            "no Docker engine is reachable (the docker client is installed but `docker version` \
             cannot reach a server); start the Docker daemon and retry"
        ),
        Ok(_) => {}
    }
    let root = workspace_root();
    run(Command::new("docker").current_dir(&root).args([
        "build",
        "--file",
        "docker/Dockerfile",
        "--tag",
        tag,
        ".",
    ]))?;
    println!("built image {tag}");
    Ok(())
}
