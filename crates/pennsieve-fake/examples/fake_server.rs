//! Starts the fake Pennsieve and prints its URLs and credentials as one JSON line on stdout,
//! then serves until killed: the fake as a separate process, for manual runs of the binary.
//!
//! `cargo run -p pennsieve-fake --example fake_server -- [PORT]`

use std::io::Write;

use pennsieve_fake::{FakeConfig, FakePennsieve, ids};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port = match std::env::args().nth(1) {
        Some(text) => text
            .parse::<u16>()
            .map_err(|e| format!("port {text:?}: {e}"))?,
        None => 0,
    };
    let config = FakeConfig {
        port,
        ..FakeConfig::default()
    };
    let (api_key, api_secret, refresh_token) = (
        config.api_key.clone(),
        config.api_secret.clone(),
        config.refresh_token.clone(),
    );
    let fake = FakePennsieve::start(config).await?;
    let info = serde_json::json!({
        "api": fake.api_url(),
        "api2": fake.api2_url(),
        "cognito": fake.cognito_url(),
        "s3": fake.s3_url(),
        "run_id": ids::RUN,
        "dataset_id": ids::DATASET,
        "package_id": ids::PACKAGE,
        "api_key": api_key,
        "api_secret": api_secret,
        "session_token": fake.session_token(),
        "refresh_token": refresh_token,
    });
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{info}")?;
    stdout.flush()?;
    drop(stdout);
    std::future::pending::<()>().await;
    Ok(())
}
