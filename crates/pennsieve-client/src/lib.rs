//! Async client for the parts of the Pennsieve API used by the time-series import, and the
//! import workflow itself: [`import_directory`] for a finished directory, [`StreamingImport`] to
//! upload files while they are still being written (channels and manifest first, from what the
//! caller knows in advance).
//!
//! - Authentication: a Cognito session token (renewed with its refresh token) or an API
//!   key/secret (token-pool login), see [`Credentials`]. Cognito `InitiateAuth` goes through
//!   `aws-sdk-cognitoidentityprovider` (unsigned: no AWS credentials are needed or looked up;
//!   TLS is rustls with `ring`), with the SDK's standard retries configured from
//!   [`RetryPolicy`] and [`Config::cognito_endpoint`] as endpoint override. Renewals are
//!   single-flight: many concurrent requests that hit an expired token cause one Cognito call.
//! - Every attempt has a timeout, and every logical call (retries, back-offs and Cognito calls
//!   included) a deadline, [`Config::call_deadline`] ([`Error::Timeout`]); the defaults are the
//!   `DEFAULT_*` constants. Idempotent calls and uploads are retried with exponential back-off and
//!   full jitter on transient failures ([`RetryPolicy`]).
//! - Uploads stream files from disk with `Content-Length`, with bounded concurrency over one
//!   connection pool. Presigned URLs are never logged or shown in errors ([`redact_url`]).
//! - Tests run against `pennsieve-fake` (a separate, unpublished crate): an in-process fake of
//!   every route used (api, api2, Cognito, S3) with fault injection.
//!
//! ```no_run
//! use pennsieve_client::{Client, Config, Credentials, ImportOptions, ImportStatus, import_directory};
//!
//! # async fn run() -> pennsieve_client::Result<()> {
//! let config = Config::with_hosts("https://api.pennsieve.io", "https://api2.pennsieve.io");
//! let credentials = Credentials::session("<access token>", Some("<refresh token>".into()))?;
//! let client = Client::new(config, credentials)?;
//! let report = import_directory(&client, "output".as_ref(), &ImportOptions::new("<run id>")).await?;
//! if report.status == ImportStatus::Completed {
//!     println!("{} files, {} bytes in {:?}", report.files, report.bytes, report.elapsed);
//! }
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

// Module graph, downward only (each module uses only modules further right):
// import -> client -> auth -> http -> endpoint -> config -> error.
mod auth;
mod client;
mod config;
mod endpoint;
mod error;
mod http;
mod import;

pub use client::{Client, ManifestEntry, NewChannel, RemoteChannel, WorkflowRun};
pub use config::{
    Config, Credentials, DEFAULT_API_HOST, DEFAULT_API2_HOST, DEFAULT_CALL_DEADLINE,
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT, DEFAULT_UPLOAD_TIMEOUT,
    MAX_REQUEST_BODY_LIMIT, RetryPolicy, UPLOAD_MIN_BYTES_PER_SECOND,
};
pub use endpoint::redact_url;
pub use error::{Error, Result};
pub use import::{
    Begun, FileSender, ImportChannel, ImportChunk, ImportOptions, ImportReport, ImportStatus,
    ProgressFn, StreamingImport, import_directory,
};
