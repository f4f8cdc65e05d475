//! What the fake knows and how it misbehaves.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::ids;

/// The routes of the fake, for fault injection and the request log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum FakeRoute {
    /// `GET {api}/authentication/cognito-config`
    CognitoConfig,
    /// Cognito `InitiateAuth`
    InitiateAuth,
    /// `GET {api2}/compute/workflows/runs/{id}`
    WorkflowRun,
    /// `GET {api}/packages/{id}`
    GetPackage,
    /// `PUT {api}/packages/{id}`
    PutPackage,
    /// `GET {api}/timeseries/{id}/channels`
    ListChannels,
    /// `POST {api}/timeseries/{id}/channels`
    CreateChannel,
    /// `POST {api2}/import`
    CreateImport,
    /// `POST {api2}/import/{id}/files`
    AppendFiles,
    /// `GET {api2}/import/{id}/upload/{key}/presign`
    Presign,
    /// `PUT` to a presigned URL
    Upload,
}

/// A workflow run the fake knows.
#[derive(Debug, Clone)]
pub struct FakeRun {
    /// Run id (path segment and `uuid`).
    pub id: String,
    /// `datasetId`; empty reproduces the "200 with a zero-valued record" answer.
    pub dataset_id: String,
    /// `dataSources`, in this order: (source name, package ids).
    pub data_sources: Vec<(String, Vec<String>)>,
}

/// A package or collection the fake knows.
#[derive(Debug, Clone)]
pub struct FakePackage {
    /// `N:package:…` or `N:collection:…`.
    pub id: String,
    /// `TimeSeries`, `Collection`, …
    pub package_type: String,
    /// Parent node id; `None` at the dataset root (`parent` is then absent).
    pub parent: Option<String>,
}

/// The fake's data and fault modes.
#[derive(Debug, Clone)]
pub struct FakeConfig {
    /// Port to listen on (0 = any free port).
    pub port: u16,
    /// The dataset every api2 call must name in `dataset_id` (others get 403).
    pub dataset_id: String,
    /// Known runs.
    pub runs: Vec<FakeRun>,
    /// Known packages.
    pub packages: Vec<FakePackage>,
    /// Channels that exist before the import: (package id, raw `ChannelDTO` JSON).
    pub channels: Vec<(String, Value)>,
    /// Token-pool login accepted by `USER_PASSWORD_AUTH`.
    pub api_key: String,
    /// Its secret.
    pub api_secret: String,
    /// `userPool.appClientId`.
    pub user_pool_client_id: String,
    /// `tokenPool.appClientId`.
    pub token_pool_client_id: String,
    /// The user-pool refresh token accepted by `REFRESH_TOKEN_AUTH`.
    pub refresh_token: String,
    /// When set, user-pool refreshes must send this `DEVICE_KEY` (it is also the `device_key`
    /// claim of user-pool access tokens).
    pub device_key: Option<String>,
    /// Every access token expires after this many authenticated requests.
    pub token_max_uses: Option<u64>,
    /// 5xx bursts: the first `n` requests to a route fail with [`FakeConfig::fail_status`].
    pub fail_first: Vec<(FakeRoute, u32)>,
    /// Status of injected failures (default 503).
    pub fail_status: u16,
    /// Delay before every response.
    pub delay: Duration,
    /// Authenticated api/api2 calls get 403 even with valid tokens.
    pub permission_denied: bool,
    /// A real Cognito (e.g. the moto emulator, [`crate::MotoCognito`]) instead of the fake's own:
    /// `cognito-config` describes its pools, [`crate::FakePennsieve::client_config`] points the
    /// client at it, and its access tokens are accepted. The fake's own Cognito route keeps
    /// working (and keeps its fault injection), but clients are no longer sent there.
    pub external_cognito: Option<ExternalCognito>,
}

/// A Cognito the fake does not run, as `/authentication/cognito-config` describes it.
///
/// Its access tokens are accepted when they are JWTs (signature not checked) with
/// `token_use = "access"`, `iss = https://cognito-idp.{region}.amazonaws.com/{pool id}` of one of
/// the two pools, `client_id` = that pool's app client id, and `exp`, when present, in the future.
/// Once seen, such a token is tracked like the fake's own: [`FakeConfig::token_max_uses`],
/// [`crate::FakePennsieve::expire_tokens`] and [`crate::FakePennsieve::expire_token`] apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalCognito {
    /// The Cognito endpoint clients use ([`pennsieve_client::Config::cognito_endpoint`]).
    pub endpoint: String,
    /// `region` (top level and of both pools).
    pub region: String,
    /// `userPool.id`.
    pub user_pool_id: String,
    /// `userPool.appClientId`.
    pub user_pool_client_id: String,
    /// `tokenPool.id`.
    pub token_pool_id: String,
    /// `tokenPool.appClientId`.
    pub token_pool_client_id: String,
}

impl Default for FakeConfig {
    /// One dataset, run [`ids::RUN`] with one source holding [`ids::PACKAGE`], no faults.
    fn default() -> Self {
        FakeConfig {
            port: 0,
            dataset_id: ids::DATASET.into(),
            runs: vec![FakeRun {
                id: ids::RUN.into(),
                dataset_id: ids::DATASET.into(),
                data_sources: vec![("nwb".into(), vec![ids::PACKAGE.into()])],
            }],
            packages: vec![
                FakePackage {
                    id: ids::PACKAGE.into(),
                    package_type: "TimeSeries".into(),
                    parent: Some(ids::COLLECTION.into()),
                },
                FakePackage {
                    id: ids::COLLECTION.into(),
                    package_type: "Collection".into(),
                    parent: None,
                },
            ],
            channels: Vec::new(),
            api_key: "fake-api-key".into(),
            api_secret: "fake-api-secret".into(),
            user_pool_client_id: "fake-user-pool-client".into(),
            token_pool_client_id: "fake-token-pool-client".into(),
            refresh_token: "fake-user-refresh-token".into(),
            device_key: Some("us-east-1_fake-device".into()),
            token_max_uses: None,
            fail_first: Vec::new(),
            fail_status: 503,
            delay: Duration::ZERO,
            permission_denied: false,
            external_cognito: None,
        }
    }
}
