//! Request plumbing: URLs, authenticated sending with one renewal on 401/403, retries with
//! back-off, error mapping and redaction.

use std::fmt;

use bytes::Bytes;
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

use crate::auth::Auth;
use crate::config::Config;
use crate::error::{Error, Result};

/// Which service a call goes to; decides how auth failures look (§2.5 of the contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    /// Legacy API: expired token -> 401, missing permission -> 403.
    Api,
    /// API v2 gateway: any authorizer deny, expired tokens included -> 403.
    Api2,
}

/// Method and URL of one call; `Display` is what error messages show.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub(crate) service: Service,
    pub(crate) method: Method,
    pub(crate) url: Url,
}

impl Endpoint {
    fn build(
        service: Service,
        base: &str,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
    ) -> Result<Endpoint> {
        let mut url = Url::parse(base)
            .map_err(|e| Error::InvalidConfig(format!("base URL {base:?}: {e}")))?;
        url.path_segments_mut()
            .map_err(|()| Error::InvalidConfig(format!("base URL {base:?} cannot have a path")))?
            .pop_if_empty()
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(Endpoint {
            service,
            method,
            url,
        })
    }

    pub(crate) fn api(
        config: &Config,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
    ) -> Result<Endpoint> {
        Endpoint::build(Service::Api, &config.api_host, method, segments, query)
    }

    pub(crate) fn api2(
        config: &Config,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
    ) -> Result<Endpoint> {
        Endpoint::build(Service::Api2, &config.api2_host, method, segments, query)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.url)
    }
}

/// Keeps scheme, host, port and path of a URL: presigned query strings carry credentials.
pub fn redact_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(url) => {
            let mut shown = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
            if let Some(port) = url.port() {
                shown.push_str(&format!(":{port}"));
            }
            shown.push_str(url.path());
            shown
        }
        Err(_) => "<unparseable URL>".into(),
    }
}

/// The first 300 characters of a body, for messages.
pub(crate) fn body_snippet(bytes: &[u8]) -> String {
    const MAX: usize = 300;
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None if text.is_empty() => "(empty body)".into(),
        None => text.to_owned(),
    }
}

/// A reqwest error with its causes, without its URL (reqwest's `Display` shows the URL, and
/// presigned URLs carry credentials).
pub(crate) fn error_chain(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// One API call, described so it can be re-sent.
pub(crate) struct Call<'a> {
    pub(crate) endpoint: Endpoint,
    pub(crate) body: Option<&'a Value>,
    pub(crate) accept: &'static str,
    /// Whether transient failures may be retried (the request is idempotent).
    pub(crate) retry: bool,
}

/// Sends without authentication (the Cognito config), with retries.
pub(crate) async fn send_unauthenticated(
    http: &reqwest::Client,
    config: &Config,
    endpoint: &Endpoint,
) -> Result<Bytes> {
    with_retries(config, true, || async {
        let (status, bytes) = send_once(
            http,
            config,
            &Call {
                endpoint: endpoint.clone(),
                body: None,
                accept: "application/json",
                retry: true,
            },
            None,
        )
        .await?;
        check_success(endpoint, status, bytes)
    })
    .await
}

/// Runs `attempt` until it succeeds, fails for good, or `config.retry.max_attempts` is reached
/// (only transient failures are retried, and only when `retry`).
pub(crate) async fn with_retries<T, F, Fut>(
    config: &Config,
    retry: bool,
    mut attempt: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let max_attempts = if retry { config.retry.max_attempts } else { 1 };
    let mut number = 1;
    loop {
        match attempt().await {
            Err(error) if error.is_transient() && number < max_attempts => {
                let delay = config.retry.backoff(number);
                tracing::warn!(
                    "{error}; retrying in {delay:?} (attempt {number} of {max_attempts} failed)"
                );
                tokio::time::sleep(delay).await;
                number += 1;
            }
            done => return done,
        }
    }
}

/// Sends one authenticated call: renews the session once on an auth failure, retries transient
/// failures when allowed, and returns the body of a 2xx response.
pub(crate) async fn send_authenticated(
    http: &reqwest::Client,
    config: &Config,
    auth: &Auth,
    call: &Call<'_>,
) -> Result<Bytes> {
    with_retries(config, call.retry, || async {
        let (generation, token) = auth.token(http, config).await?;
        let (status, bytes) = send_once(http, config, call, Some(&token)).await?;
        let endpoint = &call.endpoint;
        if is_expired_session(endpoint.service, status) {
            tracing::debug!("{endpoint}: HTTP {status}, renewing the session");
            let (_, token) = auth
                .renew(http, config, generation)
                .await
                .map_err(|error| Error::SessionRejected {
                    endpoint: endpoint.to_string(),
                    status: status.as_u16(),
                    reason: error.to_string(),
                })?;
            let (status, bytes) = send_once(http, config, call, Some(&token)).await?;
            return match status {
                StatusCode::FORBIDDEN => Err(permission_denied(endpoint, status, &bytes)),
                StatusCode::UNAUTHORIZED => Err(Error::SessionRejected {
                    endpoint: endpoint.to_string(),
                    status: status.as_u16(),
                    reason: "a freshly renewed token was refused as well".into(),
                }),
                _ => check_success(endpoint, status, bytes),
            };
        }
        if status == StatusCode::FORBIDDEN {
            return Err(permission_denied(endpoint, status, &bytes));
        }
        check_success(endpoint, status, bytes)
    })
    .await
}

fn is_expired_session(service: Service, status: StatusCode) -> bool {
    match service {
        Service::Api => status == StatusCode::UNAUTHORIZED,
        // The gateway answers 403 for an expired token and 401 only for a missing header; a
        // renewal cannot hurt in either case.
        Service::Api2 => status == StatusCode::FORBIDDEN || status == StatusCode::UNAUTHORIZED,
    }
}

fn permission_denied(endpoint: &Endpoint, status: StatusCode, bytes: &[u8]) -> Error {
    Error::PermissionDenied {
        endpoint: endpoint.to_string(),
        status: status.as_u16(),
        body: body_snippet(bytes),
    }
}

pub(crate) fn check_success(
    endpoint: &Endpoint,
    status: StatusCode,
    bytes: Bytes,
) -> Result<Bytes> {
    if status.is_success() {
        Ok(bytes)
    } else {
        Err(Error::Status {
            endpoint: endpoint.to_string(),
            status: status.as_u16(),
            body: body_snippet(&bytes),
        })
    }
}

async fn send_once(
    http: &reqwest::Client,
    config: &Config,
    call: &Call<'_>,
    token: Option<&str>,
) -> Result<(StatusCode, Bytes)> {
    let endpoint = &call.endpoint;
    let mut request = http
        .request(endpoint.method.clone(), endpoint.url.clone())
        .header(reqwest::header::ACCEPT, call.accept)
        .timeout(config.request_timeout);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = call.body {
        request = request
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
    }
    tracing::debug!("{endpoint}");
    let transport = |e: reqwest::Error| Error::Transport {
        endpoint: endpoint.to_string(),
        message: error_chain(e),
    };
    let response = request.send().await.map_err(transport)?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(transport)?;
    Ok((status, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_keeps_only_scheme_host_and_path() {
        assert_eq!(
            redact_url(
                "https://bucket.s3.amazonaws.com/imp/key?X-Amz-Signature=abc&X-Amz-Security-Token=t"
            ),
            "https://bucket.s3.amazonaws.com/imp/key"
        );
        assert_eq!(
            redact_url("http://127.0.0.1:9000/b/k?sig=1#frag"),
            "http://127.0.0.1:9000/b/k"
        );
        assert_eq!(redact_url("not a url ?secret"), "<unparseable URL>");
        assert_eq!(
            redact_url("https://user:pw@host/p"),
            "https://host/p",
            "userinfo is dropped too"
        );
    }

    #[test]
    fn endpoints_encode_segments_and_queries() {
        let config = Config::with_hosts("http://h:1/prefix/", "http://h2");
        let endpoint = Endpoint::api(
            &config,
            Method::GET,
            &["packages", "N:package:a/b c"],
            &[("includeAncestors", "true")],
        )
        .unwrap();
        assert_eq!(
            endpoint.to_string(),
            "GET http://h:1/prefix/packages/N:package:a%2Fb%20c?includeAncestors=true"
        );
    }

    #[test]
    fn snippets_are_bounded() {
        assert_eq!(body_snippet(b"  "), "(empty body)");
        let long = "x".repeat(1000);
        assert_eq!(body_snippet(long.as_bytes()).len(), 303);
    }
}
