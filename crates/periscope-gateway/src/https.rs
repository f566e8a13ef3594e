//! The HTTPS listener of the API: TCP accepted, TLS handshakes completed
//! concurrently (a slow client delays only itself), the router served until
//! shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::client_addr::ClientAddr;
use crate::shutdown::Shutdown;

/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

struct TlsIncoming {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl axum::serve::Listener for TlsIncoming {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The acceptor stopped (shutdown): accept nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TlsIncoming>>
    for ClientAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, TlsIncoming>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}

/// Accepts TCP, completes TLS handshakes concurrently (a slow client delays
/// only itself), and serves the router until `shutdown`.
pub(crate) async fn serve_api(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: axum::Router,
    shutdown: Shutdown,
) {
    let local = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "API listener has no address");
            return;
        }
    };
    let (ready_tx, ready_rx) = mpsc::channel(64);
    let acceptor = TlsAcceptor::from(tls);
    let mut stop_accepting = shutdown.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                },
                () = stop_accepting.wait() => return,
            };
            // Responses leave in several writes (TLS records of headers and
            // body): without this, Nagle's algorithm holds the last one until
            // the client's delayed ACK, about 40 ms later on Linux.
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(%peer, error = %e, "could not disable Nagle's algorithm");
            }
            let acceptor = acceptor.clone();
            let ready = ready_tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = ready.send((stream, peer)).await;
                    }
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            });
        }
    });
    let incoming = TlsIncoming {
        ready: ready_rx,
        local,
    };
    let mut stop = shutdown;
    let served = axum::serve(
        incoming,
        router.into_make_service_with_connect_info::<ClientAddr>(),
    )
    .with_graceful_shutdown(async move { stop.wait().await })
    .await;
    if let Err(e) = served {
        tracing::error!(error = %e, "API server failed");
    }
}
