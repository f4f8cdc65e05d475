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

/// Lambda's synchronous request payload cap (6 MiB), the effective limit of api2 request bodies
/// (the HTTP API gateway itself allows 10 MB).
pub const API2_MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

/// A simulated network between the client and the fake.
///
/// * every reply waits [`NetworkModel::reply_latency`] after its request was read (one round
///   trip: the client sees it on top of the transfer time);
/// * `PUT` bodies to the S3 route are read no faster than
///   [`NetworkModel::put_bytes_per_second`]. HTTP/1.1 carries one request at a time per
///   connection, so pacing each body is pacing the connection. The pacing happens as bytes
///   arrive (the fake stops reading, TCP back-pressure stalls the sender), so concurrent uploads
///   overlap as on a real link;
/// * a new TCP connection serves nothing for [`NetworkModel::connect_cost`] (its first read is
///   held back; other connections are accepted meanwhile), like a handshake plus TLS.
///
/// The model has no shared bottleneck: N connections get N times the bandwidth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetworkModel {
    /// Added to every reply.
    pub reply_latency: Duration,
    /// Upload bandwidth of one connection in bytes per second; `None` = unlimited.
    pub put_bytes_per_second: Option<u64>,
    /// Cost of opening a connection, paid before its first request is read.
    pub connect_cost: Duration,
}

impl Default for NetworkModel {
    fn default() -> Self {
        NetworkModel::none()
    }
}

impl NetworkModel {
    /// No latency, unlimited bandwidth, free connections (the fake as fast as loopback allows).
    pub const fn none() -> Self {
        NetworkModel {
            reply_latency: Duration::ZERO,
            put_bytes_per_second: None,
            connect_cost: Duration::ZERO,
        }
    }

    /// A wide-area link with round trip `latency` and `bytes_per_second` per connection; opening
    /// a connection costs 3 round trips (TCP handshake, then a TLS 1.2 handshake of 2).
    pub const fn wan(latency: Duration, bytes_per_second: u64) -> Self {
        NetworkModel {
            reply_latency: latency,
            put_bytes_per_second: Some(bytes_per_second),
            connect_cost: latency.saturating_mul(3),
        }
    }

    /// A typical link from a cloud worker to Pennsieve: [`NetworkModel::wan`] with 20 ms round
    /// trips and 50 MB/s per connection (so 60 ms per new connection).
    pub const fn realistic_wan() -> Self {
        NetworkModel::wan(Duration::from_millis(20), 50_000_000)
    }

    /// Time an upload slot is busy with one file of `file_bytes` at best: the body at the
    /// connection's bandwidth and the PUT's reply (connections reused, so no connect cost; the
    /// file's URL was presigned ahead, while the slot was busy with the file before).
    pub fn upload_time(&self, file_bytes: u64) -> Duration {
        let transfer = match self.put_bytes_per_second {
            Some(rate) if rate > 0 => Duration::from_secs_f64(file_bytes as f64 / rate as f64),
            _ => Duration::ZERO,
        };
        self.reply_latency + transfer
    }

    /// Best possible uploads per second with `concurrency` PUTs of `file_bytes` in flight
    /// ([`NetworkModel::upload_time`]); `None` when unbounded.
    pub fn upload_ceiling(&self, concurrency: usize, file_bytes: u64) -> Option<f64> {
        let per_file = self.upload_time(file_bytes).as_secs_f64();
        (per_file > 0.0).then(|| concurrency as f64 / per_file)
    }
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
    /// Latency, per-connection bandwidth and connection set-up cost of the simulated network
    /// ([`NetworkModel::none`] by default).
    pub network: NetworkModel,
    /// Lifetime of presigned upload URLs (`X-Amz-Expires`, default 900 s). A `PUT` that arrives
    /// later gets S3's `403 AccessDenied` "Request has expired". Sub-second values are honoured by
    /// the fake (the URL shows whole seconds, rounded up).
    pub presign_expiry: Duration,
    /// The first `n` presigned URLs are issued already expired (dated one expiry plus one second
    /// in the past), as after a long queue or clock skew.
    pub expired_presigns_first: u32,
    /// Largest api2 request body (`POST /import`, `POST /import/{id}/files`) in bytes; larger
    /// ones get the gateway's `413 {"message":"Request Too Large"}`. Default
    /// [`API2_MAX_BODY_BYTES`] (Lambda's 6 MB synchronous payload cap, contract §5).
    pub max_api2_body_bytes: usize,
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
            network: NetworkModel::none(),
            presign_expiry: Duration::from_secs(900),
            expired_presigns_first: 0,
            max_api2_body_bytes: API2_MAX_BODY_BYTES,
            permission_denied: false,
            external_cognito: None,
        }
    }
}
