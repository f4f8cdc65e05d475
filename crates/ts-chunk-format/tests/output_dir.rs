//! The output directory: creation, the lock, the refuse/replace policy, cleanup after a failed
//! run, and files planted by someone else.

use std::fs;
use std::path::Path;

use ts_chunk_format::{
    ChannelMetadata, ChunkName, ChunkWriter, Error, ExistingOutput, LOCK_FILE_NAME, OutputDir,
    read_chunk,
};

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn write_one_channel(out: &OutputDir) {
    let mut writer = ChunkWriter::new(0);
    let chunk = out
        .write_chunk(&mut writer, &ChunkName::local(0, 1, 2), &[1.0, 2.0])
        .unwrap();
    assert_eq!(read_chunk(&chunk.path).unwrap(), [1.0, 2.0]);
    let metadata = ChannelMetadata::continuous("A", "g", 1, 2, 1e6);
    out.write_metadata(0, &metadata).unwrap();
}

#[test]
fn prepare_creates_nested_directories_and_leaves_no_probe() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("a/b");
    let out = OutputDir::prepare(&dir, ExistingOutput::Refuse).unwrap();
    assert_eq!(out.path(), dir);
    assert_eq!(out.removed_earlier(), 0);
    assert_eq!(names(&dir), [LOCK_FILE_NAME]);
}

#[test]
fn earlier_output_is_refused_or_replaced_and_other_files_stay() {
    let dir = tempfile::tempdir().unwrap();
    write_one_channel(&OutputDir::prepare(dir.path(), ExistingOutput::Refuse).unwrap());
    fs::write(dir.path().join("keep.txt"), "").unwrap();
    fs::write(dir.path().join(".channel-00003_1_2.bin.gz.77.0.tmp"), "").unwrap();

    let err = OutputDir::prepare(dir.path(), ExistingOutput::Refuse).unwrap_err();
    let message = err
        .to_string()
        .replace(&dir.path().display().to_string(), "<dir>");
    insta::assert_snapshot!(message, @"output directory <dir> already holds 3 file(s) from an earlier conversion (e.g. .channel-00003_1_2.bin.gz.77.0.tmp)");
    assert!(matches!(err, Error::EarlierOutput { count: 3, .. }));

    let out = OutputDir::prepare(dir.path(), ExistingOutput::Replace).unwrap();
    assert_eq!(out.removed_earlier(), 3);
    assert_eq!(names(dir.path()), [LOCK_FILE_NAME, "keep.txt"]);
}

#[test]
fn cleanup_removes_only_conversion_files() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("notes.txt"), "").unwrap();
    fs::create_dir(dir.path().join("channel-00009.metadata.json")).unwrap(); // not a file
    let out = OutputDir::prepare(dir.path(), ExistingOutput::Refuse).unwrap();
    write_one_channel(&out);
    // A streamed chunk still open: its temporary file is ours too.
    let open = out
        .begin_chunk(&ChunkWriter::new(0), &ChunkName::local(1, 0, 9))
        .unwrap();
    assert_eq!(out.conversion_files().unwrap().len(), 3);
    let planned = [
        "channel-00000_1_2.bin.gz",
        "channel-00000.metadata.json",
        "channel-00001_0_9.bin.gz",
        "channel-00009.metadata.json", // a directory: left alone
    ];
    assert_eq!(out.remove_files(planned).unwrap(), 3);
    drop(open);
    assert_eq!(
        names(dir.path()),
        [LOCK_FILE_NAME, "channel-00009.metadata.json", "notes.txt"]
    );
}

#[test]
fn an_unusable_directory_is_an_error_naming_it() {
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("plain-file");
    fs::write(&file, "").unwrap();
    let err = OutputDir::prepare(&file, ExistingOutput::Refuse).unwrap_err();
    assert!(
        err.to_string().contains(&file.display().to_string()),
        "{err}"
    );
    // The OS error is the source, not repeated in the message: a chain shows it exactly once.
    assert!(matches!(err, Error::Io { .. }));
    assert!(!err.to_string().contains("os error"), "{err}");
    let shown = chain(&err);
    assert_eq!(shown.matches("os error").count(), 1, "{shown}");
}

/// An error and its sources joined by `: `, as `anyhow`'s `{:#}` shows them.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

#[test]
fn a_second_prepare_of_a_locked_directory_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let first = OutputDir::prepare(dir.path(), ExistingOutput::Refuse).unwrap();
    for existing in [ExistingOutput::Refuse, ExistingOutput::Replace] {
        let err = OutputDir::prepare(dir.path(), existing).unwrap_err();
        assert!(
            matches!(&err, Error::Locked { dir: d } if d == dir.path()),
            "{err:?}"
        );
        let message = err
            .to_string()
            .replace(&dir.path().display().to_string(), "<dir>");
        assert_eq!(
            message,
            "output directory <dir> is in use by another conversion (it holds the lock on .ts-processor.lock)"
        );
    }
    // A clone shares the lock: it is released when the last one is dropped.
    let clone = first.clone();
    write_one_channel(&clone);
    drop(first);
    assert!(matches!(
        OutputDir::prepare(dir.path(), ExistingOutput::Replace),
        Err(Error::Locked { .. })
    ));
    drop(clone);
    // The lock file stays but is neither earlier output nor removed as such.
    let again = OutputDir::prepare(dir.path(), ExistingOutput::Replace).unwrap();
    assert_eq!(again.removed_earlier(), 2);
    assert_eq!(names(dir.path()), [LOCK_FILE_NAME]);
    assert!(again.conversion_files().unwrap().is_empty());
}

/// Environment variable naming the directory `lock_probe_in_child_process` tries to prepare.
const CHILD_DIR_VAR: &str = "TS_CHUNK_FORMAT_TEST_LOCKED_DIR";

/// Runs only as the child of `the_lock_holds_across_processes` (a no-op otherwise): prepares the
/// directory it is given and prints what happened.
#[test]
fn lock_probe_in_child_process() {
    let Some(dir) = std::env::var_os(CHILD_DIR_VAR) else {
        return;
    };
    match OutputDir::prepare(&dir, ExistingOutput::Replace) {
        Err(Error::Locked { .. }) => println!("CHILD-RESULT: locked"),
        Err(other) => println!("CHILD-RESULT: error {other}"),
        Ok(_) => println!("CHILD-RESULT: prepared"),
    }
}

#[test]
fn the_lock_holds_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let probe = || {
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["lock_probe_in_child_process", "--exact", "--nocapture"])
            .env(CHILD_DIR_VAR, dir.path())
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        stdout
            .lines()
            .find_map(|line| line.strip_prefix("CHILD-RESULT: "))
            .unwrap_or_else(|| panic!("no result from the child: {stdout}"))
            .to_owned()
    };
    let out = OutputDir::prepare(dir.path(), ExistingOutput::Refuse).unwrap();
    write_one_channel(&out);
    assert_eq!(probe(), "locked");
    // The child changed nothing.
    assert_eq!(out.conversion_files().unwrap().len(), 2);
    drop(out);
    assert_eq!(probe(), "prepared");
}

#[test]
fn cleanup_removes_only_what_this_run_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let out = OutputDir::prepare(dir.path(), ExistingOutput::Refuse).unwrap();
    // Written from several threads through clones.
    std::thread::scope(|scope| {
        for channel in 0..4u32 {
            let out = out.clone();
            scope.spawn(move || {
                let mut writer = ChunkWriter::new(0);
                let name = ChunkName::local(channel, 1, 2);
                out.write_chunk(&mut writer, &name, &[1.0, 2.0]).unwrap();
                let metadata = ChannelMetadata::continuous("A", "g", 1, 2, 1e6);
                out.write_metadata(channel, &metadata).unwrap();
            });
        }
    });
    // Files someone else put there meanwhile (e.g. a run that ignored the lock), named like ours.
    let foreign = [
        "channel-00007_1_2.bin.gz",
        "channel-00007.metadata.json",
        ".channel-00007_1_2.bin.gz.1.00ff00ff00ff00ff.tmp",
    ];
    for name in foreign {
        fs::write(dir.path().join(name), "theirs").unwrap();
    }
    // A streamed chunk still open, and one finished: both are this run's.
    let writer = ChunkWriter::new(0);
    let open = out
        .begin_chunk(&writer, &ChunkName::local(5, 0, 9))
        .unwrap();
    let mut finished = out
        .begin_chunk(&writer, &ChunkName::local(6, 0, 9))
        .unwrap();
    finished.append(&[1.0]).unwrap();
    finished.finish().unwrap();
    // What this run planned to write (channel 5's chunk is not finished: its name is absent).
    let mut planned: Vec<String> = (0..4u32)
        .flat_map(|c| {
            [
                ChunkName::local(c, 1, 2).to_string(),
                ts_chunk_format::metadata_file_name(c),
            ]
        })
        .collect();
    planned.push(ChunkName::local(5, 0, 9).to_string());
    planned.push(ChunkName::local(6, 0, 9).to_string());

    // The 8 files of channels 0-3, channel 6's chunk and channel 5's open temporary file.
    assert_eq!(out.remove_files(&planned).unwrap(), 8 + 2);
    drop(open);
    let mut expected = vec![LOCK_FILE_NAME];
    expected.extend(foreign);
    expected.sort();
    assert_eq!(names(dir.path()), expected);
    for name in foreign {
        assert_eq!(fs::read_to_string(dir.path().join(name)).unwrap(), "theirs");
    }
    // Nothing is left to remove.
    assert_eq!(out.remove_files(&planned).unwrap(), 0);
    // A path rather than a file name is refused, not followed.
    assert!(out.remove_files(["../elsewhere"]).is_err());
}

#[test]
fn temporary_names_are_unpredictable() {
    let dir = tempfile::tempdir().unwrap();
    let out = OutputDir::prepare(dir.path(), ExistingOutput::Refuse).unwrap();
    let writer = ChunkWriter::new(0);
    let name = ChunkName::local(0, 1, 2);
    let a = out.begin_chunk(&writer, &name).unwrap();
    let b = out.begin_chunk(&writer, &name).unwrap();
    let prefix = format!(".{name}.{}.", std::process::id());
    for file in [&a, &b] {
        let temp = file.temp_path().file_name().unwrap().to_str().unwrap();
        let random = temp
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(".tmp"))
            .unwrap_or_else(|| panic!("{temp}"));
        assert_eq!(random.len(), 16, "{temp}");
        assert!(random.chars().all(|c| c.is_ascii_hexdigit()), "{temp}");
    }
    assert_ne!(a.temp_path(), b.temp_path());
}

#[cfg(unix)]
#[test]
fn planted_symlinks_are_never_followed() {
    use std::os::unix::fs::symlink;

    let root = tempfile::tempdir().unwrap();
    let victim = root.path().join("victim.txt");
    fs::write(&victim, "precious").unwrap();
    let dir = root.path().join("out");
    fs::create_dir(&dir).unwrap();

    // At the lock file's name: refused, not followed.
    symlink(&victim, dir.join(LOCK_FILE_NAME)).unwrap();
    let err = OutputDir::prepare(&dir, ExistingOutput::Refuse).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(err.to_string().contains(LOCK_FILE_NAME), "{err}");
    fs::remove_file(dir.join(LOCK_FILE_NAME)).unwrap();

    // At the names the former scheme (`.{name}.{pid}.{counter}.tmp`) would have used, including the
    // write-check probe: the random names never meet them.
    let pid = std::process::id();
    let chunk = ChunkName::local(0, 1, 2);
    let mut planted = Vec::new();
    for counter in 0..64 {
        for final_name in [
            "write-check".to_owned(),
            chunk.to_string(),
            "channel-00000.metadata.json".to_owned(),
        ] {
            let link = dir.join(format!(".{final_name}.{pid}.{counter}.tmp"));
            symlink(&victim, &link).unwrap();
            planted.push(link);
        }
    }
    let out = OutputDir::prepare(&dir, ExistingOutput::Replace).unwrap();
    write_one_channel(&out);
    let mut writer = ChunkWriter::new(0);
    out.write_chunk(&mut writer, &chunk, &[3.0]).unwrap();
    let mut streamed = out.begin_chunk(&writer, &chunk).unwrap();
    streamed.append(&[4.0]).unwrap();
    streamed.finish().unwrap();
    out.remove_files([chunk.to_string(), ts_chunk_format::metadata_file_name(0)])
        .unwrap();
    drop(out);

    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    // Cleanup never touches links (or their targets), even those named like our temporary files.
    for link in &planted {
        assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
    }
}
