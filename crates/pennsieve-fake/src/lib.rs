//! An in-process fake of every Pennsieve route the import uses (contract §11): api, api2,
//! Cognito `InitiateAuth` and an S3-like upload target, on one `127.0.0.1` listener, with fault
//! injection. For tests and the e2e harness; not a model of Pennsieve beyond the contract.
//!
//! URLs: api `http://127.0.0.1:{port}/api`, api2 `…/api2`, Cognito `…/cognito/`, uploads `…/s3`.
//! Other processes can read what it recorded at `GET /_fake/state` and
//! `GET /_fake/objects/{import_id}/{upload_key}`.
//!
//! ```no_run
//! use pennsieve_client::{Client, ImportOptions, import_directory};
//! use pennsieve_fake::{FakeConfig, FakePennsieve, FakeRoute, ids};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // The first two uploads fail with 503: the client retries them.
//! let fake = FakePennsieve::start(FakeConfig {
//!     fail_first: vec![(FakeRoute::Upload, 2)],
//!     ..FakeConfig::default()
//! })
//! .await?;
//! let client = Client::new(fake.client_config(), fake.session_credentials())?;
//! import_directory(&client, "output".as_ref(), &ImportOptions::new(ids::RUN)).await?;
//! assert_eq!(fake.state().imports.len(), 1);
//! # Ok(())
//! # }
//! ```
//!
//! With [`FakeConfig::external_cognito`] the fake describes and accepts a real Cognito instead of
//! its own, e.g. the `moto` emulator that [`MotoCognito`] installs, starts and stops.
//!
//! Layout: [`FakeConfig`] (data and fault modes), [`FakePennsieve`] (the running server and its
//! helpers), [`FakeState`] (what it recorded); the request handlers live in one private module
//! per service (api, api2, Cognito, S3).

#![warn(missing_docs)]

mod config;
mod moto;
mod network;
mod routes;
mod server;
mod state;

pub use config::{
    API2_MAX_BODY_BYTES, ExternalCognito, FakeConfig, FakePackage, FakeRoute, FakeRun, NetworkModel,
};
pub use moto::MotoCognito;
pub use server::FakePennsieve;
pub use state::{AuthCall, CreatedChannel, FakeImport, FakeState, LoggedRequest, UploadedObject};

/// The ids of [`FakeConfig::default`].
pub mod ids {
    /// The default run.
    pub const RUN: &str = "11111111-1111-4111-8111-111111111111";
    /// The default dataset.
    pub const DATASET: &str = "N:dataset:22222222-2222-4222-8222-222222222222";
    /// The default run's only package (a TimeSeries package inside [`COLLECTION`]).
    pub const PACKAGE: &str = "N:package:33333333-3333-4333-8333-333333333333";
    /// The collection holding [`PACKAGE`] (at the dataset root).
    pub const COLLECTION: &str = "N:collection:44444444-4444-4444-8444-444444444444";
}
