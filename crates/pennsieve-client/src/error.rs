//! The crate's single error type.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong talking to Pennsieve or importing a directory. Messages name the
/// endpoint (method and URL, presigned query strings removed) or the file, and what happened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration or credentials cannot be used (bad URL, empty value, ...).
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),

    /// The request never got an HTTP response (connect error, timeout, broken connection).
    #[error("{endpoint}: request failed: {message}")]
    Transport {
        /// Method and URL.
        endpoint: String,
        /// The transport error, with its causes.
        message: String,
    },

    /// A call, with all its retries and back-offs, did not finish within
    /// [`crate::Config::call_deadline`].
    #[error("{call}: gave up after {after:?} (the call deadline, retries included); {detail}")]
    Timeout {
        /// The call: method and URL without query string, `Cognito <flow> at <endpoint>`, or
        /// `upload of <file>`.
        call: String,
        /// The deadline that passed.
        after: Duration,
        /// Attempts made and the last failure, if any (no URL query strings).
        detail: String,
    },

    /// The server answered with an unexpected status.
    #[error("{endpoint}: HTTP {status}: {body}")]
    Status {
        /// Method and URL.
        endpoint: String,
        /// The HTTP status code.
        status: u16,
        /// The start of the response body.
        body: String,
    },

    /// The server refused the request with a fresh, valid session: the account lacks permission.
    #[error("{endpoint}: permission denied (HTTP {status}): {body}")]
    PermissionDenied {
        /// Method and URL.
        endpoint: String,
        /// 403, or 401 when even a fresh token is refused.
        status: u16,
        /// The start of the response body.
        body: String,
    },

    /// The server refused the session and it could not be renewed.
    #[error("{endpoint}: HTTP {status}, and the session could not be renewed: {reason}")]
    SessionRejected {
        /// Method and URL.
        endpoint: String,
        /// 401 or 403.
        status: u16,
        /// Why the renewal failed.
        reason: String,
    },

    /// A response whose body is not the JSON we expect.
    #[error("{endpoint}: unexpected response body: {message}")]
    Decode {
        /// Method and URL.
        endpoint: String,
        /// What was wrong.
        message: String,
    },

    /// Cognito refused or failed a login or refresh.
    #[error("Cognito {flow} at {endpoint} failed: {kind}: {message}")]
    Cognito {
        /// `USER_PASSWORD_AUTH` or `REFRESH_TOKEN_AUTH`.
        flow: &'static str,
        /// The Cognito endpoint used.
        endpoint: String,
        /// Cognito's `__type` (e.g. `NotAuthorizedException`) or `HTTP <status>`.
        kind: String,
        /// Cognito's message.
        message: String,
    },

    /// A session token without a refresh token has been rejected.
    #[error("cannot refresh session: no refresh token was supplied (set REFRESH_TOKEN)")]
    NoRefreshToken,

    /// An earlier renewal of the same session failed; it is not retried.
    #[error("session renewal failed earlier: {0}")]
    RenewalFailed(String),

    /// The workflow run does not exist (404, or a 200 with an empty `datasetId`).
    #[error("workflow run {run_id} not found ({endpoint})")]
    WorkflowRunNotFound {
        /// The run id asked for.
        run_id: String,
        /// Method and URL.
        endpoint: String,
    },

    /// Reading a local file or directory failed (the OS error is the source).
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What we were doing.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The output directory could not be scanned. The reason is the source (shown in the chain,
    /// e.g. `anyhow`'s `{:#}`), as `ts_chunk_format` errors do not repeat theirs.
    #[error("cannot scan output directory {}", dir.display())]
    Scan {
        /// The directory.
        dir: PathBuf,
        /// The scan error.
        #[source]
        source: ts_chunk_format::Error,
    },

    /// The output directory has problems; nothing was sent.
    #[error("output directory {} has {} problem(s), nothing was imported:\n  {}", dir.display(), problems.len(), problems.join("\n  "))]
    OutputProblems {
        /// The directory.
        dir: PathBuf,
        /// One line per problem.
        problems: Vec<String>,
    },

    /// A local channel's metadata cannot be imported as is.
    #[error("channel metadata {}: {problem}", path.display())]
    ChannelMetadata {
        /// The metadata file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },

    /// One uploaded file failed on every attempt (the last failure is the source).
    #[error("upload of {} (upload key {upload_key}) failed after {attempts} attempt(s)", path.display())]
    Upload {
        /// The chunk file.
        path: PathBuf,
        /// Its upload key.
        upload_key: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        #[source]
        source: Box<Error>,
    },

    /// A [`crate::StreamingImport`] has stopped (it failed, or was dropped): the file sent was
    /// not queued. [`crate::StreamingImport::finish`] tells why.
    #[error("the import has stopped; the file was not queued for upload")]
    ImportStopped,

    /// A file sent to a [`crate::StreamingImport`] cannot be uploaded.
    #[error("{} cannot be uploaded: {reason}", path.display())]
    UnexpectedFile {
        /// The file sent.
        path: PathBuf,
        /// Why: not in the manifest, or sent twice.
        reason: &'static str,
    },

    /// A [`crate::StreamingImport`] was finished before every file of its manifest was sent.
    #[error("{missing} file(s) registered in the import's manifest never arrived for upload")]
    FilesNotDelivered {
        /// How many never arrived.
        missing: usize,
    },

    /// A step of [`crate::import_directory`] or a [`crate::StreamingImport`] failed (the cause is the source); lists the files
    /// that were not uploaded.
    #[error("import step `{step}` failed ({})", NotUploaded(not_uploaded))]
    Import {
        /// The step, e.g. `create channels`.
        step: &'static str,
        /// Every chunk file that was not uploaded (all of them when the failure came before uploads).
        not_uploaded: Vec<PathBuf>,
        /// What went wrong.
        #[source]
        source: Box<Error>,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Shows how many files were not uploaded and the first few of them.
struct NotUploaded<'a>(&'a [PathBuf]);

impl fmt::Display for NotUploaded<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 5;
        let files = self.0;
        if files.is_empty() {
            return f.write_str("every file was uploaded");
        }
        write!(f, "{} file(s) not uploaded: ", files.len())?;
        for (i, path) in files.iter().take(SHOWN).enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}", path.display())?;
        }
        if files.len() > SHOWN {
            write!(f, ", ... ({} more)", files.len() - SHOWN)?;
        }
        Ok(())
    }
}

impl Error {
    /// Whether a retry may succeed: no HTTP response at all (or none in time), 429 or 5xx.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Transport { .. } | Error::Timeout { .. } => true,
            Error::Status { status, .. } => *status == 429 || *status >= 500,
            Error::Upload { source, .. } | Error::Import { source, .. } => source.is_transient(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_errors_name_the_step_the_cause_and_the_missing_files() {
        let not_uploaded: Vec<PathBuf> = (0..7)
            .map(|i| PathBuf::from(format!("out/channel-00000_{i}_{i}.bin.gz")))
            .collect();
        let error = Error::Import {
            step: "upload files",
            not_uploaded,
            source: Box::new(Error::Upload {
                path: "out/channel-00000_0_0.bin.gz".into(),
                upload_key: "5f0c7d2e-0000-4000-8000-000000000000".into(),
                attempts: 5,
                source: Box::new(Error::Status {
                    endpoint: "PUT https://bucket.s3.amazonaws.com/imp/5f0c7d2e".into(),
                    status: 503,
                    body: "SlowDown: Please reduce your request rate.".into(),
                }),
            }),
        };
        insta::assert_snapshot!(chain(&error));
        assert!(error.is_transient());
    }

    #[test]
    fn output_problems_are_listed_one_per_line() {
        let error = Error::OutputProblems {
            dir: "out".into(),
            problems: vec![
                "channel 7 has 1 chunk(s) but no metadata file (first: out/channel-00007_5_9.bin.gz)".into(),
                "leftover temporary file out/.channel-00001.metadata.json.12.0.tmp".into(),
            ],
        };
        insta::assert_snapshot!(error.to_string());
        assert!(!error.is_transient());
    }

    #[test]
    fn nothing_missing_is_said_plainly() {
        let error = Error::Import {
            step: "upload files",
            not_uploaded: vec![],
            source: Box::new(Error::NoRefreshToken),
        };
        assert_eq!(
            chain(&error),
            "import step `upload files` failed (every file was uploaded): cannot refresh session: no refresh token was supplied (set REFRESH_TOKEN)"
        );
    }

    /// The message and its causes, as `anyhow` shows them with `{:#}`: each said once.
    fn chain(error: &Error) -> String {
        let mut text = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }
}
