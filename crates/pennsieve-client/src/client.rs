//! The client, its typed endpoints (contract §4) and authenticated sending (the session token on
//! every call, one renewal on 401/403).

use std::path::Path;
use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_util::io::ReaderStream;

use crate::auth::Auth;
use crate::config::{Config, Credentials};
use crate::endpoint::{Endpoint, Service, body_snippet, error_chain, redact_url};
use crate::error::{Error, Result};
use crate::http::{Call, check_success, retry_within_deadline, send_once, with_retries};

/// An async Pennsieve client. Cheap to clone; clones share connections and the session.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    http: reqwest::Client,
    auth: Auth,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// What `GET {api2}/compute/workflows/runs/{id}` tells about a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowRun {
    /// The run uuid (used as `integration_id` of the import).
    pub uuid: String,
    /// `N:dataset:<uuid>`.
    pub dataset_id: String,
    /// Every `dataSources[*].packageIds`, in JSON object order.
    pub package_ids: Vec<String>,
}

/// A channel as the api returns it (`ChannelDTO.content`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteChannel {
    /// `N:channel:<uuid>`.
    pub id: String,
    /// Channel name.
    pub name: String,
    /// First sample, µs since the epoch.
    pub start: i64,
    /// Last sample, µs since the epoch.
    pub end: i64,
    /// Unit, e.g. `uV`.
    #[serde(default)]
    pub unit: String,
    /// Sampling rate in Hz.
    pub rate: f64,
    /// `CONTINUOUS` or `UNIT` (`channelType`, or `type` as in local metadata).
    #[serde(alias = "type")]
    pub channel_type: String,
    /// Group; may be omitted or null.
    #[serde(default)]
    pub group: Option<String>,
}

/// The body of `POST {api}/timeseries/{id}/channels`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewChannel {
    /// Channel name (must not be blank).
    pub name: String,
    /// First sample, µs since the epoch.
    pub start: i64,
    /// Last sample, µs since the epoch.
    pub end: i64,
    /// Unit (`uV`).
    pub unit: String,
    /// Sampling rate in Hz.
    pub rate: f64,
    /// `CONTINUOUS` or `UNIT`.
    pub channel_type: String,
    /// Group.
    pub group: String,
    /// Last annotation time.
    pub last_annotation: i64,
    /// Flat property list.
    pub properties: Vec<Value>,
}

impl From<&ts_chunk_format::ChannelMetadata> for NewChannel {
    fn from(m: &ts_chunk_format::ChannelMetadata) -> Self {
        NewChannel {
            name: m.name.trim().to_owned(),
            start: m.start,
            end: m.end,
            unit: m.unit.clone(),
            rate: m.rate,
            channel_type: m.channel_type.to_uppercase(),
            group: m.group.trim().to_owned(),
            last_annotation: m.last_annotation,
            properties: m.properties.clone(),
        }
    }
}

/// One file of an import manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// A fresh UUID v4 per file; names the uploaded object.
    pub upload_key: String,
    /// The upload name, `N:channel:<uuid>_{start}_{end}.bin.gz`.
    pub file_path: String,
}

#[derive(Deserialize)]
struct ChannelDto {
    content: RemoteChannel,
}

#[derive(Deserialize)]
struct IdResponse {
    id: String,
}

#[derive(Deserialize)]
struct UrlResponse {
    url: String,
}

impl Client {
    /// A client for `config` authenticating with `credentials`. Nothing is sent yet: API-key
    /// logins happen on the first call (or [`Client::authenticate`]).
    pub fn new(config: Config, credentials: Credentials) -> Result<Client> {
        config.validate()?;
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .pool_max_idle_per_host(config.upload_concurrency.max(8))
            .user_agent(concat!("pennsieve-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                Error::InvalidConfig(format!("cannot build HTTP client: {}", error_chain(e)))
            })?;
        Ok(Client {
            inner: Arc::new(Inner {
                config,
                http,
                auth: Auth::new(credentials),
            }),
        })
    }

    /// The settings in use.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Makes sure a session exists (logs in with an API key now rather than on the first call).
    pub async fn authenticate(&self) -> Result<()> {
        self.inner
            .auth
            .token(&self.inner.http, &self.inner.config)
            .await
            .map(|_| ())
    }

    async fn send(&self, call: Call<'_>) -> Result<bytes::Bytes> {
        send_authenticated(
            &self.inner.http,
            &self.inner.config,
            &self.inner.auth,
            &call,
        )
        .await
    }

    async fn send_json<T: DeserializeOwned>(&self, call: Call<'_>) -> Result<T> {
        let endpoint = call.endpoint.to_string();
        let bytes = self.send(call).await?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Decode {
            endpoint,
            message: format!("{e}; body starts: {}", body_snippet(&bytes)),
        })
    }

    fn api(&self, method: Method, segments: &[&str], query: &[(&str, &str)]) -> Result<Endpoint> {
        Endpoint::api(&self.inner.config, method, segments, query)
    }

    fn api2(&self, method: Method, segments: &[&str], query: &[(&str, &str)]) -> Result<Endpoint> {
        Endpoint::api2(&self.inner.config, method, segments, query)
    }

    /// `GET {api2}/compute/workflows/runs/{run_id}`. A 404, or a 200 whose `datasetId` is
    /// missing or empty, is [`Error::WorkflowRunNotFound`].
    pub async fn workflow_run(&self, run_id: &str) -> Result<WorkflowRun> {
        let endpoint = self.api2(Method::GET, &["compute", "workflows", "runs", run_id], &[])?;
        let shown = endpoint.to_string();
        let not_found = || Error::WorkflowRunNotFound {
            run_id: run_id.to_owned(),
            endpoint: shown.clone(),
        };
        let body: Value = match self
            .send_json(Call {
                endpoint: endpoint.clone(),
                body: None,
                accept: "application/json",
                retry: true,
            })
            .await
        {
            Err(Error::Status { status: 404, .. }) => return Err(not_found()),
            other => other?,
        };
        let text = |key: &str| body.get(key).and_then(Value::as_str).unwrap_or("");
        let dataset_id = text("datasetId");
        if dataset_id.is_empty() {
            return Err(not_found());
        }
        let mut package_ids = Vec::new();
        if let Some(sources) = body.get("dataSources").and_then(Value::as_object) {
            // serde_json's `preserve_order` keeps the object order the server sent.
            for (name, source) in sources {
                match source.get("packageIds") {
                    None | Some(Value::Null) => {}
                    Some(Value::Array(ids)) => {
                        for id in ids {
                            let id = id.as_str().ok_or_else(|| Error::Decode {
                                endpoint: shown.clone(),
                                message: format!(
                                    "dataSources.{name}.packageIds holds a non-string {id}"
                                ),
                            })?;
                            package_ids.push(id.to_owned());
                        }
                    }
                    Some(other) => {
                        return Err(Error::Decode {
                            endpoint: shown,
                            message: format!(
                                "dataSources.{name}.packageIds is {other}, expected an array"
                            ),
                        });
                    }
                }
            }
        }
        let uuid = match text("uuid") {
            "" => run_id,
            uuid => uuid,
        };
        Ok(WorkflowRun {
            uuid: uuid.to_owned(),
            dataset_id: dataset_id.to_owned(),
            package_ids,
        })
    }

    /// `GET {api}/packages/{id}?includeAncestors=true&...`: the parent's node id, `None` at the
    /// dataset root.
    pub async fn package_parent(&self, package_id: &str) -> Result<Option<String>> {
        let endpoint = self.api(
            Method::GET,
            &["packages", package_id],
            &[
                ("includeAncestors", "true"),
                ("startAtEpoch", "false"),
                ("limit", "100"),
                ("offset", "0"),
            ],
        )?;
        let body: Value = self
            .send_json(Call {
                endpoint,
                body: None,
                accept: "application/json",
                retry: true,
            })
            .await?;
        Ok(body
            .pointer("/parent/content/nodeId")
            .and_then(Value::as_str)
            .map(str::to_owned))
    }

    /// `PUT {api}/packages/{id}?updateStorage=true` with the time-series viewer properties
    /// (idempotent: the server merges by category and key).
    pub async fn set_viewer_properties(&self, package_id: &str) -> Result<()> {
        let endpoint = self.api(
            Method::PUT,
            &["packages", package_id],
            &[("updateStorage", "true")],
        )?;
        let body = json!({"properties": [
            {"key": "subtype", "value": "pennsieve_timeseries", "dataType": "string",
             "category": "Viewer", "fixed": false, "hidden": true},
            {"key": "icon", "value": "timeseries", "dataType": "string",
             "category": "Pennsieve", "fixed": false, "hidden": true},
        ]});
        self.send(Call {
            endpoint,
            body: Some(&body),
            accept: "*/*",
            retry: true,
        })
        .await
        .map(|_| ())
    }

    /// `GET {api}/timeseries/{id}/channels`, in response order.
    pub async fn list_channels(&self, package_id: &str) -> Result<Vec<RemoteChannel>> {
        let endpoint = self.api(Method::GET, &["timeseries", package_id, "channels"], &[])?;
        let channels: Vec<ChannelDto> = self
            .send_json(Call {
                endpoint,
                body: None,
                accept: "application/json",
                retry: true,
            })
            .await?;
        Ok(channels.into_iter().map(|dto| dto.content).collect())
    }

    /// `POST {api}/timeseries/{id}/channels` (201). Not retried: the server has no duplicate
    /// check, so a retry after a lost response would create a second channel.
    pub async fn create_channel(
        &self,
        package_id: &str,
        channel: &NewChannel,
    ) -> Result<RemoteChannel> {
        let endpoint = self.api(Method::POST, &["timeseries", package_id, "channels"], &[])?;
        let body = serde_json::to_value(channel).map_err(|e| Error::Decode {
            endpoint: endpoint.to_string(),
            message: format!("cannot encode channel {:?}: {e}", channel.name),
        })?;
        let dto: ChannelDto = self
            .send_json(Call {
                endpoint,
                body: Some(&body),
                accept: "application/json",
                retry: false,
            })
            .await?;
        Ok(dto.content)
    }

    /// `POST {api2}/import?dataset_id=…` with the first manifest batch; returns the import id.
    pub async fn create_import(
        &self,
        dataset_id: &str,
        integration_id: &str,
        package_id: &str,
        files: &[ManifestEntry],
    ) -> Result<String> {
        let endpoint = self.api2(Method::POST, &["import"], &[("dataset_id", dataset_id)])?;
        let body = create_import_body(integration_id, package_id, files);
        let created: IdResponse = self
            .send_json(Call {
                endpoint,
                body: Some(&body),
                accept: "application/json",
                retry: false,
            })
            .await?;
        Ok(created.id)
    }

    /// `POST {api2}/import/{id}/files?dataset_id=…`: appends a manifest batch.
    pub async fn append_import_files(
        &self,
        dataset_id: &str,
        import_id: &str,
        files: &[ManifestEntry],
    ) -> Result<()> {
        let endpoint = self.api2(
            Method::POST,
            &["import", import_id, "files"],
            &[("dataset_id", dataset_id)],
        )?;
        let body = json!({ "files": files });
        self.send(Call {
            endpoint,
            body: Some(&body),
            accept: "application/json",
            retry: false,
        })
        .await
        .map(|_| ())
    }

    /// `GET {api2}/import/{id}/upload/{key}/presign?dataset_id=…` (one attempt): the presigned
    /// upload URL. It carries credentials: never log it, see [`redact_url`].
    pub async fn presign(
        &self,
        dataset_id: &str,
        import_id: &str,
        upload_key: &str,
    ) -> Result<String> {
        let endpoint = self.api2(
            Method::GET,
            &["import", import_id, "upload", upload_key, "presign"],
            &[("dataset_id", dataset_id)],
        )?;
        let presigned: UrlResponse = self
            .send_json(Call {
                endpoint,
                body: None,
                accept: "application/json",
                retry: false,
            })
            .await?;
        Ok(presigned.url)
    }

    /// `PUT` the file to a presigned URL (one attempt, within
    /// [`Config::upload_attempt_timeout`] of its size), streaming it from disk with its
    /// `Content-Length` and no `Authorization`. Returns the bytes sent.
    pub async fn put_file(&self, url: &str, path: &Path) -> Result<u64> {
        let io = |action| {
            move |source| Error::Io {
                action,
                path: path.to_owned(),
                source,
            }
        };
        let file = tokio::fs::File::open(path).await.map_err(io("open"))?;
        let length = file.metadata().await.map_err(io("inspect"))?.len();
        let endpoint = format!("PUT {}", redact_url(url));
        let transport = |e: reqwest::Error| Error::Transport {
            endpoint: endpoint.clone(),
            message: format!("uploading {}: {}", path.display(), error_chain(e)),
        };
        let response = self
            .inner
            .http
            .put(url)
            // An explicit length makes hyper send the stream with Content-Length instead of
            // chunked encoding, which S3 rejects (501).
            .header(reqwest::header::CONTENT_LENGTH, length)
            .timeout(self.inner.config.upload_attempt_timeout(length))
            .body(reqwest::Body::wrap_stream(ReaderStream::with_capacity(
                file,
                256 * 1024,
            )))
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        if status.is_success() {
            // Drain so the connection goes back to the pool.
            let _ = response.bytes().await;
            return Ok(length);
        }
        let body = response.bytes().await.unwrap_or_default();
        Err(Error::Status {
            endpoint,
            status: status.as_u16(),
            body: s3_error_summary(&body),
        })
    }

    /// Presign then PUT, retrying the pair (with a new URL each time) on any failure but a
    /// refused session or permission, with back-off, all within [`Config::call_deadline`].
    /// Returns the bytes sent.
    pub async fn upload_file(
        &self,
        dataset_id: &str,
        import_id: &str,
        upload_key: &str,
        path: &Path,
    ) -> Result<u64> {
        self.upload_file_with(dataset_id, import_id, upload_key, path, None)
            .await
    }

    /// [`Client::upload_file`] whose first attempt PUTs to `presigned` when given (a URL the
    /// caller fetched ahead, while another PUT was still running); later attempts presign anew.
    pub(crate) async fn upload_file_with(
        &self,
        dataset_id: &str,
        import_id: &str,
        upload_key: &str,
        path: &Path,
        presigned: Option<String>,
    ) -> Result<u64> {
        let mut presigned = presigned;
        let config = &self.inner.config;
        let mut attempts = 0;
        let call = format!("upload of {}", path.display());
        let result = retry_within_deadline(
            config,
            &call,
            config.retry.max_attempts,
            upload_may_recover,
            || {
                attempts += 1;
                let ahead = presigned.take();
                async move {
                    let url = match ahead {
                        Some(url) => url,
                        None => self.presign(dataset_id, import_id, upload_key).await?,
                    };
                    self.put_file(&url, path).await
                }
            },
        )
        .await;
        result.map_err(|source| Error::Upload {
            path: path.to_owned(),
            upload_key: upload_key.to_owned(),
            attempts,
            source: Box::new(source),
        })
    }
}

/// Sends one authenticated call: renews the session once on an auth failure, retries transient
/// failures when allowed, all within the call deadline, and returns the body of a 2xx response.
async fn send_authenticated(
    http: &reqwest::Client,
    config: &Config,
    auth: &Auth,
    call: &Call<'_>,
) -> Result<bytes::Bytes> {
    with_retries(
        config,
        &call.endpoint.without_query(),
        call.retry,
        || async {
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
        },
    )
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

/// Whether an upload attempt may succeed when retried: unlike API calls, also after
/// non-transient failures (an expired presigned URL gives S3's 403, a fresh URL fixes it), but
/// not after session and permission refusals and local file errors.
fn upload_may_recover(error: &Error) -> bool {
    !matches!(
        error,
        Error::PermissionDenied { .. }
            | Error::SessionRejected { .. }
            | Error::RenewalFailed(_)
            | Error::NoRefreshToken
            | Error::Cognito { .. }
            | Error::Io { .. }
            | Error::InvalidConfig(_)
    )
}

/// The `create import` body (also used to measure batch sizes).
pub(crate) fn create_import_body(
    integration_id: &str,
    package_id: &str,
    files: &[ManifestEntry],
) -> Value {
    json!({
        "integration_id": integration_id,
        "package_id": package_id,
        "import_type": "timeseries",
        "files": files,
    })
}

/// S3 error bodies can echo the canonical request (with the security token); keep only `Code`
/// and `Message`.
fn s3_error_summary(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let element = |name: &str| {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&close)? + start;
        Some(text[start..end].to_owned())
    };
    match (element("Code"), element("Message")) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code,
        _ => "(body not shown)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_errors_show_only_code_and_message() {
        let body = b"<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code><Message>bad sig</Message><CanonicalRequest>X-Amz-Security-Token=secret</CanonicalRequest></Error>";
        assert_eq!(s3_error_summary(body), "SignatureDoesNotMatch: bad sig");
        assert_eq!(s3_error_summary(b"secret stuff"), "(body not shown)");
    }
}
