//! Cognito login and session renewal with `aws-sdk-cognitoidentityprovider` (`InitiateAuth` is
//! unauthenticated: the SDK client has no credentials provider and sends unsigned requests).
//!
//! One renewal at a time: requests remember the generation of the token they used; after a 401/403
//! they ask for a renewal of that generation, and only the first such caller talks to Cognito —
//! the others wait on the lock and then get the token it obtained.

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex, RwLock};

use aws_sdk_cognitoidentityprovider as cognito;
use base64::Engine;
use cognito::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use cognito::operation::initiate_auth::InitiateAuthError;
use cognito::types::AuthFlowType;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::{Mutex, OnceCell};
use tracing::instrument::WithSubscriber;

use crate::config::{Config, Credentials};
use crate::endpoint::{Endpoint, body_snippet, redact_url};
use crate::error::{Error, Result};
use crate::http::send_unauthenticated;

/// `GET {api}/authentication/cognito-config` (only the fields we use).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CognitoConfig {
    #[serde(default)]
    region: Option<String>,
    #[serde(rename = "userPool")]
    user_pool: PoolConfig,
    #[serde(rename = "tokenPool")]
    token_pool: PoolConfig,
}

#[derive(Debug, Clone, Deserialize)]
struct PoolConfig {
    #[serde(default)]
    region: Option<String>,
    #[serde(rename = "appClientId")]
    app_client_id: String,
}

/// Which pool a login or refresh goes to: the user pool for session tokens, the token pool for
/// API keys (a refresh must use the client id that issued the refresh token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pool {
    User,
    Token,
}

impl CognitoConfig {
    fn pool(&self, pool: Pool) -> &PoolConfig {
        match pool {
            Pool::User => &self.user_pool,
            Pool::Token => &self.token_pool,
        }
    }

    fn region(&self, pool: Pool) -> &str {
        self.pool(pool)
            .region
            .as_deref()
            .filter(|r| !r.is_empty())
            .or(self.region.as_deref().filter(|r| !r.is_empty()))
            .unwrap_or("us-east-1")
    }
}

struct Session {
    /// Bumped by every successful login/renewal.
    generation: u64,
    access_token: Option<Arc<str>>,
    refresh_token: Option<String>,
    /// A renewal of this generation already failed with this message; do not hammer Cognito.
    failed: Option<(u64, String)>,
}

pub(crate) struct Auth {
    credentials: Credentials,
    cognito: OnceCell<CognitoConfig>,
    session: RwLock<Session>,
    renew_lock: Mutex<()>,
    clients: CognitoClients,
}

/// A token and the generation it belongs to.
pub(crate) type Token = (u64, Arc<str>);

impl Auth {
    pub(crate) fn new(credentials: Credentials) -> Self {
        let (access_token, refresh_token) = match &credentials {
            Credentials::SessionToken {
                token,
                refresh_token,
            } => (Some(Arc::from(token.as_str())), refresh_token.clone()),
            Credentials::ApiKey { .. } => (None, None),
        };
        Auth {
            credentials,
            cognito: OnceCell::new(),
            session: RwLock::new(Session {
                generation: 0,
                access_token,
                refresh_token,
                failed: None,
            }),
            renew_lock: Mutex::new(()),
            clients: CognitoClients::default(),
        }
    }

    fn read_session<T>(&self, f: impl FnOnce(&Session) -> T) -> T {
        // A poisoned lock only means another thread panicked mid-update of plain data.
        let guard = self
            .session
            .read()
            .unwrap_or_else(|poison| poison.into_inner());
        f(&guard)
    }

    fn write_session<T>(&self, f: impl FnOnce(&mut Session) -> T) -> T {
        let mut guard = self
            .session
            .write()
            .unwrap_or_else(|poison| poison.into_inner());
        f(&mut guard)
    }

    /// The current token, logging in first when there is none (API key credentials).
    pub(crate) async fn token(&self, http: &reqwest::Client, config: &Config) -> Result<Token> {
        let current =
            self.read_session(|s| s.access_token.clone().map(|token| (s.generation, token)));
        match current {
            Some(token) => Ok(token),
            None => self.renew(http, config, 0).await,
        }
    }

    /// A token newer than generation `seen`: renews it unless another caller already has.
    pub(crate) async fn renew(
        &self,
        http: &reqwest::Client,
        config: &Config,
        seen: u64,
    ) -> Result<Token> {
        let _one_at_a_time = self.renew_lock.lock().await;
        let state = self.read_session(|s| {
            (
                s.generation,
                s.access_token.clone(),
                s.refresh_token.clone(),
                s.failed.clone(),
            )
        });
        let (generation, access_token, refresh_token, failed) = state;
        if let Some(token) = access_token.as_ref().filter(|_| generation != seen) {
            return Ok((generation, token.clone()));
        }
        if let Some((_, message)) = failed.filter(|(failed, _)| *failed == generation) {
            return Err(Error::RenewalFailed(message));
        }
        let result = self
            .obtain(http, config, access_token.as_deref(), refresh_token)
            .await;
        self.write_session(|s| match result {
            Ok(tokens) => {
                s.generation += 1;
                s.access_token = Some(Arc::from(tokens.access_token.as_str()));
                if tokens.refresh_token.is_some() {
                    s.refresh_token = tokens.refresh_token;
                }
                s.failed = None;
                tracing::info!(generation = s.generation, "Pennsieve session renewed");
                Ok((s.generation, s.access_token.clone().unwrap_or_default()))
            }
            Err(error) => {
                s.failed = Some((s.generation, error.to_string()));
                Err(error)
            }
        })
    }

    async fn cognito_config(
        &self,
        http: &reqwest::Client,
        config: &Config,
    ) -> Result<&CognitoConfig> {
        self.cognito
            .get_or_try_init(|| async {
                let endpoint = Endpoint::api(
                    config,
                    reqwest::Method::GET,
                    &["authentication", "cognito-config"],
                    &[],
                )?;
                let bytes = send_unauthenticated(http, config, &endpoint).await?;
                serde_json::from_slice::<CognitoConfig>(&bytes).map_err(|e| Error::Decode {
                    endpoint: endpoint.to_string(),
                    message: format!("{e}; body starts: {}", body_snippet(&bytes)),
                })
            })
            .await
    }

    /// Talks to Cognito: refresh when a refresh token is known, else password login (API keys).
    async fn obtain(
        &self,
        http: &reqwest::Client,
        config: &Config,
        current_access_token: Option<&str>,
        refresh_token: Option<String>,
    ) -> Result<Tokens> {
        let cognito = self.cognito_config(http, config).await?;
        match (&self.credentials, refresh_token) {
            (Credentials::SessionToken { .. }, None) => Err(Error::NoRefreshToken),
            (Credentials::SessionToken { .. }, Some(refresh)) => {
                refresh_session(
                    &self.clients,
                    config,
                    cognito,
                    Pool::User,
                    &refresh,
                    current_access_token,
                )
                .await
            }
            (Credentials::ApiKey { key, secret }, refresh) => {
                if let Some(refresh) = refresh {
                    match refresh_session(
                        &self.clients,
                        config,
                        cognito,
                        Pool::Token,
                        &refresh,
                        current_access_token,
                    )
                    .await
                    {
                        Ok(tokens) => return Ok(tokens),
                        Err(error) => tracing::warn!("refresh failed, logging in again: {error}"),
                    }
                }
                let parameters = HashMap::from([
                    ("USERNAME".to_owned(), key.clone()),
                    ("PASSWORD".to_owned(), secret.clone()),
                ]);
                initiate_auth(
                    &self.clients,
                    config,
                    cognito,
                    Pool::Token,
                    AuthFlowType::UserPasswordAuth,
                    parameters,
                )
                .await
            }
        }
    }
}

async fn refresh_session(
    clients: &CognitoClients,
    config: &Config,
    cognito: &CognitoConfig,
    pool: Pool,
    refresh_token: &str,
    current_access_token: Option<&str>,
) -> Result<Tokens> {
    let mut parameters = HashMap::from([("REFRESH_TOKEN".to_owned(), refresh_token.to_owned())]);
    if let Some(device_key) = current_access_token.and_then(device_key) {
        parameters.insert("DEVICE_KEY".to_owned(), device_key);
    }
    initiate_auth(
        clients,
        config,
        cognito,
        pool,
        AuthFlowType::RefreshTokenAuth,
        parameters,
    )
    .await
}

/// The `device_key` claim of a JWT access token, read without verification; `None` on any
/// decoding problem (Cognito then simply gets no `DEVICE_KEY`).
pub(crate) fn device_key(access_token: &str) -> Option<String> {
    let payload = access_token.split('.').nth(1)?;
    // base64url, with or without padding.
    let payload = payload.trim_end_matches('=');
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("device_key")?.as_str().map(str::to_owned)
}

struct Tokens {
    access_token: String,
    refresh_token: Option<String>,
}

/// SDK clients, one per (region, endpoint override): each holds its own connection pool.
#[derive(Default)]
struct CognitoClients(StdMutex<Vec<(CognitoTarget, cognito::Client)>>);

#[derive(Clone, PartialEq, Eq)]
struct CognitoTarget {
    region: String,
    endpoint: Option<String>,
}

impl CognitoClients {
    fn get(&self, config: &Config, target: CognitoTarget) -> cognito::Client {
        let mut clients = self.0.lock().unwrap_or_else(|poison| poison.into_inner());
        if let Some((_, client)) = clients.iter().find(|(t, _)| *t == target) {
            return client.clone();
        }
        let client = cognito_client(config, &target);
        clients.push((target, client.clone()));
        client
    }
}

/// An SDK client without a credentials provider: `InitiateAuth` is modelled as unauthenticated,
/// so requests go unsigned and nothing is looked up in the environment or IMDS.
fn cognito_client(config: &Config, target: &CognitoTarget) -> cognito::Client {
    use cognito::config::retry::{RetryConfig, RetryPartition};
    use cognito::config::timeout::TimeoutConfig;
    use cognito::config::{BehaviorVersion, Region};

    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    // Standard mode: transient errors (I/O, timeouts, HTTP 500/502/503/504, throttling codes)
    // are retried with full-jitter exponential back-off, as our other calls.
    let retry = RetryConfig::standard()
        .with_max_attempts(config.retry.max_attempts)
        .with_initial_backoff(config.retry.base_delay)
        .with_max_backoff(config.retry.max_delay);
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(config.connect_timeout)
        .operation_attempt_timeout(config.request_timeout)
        .build();
    // The retry quota (token bucket) is process-wide per partition: one per target.
    let partition = format!(
        "pennsieve-cognito-{}-{}",
        target.region,
        target.endpoint.as_deref().unwrap_or("default")
    );
    let mut builder = cognito::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(target.region.clone()))
        .http_client(http_client)
        .retry_config(retry)
        .retry_partition(RetryPartition::new(partition))
        .timeout_config(timeouts);
    if let Some(endpoint) = &target.endpoint {
        builder = builder.endpoint_url(endpoint.clone());
    }
    cognito::Client::from_conf(builder.build())
}

async fn initiate_auth(
    clients: &CognitoClients,
    config: &Config,
    cognito: &CognitoConfig,
    pool: Pool,
    flow: AuthFlowType,
    parameters: HashMap<String, String>,
) -> Result<Tokens> {
    let target = CognitoTarget {
        region: cognito.region(pool).to_owned(),
        endpoint: config.cognito_endpoint.clone(),
    };
    let endpoint = match &target.endpoint {
        Some(url) => url.clone(),
        None => format!("https://cognito-idp.{}.amazonaws.com/", target.region),
    };
    let flow_name = match flow {
        AuthFlowType::RefreshTokenAuth => "REFRESH_TOKEN_AUTH",
        _ => "USER_PASSWORD_AUTH",
    };
    let failed = |kind: String, message: String| Error::Cognito {
        flow: flow_name,
        endpoint: endpoint.clone(),
        kind,
        message,
    };
    let client = clients.get(config, target);
    let sending = client
        .initiate_auth()
        .auth_flow(flow)
        .client_id(cognito.pool(pool).app_client_id.clone())
        .set_auth_parameters(Some(parameters))
        .send()
        // The SDK traces requests and responses at TRACE level, response bodies (tokens) included
        // when `LOG_SENSITIVE_BODIES=true`: it logs nothing while this call runs.
        .with_subscriber(tracing::subscriber::NoSubscriber::default());
    // The SDK's attempts (each within `request_timeout`) and retries, within the call deadline.
    let sent = tokio::time::timeout(config.call_deadline, sending)
        .await
        .map_err(|_elapsed| Error::Timeout {
            call: format!("Cognito {flow_name} at {}", redact_url(&endpoint)),
            after: config.call_deadline,
            detail: format!(
                "up to {} attempt(s) of at most {:?} each",
                config.retry.max_attempts, config.request_timeout
            ),
        })?;
    let output = sent.map_err(|error| {
        let (kind, message) = describe_sdk_error(&error);
        failed(kind, message)
    })?;
    let result = output.authentication_result.ok_or_else(|| {
        failed(
            "unexpected response".into(),
            "no AuthenticationResult (a challenge is not supported)".into(),
        )
    })?;
    let access_token = result
        .access_token
        .ok_or_else(|| failed("unexpected response".into(), "no AccessToken".into()))?;
    Ok(Tokens {
        access_token,
        refresh_token: result.refresh_token,
    })
}

/// (kind, message) of a failed call: Cognito's error code (or `HTTP <status>` when the body
/// names none) and message, or "transport error" and the error chain.
fn describe_sdk_error(error: &SdkError<InitiateAuthError>) -> (String, String) {
    match error {
        SdkError::ServiceError(service) => {
            let raw = service.raw();
            let body = raw.body().bytes().unwrap_or_default();
            // Errors without a code (a bare 5xx) reach us as "unhandled", without the message:
            // read the body as the service would have written it.
            let parsed = serde_json::from_slice::<Value>(body).unwrap_or_default();
            let field = |names: &[&str]| {
                names
                    .iter()
                    .find_map(|name| parsed.get(*name)?.as_str().map(str::to_owned))
            };
            let kind = service
                .err()
                .code()
                .map(str::to_owned)
                .or_else(|| field(&["__type"]))
                .unwrap_or_else(|| format!("HTTP {}", raw.status().as_u16()));
            let message = service
                .err()
                .message()
                .map(str::to_owned)
                .or_else(|| field(&["message", "Message"]))
                .unwrap_or_else(|| body_snippet(body));
            (kind, message)
        }
        SdkError::ResponseError(response) => (
            format!("HTTP {}", response.raw().status().as_u16()),
            format!("unreadable response: {}", DisplayErrorContext(error)),
        ),
        SdkError::ConstructionFailure(_) => (
            "invalid request".into(),
            DisplayErrorContext(error).to_string(),
        ),
        _ => (
            "transport error".into(),
            DisplayErrorContext(error).to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &str) -> String {
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!("{}.{}.sig", engine.encode("{}"), engine.encode(claims))
    }

    #[test]
    fn device_key_is_read_from_the_payload() {
        assert_eq!(
            device_key(&jwt(
                r#"{"device_key":"us-east-1_abc","token_use":"access"}"#
            ))
            .as_deref(),
            Some("us-east-1_abc")
        );
    }

    #[test]
    fn device_key_accepts_padded_payloads() {
        let engine = base64::engine::general_purpose::URL_SAFE;
        let token = format!("h.{}.s", engine.encode(r#"{"device_key":"k1"}"#));
        assert!(token.contains('='), "test needs a padded payload: {token}");
        assert_eq!(device_key(&token).as_deref(), Some("k1"));
    }

    #[test]
    fn undecodable_tokens_have_no_device_key() {
        assert_eq!(device_key("not-a-jwt"), None);
        assert_eq!(device_key("a.!!!.c"), None);
        assert_eq!(device_key(&jwt("not json")), None);
        assert_eq!(device_key(&jwt(r#"{"sub":"x"}"#)), None);
        assert_eq!(device_key(&jwt(r#"{"device_key":5}"#)), None);
    }
}
