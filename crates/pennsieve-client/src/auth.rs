//! Cognito login and session renewal (no AWS SDK: `InitiateAuth` needs no AWS credentials, so it
//! is one JSON 1.1 POST).
//!
//! One renewal at a time: requests remember the generation of the token they used; after a 401/403
//! they ask for a renewal of that generation, and only the first such caller talks to Cognito —
//! the others wait on the lock and then get the token it obtained.

use std::sync::{Arc, RwLock};

use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{Mutex, OnceCell};

use crate::config::{Config, Credentials};
use crate::error::{Error, Result};
use crate::http::{Endpoint, body_snippet};

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
        if let Some((failed_generation, message)) = failed {
            if failed_generation == generation {
                return Err(Error::RenewalFailed(message));
            }
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
                let bytes = crate::http::send_unauthenticated(http, config, &endpoint).await?;
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
                    http,
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
                        http,
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
                let body = json!({
                    "AuthFlow": "USER_PASSWORD_AUTH",
                    "ClientId": cognito.pool(Pool::Token).app_client_id,
                    "AuthParameters": {"USERNAME": key, "PASSWORD": secret},
                });
                initiate_auth(
                    http,
                    config,
                    cognito,
                    Pool::Token,
                    "USER_PASSWORD_AUTH",
                    &body,
                )
                .await
            }
        }
    }
}

async fn refresh_session(
    http: &reqwest::Client,
    config: &Config,
    cognito: &CognitoConfig,
    pool: Pool,
    refresh_token: &str,
    current_access_token: Option<&str>,
) -> Result<Tokens> {
    let mut parameters = json!({ "REFRESH_TOKEN": refresh_token });
    if let Some(device_key) = current_access_token.and_then(device_key) {
        parameters["DEVICE_KEY"] = Value::String(device_key);
    }
    let body = json!({
        "AuthFlow": "REFRESH_TOKEN_AUTH",
        "ClientId": cognito.pool(pool).app_client_id,
        "AuthParameters": parameters,
    });
    initiate_auth(http, config, cognito, pool, "REFRESH_TOKEN_AUTH", &body).await
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

#[derive(Deserialize)]
struct InitiateAuthResponse {
    #[serde(rename = "AuthenticationResult")]
    result: Option<AuthenticationResult>,
}

#[derive(Deserialize)]
struct AuthenticationResult {
    #[serde(rename = "AccessToken")]
    access_token: String,
    #[serde(rename = "RefreshToken", default)]
    refresh_token: Option<String>,
}

#[derive(Deserialize)]
struct CognitoError {
    #[serde(rename = "__type", default)]
    kind: Option<String>,
    #[serde(default, alias = "Message")]
    message: Option<String>,
}

async fn initiate_auth(
    http: &reqwest::Client,
    config: &Config,
    cognito: &CognitoConfig,
    pool: Pool,
    flow: &'static str,
    body: &Value,
) -> Result<Tokens> {
    let endpoint = match &config.cognito_endpoint {
        Some(url) => url.clone(),
        None => format!(
            "https://cognito-idp.{}.amazonaws.com/",
            cognito.region(pool)
        ),
    };
    let failed = |kind: String, message: String| Error::Cognito {
        flow,
        endpoint: endpoint.clone(),
        kind,
        message,
    };
    let mut attempt = 1;
    let (status, bytes) = loop {
        let sent = http
            .post(&endpoint)
            .header(
                "X-Amz-Target",
                "AWSCognitoIdentityProviderService.InitiateAuth",
            )
            .header(reqwest::header::CONTENT_TYPE, "application/x-amz-json-1.1")
            .timeout(config.request_timeout)
            .body(body.to_string())
            .send()
            .await;
        let outcome = match sent {
            Ok(response) => {
                let status = response.status();
                match response.bytes().await {
                    Ok(bytes) => Ok((status, bytes)),
                    Err(e) => Err(crate::http::error_chain(e)),
                }
            }
            Err(e) => Err(crate::http::error_chain(e)),
        };
        let transient = match &outcome {
            Ok((status, _)) => status.as_u16() == 429 || status.is_server_error(),
            Err(_) => true,
        };
        if transient && attempt < config.retry.max_attempts {
            tokio::time::sleep(config.retry.backoff(attempt)).await;
            attempt += 1;
            continue;
        }
        match outcome {
            Ok(done) => break done,
            Err(message) => return Err(failed("transport error".into(), message)),
        }
    };
    if !status.is_success() {
        let parsed: Option<CognitoError> = serde_json::from_slice(&bytes).ok();
        let kind = parsed
            .as_ref()
            .and_then(|e| e.kind.clone())
            .unwrap_or_else(|| format!("HTTP {}", status.as_u16()));
        let message = parsed
            .and_then(|e| e.message)
            .unwrap_or_else(|| body_snippet(&bytes));
        return Err(failed(kind, message));
    }
    let parsed: InitiateAuthResponse = serde_json::from_slice(&bytes)
        .map_err(|e| failed("unexpected response".into(), e.to_string()))?;
    let result = parsed.result.ok_or_else(|| {
        failed(
            "unexpected response".into(),
            "no AuthenticationResult (a challenge is not supported)".into(),
        )
    })?;
    Ok(Tokens {
        access_token: result.access_token,
        refresh_token: result.refresh_token,
    })
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
