//! Async client for the parts of the Pennsieve API used by the time-series import, and the
//! import workflow itself ([`import_directory`]).
//!
//! - Authentication: a Cognito session token (renewed with its refresh token) or an API
//!   key/secret (token-pool login), see [`Credentials`]. Cognito `InitiateAuth` goes through
//!   `aws-sdk-cognitoidentityprovider` (unsigned: no AWS credentials are needed or looked up;
//!   TLS is rustls with `ring`), with the SDK's standard retries configured from
//!   [`RetryPolicy`] and [`Config::cognito_endpoint`] as endpoint override. Renewals are
//!   single-flight: many concurrent requests that hit an expired token cause one Cognito call.
//! - Every request has a timeout; idempotent calls and uploads are retried with exponential
//!   back-off and full jitter on transient failures ([`RetryPolicy`]).
//! - Uploads stream files from disk with `Content-Length`, with bounded concurrency over one
//!   connection pool. Presigned URLs are never logged or shown in errors ([`redact_url`]).
//! - With the `fake` feature, `fake::FakePennsieve` is an in-process fake of every
//!   route used (api, api2, Cognito, S3) with fault injection, for tests.
//!
//! ```no_run
//! use pennsieve_client::{Client, Config, Credentials, ImportOptions, ImportStatus, import_directory};
//!
//! # async fn run() -> pennsieve_client::Result<()> {
//! let config = Config::with_hosts("https://api.pennsieve.io", "https://api2.pennsieve.io");
//! let credentials = Credentials::from_parts(Some("<access token>".into()), None, None, None)
//!     .expect("a session token");
//! let client = Client::new(config, credentials)?;
//! let report = import_directory(&client, "output".as_ref(), &ImportOptions::new("<run id>")).await?;
//! if report.status == ImportStatus::Completed {
//!     println!("{} files, {} bytes in {:?}", report.files, report.bytes, report.elapsed);
//! }
//! # Ok(())
//! # }
//! ```

mod auth;
mod client;
mod config;
mod error;
mod http;
mod import;

#[cfg(feature = "fake")]
pub mod fake;

pub use client::{Client, ManifestEntry, NewChannel, RemoteChannel, WorkflowRun};
pub use config::{Config, Credentials, DEFAULT_API_HOST, DEFAULT_API2_HOST, RetryPolicy};
pub use error::{Error, Result};
pub use http::redact_url;
pub use import::{ImportOptions, ImportReport, ImportStatus, ProgressFn, import_directory};
