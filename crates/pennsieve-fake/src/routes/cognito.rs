//! Cognito `InitiateAuth`: API-key logins (`USER_PASSWORD_AUTH`, token pool) and refreshes
//! (`REFRESH_TOKEN_AUTH`, user or token pool).

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{Incoming, Reply, reply};
use crate::state::{AuthCall, Inner, Shared, issue_access_token};

/// `POST {cognito}` with `X-Amz-Target: AWSCognitoIdentityProviderService.InitiateAuth`.
pub(super) fn initiate_auth(shared: &Shared, inner: &mut Inner, request: &Incoming<'_>) -> Reply {
    let config = &shared.config;
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    if header("x-amz-target") != "AWSCognitoIdentityProviderService.InitiateAuth" {
        return cognito_error("UnknownOperationException", "unknown X-Amz-Target");
    }
    if header("content-type") != "application/x-amz-json-1.1" {
        return cognito_error(
            "SerializationException",
            "expected application/x-amz-json-1.1",
        );
    }
    let Some(body) = request.json_body() else {
        return cognito_error("SerializationException", "invalid JSON");
    };
    let text = |value: &Value| value.as_str().unwrap_or("").to_owned();
    let flow = text(&body["AuthFlow"]);
    let client_id = text(&body["ClientId"]);
    let parameters = &body["AuthParameters"];
    let device_key = parameters["DEVICE_KEY"].as_str().map(str::to_owned);
    let outcome: Result<Value, (&str, &str)> = match flow.as_str() {
        "USER_PASSWORD_AUTH" => {
            // API keys live in the token pool: another client id does not know the user.
            if client_id != config.token_pool_client_id
                || text(&parameters["USERNAME"]) != config.api_key
                || text(&parameters["PASSWORD"]) != config.api_secret
            {
                Err(("NotAuthorizedException", "Incorrect username or password."))
            } else {
                let access = issue_access_token(inner, config, false);
                inner.counter += 1;
                let refresh = format!("fake-token-pool-refresh-{}", inner.counter);
                inner.token_pool_refresh.insert(refresh.clone());
                Ok(
                    json!({"AccessToken": access, "ExpiresIn": 3600, "IdToken": "fake-id-token",
                          "TokenType": "Bearer", "RefreshToken": refresh}),
                )
            }
        }
        "REFRESH_TOKEN_AUTH" => {
            let refresh = text(&parameters["REFRESH_TOKEN"]);
            let user_pool = refresh == config.refresh_token;
            let token_pool = inner.token_pool_refresh.contains(&refresh);
            // A refresh must use the issuing pool's client id (and the device key, if bound).
            let wrong_client = user_pool && client_id != config.user_pool_client_id
                || token_pool && client_id != config.token_pool_client_id;
            let wrong_device =
                user_pool && config.device_key.is_some() && device_key != config.device_key;
            if !(user_pool || token_pool) || wrong_client || wrong_device {
                Err(("NotAuthorizedException", "Invalid Refresh Token"))
            } else {
                let access = issue_access_token(inner, config, user_pool);
                Ok(
                    json!({"AccessToken": access, "ExpiresIn": 3600, "IdToken": "fake-id-token",
                          "TokenType": "Bearer"}),
                )
            }
        }
        _ => Err(("InvalidParameterException", "unsupported AuthFlow")),
    };
    inner.record.auth_calls.push(AuthCall {
        flow,
        client_id,
        device_key,
        ok: outcome.is_ok(),
    });
    match outcome {
        Ok(result) => reply(
            StatusCode::OK,
            json!({"AuthenticationResult": result, "ChallengeParameters": {}}),
        ),
        Err((kind, message)) => cognito_error(kind, message),
    }
}

/// Cognito's error body (`__type` names the exception).
fn cognito_error(kind: &str, message: &str) -> Reply {
    reply(
        StatusCode::BAD_REQUEST,
        json!({"__type": kind, "message": message}),
    )
}
