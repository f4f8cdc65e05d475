//! Client settings and credentials.

use std::fmt;
use std::time::Duration;

use crate::error::{Error, Result};

/// Default legacy API host (the processor's default, the development stack).
pub const DEFAULT_API_HOST: &str = "https://api.pennsieve.net";
/// Default API v2 host (the processor's default, the development stack).
pub const DEFAULT_API2_HOST: &str = "https://api2.pennsieve.net";

/// Default [`Config::connect_timeout`]: 10 s to establish a connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default [`Config::request_timeout`]: 30 s for one attempt of an API call.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default [`Config::upload_timeout`]: 30 s per upload attempt, plus the file's size at
/// [`UPLOAD_MIN_BYTES_PER_SECOND`] (see [`Config::upload_attempt_timeout`]).
pub const DEFAULT_UPLOAD_TIMEOUT: Duration = Duration::from_secs(30);
/// Default [`Config::call_deadline`]: 3 minutes for one call with all its retries. Five
/// attempts at [`DEFAULT_REQUEST_TIMEOUT`] plus the default back-offs (at most 15 s) fit in it.
pub const DEFAULT_CALL_DEADLINE: Duration = Duration::from_secs(180);
/// The slowest upload speed waited for: an upload attempt gets [`Config::upload_timeout`] plus
/// the file's size at this rate (256 KiB/s: a 1 MiB chunk gets 4 s more).
pub const UPLOAD_MIN_BYTES_PER_SECOND: u64 = 256 * 1024;

/// The largest [`Config::max_request_body_bytes`] allowed: 5 MiB. The api2 gateway hands bodies
/// to Lambda, whose synchronous request cap is 6 MB for the whole event, in which the body is a
/// JSON string (quotes escaped) next to headers and context; 5 MiB of manifest JSON stays clear.
pub const MAX_REQUEST_BODY_LIMIT: usize = 5 * 1024 * 1024;

/// Where and how to talk to Pennsieve.
///
/// Time limits, from the inside out: [`Config::connect_timeout`] per connection,
/// [`Config::request_timeout`] per attempt of an API call ([`Config::upload_attempt_timeout`] per
/// upload attempt), and [`Config::call_deadline`] for one logical call with all its retries and
/// back-offs (and a session renewal it needs), Cognito logins and refreshes included. A call that
/// misses its deadline fails with [`Error::Timeout`]. With the defaults no call takes more than
/// about 3 minutes.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Legacy API base URL (`PENNSIEVE_API_HOST`), without trailing slash.
    pub api_host: String,
    /// API v2 base URL (`PENNSIEVE_API_HOST2`), without trailing slash.
    pub api2_host: String,
    /// Cognito endpoint to use instead of `https://cognito-idp.{region}.amazonaws.com/` (tests).
    pub cognito_endpoint: Option<String>,
    /// Time allowed to establish a connection ([`DEFAULT_CONNECT_TIMEOUT`]).
    pub connect_timeout: Duration,
    /// Time allowed for one attempt of an API call, from sending to the end of the response body
    /// ([`DEFAULT_REQUEST_TIMEOUT`]). Also each Cognito attempt.
    pub request_timeout: Duration,
    /// Base time allowed for one attempt of a file upload (presigned PUT); the attempt also gets
    /// the file's size at [`UPLOAD_MIN_BYTES_PER_SECOND`] ([`DEFAULT_UPLOAD_TIMEOUT`], see
    /// [`Config::upload_attempt_timeout`]).
    pub upload_timeout: Duration,
    /// Time allowed for one logical call including every retry and back-off: an API call, a
    /// Cognito login or refresh, or a file upload (presign and PUT, retried)
    /// ([`DEFAULT_CALL_DEADLINE`]). Exceeding it is [`Error::Timeout`].
    pub call_deadline: Duration,
    /// Files uploaded at the same time (PUTs in flight; up to twice as many more are presigned ahead).
    pub upload_concurrency: usize,
    /// Retries of idempotent calls and uploads.
    pub retry: RetryPolicy,
    /// Largest manifest request body (bytes of JSON) sent in one create/append call.
    /// The default is the reference client's usable 80 % of 1 MiB; at most
    /// [`MAX_REQUEST_BODY_LIMIT`].
    pub max_request_body_bytes: usize,
}

impl Default for Config {
    /// The development hosts ([`DEFAULT_API_HOST`], [`DEFAULT_API2_HOST`]), the `DEFAULT_*`
    /// time limits of this module, 32 concurrent uploads and [`RetryPolicy::default`].
    fn default() -> Self {
        Config {
            api_host: DEFAULT_API_HOST.into(),
            api2_host: DEFAULT_API2_HOST.into(),
            cognito_endpoint: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            upload_timeout: DEFAULT_UPLOAD_TIMEOUT,
            call_deadline: DEFAULT_CALL_DEADLINE,
            upload_concurrency: 32,
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

    /// Time allowed for one upload attempt of a `bytes`-long file: [`Config::upload_timeout`] plus
    /// `bytes` at [`UPLOAD_MIN_BYTES_PER_SECOND`], at most [`Config::call_deadline`].
    pub fn upload_attempt_timeout(&self, bytes: u64) -> Duration {
        let transfer = Duration::from_secs_f64(bytes as f64 / UPLOAD_MIN_BYTES_PER_SECOND as f64);
        self.upload_timeout
            .saturating_add(transfer)
            .min(self.call_deadline)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        for (name, limit) in [
            ("connect timeout", self.connect_timeout),
            ("request timeout", self.request_timeout),
            ("upload timeout", self.upload_timeout),
            ("call deadline", self.call_deadline),
        ] {
            if limit.is_zero() {
                return Err(Error::InvalidConfig(format!("the {name} must not be zero")));
            }
        }
        for (name, url) in [("api host", &self.api_host), ("api2 host", &self.api2_host)] {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(Error::InvalidConfig(format!(
                    "{name} {url:?} must start with http:// or https://"
                )));
            }
        }
        let is_http = |url: &str| url.starts_with("http://") || url.starts_with("https://");
        if let Some(url) = self.cognito_endpoint.as_deref().filter(|url| !is_http(url)) {
            return Err(Error::InvalidConfig(format!(
                "cognito endpoint {url:?} must start with http:// or https://"
            )));
        }
        if self.max_request_body_bytes > MAX_REQUEST_BODY_LIMIT {
            return Err(Error::InvalidConfig(format!(
                "the manifest request limit of {} bytes is above the api2 gateway's {MAX_REQUEST_BODY_LIMIT}",
                self.max_request_body_bytes
            )));
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

/// How to authenticate. `Debug` never shows keys, secrets or tokens.
///
/// Build it with [`Credentials::session`] or [`Credentials::api_key`], which reject blank
/// values. New ways to authenticate may be added: `match` it with a wildcard arm.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
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
    /// A Cognito user-pool session: the access token (`SESSION_TOKEN`) and, to renew it when it
    /// expires, its refresh token (`REFRESH_TOKEN`).
    ///
    /// A blank (empty or whitespace-only) refresh token counts as none.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if `access_token` is blank.
    ///
    /// ```
    /// use pennsieve_client::Credentials;
    ///
    /// let credentials = Credentials::session("<access token>", Some("<refresh token>".into()))?;
    /// assert!(matches!(credentials, Credentials::SessionToken { refresh_token: Some(_), .. }));
    /// assert!(Credentials::session(" ", None).is_err());
    /// # Ok::<(), pennsieve_client::Error>(())
    /// ```
    pub fn session(
        access_token: impl Into<String>,
        refresh_token: Option<String>,
    ) -> Result<Credentials> {
        Ok(Credentials::SessionToken {
            token: non_blank(access_token.into(), "session token")?,
            refresh_token: refresh_token.filter(|token| !is_blank(token)),
        })
    }

    /// An API key and its secret (`PENNSIEVE_API_KEY`, `PENNSIEVE_API_SECRET`), exchanged for a
    /// session by a Cognito token-pool login.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if `key` or `secret` is blank (empty or whitespace-only).
    ///
    /// ```
    /// use pennsieve_client::Credentials;
    ///
    /// let credentials = Credentials::api_key("<key>", "<secret>")?;
    /// assert!(matches!(credentials, Credentials::ApiKey { .. }));
    /// assert!(Credentials::api_key("<key>", "").is_err());
    /// # Ok::<(), pennsieve_client::Error>(())
    /// ```
    pub fn api_key(key: impl Into<String>, secret: impl Into<String>) -> Result<Credentials> {
        Ok(Credentials::ApiKey {
            key: non_blank(key.into(), "API key")?,
            secret: non_blank(secret.into(), "API secret")?,
        })
    }
}

fn is_blank(value: &str) -> bool {
    value.trim().is_empty()
}

/// `value`, or an [`Error::InvalidConfig`] naming `what` when it is blank (never the value).
fn non_blank(value: String, what: &str) -> Result<String> {
    if is_blank(&value) {
        Err(Error::InvalidConfig(format!("the {what} is empty")))
    } else {
        Ok(value)
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
            Credentials::ApiKey { .. } => f
                .debug_struct("ApiKey")
                .field("key", &"<redacted>")
                .field("secret", &"<redacted>")
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_debug_shows_no_key_secret_or_token() {
        let key = Credentials::api_key("key-1234", "secret-5678").unwrap();
        let session = Credentials::session("token-9", Some("refresh-0".into())).unwrap();
        let shown = format!("{key:?} {session:?} {key:#?}");
        for secret in ["key-1234", "secret-5678", "token-9", "refresh-0"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert_eq!(
            format!("{key:?}"),
            r#"ApiKey { key: "<redacted>", secret: "<redacted>" }"#
        );
    }

    #[test]
    fn upload_attempts_get_time_for_the_size_up_to_the_deadline() {
        let config = Config::default();
        assert_eq!(config.upload_attempt_timeout(0), DEFAULT_UPLOAD_TIMEOUT);
        assert_eq!(
            config.upload_attempt_timeout(1 << 20),
            DEFAULT_UPLOAD_TIMEOUT + Duration::from_secs(4)
        );
        assert_eq!(
            config.upload_attempt_timeout(u64::MAX),
            DEFAULT_CALL_DEADLINE
        );
    }

    #[test]
    fn zero_time_limits_are_refused() {
        let config = Config {
            call_deadline: Duration::ZERO,
            ..Config::default()
        };
        let error = config.validate().unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid configuration: the call deadline must not be zero"
        );
    }

    #[test]
    fn manifest_limits_above_the_gateway_cap_are_refused() {
        let at_cap = Config {
            max_request_body_bytes: MAX_REQUEST_BODY_LIMIT,
            ..Config::default()
        };
        assert!(at_cap.validate().is_ok());
        let over = Config {
            max_request_body_bytes: MAX_REQUEST_BODY_LIMIT + 1,
            ..Config::default()
        };
        assert_eq!(
            over.validate().unwrap_err().to_string(),
            "invalid configuration: the manifest request limit of 5242881 bytes is above the api2 gateway's 5242880"
        );
    }
}
