//! Both login paths and both refreshes through the real `aws-sdk-cognitoidentityprovider` calls
//! against a real Cognito protocol endpoint, the `moto` emulator (`pennsieve_fake::MotoCognito`),
//! then an import through the fake Pennsieve with the client logged in there.
//!
//! The fake serves moto's pools in `cognito-config` and accepts moto's access tokens
//! (`FakeConfig::external_cognito`); expiring a token in the fake forces the client to refresh.
//! Without python3/PyPI the test prints `SKIPPED: …` and passes, unless
//! `COGNITO_EMULATOR_REQUIRED=1` (CI).

mod common;

use base64::Engine;
use common::*;
use pennsieve_client::{Client, Credentials, ImportOptions, ImportStatus, import_directory};
use pennsieve_fake::{FakeConfig, FakePennsieve, FakeRoute, MotoCognito, ids};
use serde_json::Value;

/// The payload of a JWT (decoded without verification).
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// The bearer tokens and statuses of the requests to `route`, in order.
fn bearers(fake: &FakePennsieve, route: FakeRoute) -> Vec<(String, u16)> {
    fake.state()
        .requests
        .iter()
        .filter(|r| r.route == Some(route))
        .map(|r| {
            let token = r.authorization.as_deref().unwrap_or("");
            (token.trim_start_matches("Bearer ").to_owned(), r.status)
        })
        .collect()
}

/// `(iss, client_id, username, token_use)` of an access token.
fn who(token: &str) -> (String, String, String, String) {
    let c = claims(token);
    let text = |name: &str| c[name].as_str().unwrap_or("").to_owned();
    (
        text("iss"),
        text("client_id"),
        text("username"),
        text("token_use"),
    )
}

fn issuer(moto: &MotoCognito, pool: &str) -> String {
    format!("https://cognito-idp.{}.amazonaws.com/{pool}", moto.region)
}

#[test]
fn login_refresh_and_import_through_the_moto_cognito_emulator() {
    let started = std::time::Instant::now();
    let Some(moto) = MotoCognito::start_or_skip("cognito_moto") else {
        return;
    };
    let moto_ready = started.elapsed();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let fake = fake(FakeConfig {
            external_cognito: Some(moto.external_cognito()),
            ..FakeConfig::default()
        })
        .await;
        let config = fake.client_config();
        assert_eq!(
            config.cognito_endpoint.as_deref(),
            Some(moto.endpoint.as_str())
        );
        let token_pool = issuer(&moto, &moto.token_pool_id);
        let user_pool = issuer(&moto, &moto.user_pool_id);

        // (a) API key/secret: InitiateAuth USER_PASSWORD_AUTH with the token pool's client.
        let keyed = Client::new(
            config.clone(),
            Credentials::api_key(&moto.api_key, &moto.api_secret).unwrap(),
        )
        .unwrap();
        keyed.authenticate().await.unwrap();
        keyed.list_channels(ids::PACKAGE).await.unwrap();
        let calls = bearers(&fake, FakeRoute::ListChannels);
        assert_eq!(calls.len(), 1);
        let (login_token, status) = &calls[0];
        assert_eq!(*status, 200);
        assert_eq!(
            who(login_token),
            (
                token_pool.clone(),
                moto.token_pool_client_id.clone(),
                moto.api_key.clone(),
                "access".to_owned()
            ),
            "the bearer token is moto's token-pool access token for the API key"
        );
        // ... and its refresh: InitiateAuth REFRESH_TOKEN_AUTH with the token pool's client and
        // the refresh token of that login.
        fake.expire_token(login_token);
        keyed.list_channels(ids::PACKAGE).await.unwrap();
        let calls = bearers(&fake, FakeRoute::ListChannels);
        let statuses: Vec<u16> = calls.iter().map(|(_, s)| *s).collect();
        assert_eq!(statuses, [200, 401, 200]);
        assert_eq!(&calls[1].0, login_token);
        let refreshed = &calls[2].0;
        assert_ne!(refreshed, login_token, "a new token from moto");
        assert_eq!(who(refreshed), who(login_token));

        // (b) A user-pool session (access + refresh token from moto's user pool); the fake
        // rejects the access token as expired, so the first call refreshes with
        // REFRESH_TOKEN_AUTH and the user pool's client; then a whole import goes through.
        let session = Client::new(
            config,
            Credentials::session(
                moto.session_access_token.clone(),
                Some(moto.session_refresh_token.clone()),
            )
            .unwrap(),
        )
        .unwrap();
        fake.expire_token(&moto.session_access_token);
        let dir = tempfile::tempdir().unwrap();
        let written = write_output(
            dir.path(),
            &[
                ChannelSpec {
                    name: "ch-a",
                    rate: 1000.0,
                    chunks: 3,
                    samples_per_chunk: 50,
                },
                ChannelSpec {
                    name: "ch-b",
                    rate: 500.0,
                    chunks: 2,
                    samples_per_chunk: 40,
                },
            ],
        );
        let report = import_directory(&session, dir.path(), &ImportOptions::new(ids::RUN))
            .await
            .unwrap();
        assert_eq!(report.status, ImportStatus::Completed);
        assert_eq!(report.files, written.len() as u64);
        let runs = bearers(&fake, FakeRoute::WorkflowRun);
        let statuses: Vec<u16> = runs.iter().map(|(_, s)| *s).collect();
        assert_eq!(
            statuses,
            [403, 200],
            "api2: expired session, refresh, retry"
        );
        assert_eq!(runs[0].0, moto.session_access_token);
        let renewed = runs[1].0.clone();
        assert_ne!(renewed, moto.session_access_token);
        let (iss, client_id, _, token_use) = who(&renewed);
        assert_eq!(
            (iss, client_id, token_use),
            (
                user_pool,
                moto.user_pool_client_id.clone(),
                "access".to_owned()
            ),
            "the renewed token is moto's user-pool access token"
        );
        assert_eq!(
            who(&renewed).2,
            who(&moto.session_access_token).2,
            "same user"
        );

        let state = fake.state();
        assert_eq!(state.imports.len(), 1);
        assert_eq!(state.imports[0].files.len(), written.len());
        assert_eq!(state.uploads.len(), written.len());
        for (path, _) in &written {
            let local = std::fs::read(path).unwrap();
            assert!(
                state.uploads.iter().any(|u| u.body[..] == local[..]),
                "{} arrived",
                path.display()
            );
        }
        // Every authenticated call after the refresh used moto's new token; nothing went to the
        // fake's own Cognito.
        assert!(state.auth_calls.is_empty(), "{:?}", state.auth_calls);
        assert_eq!(state.count(FakeRoute::InitiateAuth), 0);
        let after_refresh: Vec<&str> = state
            .requests
            .iter()
            .filter(|r| {
                !matches!(
                    r.route,
                    Some(FakeRoute::Upload | FakeRoute::CognitoConfig) | None
                )
            })
            .filter_map(|r| r.authorization.as_deref())
            .skip_while(|a| !a.ends_with(&renewed))
            .collect();
        assert!(
            after_refresh.iter().all(|a| a.ends_with(&renewed)),
            "the session kept the renewed token"
        );
    });
    drop(moto);
    // Visible in the test output (not captured), for CI timing.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "cognito_moto: emulator ready after {:.1} s, whole check {:.1} s",
        moto_ready.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}
