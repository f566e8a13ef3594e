//! The seam protocol front ends plug into: a [`ProtocolListener`] is handed
//! a bound socket, the shared [`Gateway`] and the [`Shutdown`] signal.

use std::net::SocketAddr;

use futures_util::future::BoxFuture;
use periscope_policy::Config;
use tokio::net::TcpListener;

use crate::gateway::Gateway;
use crate::shutdown::Shutdown;

/// A protocol front end (the PostgreSQL proxy, later MySQL...) that the
/// gateway starts beside its API.
///
/// The gateway binds the socket (so port 0 works and the ready line shows the
/// real port) and hands it over with the shared [`Gateway`] handle. `serve`
/// runs until `shutdown` fires, then stops accepting and returns once its
/// sessions ended or were cut (the gateway waits a bounded time for it).
pub trait ProtocolListener: Send + 'static {
    /// Short name, used in logs and the ready line (`pg`).
    fn name(&self) -> &'static str;

    /// Where to listen, from the configuration in force at start
    /// (e.g. `server.pg_listen`).
    fn listen_addr(&self, config: &Config) -> SocketAddr;

    /// Serves connections on `listener` until `shutdown`.
    fn serve(
        self: Box<Self>,
        listener: TcpListener,
        gateway: Gateway,
        shutdown: Shutdown,
    ) -> BoxFuture<'static, ()>;
}
