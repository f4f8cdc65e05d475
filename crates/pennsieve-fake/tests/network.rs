//! The simulated network: latency per reply, paced uploads, connection set-up cost and the
//! connection count. Only lower bounds on time are asserted (sleeps guarantee them).

use std::time::{Duration, Instant};

use pennsieve_client::{Client, ManifestEntry};
use pennsieve_fake::{FakeConfig, FakePennsieve, NetworkModel, ids};

async fn fake(network: NetworkModel) -> FakePennsieve {
    FakePennsieve::start(FakeConfig {
        network,
        ..FakeConfig::default()
    })
    .await
    .expect("start fake")
}

fn client(fake: &FakePennsieve) -> Client {
    Client::new(fake.client_config(), fake.session_credentials()).expect("client")
}

#[tokio::test]
async fn sequential_requests_pay_latency_each_and_reuse_one_connection() {
    let latency = Duration::from_millis(25);
    let connect = Duration::from_millis(60);
    let fake = fake(NetworkModel {
        reply_latency: latency,
        put_bytes_per_second: None,
        connect_cost: connect,
    })
    .await;
    let client = client(&fake);
    let requests = 6;
    let started = Instant::now();
    for _ in 0..requests {
        assert_eq!(client.list_channels(ids::PACKAGE).await.unwrap(), []);
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= latency * requests + connect,
        "{requests} requests took {elapsed:?}"
    );
    let state = fake.state();
    assert_eq!(state.requests.len(), requests as usize);
    assert_eq!(state.connections_opened, 1, "one kept-alive connection");

    // A second client opens its own connection and pays the set-up cost again.
    let other = self::client(&fake);
    let started = Instant::now();
    other.list_channels(ids::PACKAGE).await.unwrap();
    assert!(started.elapsed() >= connect + latency);
    assert_eq!(fake.state().connections_opened, 2);
}

#[tokio::test]
async fn no_model_means_one_connection_per_client_too() {
    let fake = fake(NetworkModel::none()).await;
    let client = client(&fake);
    for _ in 0..3 {
        client.list_channels(ids::PACKAGE).await.unwrap();
    }
    assert_eq!(fake.state().connections_opened, 1);
}

#[tokio::test]
async fn uploads_are_read_no_faster_than_the_connection_bandwidth() {
    let rate = 2_000_000; // 2 MB/s: 500 kB take at least 250 ms
    let fake = fake(NetworkModel {
        reply_latency: Duration::ZERO,
        put_bytes_per_second: Some(rate),
        connect_cost: Duration::ZERO,
    })
    .await;
    let client = client(&fake);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chunk.bin.gz");
    let bytes: Vec<u8> = (0..500_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &bytes).unwrap();
    let key = "00000000-0000-4000-8000-000000000001";
    let entry = ManifestEntry {
        upload_key: key.into(),
        file_path: "N:channel:c_1_2.bin.gz".into(),
    };
    let import = client
        .create_import(ids::DATASET, ids::RUN, ids::PACKAGE, &[entry])
        .await
        .unwrap();

    let started = Instant::now();
    let sent = client
        .upload_file(ids::DATASET, &import, key, &path)
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(sent, bytes.len() as u64);
    let minimum = Duration::from_secs_f64(bytes.len() as f64 / rate as f64);
    assert!(elapsed >= minimum, "500 kB at 2 MB/s took {elapsed:?}");
    assert_eq!(
        fake.state().uploads[0].body,
        bytes,
        "pacing keeps the bytes"
    );
}

#[test]
fn the_realistic_wan_and_its_ceiling() {
    let wan = NetworkModel::realistic_wan();
    assert_eq!(wan.reply_latency, Duration::from_millis(20));
    assert_eq!(wan.put_bytes_per_second, Some(50_000_000));
    assert_eq!(wan.connect_cost, Duration::from_millis(60));
    // 500 kB: a 20 ms reply + 10 ms of body per file, so 16 in flight give 533 files/s.
    assert_eq!(wan.upload_time(500_000), Duration::from_millis(30));
    let ceiling = wan.upload_ceiling(16, 500_000).unwrap();
    assert!((ceiling - 16.0 / 0.03).abs() < 1e-6, "{ceiling}");
    assert_eq!(NetworkModel::none().upload_ceiling(16, 500_000), None);
}
