//! Protection from the HDF5 C library: run the work in a supervised child process.
//!
//! A corrupt file can make libhdf5 crash (SIGSEGV) or spin forever, and no Rust code in the same
//! process can recover from that. [`supervise`] runs a command (normally the current executable
//! again, told by its arguments or environment to do the work) with a heartbeat pipe: the child's
//! [`crate::plan`] and [`crate::execute`] call [`heartbeat`] as they make progress, and the child
//! calls [`output_prepared`] once it owns an output directory. The supervisor turns a child killed
//! by a signal into [`Outcome::Crashed`], a child without a heartbeat for
//! [`Supervision::stall_timeout`] into [`Outcome::Stalled`] (it kills it), and SIGINT/SIGTERM
//! received by the supervisor into [`Outcome::Interrupted`] (it kills the child). The caller then
//! reports the error and, when the output was prepared, removes the child's files (for example
//! with `OutputDir::prepare(dir, ExistingOutput::Replace)`, which waits for nothing: the dead
//! child's directory lock is gone).
//!
//! ```no_run
//! use std::process::Command;
//! use ts_convert::isolation::{self, Outcome, Supervision};
//!
//! # fn main() -> std::io::Result<()> {
//! if isolation::is_worker() {
//!     // ... the child: open, plan, prepare (then `isolation::output_prepared()`), execute ...
//!     return Ok(());
//! }
//! let mut child = Command::new(std::env::current_exe()?);
//! child.args(std::env::args_os().skip(1));
//! match isolation::supervise(&mut child, &Supervision::default())? {
//!     Outcome::Exited { code, .. } => std::process::exit(code),
//!     other => eprintln!("error: the conversion did not finish: {other:?}"),
//! }
//! # Ok(())
//! # }
//! ```

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, mpsc};
use std::time::{Duration, Instant};

/// The variable that tells a child which file descriptor its heartbeat pipe is.
pub const HEARTBEAT_FD_VAR: &str = "TS_CONVERT_HEARTBEAT_FD";

const BEAT: u8 = b'.';
const PREPARED: u8 = b'O';

/// Whether this process was started by [`supervise`].
pub fn is_worker() -> bool {
    pipe().is_some()
}

/// Child side: the work is progressing. Does nothing outside a supervised child.
pub fn heartbeat() {
    send(BEAT);
}

/// Child side: the output directory is ours now, so files left by a crash must be removed.
pub fn output_prepared() {
    send(PREPARED);
}

fn send(byte: u8) {
    if let Some(mut pipe) = pipe() {
        // Non-blocking: a full pipe means the supervisor has plenty of beats already.
        let _ = pipe.write(&[byte]);
    }
}

/// The heartbeat pipe, when the environment names one that really is a pipe.
fn pipe() -> Option<&'static File> {
    static PIPE: OnceLock<Option<File>> = OnceLock::new();
    PIPE.get_or_init(|| {
        let fd: RawFd = std::env::var(HEARTBEAT_FD_VAR).ok()?.parse().ok()?;
        // SAFETY: fstat/fcntl only inspect the descriptor; a wrong number fails harmlessly.
        unsafe {
            let mut stat: libc::stat = std::mem::zeroed();
            if fd < 3
                || libc::fstat(fd, &mut stat) != 0
                || stat.st_mode & libc::S_IFMT != libc::S_IFIFO
            {
                return None;
            }
            let flags = libc::fcntl(fd, libc::F_GETFL);
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            // SAFETY: the descriptor is an open pipe that the supervisor gave this process to own.
            Some(File::from_raw_fd(fd))
        }
    })
    .as_ref()
}

/// How [`supervise`] watches the child.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Supervision {
    /// A child without a heartbeat for this long is killed ([`Outcome::Stalled`]).
    pub stall_timeout: Duration,
}

impl Default for Supervision {
    /// Ten minutes: far longer than any step of a healthy conversion between two heartbeats.
    fn default() -> Self {
        Supervision {
            stall_timeout: Duration::from_secs(600),
        }
    }
}

/// How a supervised child ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// It exited by itself with this status code.
    Exited {
        /// The exit code.
        code: i32,
        /// Whether it had prepared an output directory.
        output_prepared: bool,
    },
    /// It was killed by a signal the supervisor did not send (e.g. SIGSEGV inside libhdf5).
    Crashed {
        /// The signal number.
        signal: i32,
        /// Whether it had prepared an output directory.
        output_prepared: bool,
    },
    /// It made no progress for this long and was killed.
    Stalled {
        /// Time since the last heartbeat.
        after: Duration,
        /// Whether it had prepared an output directory.
        output_prepared: bool,
    },
    /// The supervisor received SIGINT or SIGTERM and stopped the child.
    Interrupted {
        /// The signal received.
        signal: i32,
        /// Whether it had prepared an output directory.
        output_prepared: bool,
    },
}

impl Outcome {
    /// Whether the child had prepared an output directory (whose files need removing if it did
    /// not finish).
    pub fn output_prepared(&self) -> bool {
        match self {
            Outcome::Exited {
                output_prepared, ..
            }
            | Outcome::Crashed {
                output_prepared, ..
            }
            | Outcome::Stalled {
                output_prepared, ..
            }
            | Outcome::Interrupted {
                output_prepared, ..
            } => *output_prepared,
        }
    }
}

/// Runs `command` as a supervised child (see the module docs) and waits for it. Standard input,
/// output and error are inherited unless `command` says otherwise. SIGINT and SIGTERM are
/// caught while it runs, and stop the child.
pub fn supervise(command: &mut Command, supervision: &Supervision) -> std::io::Result<Outcome> {
    let (mut reader, writer) = std::io::pipe()?;
    let writer_fd = writer.as_raw_fd();
    command.env(HEARTBEAT_FD_VAR, writer_fd.to_string());
    // SAFETY: only fcntl, which is async-signal-safe, runs between fork and exec: it keeps the
    // pipe's write end open across exec (std creates it close-on-exec).
    unsafe {
        command.pre_exec(move || {
            if libc::fcntl(writer_fd, libc::F_SETFD, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }

    let received = Arc::new(AtomicUsize::new(0));
    let mut handlers = Vec::new();
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        handlers.push(signal_hook::flag::register_usize(
            signal,
            Arc::clone(&received),
            signal as usize,
        )?);
    }
    let result = watch(command, writer, &mut reader, &received, supervision);
    for id in handlers {
        signal_hook::low_level::unregister(id);
    }
    result
}

fn watch(
    command: &mut Command,
    writer: std::io::PipeWriter,
    reader: &mut std::io::PipeReader,
    received: &AtomicUsize,
    supervision: &Supervision,
) -> std::io::Result<Outcome> {
    let mut child = command.spawn()?;
    drop(writer); // the child holds the only write end now: EOF when it is gone
    let (tx, rx) = mpsc::channel::<u8>();
    let mut reader = reader.try_clone()?;
    std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            let prepared = buf[..n].contains(&PREPARED);
            if tx.send(if prepared { PREPARED } else { BEAT }).is_err() {
                break;
            }
        }
    });

    let mut last_beat = Instant::now();
    let mut output_prepared = false;
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(byte) => {
                last_beat = Instant::now();
                output_prepared |= byte == PREPARED;
                continue;
            }
            Err(mpsc::RecvTimeoutError::Timeout | mpsc::RecvTimeoutError::Disconnected) => {}
        }
        if let Some(status) = child.try_wait()? {
            // Collect beats still in flight (e.g. "prepared" just before a crash).
            while let Ok(byte) = rx.try_recv() {
                output_prepared |= byte == PREPARED;
            }
            return Ok(match (status.code(), status.signal()) {
                (Some(code), _) => Outcome::Exited {
                    code,
                    output_prepared,
                },
                (None, Some(signal)) => Outcome::Crashed {
                    signal,
                    output_prepared,
                },
                (None, None) => Outcome::Exited {
                    code: 1,
                    output_prepared,
                },
            });
        }
        let signal = received.load(Ordering::Relaxed);
        let stalled = last_beat.elapsed() > supervision.stall_timeout;
        if signal != 0 || stalled {
            let _ = child.kill();
            let _ = child.wait();
            while let Ok(byte) = rx.try_recv() {
                output_prepared |= byte == PREPARED;
            }
            return Ok(if signal != 0 {
                Outcome::Interrupted {
                    signal: signal as i32,
                    output_prepared,
                }
            } else {
                Outcome::Stalled {
                    after: last_beat.elapsed(),
                    output_prepared,
                }
            });
        }
    }
}
