//! The api2 gateway: workflow runs, imports (manifest create/append) and presigned URLs.

use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime};

use axum::http::StatusCode;
use pennsieve_client::ManifestEntry;
use serde_json::{Value, json};

use super::{Incoming, Reply, api2_error, reply};
use crate::state::{FakeImport, Inner, Presigned, Shared};

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
/// signature (earlier URLs of the same key stop working), `X-Amz-Date` and `X-Amz-Expires`
/// ([`crate::FakeConfig::presign_expiry`]).
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
    let expiry = shared.config.presign_expiry;
    // `X-Amz-Date` is the signing time; an injected stale URL was signed long enough ago.
    let stale = inner.expired_presigns_left > 0;
    let age = if stale {
        inner.expired_presigns_left -= 1;
        expiry + Duration::from_secs(1)
    } else {
        Duration::ZERO
    };
    let now = Instant::now();
    let expires = if stale { now } else { now + expiry };
    let signed_at = SystemTime::now()
        .checked_sub(age)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    inner.presigned.insert(
        (import_id.clone(), key.clone()),
        Presigned {
            signature: signature.clone(),
            expires,
        },
    );
    let url = format!(
        "{}/s3/{import_id}/{key}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date={}&X-Amz-Expires={}&X-Amz-Security-Token=fake-secret-session&X-Amz-SignedHeaders=host&X-Amz-Signature={signature}",
        shared.base_url,
        amz_date(signed_at),
        expiry.as_secs() + u64::from(expiry.subsec_nanos() > 0),
    );
    reply(StatusCode::OK, json!({ "url": url }))
}

/// `YYYYMMDDTHHMMSSZ` (UTC), the `X-Amz-Date` format.
fn amz_date(time: SystemTime) -> String {
    let seconds = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, of_day) = (seconds / 86_400, seconds % 86_400);
    // Howard Hinnant's civil_from_days, for days since 1970-01-01 (never negative here).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amz_dates_are_utc_calendar_times() {
        let at = |seconds: u64| amz_date(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds));
        assert_eq!(at(0), "19700101T000000Z");
        // 2024-02-29T23:59:59Z (leap day) and the second after it.
        assert_eq!(at(1_709_251_199), "20240229T235959Z");
        assert_eq!(at(1_709_251_200), "20240301T000000Z");
        assert_eq!(at(951_782_400), "20000229T000000Z");
    }
}
