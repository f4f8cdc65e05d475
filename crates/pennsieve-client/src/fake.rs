//! An in-process fake of every Pennsieve route the import uses (contract §11): api, api2,
//! Cognito `InitiateAuth` and an S3-like upload target, on one `127.0.0.1` listener, with fault
//! injection. For tests and the e2e harness; not a model of Pennsieve beyond the contract.
//!
//! URLs: api `http://127.0.0.1:{port}/api`, api2 `…/api2`, Cognito `…/cognito/`, uploads `…/s3`.
//! Other processes can read what it recorded at `GET /_fake/state` and
//! `GET /_fake/objects/{import_id}/{upload_key}`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Serialize;
use serde_json::{Value, json};

use crate::client::ManifestEntry;
use crate::config::{Config, Credentials, RetryPolicy};

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
}

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
        }
    }
}

/// One request as the fake saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoggedRequest {
    /// HTTP method.
    pub method: String,
    /// Path (without query).
    pub path: String,
    /// Query string, if any.
    pub query: Option<String>,
    /// The route, `None` for unknown paths.
    pub route: Option<FakeRoute>,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// Status answered.
    pub status: u16,
}

/// One Cognito call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuthCall {
    /// `AuthFlow`.
    pub flow: String,
    /// `ClientId`.
    pub client_id: String,
    /// `AuthParameters.DEVICE_KEY`, if sent.
    pub device_key: Option<String>,
    /// Whether it succeeded.
    pub ok: bool,
}

/// One import and its manifest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FakeImport {
    /// Import id.
    pub id: String,
    /// `dataset_id` query value.
    pub dataset_id: String,
    /// `integration_id`.
    pub integration_id: String,
    /// `package_id`.
    pub package_id: String,
    /// `import_type`.
    pub import_type: String,
    /// Every manifest entry, create batch first, then appends in order.
    pub files: Vec<ManifestEntry>,
    /// Number of append calls.
    pub append_calls: usize,
}

/// One successful upload.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadedObject {
    /// Import id (first path segment).
    pub import_id: String,
    /// Upload key (second path segment).
    pub upload_key: String,
    /// The bytes received.
    pub body: Bytes,
}

/// A channel created through the api.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CreatedChannel {
    /// Package it was posted to.
    pub package_id: String,
    /// Assigned node id.
    pub id: String,
    /// The request body (one channel).
    pub request: Value,
}

/// Everything the fake recorded, for assertions.
#[derive(Debug, Clone, Default)]
pub struct FakeState {
    /// Every request, in arrival order.
    pub requests: Vec<LoggedRequest>,
    /// Every Cognito call.
    pub auth_calls: Vec<AuthCall>,
    /// Imports by creation order.
    pub imports: Vec<FakeImport>,
    /// Successful uploads in arrival order.
    pub uploads: Vec<UploadedObject>,
    /// Channels created.
    pub created_channels: Vec<CreatedChannel>,
    /// Bodies of `PUT /packages/{id}`: (package id, body).
    pub property_updates: Vec<(String, Value)>,
}

impl FakeState {
    /// Requests to `route`.
    pub fn count(&self, route: FakeRoute) -> usize {
        self.requests
            .iter()
            .filter(|r| r.route == Some(route))
            .count()
    }

    /// Cognito calls with this `AuthFlow`.
    pub fn auth_count(&self, flow: &str) -> usize {
        self.auth_calls.iter().filter(|c| c.flow == flow).count()
    }
}

struct Token {
    uses: u64,
    expired: bool,
}

struct Shared {
    config: FakeConfig,
    base_url: String,
    state: Mutex<Inner>,
}

struct Inner {
    record: FakeState,
    tokens: HashMap<String, Token>,
    /// Token-pool refresh tokens issued by password logins.
    token_pool_refresh: HashSet<String>,
    /// Channels per package, as raw ChannelDTO JSON, in list order.
    channels: BTreeMap<String, Vec<Value>>,
    /// Remaining injected failures per route.
    failures_left: HashMap<FakeRoute, u32>,
    /// Import id -> index in `record.imports`.
    import_index: HashMap<String, usize>,
    /// (import id, upload key) -> signature of the last presigned URL.
    signatures: HashMap<(String, String), String>,
    counter: u64,
}

/// A running fake; stops when dropped.
pub struct FakePennsieve {
    shared: Arc<Shared>,
    address: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakePennsieve {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl std::fmt::Debug for FakePennsieve {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakePennsieve")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl FakePennsieve {
    /// Starts the fake on `127.0.0.1:{config.port}` (in the current tokio runtime).
    pub async fn start(config: FakeConfig) -> std::io::Result<FakePennsieve> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port)).await?;
        let address = listener.local_addr()?;
        let mut channels: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for (package, channel) in &config.channels {
            channels
                .entry(package.clone())
                .or_default()
                .push(channel.clone());
        }
        let shared = Arc::new(Shared {
            base_url: format!("http://{address}"),
            state: Mutex::new(Inner {
                record: FakeState::default(),
                tokens: HashMap::new(),
                token_pool_refresh: HashSet::new(),
                channels,
                failures_left: config.fail_first.iter().copied().collect(),
                import_index: HashMap::new(),
                signatures: HashMap::new(),
                counter: 0,
            }),
            config,
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!("fake Pennsieve server stopped: {error}");
            }
        });
        Ok(FakePennsieve {
            shared,
            address,
            server,
        })
    }

    /// The listening address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Legacy API base URL.
    pub fn api_url(&self) -> String {
        format!("{}/api", self.shared.base_url)
    }

    /// API v2 base URL.
    pub fn api2_url(&self) -> String {
        format!("{}/api2", self.shared.base_url)
    }

    /// Cognito endpoint (for [`Config::cognito_endpoint`]).
    pub fn cognito_url(&self) -> String {
        format!("{}/cognito/", self.shared.base_url)
    }

    /// Base of presigned upload URLs.
    pub fn s3_url(&self) -> String {
        format!("{}/s3", self.shared.base_url)
    }

    /// A client configuration pointing at this fake, with short retry delays.
    pub fn client_config(&self) -> Config {
        Config {
            cognito_endpoint: Some(self.cognito_url()),
            retry: RetryPolicy {
                max_attempts: 5,
                base_delay: Duration::from_millis(5),
                max_delay: Duration::from_millis(40),
            },
            ..Config::with_hosts(self.api_url(), self.api2_url())
        }
    }

    /// A new valid user-pool access token (JWT-shaped, with the `device_key` claim when configured).
    pub fn session_token(&self) -> String {
        let mut inner = self.shared.lock();
        issue_access_token(&mut inner, &self.shared.config, true)
    }

    /// Session credentials: a fresh access token plus the configured refresh token.
    pub fn session_credentials(&self) -> Credentials {
        Credentials::SessionToken {
            token: self.session_token(),
            refresh_token: Some(self.shared.config.refresh_token.clone()),
        }
    }

    /// The configured API key credentials.
    pub fn api_key_credentials(&self) -> Credentials {
        Credentials::ApiKey {
            key: self.shared.config.api_key.clone(),
            secret: self.shared.config.api_secret.clone(),
        }
    }

    /// Expires every access token issued so far (the next use gets 401/403).
    pub fn expire_tokens(&self) {
        let mut inner = self.shared.lock();
        for token in inner.tokens.values_mut() {
            token.expired = true;
        }
    }

    /// A snapshot of everything recorded.
    pub fn state(&self) -> FakeState {
        self.shared.lock().record.clone()
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

fn issue_access_token(inner: &mut Inner, config: &FakeConfig, user_pool: bool) -> String {
    inner.counter += 1;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims = json!({"sub": "fake-user", "token_use": "access", "n": inner.counter});
    if user_pool {
        if let Some(device_key) = &config.device_key {
            claims["device_key"] = json!(device_key);
        }
    }
    let token = format!(
        "{}.{}.fake-signature",
        engine.encode(r#"{"alg":"none","typ":"JWT"}"#),
        engine.encode(claims.to_string())
    );
    inner.tokens.insert(
        token.clone(),
        Token {
            uses: 0,
            expired: false,
        },
    );
    token
}

type Reply = (StatusCode, Value);

fn reply(status: StatusCode, body: Value) -> Reply {
    (status, body)
}

fn api_error(status: StatusCode, kind: &str, message: &str) -> Reply {
    reply(
        status,
        json!({"type": kind, "message": message, "code": status.as_u16()}),
    )
}

fn api2_error(status: StatusCode, message: &str) -> Reply {
    reply(status, json!({ "message": message }))
}

fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(value) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(value);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_value(query: Option<&str>, key: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| percent_decode(v))
    })
}

fn route_of(method: &Method, segments: &[String]) -> Option<FakeRoute> {
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    Some(match (method.as_str(), s.as_slice()) {
        ("GET", ["api", "authentication", "cognito-config"]) => FakeRoute::CognitoConfig,
        ("POST", ["cognito"]) => FakeRoute::InitiateAuth,
        ("GET", ["api2", "compute", "workflows", "runs", _]) => FakeRoute::WorkflowRun,
        ("GET", ["api", "packages", _]) => FakeRoute::GetPackage,
        ("PUT", ["api", "packages", _]) => FakeRoute::PutPackage,
        ("GET", ["api", "timeseries", _, "channels"]) => FakeRoute::ListChannels,
        ("POST", ["api", "timeseries", _, "channels"]) => FakeRoute::CreateChannel,
        ("POST", ["api2", "import"]) => FakeRoute::CreateImport,
        ("POST", ["api2", "import", _, "files"]) => FakeRoute::AppendFiles,
        ("GET", ["api2", "import", _, "upload", _, "presign"]) => FakeRoute::Presign,
        ("PUT", ["s3", _, _]) => FakeRoute::Upload,
        _ => return None,
    })
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    if let Some(inspection) = path.strip_prefix("/_fake/") {
        return inspect(&shared, inspection);
    }
    let query = parts.uri.query().map(str::to_owned);
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let route = route_of(&parts.method, &segments);
    let authorization = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // Checked before reading: hyper would otherwise decode a chunked body transparently.
    let upload_framing =
        (route == Some(FakeRoute::Upload)).then(|| upload_framing_error(&parts.headers));
    let body = axum::body::to_bytes(body, 64 * 1024 * 1024).await;

    if !shared.config.delay.is_zero() {
        tokio::time::sleep(shared.config.delay).await;
    }
    let (status, response) = match body {
        Err(_) => (
            StatusCode::BAD_REQUEST,
            json!({"message": "cannot read request body"}),
        ),
        Ok(body) => {
            let mut inner = shared.lock();
            respond(
                &shared,
                &mut inner,
                Incoming {
                    route,
                    segments: &segments,
                    query: query.as_deref(),
                    headers: &parts.headers,
                    authorization: authorization.as_deref(),
                    body,
                    upload_framing: upload_framing.flatten(),
                },
            )
        }
    };
    let mut inner = shared.lock();
    inner.record.requests.push(LoggedRequest {
        method: parts.method.to_string(),
        path,
        query,
        route,
        authorization,
        status: status.as_u16(),
    });
    drop(inner);
    let (content_type, body) = match route {
        Some(FakeRoute::InitiateAuth) => (
            "application/x-amz-json-1.1",
            Body::from(response.to_string()),
        ),
        Some(FakeRoute::Upload) if status.is_success() => ("application/xml", Body::empty()),
        // S3 answers errors in XML.
        Some(FakeRoute::Upload) => {
            let field = |key: &str| response[key].as_str().unwrap_or("").to_owned();
            let xml = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message><RequestId>FAKE</RequestId></Error>",
                field("Code"),
                field("Message")
            );
            ("application/xml", Body::from(xml))
        }
        _ => ("application/json", Body::from(response.to_string())),
    };
    (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// Read-only views for other processes (the e2e harness), not logged:
/// `GET /_fake/state` (JSON summary; uploads without bodies) and
/// `GET /_fake/objects/{import_id}/{upload_key}` (the stored bytes).
fn inspect(shared: &Shared, what: &str) -> Response {
    let inner = shared.lock();
    let record = &inner.record;
    if what == "state" {
        let uploads: Vec<Value> = record
            .uploads
            .iter()
            .map(|u| json!({"import_id": u.import_id, "upload_key": u.upload_key, "size": u.body.len()}))
            .collect();
        let summary = json!({
            "imports": record.imports,
            "uploads": uploads,
            "created_channels": record.created_channels,
            "property_updates": record.property_updates,
            "auth_calls": record.auth_calls,
            "requests": record.requests,
        });
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            summary.to_string(),
        )
            .into_response();
    }
    let object = what
        .strip_prefix("objects/")
        .and_then(|rest| rest.split_once('/'));
    let found = object.and_then(|(import_id, key)| {
        record
            .uploads
            .iter()
            .rev()
            .find(|u| u.import_id == import_id && u.upload_key == key)
    });
    match found {
        Some(upload) => (StatusCode::OK, upload.body.clone()).into_response(),
        None => (StatusCode::NOT_FOUND, "no such fake object").into_response(),
    }
}

/// S3's answers to bad framing: chunked -> 501, no length -> 411.
fn upload_framing_error(headers: &HeaderMap) -> Option<Reply> {
    let chunked = headers.get_all(header::TRANSFER_ENCODING).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.to_ascii_lowercase().contains("chunked"))
    });
    if chunked {
        return Some(reply(
            StatusCode::NOT_IMPLEMENTED,
            json!({"Code": "NotImplemented", "Message": "A header you provided implies functionality that is not implemented (Transfer-Encoding)"}),
        ));
    }
    if !headers.contains_key(header::CONTENT_LENGTH) {
        return Some(reply(
            StatusCode::LENGTH_REQUIRED,
            json!({"Code": "MissingContentLength", "Message": "You must provide the Content-Length HTTP header."}),
        ));
    }
    None
}

struct Incoming<'a> {
    route: Option<FakeRoute>,
    segments: &'a [String],
    query: Option<&'a str>,
    headers: &'a HeaderMap,
    authorization: Option<&'a str>,
    body: Bytes,
    upload_framing: Option<Reply>,
}

fn respond(shared: &Shared, inner: &mut Inner, request: Incoming<'_>) -> Reply {
    let config = &shared.config;
    let Some(route) = request.route else {
        return api2_error(StatusCode::NOT_FOUND, "Not Found");
    };
    if let Some(left) = inner.failures_left.get_mut(&route) {
        if *left > 0 {
            *left -= 1;
            let status =
                StatusCode::from_u16(config.fail_status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            // `Code`/`Message` for the S3 route's XML rendering.
            return reply(
                status,
                json!({"message": "injected failure", "Code": "ServiceUnavailable", "Message": "injected failure"}),
            );
        }
    }
    let is_api2 = request.segments.first().is_some_and(|s| s == "api2");
    let needs_auth = !matches!(
        route,
        FakeRoute::CognitoConfig | FakeRoute::InitiateAuth | FakeRoute::Upload
    );
    if needs_auth {
        if let Some(denied) = check_auth(config, inner, request.authorization, is_api2) {
            return denied;
        }
        if is_api2 && route != FakeRoute::WorkflowRun {
            let dataset = query_value(request.query, "dataset_id");
            if dataset.as_deref() != Some(config.dataset_id.as_str()) {
                return api2_error(StatusCode::FORBIDDEN, "Forbidden");
            }
        }
    }
    let json_body = || serde_json::from_slice::<Value>(&request.body).ok();
    let segment = |i: usize| request.segments.get(i).cloned().unwrap_or_default();
    match route {
        FakeRoute::CognitoConfig => reply(
            StatusCode::OK,
            json!({
                "region": "us-east-1",
                "userPool": {"region": "us-east-1", "id": "us-east-1_USER", "appClientId": config.user_pool_client_id},
                "tokenPool": {"region": "us-east-1", "id": "us-east-1_TOKEN", "appClientId": config.token_pool_client_id},
                "identityPool": {"region": "us-east-1", "id": "us-east-1:fake", "appClientId": ""},
            }),
        ),
        FakeRoute::InitiateAuth => initiate_auth(config, inner, request.headers, json_body()),
        FakeRoute::WorkflowRun => {
            let id = segment(4);
            match config.runs.iter().find(|run| run.id == id) {
                None => api2_error(StatusCode::NOT_FOUND, "error no records found"),
                Some(run) => {
                    let mut sources = serde_json::Map::new();
                    for (name, ids) in &run.data_sources {
                        sources.insert(name.clone(), json!({"packageIds": ids, "path": "/input"}));
                    }
                    reply(
                        StatusCode::OK,
                        json!({"uuid": run.id, "datasetId": run.dataset_id, "status": "STARTED",
                               "dataSources": sources}),
                    )
                }
            }
        }
        FakeRoute::GetPackage => {
            let id = segment(2);
            match config.packages.iter().find(|p| p.id == id) {
                None => api_error(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    &format!("{id} not found"),
                ),
                Some(package) => {
                    let mut dto = json!({
                        "content": package_content(config, package),
                        "properties": [], "children": [], "ancestors": [],
                    });
                    if let Some(parent) = package
                        .parent
                        .as_ref()
                        .and_then(|p| config.packages.iter().find(|q| &q.id == p))
                    {
                        dto["parent"] =
                            json!({"content": package_content(config, parent), "properties": []});
                    }
                    reply(StatusCode::OK, dto)
                }
            }
        }
        FakeRoute::PutPackage => {
            let id = segment(2);
            let Some(package) = config.packages.iter().find(|p| p.id == id) else {
                return api_error(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    &format!("{id} not found"),
                );
            };
            let Some(body) = json_body() else {
                return api_error(StatusCode::BAD_REQUEST, "BadRequest", "invalid JSON");
            };
            let valid = body["properties"].as_array().is_some_and(|props| {
                props
                    .iter()
                    .all(|p| p["key"].is_string() && p["value"].is_string())
            });
            if !valid {
                return api_error(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "properties need key and value",
                );
            }
            inner.record.property_updates.push((id, body));
            reply(
                StatusCode::OK,
                json!({"content": package_content(config, package)}),
            )
        }
        FakeRoute::ListChannels => {
            let id = segment(2);
            if !config.packages.iter().any(|p| p.id == id) {
                return api_error(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    &format!("{id} not found"),
                );
            }
            reply(
                StatusCode::OK,
                Value::Array(inner.channels.get(&id).cloned().unwrap_or_default()),
            )
        }
        FakeRoute::CreateChannel => create_channel(config, inner, segment(2), json_body()),
        FakeRoute::CreateImport => {
            let Some(body) = json_body() else {
                return api2_error(StatusCode::BAD_REQUEST, "invalid JSON");
            };
            let text = |key: &str| body[key].as_str().unwrap_or("").to_owned();
            let files = match manifest_files(&body) {
                Ok(files) if !files.is_empty() => files,
                Ok(_) => return api2_error(StatusCode::BAD_REQUEST, "files must not be empty"),
                Err(message) => return api2_error(StatusCode::BAD_REQUEST, &message),
            };
            if text("integration_id").is_empty() || text("package_id").is_empty() {
                return api2_error(
                    StatusCode::BAD_REQUEST,
                    "integration_id and package_id are required",
                );
            }
            if text("import_type") != "timeseries" {
                return api2_error(StatusCode::BAD_REQUEST, "unsupported import_type");
            }
            if let Some(duplicate) = duplicate_key(&[], &files) {
                return api2_error(
                    StatusCode::BAD_REQUEST,
                    &format!("duplicate upload_key {duplicate}"),
                );
            }
            let id = uuid::Uuid::new_v4().to_string();
            inner
                .import_index
                .insert(id.clone(), inner.record.imports.len());
            inner.record.imports.push(FakeImport {
                id: id.clone(),
                dataset_id: config.dataset_id.clone(),
                integration_id: text("integration_id"),
                package_id: text("package_id"),
                import_type: text("import_type"),
                files,
                append_calls: 0,
            });
            reply(StatusCode::CREATED, json!({ "id": id }))
        }
        FakeRoute::AppendFiles => {
            let Some(&index) = inner.import_index.get(&segment(2)) else {
                return api2_error(StatusCode::NOT_FOUND, "import not found");
            };
            let files = match json_body()
                .ok_or_else(|| "invalid JSON".to_owned())
                .and_then(|b| manifest_files(&b))
            {
                Ok(files) => files,
                Err(message) => return api2_error(StatusCode::BAD_REQUEST, &message),
            };
            let import = &mut inner.record.imports[index];
            if let Some(duplicate) = duplicate_key(&import.files, &files) {
                return api2_error(
                    StatusCode::BAD_REQUEST,
                    &format!("duplicate upload_key {duplicate}"),
                );
            }
            import.files.extend(files);
            import.append_calls += 1;
            reply(StatusCode::OK, json!({}))
        }
        FakeRoute::Presign => {
            let (import_id, key) = (segment(2), segment(4));
            let Some(&index) = inner.import_index.get(&import_id) else {
                return api2_error(StatusCode::NOT_FOUND, "import not found");
            };
            if !inner.record.imports[index]
                .files
                .iter()
                .any(|f| f.upload_key == key)
            {
                return api2_error(StatusCode::NOT_FOUND, "upload key not in the manifest");
            }
            inner.counter += 1;
            let signature = format!("sig{}", inner.counter);
            inner
                .signatures
                .insert((import_id.clone(), key.clone()), signature.clone());
            let url = format!(
                "{}/s3/{import_id}/{key}?X-Amz-Expires=900&X-Amz-Security-Token=fake-secret-session&X-Amz-Signature={signature}",
                shared.base_url
            );
            reply(StatusCode::OK, json!({ "url": url }))
        }
        FakeRoute::Upload => {
            if let Some(framing) = request.upload_framing {
                return framing;
            }
            let (import_id, key) = (segment(1), segment(2));
            if request.authorization.is_some() {
                return reply(
                    StatusCode::BAD_REQUEST,
                    json!({"Code": "InvalidArgument", "Message": "Only one auth mechanism allowed"}),
                );
            }
            let signature = query_value(request.query, "X-Amz-Signature");
            if signature.is_none()
                || inner.signatures.get(&(import_id.clone(), key.clone())) != signature.as_ref()
            {
                return reply(
                    StatusCode::FORBIDDEN,
                    json!({"Code": "SignatureDoesNotMatch", "Message": "bad or stale presigned URL"}),
                );
            }
            let declared = request
                .headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<usize>().ok());
            if declared != Some(request.body.len()) {
                return reply(
                    StatusCode::BAD_REQUEST,
                    json!({"Code": "IncompleteBody", "Message": "body length differs from Content-Length"}),
                );
            }
            inner.record.uploads.push(UploadedObject {
                import_id,
                upload_key: key,
                body: request.body,
            });
            reply(StatusCode::OK, Value::Null)
        }
    }
}

fn check_auth(
    config: &FakeConfig,
    inner: &mut Inner,
    authorization: Option<&str>,
    is_api2: bool,
) -> Option<Reply> {
    let unauthorized = || {
        if is_api2 {
            api2_error(StatusCode::UNAUTHORIZED, "Unauthorized")
        } else {
            api_error(StatusCode::UNAUTHORIZED, "Unauthorized", "missing token")
        }
    };
    let rejected = || {
        if is_api2 {
            api2_error(StatusCode::FORBIDDEN, "Forbidden")
        } else {
            api_error(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "invalid or expired token",
            )
        }
    };
    let Some(authorization) = authorization else {
        return Some(unauthorized());
    };
    let Some(token) = authorization.strip_prefix("Bearer ") else {
        // e.g. `Callback workflow-service:…`: not accepted here.
        return Some(rejected());
    };
    let Some(state) = inner.tokens.get_mut(token) else {
        return Some(rejected());
    };
    state.uses += 1;
    if state.expired || config.token_max_uses.is_some_and(|max| state.uses > max) {
        state.expired = true;
        return Some(rejected());
    }
    if config.permission_denied {
        return Some(if is_api2 {
            api2_error(StatusCode::FORBIDDEN, "Forbidden")
        } else {
            api_error(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "no permission on this dataset",
            )
        });
    }
    None
}

fn initiate_auth(
    config: &FakeConfig,
    inner: &mut Inner,
    headers: &HeaderMap,
    body: Option<Value>,
) -> Reply {
    let cognito_error = |kind: &str, message: &str| {
        reply(
            StatusCode::BAD_REQUEST,
            json!({"__type": kind, "message": message}),
        )
    };
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    if header("x-amz-target") != "AWSCognitoIdentityProviderService.InitiateAuth" {
        return cognito_error("UnknownOperationException", "unknown X-Amz-Target");
    }
    if header("content-type") != "application/x-amz-json-1.1" {
        return cognito_error(
            "SerializationException",
            "expected application/x-amz-json-1.1",
        );
    }
    let Some(body) = body else {
        return cognito_error("SerializationException", "invalid JSON");
    };
    let text = |value: &Value| value.as_str().unwrap_or("").to_owned();
    let flow = text(&body["AuthFlow"]);
    let client_id = text(&body["ClientId"]);
    let parameters = &body["AuthParameters"];
    let device_key = parameters["DEVICE_KEY"].as_str().map(str::to_owned);
    let outcome: Result<Value, (&str, &str)> = match flow.as_str() {
        "USER_PASSWORD_AUTH" => {
            // API keys live in the token pool: another client id does not know the user.
            if client_id != config.token_pool_client_id
                || text(&parameters["USERNAME"]) != config.api_key
                || text(&parameters["PASSWORD"]) != config.api_secret
            {
                Err(("NotAuthorizedException", "Incorrect username or password."))
            } else {
                let access = issue_access_token(inner, config, false);
                inner.counter += 1;
                let refresh = format!("fake-token-pool-refresh-{}", inner.counter);
                inner.token_pool_refresh.insert(refresh.clone());
                Ok(
                    json!({"AccessToken": access, "ExpiresIn": 3600, "IdToken": "fake-id-token",
                          "TokenType": "Bearer", "RefreshToken": refresh}),
                )
            }
        }
        "REFRESH_TOKEN_AUTH" => {
            let refresh = text(&parameters["REFRESH_TOKEN"]);
            let user_pool = refresh == config.refresh_token;
            let token_pool = inner.token_pool_refresh.contains(&refresh);
            // A refresh must use the issuing pool's client id (and the device key, if bound).
            let wrong_client = user_pool && client_id != config.user_pool_client_id
                || token_pool && client_id != config.token_pool_client_id;
            let wrong_device =
                user_pool && config.device_key.is_some() && device_key != config.device_key;
            if !(user_pool || token_pool) || wrong_client || wrong_device {
                Err(("NotAuthorizedException", "Invalid Refresh Token"))
            } else {
                let access = issue_access_token(inner, config, user_pool);
                Ok(
                    json!({"AccessToken": access, "ExpiresIn": 3600, "IdToken": "fake-id-token",
                          "TokenType": "Bearer"}),
                )
            }
        }
        _ => Err(("InvalidParameterException", "unsupported AuthFlow")),
    };
    inner.record.auth_calls.push(AuthCall {
        flow,
        client_id,
        device_key,
        ok: outcome.is_ok(),
    });
    match outcome {
        Ok(result) => reply(
            StatusCode::OK,
            json!({"AuthenticationResult": result, "ChallengeParameters": {}}),
        ),
        Err((kind, message)) => cognito_error(kind, message),
    }
}

fn package_content(config: &FakeConfig, package: &FakePackage) -> Value {
    json!({"id": package.id, "nodeId": package.id, "name": "recording.nwb",
           "packageType": package.package_type, "datasetId": config.dataset_id,
           "datasetNodeId": config.dataset_id, "state": "READY"})
}

fn create_channel(
    config: &FakeConfig,
    inner: &mut Inner,
    package_id: String,
    body: Option<Value>,
) -> Reply {
    let Some(package) = config.packages.iter().find(|p| p.id == package_id) else {
        return api_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("{package_id} not found"),
        );
    };
    if package.package_type != "TimeSeries" && package.package_type != "Collection" {
        return api_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "channels can only be added to time series packages or collections",
        );
    }
    let (requests, array) = match body {
        Some(Value::Array(items)) => (items, true),
        Some(item @ Value::Object(_)) => (vec![item], false),
        _ => return api_error(StatusCode::BAD_REQUEST, "BadRequest", "invalid JSON"),
    };
    let required = [
        "name",
        "start",
        "end",
        "unit",
        "rate",
        "channelType",
        "lastAnnotation",
        "properties",
    ];
    let mut created = Vec::new();
    for request in &requests {
        if let Some(missing) = required.iter().find(|key| request.get(**key).is_none()) {
            return api_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &format!("missing field {missing}"),
            );
        }
        let name = request["name"].as_str().unwrap_or("").trim().to_owned();
        if name.is_empty() {
            return api_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "channel name must not be blank",
            );
        }
        let id = format!("N:channel:{}", uuid::Uuid::new_v4());
        let mut content = json!({
            "id": id, "packageId": package_id, "name": name,
            "start": request["start"], "end": request["end"], "unit": request["unit"],
            "rate": request["rate"], "channelType": request["channelType"],
            "lastAnnotation": request["lastAnnotation"], "createdAt": "2024-01-01T00:00:00Z",
        });
        if let Some(group) = request.get("group").filter(|g| !g.is_null()) {
            content["group"] = group.clone();
        }
        let dto = json!({"content": content, "properties": []});
        inner
            .channels
            .entry(package_id.clone())
            .or_default()
            .push(dto.clone());
        inner.record.created_channels.push(CreatedChannel {
            package_id: package_id.clone(),
            id,
            request: request.clone(),
        });
        created.push(dto);
    }
    let body = if array {
        Value::Array(created)
    } else {
        created.pop().unwrap_or(Value::Null)
    };
    reply(StatusCode::CREATED, body)
}

fn manifest_files(body: &Value) -> Result<Vec<ManifestEntry>, String> {
    serde_json::from_value(body["files"].clone()).map_err(|e| format!("invalid files: {e}"))
}

fn duplicate_key(existing: &[ManifestEntry], new: &[ManifestEntry]) -> Option<String> {
    let mut seen: HashSet<&str> = existing.iter().map(|f| f.upload_key.as_str()).collect();
    new.iter()
        .find(|f| !seen.insert(f.upload_key.as_str()))
        .map(|f| f.upload_key.clone())
}
