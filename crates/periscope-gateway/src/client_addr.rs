//! Where an API call comes from.

use std::net::SocketAddr;

/// The client address of an API connection (TLS listeners have no
/// `SocketAddr` connect info of their own in axum): audited with logins and
/// token use.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);
