//! The api2 gateway: workflow runs, imports (manifest create/append) and presigned URLs.

use std::collections::HashSet;

use axum::http::StatusCode;
use pennsieve_client::ManifestEntry;
use serde_json::{Value, json};

use super::{Incoming, Reply, api2_error, reply};
use crate::state::{FakeImport, Inner, Shared};

/// `GET {api2}/compute/workflows/runs/{id}`
pub(super) fn workflow_run(shared: &Shared, _: &mut Inner, request: &Incoming<'_>) -> Reply {
    let id = request.segment(4);
    let Some(run) = shared.config.runs.iter().find(|run| run.id == id) else {
        return api2_error(StatusCode::NOT_FOUND, "error no records found");
    };
    let mut sources = serde_json::Map::new();
    for (name, ids) in &run.data_sources {
        sources.insert(name.clone(), json!({"packageIds": ids, "path": "/input"}));
    }
    reply(
        StatusCode::OK,
        json!({"uuid": run.id, "datasetId": run.dataset_id, "status": "STARTED",
               "dataSources": sources}),
    )
}

/// `POST {api2}/import`: a new import with its first manifest batch.
pub(super) fn create_import(shared: &Shared, inner: &mut Inner, request: &Incoming<'_>) -> Reply {
    let Some(body) = request.json_body() else {
        return api2_error(StatusCode::BAD_REQUEST, "invalid JSON");
    };
    let text = |key: &str| body[key].as_str().unwrap_or("").to_owned();
    let files = match manifest_files(&body) {
        Ok(files) if !files.is_empty() => files,
        Ok(_) => return api2_error(StatusCode::BAD_REQUEST, "files must not be empty"),
        Err(message) => return api2_error(StatusCode::BAD_REQUEST, &message),
    };
    if text("integration_id").is_empty() || text("package_id").is_empty() {
        return api2_error(
            StatusCode::BAD_REQUEST,
            "integration_id and package_id are required",
        );
    }
    if text("import_type") != "timeseries" {
        return api2_error(StatusCode::BAD_REQUEST, "unsupported import_type");
    }
    if let Some(duplicate) = duplicate_key(&[], &files) {
        return api2_error(
            StatusCode::BAD_REQUEST,
            &format!("duplicate upload_key {duplicate}"),
        );
    }
    let id = uuid::Uuid::new_v4().to_string();
    inner
        .import_index
        .insert(id.clone(), inner.record.imports.len());
    inner.record.imports.push(FakeImport {
        id: id.clone(),
        dataset_id: shared.config.dataset_id.clone(),
        integration_id: text("integration_id"),
        package_id: text("package_id"),
        import_type: text("import_type"),
        files,
        append_calls: 0,
    });
    reply(StatusCode::CREATED, json!({ "id": id }))
}

/// `POST {api2}/import/{id}/files`: appends a manifest batch.
pub(super) fn append_files(_: &Shared, inner: &mut Inner, request: &Incoming<'_>) -> Reply {
    let Some(&index) = inner.import_index.get(&request.segment(2)) else {
        return api2_error(StatusCode::NOT_FOUND, "import not found");
    };
    let files = match request
        .json_body()
        .ok_or_else(|| "invalid JSON".to_owned())
        .and_then(|b| manifest_files(&b))
    {
        Ok(files) => files,
        Err(message) => return api2_error(StatusCode::BAD_REQUEST, &message),
    };
    let import = &mut inner.record.imports[index];
    if let Some(duplicate) = duplicate_key(&import.files, &files) {
        return api2_error(
            StatusCode::BAD_REQUEST,
            &format!("duplicate upload_key {duplicate}"),
        );
    }
    import.files.extend(files);
    import.append_calls += 1;
    reply(StatusCode::OK, json!({}))
}

/// `GET {api2}/import/{id}/upload/{key}/presign`: a URL on the fake's S3 route with a fresh
/// signature (earlier URLs of the same key stop working).
pub(super) fn presign(shared: &Shared, inner: &mut Inner, request: &Incoming<'_>) -> Reply {
    let (import_id, key) = (request.segment(2), request.segment(4));
    let Some(&index) = inner.import_index.get(&import_id) else {
        return api2_error(StatusCode::NOT_FOUND, "import not found");
    };
    if !inner.record.imports[index]
        .files
        .iter()
        .any(|f| f.upload_key == key)
    {
        return api2_error(StatusCode::NOT_FOUND, "upload key not in the manifest");
    }
    inner.counter += 1;
    let signature = format!("sig{}", inner.counter);
    inner
        .signatures
        .insert((import_id.clone(), key.clone()), signature.clone());
    let url = format!(
        "{}/s3/{import_id}/{key}?X-Amz-Expires=900&X-Amz-Security-Token=fake-secret-session&X-Amz-Signature={signature}",
        shared.base_url
    );
    reply(StatusCode::OK, json!({ "url": url }))
}

fn manifest_files(body: &Value) -> Result<Vec<ManifestEntry>, String> {
    serde_json::from_value(body["files"].clone()).map_err(|e| format!("invalid files: {e}"))
}

fn duplicate_key(existing: &[ManifestEntry], new: &[ManifestEntry]) -> Option<String> {
    let mut seen: HashSet<&str> = existing.iter().map(|f| f.upload_key.as_str()).collect();
    new.iter()
        .find(|f| !seen.insert(f.upload_key.as_str()))
        .map(|f| f.upload_key.clone())
}
