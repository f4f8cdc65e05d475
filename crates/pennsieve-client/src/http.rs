//! Request plumbing below authentication: sending one call, retries with back-off, status
//! checks. Authenticated sending (one renewal on 401/403) is in `client`, on top of `auth`.

use bytes::Bytes;
use reqwest::StatusCode;
use serde_json::Value;

use crate::config::Config;
use crate::endpoint::{Endpoint, body_snippet, error_chain};
use crate::error::{Error, Result};

/// One API call, described so it can be re-sent.
pub(crate) struct Call<'a> {
    pub(crate) endpoint: Endpoint,
    pub(crate) body: Option<&'a Value>,
    pub(crate) accept: &'static str,
    /// Whether transient failures may be retried (the request is idempotent).
    pub(crate) retry: bool,
}

/// Sends without authentication (the Cognito config), with retries, within the call deadline.
pub(crate) async fn send_unauthenticated(
    http: &reqwest::Client,
    config: &Config,
    endpoint: &Endpoint,
) -> Result<Bytes> {
    with_retries(config, &endpoint.without_query(), true, || async {
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
/// (only transient failures are retried, and only when `retry`), all within
/// `config.call_deadline` ([`Error::Timeout`] naming `call` otherwise).
pub(crate) async fn with_retries<T, F, Fut>(
    config: &Config,
    call: &str,
    retry: bool,
    attempt: F,
) -> Result<T>
where
    T: Send,
    F: FnMut() -> Fut + Send,
    Fut: std::future::Future<Output = Result<T>> + Send,
{
    let max_attempts = if retry { config.retry.max_attempts } else { 1 };
    retry_within_deadline(config, call, max_attempts, Error::is_transient, attempt).await
}

/// Runs `attempt` up to `max_attempts` times while its failures satisfy `may_retry`, with
/// back-off, and gives up with [`Error::Timeout`] (naming `call`, which must hold no secrets or
/// query strings) when `config.call_deadline` passes first, whatever is in flight.
pub(crate) async fn retry_within_deadline<T, F, Fut>(
    config: &Config,
    call: &str,
    max_attempts: u32,
    may_retry: impl Fn(&Error) -> bool + Sync,
    mut attempt: F,
) -> Result<T>
where
    T: Send,
    F: FnMut() -> Fut + Send,
    Fut: std::future::Future<Output = Result<T>> + Send,
{
    let mut attempts = 0u32;
    let mut last_failure: Option<String> = None;
    // Boxed and type-erased: calls nest (an upload presigns, a call may renew the session), and
    // without it the nested future types grow past the compiler's default query depth in crates
    // that await `import_directory`.
    let run: std::pin::Pin<Box<dyn std::future::Future<Output = Result<T>> + Send + '_>> = Box::pin(
        async {
            loop {
                attempts += 1;
                match attempt().await {
                    Err(error) if attempts < max_attempts && may_retry(&error) => {
                        let delay = config.retry.backoff(attempts);
                        tracing::warn!(
                            "{error}; retrying in {delay:?} (attempt {attempts} of {max_attempts} failed)"
                        );
                        last_failure = Some(failure_summary(&error));
                        tokio::time::sleep(delay).await;
                    }
                    done => return done,
                }
            }
        },
    );
    let outcome = tokio::time::timeout(config.call_deadline, run).await;
    match outcome {
        Ok(done) => done,
        Err(_elapsed) => {
            let detail = match last_failure {
                Some(last) => format!(
                    "{attempts} attempt(s), the last still running; an earlier one failed: {last}"
                ),
                None => format!("{attempts} attempt(s), the last still running"),
            };
            Err(Error::Timeout {
                call: call.to_owned(),
                after: config.call_deadline,
                detail,
            })
        }
    }
}

/// What went wrong in one attempt, without the endpoint (the timeout message names it) and
/// without URL query strings.
fn failure_summary(error: &Error) -> String {
    match error {
        Error::Transport { message, .. } => message.clone(),
        Error::Status { status, .. } => format!("HTTP {status}"),
        Error::Decode { message, .. } => message.clone(),
        other => strip_queries(&other.to_string()),
    }
}

/// `text` with the query string of every URL in it cut off.
pub(crate) fn strip_queries(text: &str) -> String {
    text.split(' ')
        .map(|word| match word.find('?') {
            Some(at) if word.contains("://") => &word[..at],
            _ => word,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The body of a 2xx response, else [`Error::Status`].
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

/// Sends `call` once (with `token` as bearer, if any): the status and body, or a transport error.
pub(crate) async fn send_once(
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
