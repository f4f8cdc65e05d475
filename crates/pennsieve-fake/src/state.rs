//! What the fake records (public, for assertions) and its internal mutable state.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use axum::body::Bytes;
use base64::Engine;
use pennsieve_client::ManifestEntry;
use serde::Serialize;
use serde_json::{Value, json};

use crate::config::{FakeConfig, FakeRoute};

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
    /// TCP connections accepted so far (clients that reuse connections open few).
    pub connections_opened: u64,
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

/// An issued (or, with an external Cognito, accepted) access token.
#[derive(Default)]
pub(crate) struct Token {
    pub(crate) uses: u64,
    pub(crate) expired: bool,
}

/// A presigned upload URL as issued.
pub(crate) struct Presigned {
    /// `X-Amz-Signature`.
    pub(crate) signature: String,
    /// After this instant a `PUT` is refused with "Request has expired".
    pub(crate) expires: std::time::Instant,
}

/// What every handler shares: the configuration, the base URL and the locked state.
pub(crate) struct Shared {
    pub(crate) config: FakeConfig,
    pub(crate) base_url: String,
    state: Mutex<Inner>,
}

/// The mutable state behind [`Shared`]'s lock.
pub(crate) struct Inner {
    pub(crate) record: FakeState,
    pub(crate) tokens: HashMap<String, Token>,
    /// Token-pool refresh tokens issued by password logins.
    pub(crate) token_pool_refresh: HashSet<String>,
    /// Channels per package, as raw ChannelDTO JSON, in list order.
    pub(crate) channels: BTreeMap<String, Vec<Value>>,
    /// Remaining injected failures per route.
    pub(crate) failures_left: HashMap<FakeRoute, u32>,
    /// Import id -> index in `record.imports`.
    pub(crate) import_index: HashMap<String, usize>,
    /// (import id, upload key) -> the last presigned URL of that key.
    pub(crate) presigned: HashMap<(String, String), Presigned>,
    /// Presigned URLs still to be issued already expired ([`FakeConfig::expired_presigns_first`]).
    pub(crate) expired_presigns_left: u32,
    pub(crate) counter: u64,
}

impl Shared {
    /// The initial state for `config`, served at `base_url`.
    pub(crate) fn new(config: FakeConfig, base_url: String) -> Shared {
        let mut channels: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for (package, channel) in &config.channels {
            channels
                .entry(package.clone())
                .or_default()
                .push(channel.clone());
        }
        Shared {
            base_url,
            state: Mutex::new(Inner {
                record: FakeState::default(),
                tokens: HashMap::new(),
                token_pool_refresh: HashSet::new(),
                channels,
                failures_left: config.fail_first.iter().copied().collect(),
                import_index: HashMap::new(),
                presigned: HashMap::new(),
                expired_presigns_left: config.expired_presigns_first,
                counter: 0,
            }),
            config,
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// A new valid access token (JWT-shaped); user-pool tokens carry the configured `device_key`.
pub(crate) fn issue_access_token(
    inner: &mut Inner,
    config: &FakeConfig,
    user_pool: bool,
) -> String {
    inner.counter += 1;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims = json!({"sub": "fake-user", "token_use": "access", "n": inner.counter});
    if user_pool && let Some(device_key) = &config.device_key {
        claims["device_key"] = json!(device_key);
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

/// The claims of a JWT, decoded without verification; `None` unless it is three dot-separated
/// parts whose middle one is base64url JSON.
pub(crate) fn jwt_claims(token: &str) -> Option<Value> {
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Whether `token` is an unexpired access token of one of the configured external Cognito's pools
/// (see [`crate::ExternalCognito`]; the signature is not checked).
pub(crate) fn is_external_access_token(config: &FakeConfig, token: &str) -> bool {
    let Some(external) = &config.external_cognito else {
        return false;
    };
    let Some(claims) = jwt_claims(token) else {
        return false;
    };
    let claim = |name: &str| claims[name].as_str().unwrap_or("");
    let issuer = |pool: &str| {
        format!(
            "https://cognito-idp.{}.amazonaws.com/{pool}",
            external.region
        )
    };
    let pool_matches = [
        (&external.user_pool_id, &external.user_pool_client_id),
        (&external.token_pool_id, &external.token_pool_client_id),
    ]
    .into_iter()
    .any(|(pool, client)| claim("iss") == issuer(pool) && claim("client_id") == client.as_str());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let unexpired = claims["exp"].as_u64().is_none_or(|exp| exp > now);
    claim("token_use") == "access" && pool_matches && unexpired
}
