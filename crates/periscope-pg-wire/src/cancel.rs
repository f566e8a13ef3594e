//! Cancel-key mapping.
//!
//! A client never learns the upstream's process id and secret: each session
//! gets a gateway-issued random key ([`BackendKey`]), and the
//! [`CancelRegistry`] maps it to the upstream's real key and address. When a
//! client's CancelRequest arrives on a new connection, the proxy looks the key
//! up and sends the real CancelRequest upstream.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use subtle::ConstantTimeEq;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::frontend::encode;

/// A cancel key: the process id and secret a client receives in
/// BackendKeyData.
#[derive(Clone, PartialEq, Eq)]
pub struct BackendKey {
    /// Process id (gateway-issued ones are random, positive).
    pub process_id: i32,
    /// Secret key bytes.
    pub secret_key: Vec<u8>,
}

impl std::fmt::Debug for BackendKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendKey")
            .field("process_id", &self.process_id)
            .field("secret_key", &"***")
            .finish()
    }
}

impl BackendKey {
    /// A fresh random key for a new session.
    pub fn random() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes)?;
        let process_id = i32::from_be_bytes([bytes[0] & 0x7f, bytes[1], bytes[2], bytes[3]]);
        Ok(Self {
            // 0 reads as "no key" to some clients.
            process_id: process_id.max(1),
            secret_key: bytes[4..].to_vec(),
        })
    }
}

/// Where a cancel for one session must go.
#[derive(Debug, Clone)]
pub struct UpstreamCancel {
    /// The upstream server's address.
    pub addr: SocketAddr,
    /// The upstream's real key for the session.
    pub key: BackendKey,
}

/// Maps gateway-issued keys to upstream keys, shared by all sessions of a
/// listener. Entries are removed when their session ends.
#[derive(Debug, Default)]
pub struct CancelRegistry {
    entries: Mutex<HashMap<i32, (Vec<u8>, UpstreamCancel)>>,
}

/// Removes a session's key from the registry when dropped.
#[derive(Debug)]
pub struct CancelGuard {
    registry: Arc<CancelRegistry>,
    process_id: i32,
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.process_id);
    }
}

impl CancelRegistry {
    /// An empty registry.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i32, (Vec<u8>, UpstreamCancel)>> {
        // A panic while holding this lock leaves a consistent map (single
        // insert/remove calls), so a poisoned lock is still usable.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Issues a new unique key for a session and records where its cancels
    /// go. The key stays valid until the guard is dropped.
    pub fn register(
        self: &Arc<Self>,
        upstream: UpstreamCancel,
    ) -> Result<(BackendKey, CancelGuard), getrandom::Error> {
        let mut entries = self.lock();
        let key = loop {
            let key = BackendKey::random()?;
            if !entries.contains_key(&key.process_id) {
                break key;
            }
        };
        entries.insert(key.process_id, (key.secret_key.clone(), upstream));
        Ok((
            key.clone(),
            CancelGuard {
                registry: Arc::clone(self),
                process_id: key.process_id,
            },
        ))
    }

    /// The upstream target of a client's cancel key, if the key is valid.
    /// The secret comparison takes constant time.
    pub fn lookup(&self, process_id: i32, secret_key: &[u8]) -> Option<UpstreamCancel> {
        let entries = self.lock();
        let (secret, upstream) = entries.get(&process_id)?;
        bool::from(secret.as_slice().ct_eq(secret_key)).then(|| upstream.clone())
    }

    /// Number of live sessions with a key.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no session holds a key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Sends a CancelRequest to the upstream. PostgreSQL answers nothing: it
/// closes the connection once the request is read, so this returns after the
/// write (bounded by `timeout`).
pub async fn send_cancel(target: &UpstreamCancel, timeout: Duration) -> std::io::Result<()> {
    let work = async {
        let mut stream = TcpStream::connect(target.addr).await?;
        let mut buf = BytesMut::with_capacity(16);
        encode::cancel_request(&mut buf, target.key.process_id, &target.key.secret_key);
        stream.write_all(&buf).await?;
        stream.flush().await?;
        // Wait for the server to close, so the cancel has been read before
        // we report success.
        let mut sink = [0u8; 1];
        let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut sink).await;
        Ok(())
    };
    tokio::time::timeout(timeout, work).await.map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::TimedOut, "cancel request timed out")
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_only_with_the_right_secret_and_vanish_with_the_session() {
        let registry = CancelRegistry::new();
        let upstream = UpstreamCancel {
            addr: "127.0.0.1:5432".parse().expect("literal address"),
            key: BackendKey {
                process_id: 4242,
                secret_key: vec![9, 9, 9, 9],
            },
        };
        let (key, guard) = registry.register(upstream).unwrap();
        assert!(key.process_id > 0);
        let found = registry.lookup(key.process_id, &key.secret_key).unwrap();
        assert_eq!(found.key.process_id, 4242);
        let mut wrong = key.secret_key.clone();
        wrong[0] ^= 1;
        assert!(registry.lookup(key.process_id, &wrong).is_none());
        assert!(
            registry
                .lookup(key.process_id, &key.secret_key[..3])
                .is_none()
        );
        drop(guard);
        assert!(registry.lookup(key.process_id, &key.secret_key).is_none());
        assert!(registry.is_empty());
    }
}
