//! A server that accepts connections and never answers: every call gives up within
//! `Config::call_deadline`, retries included, with a message naming the call (no query string).

mod common;

use std::time::{Duration, Instant};

use common::*;
use pennsieve_client::{Client, Config, Credentials, Error, RetryPolicy};
use pennsieve_fake::FakeConfig;
use tokio::net::TcpListener;

/// A loopback listener that accepts every connection, keeps it open and never reads or writes.
async fn silent_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("http://{address}")
}

/// Short limits: `attempt` per attempt, `deadline` per call, many fast retries.
fn limits(config: Config, attempt: Duration, deadline: Duration) -> Config {
    Config {
        connect_timeout: Duration::from_secs(1),
        request_timeout: attempt,
        upload_timeout: attempt,
        call_deadline: deadline,
        retry: RetryPolicy {
            max_attempts: 50,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
        },
        ..config
    }
}

fn session() -> Credentials {
    Credentials::session("access-token", None).unwrap()
}

/// Generous: the calls must end near `deadline`, far from the old 5 × 60 s.
fn assert_bounded(started: Instant, deadline: Duration) {
    let elapsed = started.elapsed();
    assert!(
        elapsed < deadline * 5,
        "took {elapsed:?}, deadline {deadline:?}"
    );
}

#[tokio::test]
async fn an_attempt_longer_than_the_deadline_is_cut_short() {
    let server = silent_server().await;
    let deadline = Duration::from_millis(500);
    let config = limits(
        Config::with_hosts(&server, &server),
        Duration::from_secs(30),
        deadline,
    );
    let client = Client::new(config, session()).unwrap();
    let started = Instant::now();
    let error = client.package_parent("N:package:p1").await.unwrap_err();
    assert_bounded(started, deadline);
    let Error::Timeout { call, after, .. } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(call, &format!("GET {server}/packages/N:package:p1"));
    assert_eq!(*after, deadline);
    let message = error.to_string();
    assert!(message.contains("gave up after 500ms"), "{message}");
    assert!(
        !message.contains('?') && !message.contains("includeAncestors"),
        "{message}"
    );
    assert!(error.is_transient());
}

#[tokio::test]
async fn retries_stop_at_the_deadline() {
    let server = silent_server().await;
    let deadline = Duration::from_secs(1);
    let config = limits(
        Config::with_hosts(&server, &server),
        Duration::from_millis(100),
        deadline,
    );
    let client = Client::new(config, session()).unwrap();
    let started = Instant::now();
    let error = client.list_channels("N:package:p1").await.unwrap_err();
    assert_bounded(started, deadline);
    assert!(matches!(error, Error::Timeout { .. }), "{error:?}");
    let message = error.to_string();
    // Several attempts timed out before the deadline passed.
    assert!(message.contains("an earlier one failed"), "{message}");
    assert!(message.contains("timed out"), "{message}");
}

#[tokio::test]
async fn uploads_give_up_within_the_deadline_and_hide_the_presigned_query() {
    let server = silent_server().await;
    let deadline = Duration::from_millis(800);
    let config = limits(
        Config::with_hosts(&server, &server),
        Duration::from_millis(200),
        deadline,
    );
    let client = Client::new(config, session()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("channel-00000_1_2.bin.gz");
    std::fs::write(&file, vec![0u8; 4096]).unwrap();

    // One PUT attempt: its own timeout.
    let started = Instant::now();
    let url = format!("{server}/bucket/key?X-Amz-Security-Token=SECRET&X-Amz-Signature=SIG");
    let error = client.put_file(&url, &file).await.unwrap_err();
    assert_bounded(started, deadline);
    assert!(matches!(error, Error::Transport { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        !message.contains("SECRET") && !message.contains('?'),
        "{message}"
    );

    // Presign and PUT, retried: the call deadline.
    let started = Instant::now();
    let error = client
        .upload_file("N:dataset:d", "import-1", "key-1", &file)
        .await
        .unwrap_err();
    assert_bounded(started, deadline);
    let Error::Upload { source, .. } = &error else {
        panic!("{error:?}");
    };
    let Error::Timeout { call, .. } = source.as_ref() else {
        panic!("{source:?}");
    };
    assert_eq!(call, &format!("upload of {}", file.display()));
    assert!(!error.to_string().contains('?'), "{error}");
}

#[tokio::test]
async fn a_silent_cognito_fails_within_the_deadline() {
    let fake = fake(FakeConfig::default()).await;
    let cognito = silent_server().await;
    let deadline = Duration::from_secs(1);
    let mut config = limits(fake.client_config(), Duration::from_millis(200), deadline);
    config.cognito_endpoint = Some(cognito.clone());
    let client = Client::new(config, fake.api_key_credentials()).unwrap();
    let started = Instant::now();
    let error = client.authenticate().await.unwrap_err();
    assert_bounded(started, deadline);
    let Error::Timeout { call, after, .. } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(call, &format!("Cognito USER_PASSWORD_AUTH at {cognito}/"));
    assert_eq!(*after, deadline);
}

#[tokio::test]
async fn the_defaults_bound_every_call_to_a_few_minutes() {
    let config = Config::default();
    assert_eq!(config.connect_timeout, Duration::from_secs(10));
    assert_eq!(config.request_timeout, Duration::from_secs(30));
    assert_eq!(config.call_deadline, Duration::from_secs(180));
    // The default retries fit in the deadline: 5 attempts and the largest back-offs.
    let retry = &config.retry;
    let backoffs: Duration = (0..retry.max_attempts - 1)
        .map(|n| (retry.base_delay * 2u32.pow(n)).min(retry.max_delay))
        .sum();
    assert!(config.request_timeout * retry.max_attempts + backoffs <= config.call_deadline);
}
