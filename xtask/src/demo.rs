//! `cargo xtask demo`: convert the bundled sample and show what came out.

use std::fs;

use anyhow::{Context, Result};

use crate::util::{build_processor, run, target_dir, workspace_root};

pub fn run_demo() -> Result<()> {
    let sample = workspace_root().join("testdata").join("sample.nwb");
    let out = target_dir().join("demo-output");
    let bin = build_processor(true)?;

    println!("$ ts-processor inspect testdata/sample.nwb");
    run(std::process::Command::new(&bin).arg("inspect").arg(&sample))?;

    println!(
        "\n$ ts-processor convert testdata/sample.nwb -o {} --chunk-size-mb 0.25 --overwrite",
        out.display()
    );
    run(std::process::Command::new(&bin)
        .arg("convert")
        .arg(&sample)
        .arg("--output")
        .arg(&out)
        .args(["--chunk-size-mb", "0.25", "--overwrite"]))?;

    let mut names: Vec<String> = fs::read_dir(&out)
        .with_context(|| format!("listing {}", out.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    println!("\n{} files in {}:", names.len(), out.display());
    for name in names.iter().take(6) {
        println!("  {name}");
    }
    if names.len() > 6 {
        println!("  ... and {} more", names.len() - 6);
    }
    if let Some(meta) = names.iter().find(|n| n.ends_with(".metadata.json")) {
        let text = fs::read_to_string(out.join(meta))?;
        println!("\n{meta}:\n  {text}");
    }
    if let Some(chunk) = names.iter().find(|n| n.ends_with(".bin.gz")) {
        let samples = ts_chunk_format::read_chunk(&out.join(chunk))?;
        let first: Vec<String> = samples.iter().take(5).map(|v| format!("{v:.3}")).collect();
        println!(
            "\n{chunk}: {} samples (big-endian float64 µV), first: {} ...",
            samples.len(),
            first.join(", ")
        );
    }
    Ok(())
}
