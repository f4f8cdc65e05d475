//! The legacy api: Cognito configuration, packages and time-series channels.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{Incoming, Reply, api_error, reply};
use crate::config::{FakeConfig, FakePackage};
use crate::state::{CreatedChannel, Inner, Shared};

/// `GET {api}/authentication/cognito-config`
pub(super) fn cognito_config(shared: &Shared, _: &mut Inner, _: &Incoming<'_>) -> Reply {
    let config = &shared.config;
    let body = match &config.external_cognito {
        Some(external) => {
            let region = &external.region;
            json!({
                "region": region,
                "userPool": {"region": region, "id": external.user_pool_id, "appClientId": external.user_pool_client_id},
                "tokenPool": {"region": region, "id": external.token_pool_id, "appClientId": external.token_pool_client_id},
                "identityPool": {"region": region, "id": format!("{region}:fake"), "appClientId": ""},
            })
        }
        None => json!({
            "region": "us-east-1",
            "userPool": {"region": "us-east-1", "id": "us-east-1_USER", "appClientId": config.user_pool_client_id},
            "tokenPool": {"region": "us-east-1", "id": "us-east-1_TOKEN", "appClientId": config.token_pool_client_id},
            "identityPool": {"region": "us-east-1", "id": "us-east-1:fake", "appClientId": ""},
        }),
    };
    reply(StatusCode::OK, body)
}

/// `GET {api}/packages/{id}`: the package with its parent (when it has one).
pub(super) fn get_package(shared: &Shared, _: &mut Inner, request: &Incoming<'_>) -> Reply {
    let config = &shared.config;
    let id = request.segment(2);
    let Some(package) = config.packages.iter().find(|p| p.id == id) else {
        return not_found(&id);
    };
    let mut dto = json!({
        "content": package_content(config, package),
        "properties": [], "children": [], "ancestors": [],
    });
    if let Some(parent) = package
        .parent
        .as_ref()
        .and_then(|p| config.packages.iter().find(|q| &q.id == p))
    {
        dto["parent"] = json!({"content": package_content(config, parent), "properties": []});
    }
    reply(StatusCode::OK, dto)
}

/// `PUT {api}/packages/{id}`: records the properties update.
pub(super) fn put_package(shared: &Shared, inner: &mut Inner, request: &Incoming<'_>) -> Reply {
    let config = &shared.config;
    let id = request.segment(2);
    let Some(package) = config.packages.iter().find(|p| p.id == id) else {
        return not_found(&id);
    };
    let Some(body) = request.json_body() else {
        return api_error(StatusCode::BAD_REQUEST, "BadRequest", "invalid JSON");
    };
    let valid = body["properties"].as_array().is_some_and(|props| {
        props
            .iter()
            .all(|p| p["key"].is_string() && p["value"].is_string())
    });
    if !valid {
        return api_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "properties need key and value",
        );
    }
    inner.record.property_updates.push((id, body));
    reply(
        StatusCode::OK,
        json!({"content": package_content(config, package)}),
    )
}

/// `GET {api}/timeseries/{id}/channels`
pub(super) fn list_channels(shared: &Shared, inner: &mut Inner, request: &Incoming<'_>) -> Reply {
    let id = request.segment(2);
    if !shared.config.packages.iter().any(|p| p.id == id) {
        return not_found(&id);
    }
    reply(
        StatusCode::OK,
        Value::Array(inner.channels.get(&id).cloned().unwrap_or_default()),
    )
}

/// `POST {api}/timeseries/{id}/channels`: one channel object, or an array of them.
pub(super) fn create_channel(shared: &Shared, inner: &mut Inner, request: &Incoming<'_>) -> Reply {
    let package_id = request.segment(2);
    let Some(package) = shared.config.packages.iter().find(|p| p.id == package_id) else {
        return not_found(&package_id);
    };
    if package.package_type != "TimeSeries" && package.package_type != "Collection" {
        return api_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "channels can only be added to time series packages or collections",
        );
    }
    let (requests, array) = match request.json_body() {
        Some(Value::Array(items)) => (items, true),
        Some(item @ Value::Object(_)) => (vec![item], false),
        _ => return api_error(StatusCode::BAD_REQUEST, "BadRequest", "invalid JSON"),
    };
    let required = [
        "name",
        "start",
        "end",
        "unit",
        "rate",
        "channelType",
        "lastAnnotation",
        "properties",
    ];
    let mut created = Vec::new();
    for request in &requests {
        if let Some(missing) = required.iter().find(|key| request.get(**key).is_none()) {
            return api_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &format!("missing field {missing}"),
            );
        }
        let name = request["name"].as_str().unwrap_or("").trim().to_owned();
        if name.is_empty() {
            return api_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "channel name must not be blank",
            );
        }
        let properties = match grouped_properties(&request["properties"]) {
            Ok(properties) => properties,
            Err(message) => return api_error(StatusCode::BAD_REQUEST, "BadRequest", &message),
        };
        let id = format!("N:channel:{}", uuid::Uuid::new_v4());
        let mut content = json!({
            "id": id, "packageId": package_id, "name": name,
            "start": request["start"], "end": request["end"], "unit": request["unit"],
            "rate": request["rate"], "channelType": request["channelType"],
            "lastAnnotation": request["lastAnnotation"], "createdAt": "2024-01-01T00:00:00Z",
        });
        if let Some(group) = request.get("group").filter(|g| !g.is_null()) {
            content["group"] = group.clone();
        }
        let dto = json!({"content": content, "properties": properties});
        inner
            .channels
            .entry(package_id.clone())
            .or_default()
            .push(dto.clone());
        inner.record.created_channels.push(CreatedChannel {
            package_id: package_id.clone(),
            id,
            request: request.clone(),
        });
        created.push(dto);
    }
    let body = if array {
        Value::Array(created)
    } else {
        created.pop().unwrap_or(Value::Null)
    };
    reply(StatusCode::CREATED, body)
}

/// The request's flat property list (`[{key, value, dataType?, category?, fixed?, hidden?}]`)
/// as the api returns it: grouped by category in order of first appearance, each with the
/// server's defaults (`dataType` "string", `category` "Pennsieve", not fixed, not hidden) and
/// `display` = value. Each property needs string `key` and `value`.
fn grouped_properties(properties: &Value) -> Result<Value, String> {
    let Some(items) = properties.as_array() else {
        return Err("properties must be an array".into());
    };
    let mut groups: Vec<(String, Vec<Value>)> = Vec::new();
    for item in items {
        let (Some(key), Some(value)) = (item["key"].as_str(), item["value"].as_str()) else {
            return Err("each property needs a string key and value".into());
        };
        let category = item["category"].as_str().unwrap_or("Pennsieve").to_owned();
        let property = json!({
            "key": key, "value": value,
            "dataType": item["dataType"].as_str().unwrap_or("string"),
            "fixed": item["fixed"].as_bool().unwrap_or(false),
            "hidden": item["hidden"].as_bool().unwrap_or(false),
            "display": value,
        });
        match groups.iter_mut().find(|(c, _)| *c == category) {
            Some((_, group)) => group.push(property),
            None => groups.push((category, vec![property])),
        }
    }
    Ok(Value::Array(
        groups
            .into_iter()
            .map(|(category, properties)| json!({"category": category, "properties": properties}))
            .collect(),
    ))
}

fn not_found(id: &str) -> Reply {
    api_error(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!("{id} not found"),
    )
}

fn package_content(config: &FakeConfig, package: &FakePackage) -> Value {
    json!({"id": package.id, "nodeId": package.id, "name": "recording.nwb",
           "packageType": package.package_type, "datasetId": config.dataset_id,
           "datasetNodeId": config.dataset_id, "state": "READY"})
}
