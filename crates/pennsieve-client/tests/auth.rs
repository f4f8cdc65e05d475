//! Both login paths, renewal on 401 (api) / 403 (api2), single-flight renewals, permission errors.

mod common;

use base64::Engine;
use common::*;
use pennsieve_client::{Client, Credentials, Error};
use pennsieve_fake::{FakeConfig, FakeRoute, ids};

#[tokio::test]
async fn expired_session_token_is_refreshed_with_the_user_pool_and_device_key() {
    let fake = fake(FakeConfig::default()).await;
    let client = session_client(&fake);
    fake.expire_tokens();
    // api: 401 then renewal.
    assert_eq!(client.list_channels(ids::PACKAGE).await.unwrap(), []);
    let state = fake.state();
    assert_eq!(state.auth_calls.len(), 1);
    let call = &state.auth_calls[0];
    assert_eq!(call.flow, "REFRESH_TOKEN_AUTH");
    assert_eq!(call.client_id, "fake-user-pool-client");
    assert_eq!(call.device_key.as_deref(), Some("us-east-1_fake-device"));
    assert!(call.ok);
    let statuses: Vec<u16> = state
        .requests
        .iter()
        .filter(|r| r.route == Some(FakeRoute::ListChannels))
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [401, 200]);

    // api2: 403 then renewal, keeping the original refresh token.
    fake.expire_tokens();
    client.workflow_run(ids::RUN).await.unwrap();
    let state = fake.state();
    assert_eq!(state.auth_count("REFRESH_TOKEN_AUTH"), 2);
    assert!(state.auth_calls.iter().all(|c| c.ok));
    let statuses: Vec<u16> = state
        .requests
        .iter()
        .filter(|r| r.route == Some(FakeRoute::WorkflowRun))
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [403, 200]);
    // The cognito config was fetched once.
    assert_eq!(state.count(FakeRoute::CognitoConfig), 1);
}

#[tokio::test]
async fn refresh_without_device_key_claim_sends_none() {
    let fake = fake(FakeConfig {
        device_key: None,
        ..FakeConfig::default()
    })
    .await;
    let client = Client::new(
        fake.client_config(),
        Credentials::session("opaque-not-a-jwt", Some("fake-user-refresh-token".into())).unwrap(),
    )
    .unwrap();
    // The opaque token is unknown to the fake: treated as expired, renewed without DEVICE_KEY.
    client.set_viewer_properties(ids::PACKAGE).await.unwrap();
    let state = fake.state();
    assert_eq!(state.auth_calls.len(), 1);
    assert_eq!(state.auth_calls[0].device_key, None);
}

#[tokio::test]
async fn api_key_logs_in_with_the_token_pool_and_refreshes_there() {
    let fake = fake(FakeConfig::default()).await;
    let client = key_client(&fake);
    client.authenticate().await.unwrap();
    client.list_channels(ids::PACKAGE).await.unwrap();
    fake.expire_tokens();
    client.list_channels(ids::PACKAGE).await.unwrap();
    let calls = fake.state().auth_calls;
    let summary: Vec<(&str, &str, bool)> = calls
        .iter()
        .map(|c| (c.flow.as_str(), c.client_id.as_str(), c.ok))
        .collect();
    assert_eq!(
        summary,
        [
            ("USER_PASSWORD_AUTH", "fake-token-pool-client", true),
            ("REFRESH_TOKEN_AUTH", "fake-token-pool-client", true),
        ]
    );
    // The fake's token-pool tokens carry no device key, so none is sent.
    assert_eq!(calls[1].device_key, None);
}

#[tokio::test]
async fn wrong_secret_is_a_cognito_error() {
    let fake = fake(FakeConfig::default()).await;
    let client = Client::new(
        fake.client_config(),
        Credentials::api_key("fake-api-key", "wrong").unwrap(),
    )
    .unwrap();
    let error = client.authenticate().await.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "Cognito USER_PASSWORD_AUTH at {} failed: NotAuthorizedException: Incorrect username or password.",
            fake.cognito_url()
        )
    );
    // A request now reports the login failure as the reason, without asking Cognito again.
    let error = client.list_channels(ids::PACKAGE).await.unwrap_err();
    assert!(
        error.to_string().contains("Incorrect username or password"),
        "{error}"
    );
    assert_eq!(fake.state().auth_calls.len(), 1);
}

#[tokio::test]
async fn expired_token_without_refresh_token_names_the_missing_refresh_token() {
    let fake = fake(FakeConfig::default()).await;
    let client = Client::new(
        fake.client_config(),
        Credentials::session(fake.session_token(), None).unwrap(),
    )
    .unwrap();
    fake.expire_tokens();
    let error = client.workflow_run(ids::RUN).await.unwrap_err();
    assert!(
        matches!(error, Error::SessionRejected { status: 403, .. }),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .ends_with("HTTP 403, and the session could not be renewed: cannot refresh session: no refresh token was supplied (set REFRESH_TOKEN)"),
        "{error}"
    );
    assert_eq!(fake.state().auth_calls.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_with_an_expired_token_renew_once() {
    let fake = fake(FakeConfig::default()).await;
    let client = session_client(&fake);
    client.workflow_run(ids::RUN).await.unwrap();
    fake.expire_tokens();
    let mut tasks = Vec::new();
    for i in 0..32 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                client.list_channels(ids::PACKAGE).await.map(|_| ())
            } else {
                client.workflow_run(ids::RUN).await.map(|_| ())
            }
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let state = fake.state();
    assert_eq!(state.auth_count("REFRESH_TOKEN_AUTH"), 1);
    let refused = state
        .requests
        .iter()
        .filter(|r| r.status == 401 || r.status == 403)
        .count();
    let served = state
        .requests
        .iter()
        .filter(|r| {
            matches!(
                r.route,
                Some(FakeRoute::ListChannels | FakeRoute::WorkflowRun)
            ) && r.status == 200
        })
        .count();
    assert_eq!(served, 33);
    assert!(refused <= 32, "{refused}");
}

#[tokio::test]
async fn tokens_expiring_after_some_uses_are_renewed_as_needed() {
    let fake = fake(FakeConfig {
        token_max_uses: Some(3),
        ..FakeConfig::default()
    })
    .await;
    let client = session_client(&fake);
    for _ in 0..10 {
        client.list_channels(ids::PACKAGE).await.unwrap();
    }
    // Sequential calls: uses 1-3 succeed, the 4th is refused and renews: 10 calls -> 3 renewals.
    assert_eq!(fake.state().auth_count("REFRESH_TOKEN_AUTH"), 3);
}

#[tokio::test]
async fn permission_denied_is_not_a_session_problem() {
    let fake = fake(FakeConfig {
        permission_denied: true,
        ..FakeConfig::default()
    })
    .await;
    let client = session_client(&fake);
    // api: 403 means permission, no renewal.
    let error = client.list_channels(ids::PACKAGE).await.unwrap_err();
    assert!(
        matches!(error, Error::PermissionDenied { status: 403, .. }),
        "{error:?}"
    );
    assert_eq!(fake.state().auth_calls.len(), 0);
    // api2: 403 may be an expired token; after one renewal it is a permission error.
    let error = client.workflow_run(ids::RUN).await.unwrap_err();
    assert!(
        matches!(error, Error::PermissionDenied { status: 403, .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("permission denied (HTTP 403)"),
        "{error}"
    );
    assert_eq!(fake.state().auth_count("REFRESH_TOKEN_AUTH"), 1);
}

#[test]
fn credentials_debug_redacts_secrets() {
    let session = Credentials::session("tok-123", Some("ref-456".into())).unwrap();
    let shown = format!("{session:?}");
    assert_eq!(
        shown,
        r#"SessionToken { token: "<redacted>", refresh_token: Some("<redacted>") }"#
    );
    let key = Credentials::api_key("key-1", "secret-2").unwrap();
    assert_eq!(
        format!("{key:?}"),
        r#"ApiKey { key: "<redacted>", secret: "<redacted>" }"#
    );
}

#[test]
fn credentials_constructors_reject_blank_values() {
    assert_eq!(
        Credentials::session("t", Some(" ".into())).unwrap(),
        Credentials::SessionToken {
            token: "t".into(),
            refresh_token: None
        },
        "a blank refresh token counts as none"
    );
    assert_eq!(
        Credentials::api_key("k", "s").unwrap(),
        Credentials::ApiKey {
            key: "k".into(),
            secret: "s".into()
        }
    );
    for (error, what) in [
        (Credentials::session("", None).unwrap_err(), "session token"),
        (
            Credentials::session(" \t", Some("r".into())).unwrap_err(),
            "session token",
        ),
        (Credentials::api_key(" ", "s").unwrap_err(), "API key"),
        (Credentials::api_key("k", "").unwrap_err(), "API secret"),
    ] {
        assert!(matches!(error, Error::InvalidConfig(_)), "{error:?}");
        assert_eq!(
            error.to_string(),
            format!("invalid configuration: the {what} is empty")
        );
    }
}

#[test]
fn fake_session_tokens_carry_the_device_key_claim() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let fake = fake(FakeConfig::default()).await;
        let token = fake.session_token();
        let payload = token.split('.').nth(1).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(claims["device_key"], "us-east-1_fake-device");
    });
}

#[tokio::test]
async fn cognito_5xx_is_retried_up_to_max_attempts() {
    let fake = fake(FakeConfig {
        fail_first: vec![(FakeRoute::InitiateAuth, 10)],
        ..FakeConfig::default()
    })
    .await;
    let mut config = fake.client_config();
    config.retry.max_attempts = 3;
    let client = Client::new(config, fake.api_key_credentials()).unwrap();
    let error = client.authenticate().await.unwrap_err();
    let Error::Cognito {
        flow,
        endpoint,
        kind,
        message,
    } = &error
    else {
        panic!("{error:?}");
    };
    assert_eq!(*flow, "USER_PASSWORD_AUTH");
    assert_eq!(*endpoint, fake.cognito_url());
    // The fake's 503 body has no `__type`: the status stands in for the error code.
    assert_eq!(kind, "HTTP 503");
    assert_eq!(message, "injected failure");
    // The SDK's standard retry mode, configured from `RetryPolicy::max_attempts`.
    assert_eq!(fake.state().count(FakeRoute::InitiateAuth), 3);
}

#[tokio::test]
async fn unreachable_cognito_is_a_transport_error_without_secrets() {
    let fake = fake(FakeConfig::default()).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}/cognito/", closed.local_addr().unwrap());
    drop(closed);
    let mut config = fake.client_config();
    config.cognito_endpoint = Some(endpoint.clone());
    config.retry.max_attempts = 2;
    let secret = "s3cret-that-must-not-show";
    let client = Client::new(
        config,
        Credentials::api_key("fake-api-key", secret).unwrap(),
    )
    .unwrap();
    let error = client.authenticate().await.unwrap_err();
    assert!(
        matches!(&error, Error::Cognito { kind, endpoint: e, .. } if kind == "transport error" && *e == endpoint),
        "{error:?}"
    );
    assert!(!error.to_string().contains(secret), "{error}");
    assert!(!format!("{error:?}").contains(secret), "{error:?}");
}
