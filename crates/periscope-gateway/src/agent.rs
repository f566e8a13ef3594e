//! Who acts for an identity when it is not the identity's own client: an AI
//! agent speaking MCP, or the web console running a query from a browser. A leaf type shared by the MCP server, the SQL
//! client it drives and the session sink, so none of them imports another.
//!
//! The agent has no identity of its own: it acts as the human whose token it
//! holds, and every audit event it causes carries the human as actor plus
//! `via` and the agent's self-declared client name (`agent`).

use std::net::SocketAddr;

/// The agent behind a call: which front end it came through and what the
/// client calls itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    /// The front end, `mcp` or `console`: written as `via` in audit events.
    pub via: &'static str,
    /// The client's name as it declared it (MCP `clientInfo.name`), bounded
    /// and cleaned of control characters; `unknown` when it gave none.
    pub client: String,
}

/// Longest client name kept; the rest is cut (it is the client's own word).
const MAX_CLIENT_NAME: usize = 64;

impl Agent {
    /// An MCP client, its declared name cleaned for the audit log.
    pub fn mcp(client: &str) -> Agent {
        let cleaned: String = client
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_CLIENT_NAME)
            .collect();
        let cleaned = cleaned.trim();
        Agent {
            via: "mcp",
            client: if cleaned.is_empty() {
                "unknown".to_string()
            } else {
                cleaned.to_string()
            },
        }
    }

    /// The web console acting for a signed-in browser: `via` is `console`,
    /// the client the browser session's public id (`ws_...`), so each
    /// statement run from the browser leads back to its sign-in.
    pub fn console(web_session: &str) -> Agent {
        Agent {
            via: "console",
            client: web_session.chars().take(MAX_CLIENT_NAME).collect(),
        }
    }

    /// The `application_name` its PostgreSQL sessions carry: `mcp:<client>`.
    pub fn application_name(&self) -> String {
        format!("{}:{}", self.via, self.client)
    }
}

/// The loopback peers of the gateway's own clients (the SQL client opening a
/// session for an agent), by local socket address. The PostgreSQL front end
/// looks a session's peer up here, so an agent's session is marked by where
/// it comes from, which a client elsewhere cannot claim, rather than by an
/// `application_name` anyone can set.
#[derive(Debug, Default)]
pub(crate) struct AgentPeers {
    /// A std `Mutex`: held only to insert, look up or remove, never across
    /// an await.
    peers: std::sync::Mutex<std::collections::HashMap<SocketAddr, Agent>>,
}

impl AgentPeers {
    pub(crate) fn insert(&self, addr: SocketAddr, agent: Agent) {
        self.lock().insert(addr, agent);
    }

    pub(crate) fn remove(&self, addr: &SocketAddr) {
        self.lock().remove(addr);
    }

    pub(crate) fn get(&self, addr: &SocketAddr) -> Option<Agent> {
        self.lock().get(addr).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<SocketAddr, Agent>> {
        self.peers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_names_are_cleaned_and_bounded() {
        assert_eq!(Agent::mcp("claude-code").client, "claude-code");
        assert_eq!(Agent::mcp(" \u{7}\n ").client, "unknown");
        assert_eq!(Agent::mcp("a\u{1b}[31mb").client, "a[31mb");
        assert_eq!(Agent::mcp(&"x".repeat(500)).client.len(), MAX_CLIENT_NAME);
        assert_eq!(Agent::mcp("cursor").application_name(), "mcp:cursor");
    }
}
