//! Secrets stay out of logs even at TRACE level with the SDK's body logging switched on.
//! One test in its own binary: it sets an environment variable before any thread starts.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use pennsieve_fake::{FakeConfig, ids};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn cognito_secrets_are_not_logged_even_at_trace_level() {
    // SAFETY: the only test of this binary, before any other thread exists. It asks the AWS SDK
    // to log response bodies (tokens) it otherwise redacts.
    unsafe { std::env::set_var("LOG_SENSITIVE_BODIES", "true") };
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let config = FakeConfig::default();
    runtime.block_on(async {
        let fake = fake(FakeConfig::default()).await;
        let key_client = key_client(&fake);
        key_client.authenticate().await.unwrap();
        // Debug output of credentials and clients may well end up in logs.
        tracing::info!(credentials = ?fake.api_key_credentials(), client = ?key_client, "debug output");
        let client = session_client(&fake);
        fake.expire_tokens();
        client.list_channels(ids::PACKAGE).await.unwrap();
        assert_eq!(fake.state().auth_calls.len(), 2);
    });
    let logs = String::from_utf8_lossy(&buffer.0.lock().unwrap()).into_owned();
    // The subscriber saw our events...
    assert!(logs.contains("Pennsieve session renewed"), "{logs}");
    assert!(logs.contains("debug output"), "{logs}");
    // ...but no request or response body of `InitiateAuth`, and no key, secret or token.
    for secret in [
        config.api_key.as_str(),
        config.api_secret.as_str(),
        config.refresh_token.as_str(),
        "fake-token-pool-refresh-",
        "AccessToken",
        "AuthParameters",
    ] {
        assert!(!logs.contains(secret), "{secret:?} logged:\n{logs}");
    }
}
