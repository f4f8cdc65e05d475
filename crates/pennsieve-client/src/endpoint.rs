//! Where a call goes and how it is shown: [`Endpoint`] (service, method, URL) and the redaction
//! and snippet helpers every error message uses. The lowest module above `config` and `error`.

use std::fmt;

use reqwest::{Method, Url};

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

impl Endpoint {
    /// Method and URL without query string (for messages that must not show one).
    pub(crate) fn without_query(&self) -> String {
        format!("{} {}", self.method, redact_url(self.url.as_str()))
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
