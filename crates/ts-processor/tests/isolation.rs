//! The HDF5 work runs in a supervised child: a crash, a hang or a signal becomes one clear error,
//! the right exit status, and no partial output. `TS_PROCESSOR_FAULT` makes the child crash or
//! hang after writing every file, as libhdf5 does on some corrupt inputs.

use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{processor, testdata};

/// Our chunk, metadata and temporary files left in `dir`.
fn conversion_files(dir: &Path) -> Vec<String> {
    if !dir.exists() {
        return Vec::new();
    }
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("channel-"))
        .collect()
}

fn error_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("error:"))
        .map(str::to_owned)
        .collect()
}

fn convert_with_fault(fault: &str, out: &Path) -> std::process::Command {
    let mut cmd = processor("warn");
    cmd.env("TS_PROCESSOR_FAULT", fault)
        .arg("convert")
        .arg(testdata().join("sample.nwb"))
        .arg("-o")
        .arg(out);
    cmd
}

#[test]
fn a_crash_in_the_child_is_one_error_and_leaves_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let output = convert_with_fault("crash", &out).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let lines = error_lines(&output);
    assert_eq!(lines.len(), 1, "{output:?}");
    assert!(lines[0].contains("sample.nwb"), "{}", lines[0]);
    assert!(
        lines[0].contains("crashed") && lines[0].contains("SIGSEGV"),
        "{}",
        lines[0]
    );
    assert_eq!(conversion_files(&out), Vec::<String>::new());
}

#[test]
fn a_stalled_child_is_stopped_after_the_stall_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let started = Instant::now();
    let output = convert_with_fault("hang", &out)
        .env("STALL_TIMEOUT_S", "1")
        .output()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let lines = error_lines(&output);
    assert_eq!(lines.len(), 1, "{output:?}");
    assert!(lines[0].contains("no progress"), "{}", lines[0]);
    assert_eq!(conversion_files(&out), Vec::<String>::new());
}

/// Starts a conversion whose child hangs once its files are written, and waits for the files.
fn hanging_conversion(out: &Path) -> Child {
    let child = convert_with_fault("hang", out)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !conversion_files(out)
        .iter()
        .any(|n| n.ends_with(".metadata.json"))
    {
        assert!(Instant::now() < deadline, "no output appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

#[test]
fn sigterm_and_sigint_remove_the_partial_output_and_exit_143_and_130() {
    for (signal, code) in [(libc::SIGTERM, 143), (libc::SIGINT, 130)] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let child = hanging_conversion(&out);
        // SAFETY: sending a signal to the process this test started.
        unsafe { libc::kill(child.id() as i32, signal) };
        let output = child.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(code), "{output:?}");
        assert!(
            error_lines(&output)[0].contains("interrupted"),
            "{output:?}"
        );
        assert_eq!(conversion_files(&out), Vec::<String>::new());
    }
}

#[test]
fn a_closed_stdout_ends_inspect_quietly() {
    let mut child = processor("warn")
        .arg("inspect")
        .arg(testdata().join("sample.nwb"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // like `inspect | head -0`
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_full_stderr_still_gives_exit_1_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("plain.nwb");
    std::fs::write(&input, "not hdf5").unwrap();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let status = processor("info")
        .arg("convert")
        .arg(&input)
        .arg("-o")
        .arg(dir.path().join("out"))
        .stderr(full)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1));
}
