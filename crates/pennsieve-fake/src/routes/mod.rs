//! Request handling: one entry point parses the request, injects faults, checks auth and
//! dispatches to one handler per route, grouped by service (`api`, `api2`, `cognito`, `s3`).

mod api;
mod api2;
mod cognito;
mod s3;

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::config::{FakeConfig, FakeRoute};
use crate::network;
use crate::state::{Inner, LoggedRequest, Shared, Token, is_external_access_token};

/// Largest request body the fake reads at all (beyond any gateway limit it models).
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// Status and JSON body of an answer (S3 errors are rendered as XML from `Code`/`Message`).
type Reply = (StatusCode, Value);

/// A route handler: the shared state, the locked state, and the parsed request.
type Handler = fn(&Shared, &mut Inner, &Incoming<'_>) -> Reply;

/// The axum app: every path goes through [`handle`].
pub(crate) fn router(shared: Arc<Shared>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(shared)
}

/// Which route a method and path (percent-decoded segments) are.
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

/// The handler of each route.
fn handler(route: FakeRoute) -> Handler {
    match route {
        FakeRoute::CognitoConfig => api::cognito_config,
        FakeRoute::GetPackage => api::get_package,
        FakeRoute::PutPackage => api::put_package,
        FakeRoute::ListChannels => api::list_channels,
        FakeRoute::CreateChannel => api::create_channel,
        FakeRoute::InitiateAuth => cognito::initiate_auth,
        FakeRoute::WorkflowRun => api2::workflow_run,
        FakeRoute::CreateImport => api2::create_import,
        FakeRoute::AppendFiles => api2::append_files,
        FakeRoute::Presign => api2::presign,
        FakeRoute::Upload => s3::upload,
    }
}

/// Routes that need no bearer token.
fn is_public(route: FakeRoute) -> bool {
    matches!(
        route,
        FakeRoute::CognitoConfig | FakeRoute::InitiateAuth | FakeRoute::Upload
    )
}

/// One request, parsed.
struct Incoming<'a> {
    route: Option<FakeRoute>,
    segments: &'a [String],
    query: Option<&'a str>,
    headers: &'a HeaderMap,
    authorization: Option<&'a str>,
    body: Bytes,
    /// When the request's head arrived.
    arrived: std::time::Instant,
    /// For uploads: S3's answer to bad framing, checked before the body was read.
    upload_framing: Option<Reply>,
}

impl Incoming<'_> {
    /// The body as JSON, `None` if it is not.
    fn json_body(&self) -> Option<Value> {
        serde_json::from_slice::<Value>(&self.body).ok()
    }

    /// Path segment `i` (percent-decoded), empty if missing.
    fn segment(&self, i: usize) -> String {
        self.segments.get(i).cloned().unwrap_or_default()
    }
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
        (route == Some(FakeRoute::Upload)).then(|| s3::upload_framing_error(&parts.headers));
    // S3 checks a presigned URL's expiry when the request arrives, not after the body.
    let arrived = std::time::Instant::now();
    let network = shared.config.network;
    let body = match network.put_bytes_per_second {
        Some(rate) if route == Some(FakeRoute::Upload) => {
            network::read_paced(body, MAX_BODY_BYTES, rate).await
        }
        _ => axum::body::to_bytes(body, MAX_BODY_BYTES)
            .await
            .map_err(|e| e.to_string()),
    };

    if !network.reply_latency.is_zero() {
        tokio::time::sleep(network.reply_latency).await;
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
                &Incoming {
                    route,
                    segments: &segments,
                    query: query.as_deref(),
                    headers: &parts.headers,
                    authorization: authorization.as_deref(),
                    body,
                    arrived,
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
        Some(FakeRoute::Upload) => s3::render(status, &response),
        _ => ("application/json", Body::from(response.to_string())),
    };
    (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// Unknown routes, injected failures, authentication and the api2 dataset check, then the
/// route's handler.
fn respond(shared: &Shared, inner: &mut Inner, request: &Incoming<'_>) -> Reply {
    let config = &shared.config;
    let Some(route) = request.route else {
        return api2_error(StatusCode::NOT_FOUND, "Not Found");
    };
    if let Some(failure) = injected_failure(config, inner, route) {
        return failure;
    }
    let is_api2 = request.segments.first().is_some_and(|s| s == "api2");
    if !is_public(route) {
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
    if let Some(refused) = check_body(config, route, request, is_api2) {
        return refused;
    }
    handler(route)(shared, inner, request)
}

/// Routes whose request body is JSON.
fn takes_json(route: FakeRoute) -> bool {
    matches!(
        route,
        FakeRoute::PutPackage
            | FakeRoute::CreateChannel
            | FakeRoute::CreateImport
            | FakeRoute::AppendFiles
    )
}

/// The gateway's size cap on api2 bodies (413), then the JSON content type (415); `Some` is the
/// refusal.
fn check_body(
    config: &FakeConfig,
    route: FakeRoute,
    request: &Incoming<'_>,
    is_api2: bool,
) -> Option<Reply> {
    if is_api2 && request.body.len() > config.max_api2_body_bytes {
        return Some(api2_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request Too Large",
        ));
    }
    if !takes_json(route) {
        return None;
    }
    let content_type = request
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // `application/json`, any case, parameters (`; charset=utf-8`) allowed.
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if media_type.eq_ignore_ascii_case("application/json") {
        return None;
    }
    let message = "request bodies must be sent as Content-Type: application/json";
    Some(if is_api2 {
        api2_error(StatusCode::UNSUPPORTED_MEDIA_TYPE, message)
    } else {
        api_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            message,
        )
    })
}

/// The next of the [`FakeConfig::fail_first`] failures of `route`, if any are left.
fn injected_failure(config: &FakeConfig, inner: &mut Inner, route: FakeRoute) -> Option<Reply> {
    let left = inner.failures_left.get_mut(&route)?;
    if *left == 0 {
        return None;
    }
    *left -= 1;
    let status =
        StatusCode::from_u16(config.fail_status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    // `Code`/`Message` for the S3 route's XML rendering.
    Some(reply(
        status,
        json!({"message": "injected failure", "Code": "ServiceUnavailable", "Message": "injected failure"}),
    ))
}

/// The bearer token check; `Some` is the refusal. The api answers 401 for missing, unknown or
/// expired tokens; the api2 gateway 401 for a missing header and 403 otherwise.
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
    if !inner.tokens.contains_key(token) && is_external_access_token(config, token) {
        inner.tokens.insert(token.to_owned(), Token::default());
    }
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
            "connections_opened": record.connections_opened,
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

fn reply(status: StatusCode, body: Value) -> Reply {
    (status, body)
}

/// The legacy api's error body.
fn api_error(status: StatusCode, kind: &str, message: &str) -> Reply {
    reply(
        status,
        json!({"type": kind, "message": message, "code": status.as_u16()}),
    )
}

/// The api2 gateway's error body.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: Method, path: &str) -> Option<FakeRoute> {
        let segments: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(percent_decode)
            .collect();
        route_of(&method, &segments)
    }

    #[test]
    fn every_route_has_one_method_and_path() {
        let table = [
            (
                Method::GET,
                "/api/authentication/cognito-config",
                FakeRoute::CognitoConfig,
            ),
            (Method::POST, "/cognito/", FakeRoute::InitiateAuth),
            (
                Method::GET,
                "/api2/compute/workflows/runs/r",
                FakeRoute::WorkflowRun,
            ),
            (
                Method::GET,
                "/api/packages/N:package:1",
                FakeRoute::GetPackage,
            ),
            (
                Method::PUT,
                "/api/packages/N:package:1",
                FakeRoute::PutPackage,
            ),
            (
                Method::GET,
                "/api/timeseries/p/channels",
                FakeRoute::ListChannels,
            ),
            (
                Method::POST,
                "/api/timeseries/p/channels",
                FakeRoute::CreateChannel,
            ),
            (Method::POST, "/api2/import", FakeRoute::CreateImport),
            (Method::POST, "/api2/import/i/files", FakeRoute::AppendFiles),
            (
                Method::GET,
                "/api2/import/i/upload/k/presign",
                FakeRoute::Presign,
            ),
            (Method::PUT, "/s3/i/k", FakeRoute::Upload),
        ];
        for (method, path, expected) in table {
            assert_eq!(
                route(method.clone(), path),
                Some(expected),
                "{method} {path}"
            );
        }
        assert_eq!(route(Method::DELETE, "/api/packages/p"), None);
        assert_eq!(route(Method::GET, "/api/unknown"), None);
    }

    #[test]
    fn segments_and_queries_are_percent_decoded() {
        assert_eq!(percent_decode("N%3Apackage%2Fa%20b"), "N:package/a b");
        assert_eq!(percent_decode("100%"), "100%", "a lone % stays");
        assert_eq!(
            query_value(Some("a=1&dataset_id=N%3Adataset%3Ax"), "dataset_id").as_deref(),
            Some("N:dataset:x")
        );
        assert_eq!(query_value(Some("a=1"), "dataset_id"), None);
        assert_eq!(query_value(None, "a"), None);
    }
}
