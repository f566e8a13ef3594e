//! Socket settings shared by both sides of a proxied session.
//!
//! A session holds two TCP connections for as long as it lives, often idle
//! for minutes between statements. Without keepalive, a peer that vanishes
//! without closing (a laptop that sleeps, a host that loses power, a
//! firewall that forgets the flow) is never noticed: the session, its
//! upstream connection and its registry entry stay until the gateway
//! restarts. With keepalive, the kernel probes an idle connection and the
//! next read fails once the peer stopped answering, which ends the session
//! the usual way (audited, upstream closed). Probes are answered by the
//! peer's kernel, so a long-running statement is not affected.

use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use tokio::net::TcpStream;

/// Idle time before the first probe.
pub(crate) const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
/// Time between unanswered probes.
pub(crate) const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);
/// Unanswered probes after which the connection is dropped: a dead peer is
/// noticed within idle + retries × interval, two minutes.
pub(crate) const KEEPALIVE_RETRIES: u32 = 4;

/// Sets `TCP_NODELAY` (protocol messages are small and answered at once) and
/// keepalive on a session's socket. A setting the platform refuses is
/// logged, not fatal: the session still works, it only notices a vanished
/// peer later.
pub(crate) fn tune_session_socket(tcp: &TcpStream, side: &'static str) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(side, error = %e, "could not set TCP_NODELAY");
    }
    let keepalive = TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_RETRIES);
    if let Err(e) = SockRef::from(tcp).set_tcp_keepalive(&keepalive) {
        tracing::debug!(side, error = %e, "could not set TCP keepalive");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn session_sockets_get_nodelay_and_keepalive() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let client = client.unwrap();
        let (server, _) = accepted.unwrap();
        for (tcp, side) in [(&client, "upstream"), (&server, "client")] {
            tune_session_socket(tcp, side);
            let sock = SockRef::from(tcp);
            assert!(tcp.nodelay().unwrap(), "{side}");
            assert!(sock.keepalive().unwrap(), "{side}");
            assert_eq!(sock.tcp_keepalive_time().unwrap(), KEEPALIVE_IDLE, "{side}");
            assert_eq!(
                sock.tcp_keepalive_interval().unwrap(),
                KEEPALIVE_INTERVAL,
                "{side}"
            );
            assert_eq!(
                sock.tcp_keepalive_retries().unwrap(),
                KEEPALIVE_RETRIES,
                "{side}"
            );
        }
    }
}
