//! The running provider: its listener, and the knobs a test or the demo
//! turns while it runs.
//!
//! [`RunningIdp::stop`] drops the listener and closes idle connections, so a
//! relying party sees "connection refused", the honest form of "provider
//! unreachable"; [`RunningIdp::restart`] binds the same port again with the
//! same keys, users and grants, so a test can check recovery too.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::keys::{SigningAlg, SigningKey};
use crate::model::{Client, Fault, PreviousKey, User};
use crate::state::{ActiveFault, Inner, Settings, Shared};
use crate::{IdpError, authorize, device, discovery, token, userinfo};

/// How long `stop` lets in-flight requests finish before cutting them.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A provider serving on `127.0.0.1`. Dropping it stops the server.
#[derive(Debug)]
pub struct RunningIdp {
    shared: Arc<Shared>,
    addr: SocketAddr,
    server: Option<Server>,
}

#[derive(Debug)]
struct Server {
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl RunningIdp {
    pub(crate) async fn start(
        port: u16,
        settings: Settings,
        inner: Inner,
    ) -> Result<Self, IdpError> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let listener = bind(addr).await?;
        let addr = listener
            .local_addr()
            .map_err(|source| IdpError::Bind { addr, source })?;
        let shared = Shared::new(format!("http://{addr}"), settings, inner);
        let server = spawn(listener, Arc::clone(&shared));
        Ok(RunningIdp {
            shared,
            addr,
            server: Some(server),
        })
    }

    /// The issuer, `http://127.0.0.1:<port>` (no trailing slash): what the
    /// relying party is configured with and what `iss` says.
    pub fn issuer_url(&self) -> &str {
        &self.shared.issuer
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Applies `fault` to every ID token issued from now until
    /// [`RunningIdp::clear_faults`]. Faults combine.
    pub fn set_fault(&self, fault: Fault) {
        self.shared.lock().faults.push(ActiveFault {
            fault,
            remaining: None,
        });
    }

    /// Applies `fault` to the next ID token only.
    pub fn set_fault_once(&self, fault: Fault) {
        self.shared.lock().faults.push(ActiveFault {
            fault,
            remaining: Some(1),
        });
    }

    /// Back to correct ID tokens.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Generates a key with `alg` and makes it the one that signs; the
    /// previous key stays in the JWKS or leaves it. Returns the new `kid`.
    /// RSA generation runs on a blocking thread.
    pub async fn rotate_key(
        &self,
        alg: SigningAlg,
        previous: PreviousKey,
    ) -> Result<String, IdpError> {
        let key = tokio::task::spawn_blocking(move || SigningKey::generate(alg))
            .await
            .map_err(|e| IdpError::Key(format!("key generation task failed: {e}")))??;
        let kid = key.kid.clone();
        self.shared
            .lock()
            .keys
            .rotate(key, previous == PreviousKey::Keep);
        Ok(kid)
    }

    /// Removes an older key from the JWKS (the end of a rotation that kept it).
    pub fn retire_key(&self, kid: &str) -> Result<(), IdpError> {
        self.shared.lock().keys.retire(kid)
    }

    /// The `kid` of the key that signs now.
    pub fn current_kid(&self) -> String {
        self.shared.lock().keys.current().kid.clone()
    }

    /// The `kid`s in the JWKS, oldest first.
    pub fn published_kids(&self) -> Vec<String> {
        self.shared.lock().keys.published_kids()
    }

    /// Adds a user, or replaces the one with the same user name (for example
    /// with fewer groups: the next sign-in, refresh or userinfo call sees the
    /// change; tokens already issued keep what they say).
    pub fn upsert_user(&self, user: User) -> Result<(), IdpError> {
        user.validate()?;
        let mut inner = self.shared.lock();
        if let Some(other) = inner
            .users
            .values()
            .find(|u| u.sub == user.sub && u.username != user.username)
        {
            return Err(IdpError::Config(format!(
                "sub {:?} already belongs to user {:?}",
                user.sub, other.username
            )));
        }
        inner.users.insert(user.username.clone(), user);
        Ok(())
    }

    /// Registers a client while the provider runs, or replaces the one with
    /// the same id: a relying party whose redirect URI is known only once it
    /// listens (a gateway on a port the system chose) registers then, as
    /// with dynamic client registration.
    pub fn register_client(&self, client: Client) -> Result<(), IdpError> {
        client.validate()?;
        self.shared.lock().clients.insert(client.id.clone(), client);
        Ok(())
    }

    /// Removes a user: they can no longer sign in, refresh or call userinfo.
    /// Returns the user if there was one.
    pub fn remove_user(&self, username: &str) -> Option<User> {
        self.shared.lock().users.remove(username)
    }

    /// A user as the provider knows them now.
    pub fn user(&self, username: &str) -> Option<User> {
        self.shared.lock().users.get(username).cloned()
    }

    /// Moves the provider's clock forward: codes, tokens and device codes
    /// expire as if that much time had passed, and new tokens are stamped
    /// with the later time. Lets a test expire something without sleeping.
    pub fn advance_clock(&self, by: Duration) {
        self.shared.clock.advance(by);
    }

    /// Whether the provider is listening.
    pub fn is_running(&self) -> bool {
        self.server.is_some()
    }

    /// Stops listening: the port refuses connections as soon as this
    /// returns, idle connections are closed, and requests in flight get up to
    /// five seconds to finish. State is kept for [`RunningIdp::restart`].
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            // The receiver is gone only if the server already ended.
            let _ = server.shutdown.send(());
            let abort = server.task.abort_handle();
            if tokio::time::timeout(STOP_GRACE, server.task).await.is_err() {
                abort.abort();
            }
        }
    }

    /// Listens again on the same port, with the same keys, users and grants.
    /// Fails if something else took the port meanwhile.
    pub async fn restart(&mut self) -> Result<(), IdpError> {
        if self.server.is_none() {
            let listener = bind(self.addr).await?;
            self.server = Some(spawn(listener, Arc::clone(&self.shared)));
        }
        Ok(())
    }
}

impl Drop for RunningIdp {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            let _ = server.shutdown.send(());
            server.task.abort();
        }
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, IdpError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| IdpError::Bind { addr, source })
}

fn spawn(listener: TcpListener, shared: Arc<Shared>) -> Server {
    let (shutdown, signal) = oneshot::channel::<()>();
    let app = router(shared);
    let task = tokio::spawn(async move {
        let stopped = async move {
            let _ = signal.await;
        };
        // An accept error other than a per-connection one ends the serve
        // future; the provider then stops answering, which the relying party
        // sees like any outage.
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(stopped)
            .await;
    });
    Server { shutdown, task }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(discovery::configuration),
        )
        .route("/jwks", get(discovery::jwks))
        .route("/authorize", get(authorize::get).post(authorize::post))
        .route("/token", post(token::token))
        .route("/device_authorization", post(device::device_authorization))
        .route("/device", get(device::page_get).post(device::page_post))
        .route(
            "/userinfo",
            get(userinfo::userinfo).post(userinfo::userinfo),
        )
        .with_state(shared)
}
