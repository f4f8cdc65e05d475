//! Client settings and credentials.

use std::fmt;
use std::time::Duration;

use crate::error::{Error, Result};

/// Default legacy API host (the processor's default, the development stack).
pub const DEFAULT_API_HOST: &str = "https://api.pennsieve.net";
/// Default API v2 host (the processor's default, the development stack).
pub const DEFAULT_API2_HOST: &str = "https://api2.pennsieve.net";

/// Where and how to talk to Pennsieve.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Legacy API base URL (`PENNSIEVE_API_HOST`), without trailing slash.
    pub api_host: String,
    /// API v2 base URL (`PENNSIEVE_API_HOST2`), without trailing slash.
    pub api2_host: String,
    /// Cognito endpoint to use instead of `https://cognito-idp.{region}.amazonaws.com/` (tests).
    pub cognito_endpoint: Option<String>,
    /// Time allowed to establish a connection.
    pub connect_timeout: Duration,
    /// Time allowed for one API call, from sending to the end of the response body.
    pub request_timeout: Duration,
    /// Time allowed for one file upload (presigned PUT).
    pub upload_timeout: Duration,
    /// Files uploaded at the same time.
    pub upload_concurrency: usize,
    /// Retries of idempotent calls and uploads.
    pub retry: RetryPolicy,
    /// Largest manifest request body (bytes of JSON) sent in one create/append call.
    /// The default is the reference client's usable 80 % of 1 MiB.
    pub max_request_body_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            api_host: DEFAULT_API_HOST.into(),
            api2_host: DEFAULT_API2_HOST.into(),
            cognito_endpoint: None,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            upload_timeout: Duration::from_secs(300),
            upload_concurrency: 16,
            retry: RetryPolicy::default(),
            max_request_body_bytes: 838_860,
        }
    }
}

impl Config {
    /// Default settings with the given hosts (trailing slashes removed).
    pub fn with_hosts(api_host: impl Into<String>, api2_host: impl Into<String>) -> Self {
        Config {
            api_host: trim_slash(api_host.into()),
            api2_host: trim_slash(api2_host.into()),
            ..Config::default()
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        for (name, url) in [("api host", &self.api_host), ("api2 host", &self.api2_host)] {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(Error::InvalidConfig(format!(
                    "{name} {url:?} must start with http:// or https://"
                )));
            }
        }
        if let Some(url) = &self.cognito_endpoint {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(Error::InvalidConfig(format!(
                    "cognito endpoint {url:?} must start with http:// or https://"
                )));
            }
        }
        if self.upload_concurrency == 0 {
            return Err(Error::InvalidConfig(
                "upload concurrency must be at least 1".into(),
            ));
        }
        if self.retry.max_attempts == 0 {
            return Err(Error::InvalidConfig(
                "retry max_attempts must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

fn trim_slash(mut url: String) -> String {
    while url.ends_with('/') {
        url.pop();
    }
    url
}

/// Exponential back-off with full jitter: before retry `n` (1-based) sleep a random time in
/// `[0, min(max_delay, base_delay * 2^(n-1))]`.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in total, including the first (1 = no retry).
    pub max_attempts: u32,
    /// Cap of the first back-off.
    pub base_delay: Duration,
    /// Largest back-off.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Five attempts, caps 1, 2, 4, 8 s (as the reference uploader).
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// The back-off before retry number `retry` (1 = the first retry).
    pub(crate) fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        let cap = self.base_delay.saturating_mul(factor).min(self.max_delay);
        cap.mul_f64(rand::random::<f64>())
    }
}

/// How to authenticate. `Debug` never shows secrets or tokens.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A Cognito user-pool access token (`SESSION_TOKEN`), optionally with its refresh token
    /// (`REFRESH_TOKEN`).
    SessionToken {
        /// The access token sent as bearer.
        token: String,
        /// Renews `token` when it expires.
        refresh_token: Option<String>,
    },
    /// An API key/secret pair (`PENNSIEVE_API_KEY`, `PENNSIEVE_API_SECRET`): a token-pool login.
    ApiKey {
        /// The key (Cognito user name).
        key: String,
        /// The secret (Cognito password).
        secret: String,
    },
}

impl Credentials {
    /// Picks credentials as the processor does: a non-empty session token wins (its refresh
    /// token is optional), else a key and secret (both non-empty), else `None`.
    pub fn from_parts(
        session_token: Option<String>,
        refresh_token: Option<String>,
        api_key: Option<String>,
        api_secret: Option<String>,
    ) -> Option<Credentials> {
        let non_empty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
        if let Some(token) = non_empty(session_token) {
            return Some(Credentials::SessionToken {
                token,
                refresh_token: non_empty(refresh_token),
            });
        }
        match (non_empty(api_key), non_empty(api_secret)) {
            (Some(key), Some(secret)) => Some(Credentials::ApiKey { key, secret }),
            _ => None,
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::SessionToken { refresh_token, .. } => f
                .debug_struct("SessionToken")
                .field("token", &"<redacted>")
                .field(
                    "refresh_token",
                    &refresh_token.as_ref().map(|_| "<redacted>"),
                )
                .finish(),
            Credentials::ApiKey { key, .. } => f
                .debug_struct("ApiKey")
                .field("key", key)
                .field("secret", &"<redacted>")
                .finish(),
        }
    }
}
