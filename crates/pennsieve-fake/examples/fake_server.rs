//! Starts the fake Pennsieve and prints its URLs and credentials as one JSON line on stdout,
//! then serves until killed: the fake as a separate process, for manual runs of the binary.
//!
//! `cargo run -p pennsieve-fake --example fake_server -- [PORT]`
//!
//! A simulated network ([`NetworkModel`]) through environment variables, all optional:
//! `FAKE_LATENCY_MS` (per reply), `FAKE_MB_PER_S` (upload bandwidth per connection, MB/s) and
//! `FAKE_CONNECT_MS` (per new connection; default 3 × `FAKE_LATENCY_MS`). `FAKE_WAN=1` is the
//! realistic WAN ([`NetworkModel::realistic_wan`]: 20 ms, 50 MB/s, 60 ms), which the others
//! then adjust.

use std::io::Write;
use std::time::Duration;

use pennsieve_fake::{FakeConfig, FakePennsieve, NetworkModel, ids};

/// An environment variable parsed as a number; unset or empty is `None`.
fn env_number(name: &str) -> Result<Option<f64>, String> {
    match std::env::var(name) {
        Ok(text) if !text.trim().is_empty() => text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .map(Some)
            .ok_or_else(|| format!("{name}={text:?} is not a non-negative number")),
        _ => Ok(None),
    }
}

/// The network model the environment describes.
fn network_from_env() -> Result<NetworkModel, String> {
    let mut network = match std::env::var("FAKE_WAN").as_deref() {
        Ok("1") | Ok("true") => NetworkModel::realistic_wan(),
        _ => NetworkModel::none(),
    };
    let ms = |v: f64| Duration::from_secs_f64(v / 1e3);
    if let Some(latency) = env_number("FAKE_LATENCY_MS")? {
        network.reply_latency = ms(latency);
        network.connect_cost = ms(3.0 * latency);
    }
    if let Some(rate) = env_number("FAKE_MB_PER_S")? {
        network.put_bytes_per_second = (rate > 0.0).then_some((rate * 1e6) as u64);
    }
    if let Some(connect) = env_number("FAKE_CONNECT_MS")? {
        network.connect_cost = ms(connect);
    }
    Ok(network)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port = match std::env::args().nth(1) {
        Some(text) => text
            .parse::<u16>()
            .map_err(|e| format!("port {text:?}: {e}"))?,
        None => 0,
    };
    let network = network_from_env()?;
    let config = FakeConfig {
        port,
        network,
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
        "network": {
            "reply_latency_ms": network.reply_latency.as_secs_f64() * 1e3,
            "put_bytes_per_second": network.put_bytes_per_second,
            "connect_cost_ms": network.connect_cost.as_secs_f64() * 1e3,
        },
    });
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{info}")?;
    stdout.flush()?;
    drop(stdout);
    std::future::pending::<()>().await;
    Ok(())
}
