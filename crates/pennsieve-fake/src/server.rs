//! The running fake and its helpers for tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pennsieve_client::{Config, Credentials, RetryPolicy};

use crate::config::FakeConfig;
use crate::network::NetListener;
use crate::routes;
use crate::state::{FakeState, Shared, issue_access_token};

/// A running fake; stops when dropped.
pub struct FakePennsieve {
    shared: Arc<Shared>,
    address: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakePennsieve {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl std::fmt::Debug for FakePennsieve {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakePennsieve")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl FakePennsieve {
    /// Starts the fake on `127.0.0.1:{config.port}` (in the current tokio runtime).
    pub async fn start(config: FakeConfig) -> std::io::Result<FakePennsieve> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port)).await?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config, format!("http://{address}")));
        let app = routes::router(shared.clone());
        let server_shared = shared.clone();
        let server = tokio::spawn(async move {
            let listener = NetListener {
                listener,
                shared: server_shared,
            };
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!("fake Pennsieve server stopped: {error}");
            }
        });
        Ok(FakePennsieve {
            shared,
            address,
            server,
        })
    }

    /// The listening address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Legacy API base URL.
    pub fn api_url(&self) -> String {
        format!("{}/api", self.shared.base_url)
    }

    /// API v2 base URL.
    pub fn api2_url(&self) -> String {
        format!("{}/api2", self.shared.base_url)
    }

    /// Cognito endpoint (for [`Config::cognito_endpoint`]): the fake's own, or
    /// [`ExternalCognito::endpoint`](crate::ExternalCognito::endpoint) when one is configured.
    pub fn cognito_url(&self) -> String {
        match &self.shared.config.external_cognito {
            Some(external) => external.endpoint.clone(),
            None => self.own_cognito_url(),
        }
    }

    /// The fake's own Cognito endpoint (served even when an external Cognito is configured).
    pub fn own_cognito_url(&self) -> String {
        format!("{}/cognito/", self.shared.base_url)
    }

    /// Base of presigned upload URLs.
    pub fn s3_url(&self) -> String {
        format!("{}/s3", self.shared.base_url)
    }

    /// A client configuration pointing at this fake, with short retry delays.
    pub fn client_config(&self) -> Config {
        Config {
            cognito_endpoint: Some(self.cognito_url()),
            retry: RetryPolicy {
                max_attempts: 5,
                base_delay: Duration::from_millis(5),
                max_delay: Duration::from_millis(40),
            },
            ..Config::with_hosts(self.api_url(), self.api2_url())
        }
    }

    /// A new valid user-pool access token (JWT-shaped, with the `device_key` claim when configured).
    pub fn session_token(&self) -> String {
        let mut inner = self.shared.lock();
        issue_access_token(&mut inner, &self.shared.config, true)
    }

    /// Session credentials: a fresh access token plus the configured refresh token (left out
    /// when [`FakeConfig::refresh_token`] is blank, as [`Credentials::session`] does).
    pub fn session_credentials(&self) -> Credentials {
        Credentials::session(
            self.session_token(),
            Some(self.shared.config.refresh_token.clone()),
        )
        .expect("the fake issues non-empty access tokens")
    }

    /// The configured API key credentials.
    ///
    /// # Panics
    ///
    /// If [`FakeConfig::api_key`] or [`FakeConfig::api_secret`] is blank.
    pub fn api_key_credentials(&self) -> Credentials {
        let config = &self.shared.config;
        Credentials::api_key(config.api_key.clone(), config.api_secret.clone())
            .expect("FakeConfig::api_key and api_secret must not be blank")
    }

    /// Expires every access token issued so far (the next use gets 401/403).
    pub fn expire_tokens(&self) {
        let mut inner = self.shared.lock();
        for token in inner.tokens.values_mut() {
            token.expired = true;
        }
    }

    /// Expires one access token (the next use gets 401/403), also one the fake has not seen yet
    /// (e.g. a session token from an external Cognito that a client is about to use).
    pub fn expire_token(&self, token: &str) {
        let mut inner = self.shared.lock();
        inner.tokens.entry(token.to_owned()).or_default().expired = true;
    }

    /// A snapshot of everything recorded.
    pub fn state(&self) -> FakeState {
        self.shared.lock().record.clone()
    }
}
