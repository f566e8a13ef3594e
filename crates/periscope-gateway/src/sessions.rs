//! The registry of live proxy sessions.
//!
//! A proxy registers each session once it is authorised and keeps the
//! returned [`SessionGuard`] for the session's life; dropping the guard (the
//! session ended, the task panicked) unregisters it. The registry feeds
//! `GET /v1/sessions`, the `periscope_sessions_active` gauge, tells the
//! expiry task which grants and identities live sessions rely on, and ends
//! every session of an identity at once ([`SessionRegistry::cut_identity`],
//! when it is disabled or loses roles) or one session
//! ([`SessionRegistry::cut_session`], an administrator's decision) through
//! the [`SessionCut`] each session hands over when it starts
//! ([`SessionGuard::set_cut`]).

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use periscope_api::SessionSummary;
use periscope_shield::grants::{CutNotice, SessionCut};
use time::OffsetDateTime;

use crate::identity::random_id;
use crate::metrics;

/// What a proxy knows about a session when it registers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// The authenticated identity.
    pub identity: String,
    /// The connection name.
    pub connection: String,
    /// Grants whose lifts the session runs under.
    pub grants: Vec<String>,
    /// The client's address.
    pub client_addr: SocketAddr,
    /// The client's `application_name`, when it sent one.
    pub application_name: Option<String>,
    /// When the session started.
    pub started_at: OffsetDateTime,
}

/// One live session and how to end it.
struct Entry {
    session: NewSession,
    cut: Option<Arc<dyn SessionCut>>,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("session", &self.session)
            .field("cut", &self.cut.is_some())
            .finish()
    }
}

/// Live sessions; cheap to clone (clones share the registry).
#[derive(Debug, Clone, Default)]
pub struct SessionRegistry {
    sessions: Arc<Mutex<HashMap<String, Entry>>>,
}

/// Keeps a session registered; unregisters it when dropped.
#[derive(Debug)]
#[must_use = "the session is unregistered as soon as the guard is dropped"]
pub struct SessionGuard {
    id: String,
    registry: SessionRegistry,
}

impl SessionGuard {
    /// The session id (`ses_...`), for audit events and logs.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Replaces the grants the session depends on (after a re-decision).
    pub fn set_grants(&self, grants: Vec<String>) {
        if let Some(s) = self.registry.lock().get_mut(&self.id) {
            s.session.grants = grants;
        }
    }

    /// Hands over how to end the session from outside, once it runs.
    pub fn set_cut(&self, cut: Arc<dyn SessionCut>) {
        if let Some(s) = self.registry.lock().get_mut(&self.id) {
            s.cut = Some(cut);
        }
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        let mut sessions = self.registry.lock();
        sessions.remove(&self.id);
        metrics::sessions_active(sessions.len());
    }
}

impl SessionRegistry {
    /// An empty registry.
    pub fn new() -> SessionRegistry {
        SessionRegistry::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding this lock leaves the map consistent (every
        // critical section is a single insert, remove or read).
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a live session.
    pub fn register(&self, session: NewSession) -> SessionGuard {
        let id = random_id("ses_");
        let mut sessions = self.lock();
        sessions.insert(id.clone(), Entry { session, cut: None });
        metrics::sessions_active(sessions.len());
        SessionGuard {
            id,
            registry: self.clone(),
        }
    }

    /// How many sessions are live.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no session is live.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Every live session, oldest first.
    pub fn list(&self) -> Vec<SessionSummary> {
        let mut out: Vec<SessionSummary> = self
            .lock()
            .iter()
            .map(|(id, entry)| summary(id, &entry.session))
            .collect();
        out.sort_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)));
        out
    }

    /// Every grant some live session depends on.
    pub fn grants_in_use(&self) -> BTreeSet<String> {
        self.lock()
            .values()
            .flat_map(|s| s.session.grants.iter().cloned())
            .collect()
    }

    /// Every identity with a live session.
    pub fn identities(&self) -> BTreeSet<String> {
        self.lock()
            .values()
            .map(|s| s.session.identity.clone())
            .collect()
    }

    /// Ends every live session of `identity` that can be ended from outside,
    /// telling each client why; returns how many. The sessions unregister
    /// themselves as they close.
    pub fn cut_identity(&self, identity: &str, notice: &CutNotice) -> usize {
        let cuts: Vec<Arc<dyn SessionCut>> = self
            .lock()
            .values()
            .filter(|s| s.session.identity == identity)
            .filter_map(|s| s.cut.clone())
            .collect();
        for cut in &cuts {
            cut.cut(notice.clone());
        }
        cuts.len()
    }
}

/// What [`SessionRegistry::cut_session`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CutSession {
    /// The session was told to end (it unregisters itself as it closes).
    Cut(SessionSummary),
    /// The session is still starting and cannot be ended from outside yet.
    Starting(SessionSummary),
    /// No live session of this replica has that id.
    Unknown,
}

/// Why an administrator could not end a session.
#[derive(Debug, thiserror::Error)]
pub enum EndSessionError {
    /// No live session of this replica has that id.
    #[error("no live session `{0}` on this gateway")]
    Unknown(String),
    /// The session is still starting; it can be ended in a moment.
    #[error("session `{0}` is still starting: try again in a moment")]
    Starting(String),
    /// The audit log did not record the decision, so nothing was ended.
    #[error("the audit log did not record it, so the session was not ended: {0}")]
    Store(#[from] periscope_store::StoreError),
}

fn summary(id: &str, s: &NewSession) -> SessionSummary {
    SessionSummary {
        id: id.to_string(),
        identity: s.identity.clone(),
        connection: s.connection.clone(),
        client_addr: s.client_addr.to_string(),
        application_name: s.application_name.clone(),
        grants: s.grants.clone(),
        started_at: s.started_at,
    }
}

impl SessionRegistry {
    /// One live session as listed, if this replica has it.
    pub fn get(&self, id: &str) -> Option<SessionSummary> {
        self.lock().get(id).map(|e| summary(id, &e.session))
    }

    /// Ends the live session `id`, telling its client why (an
    /// administrator's decision; the caller audits it first).
    pub fn cut_session(&self, id: &str, notice: &CutNotice) -> CutSession {
        let found = self
            .lock()
            .get(id)
            .map(|e| (summary(id, &e.session), e.cut.clone()));
        match found {
            None => CutSession::Unknown,
            Some((listed, None)) => CutSession::Starting(listed),
            Some((listed, Some(cut))) => {
                cut.cut(notice.clone());
                CutSession::Cut(listed)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_unregister_on_drop() {
        let registry = SessionRegistry::new();
        let session = |grants: &[&str]| NewSession {
            identity: "alice".into(),
            connection: "pg-prod".into(),
            grants: grants.iter().map(|g| g.to_string()).collect(),
            client_addr: "127.0.0.1:5000".parse().unwrap(),
            application_name: Some("psql".into()),
            started_at: OffsetDateTime::UNIX_EPOCH,
        };
        let a = registry.register(session(&["gr_1"]));
        let b = registry.register(session(&["gr_2"]));
        assert_eq!(registry.len(), 2);
        assert_eq!(
            registry.grants_in_use(),
            ["gr_1".to_string(), "gr_2".to_string()].into()
        );
        drop(a);
        let listed = registry.list();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, b.id());
        b.set_grants(vec![]);
        assert!(registry.grants_in_use().is_empty());
        drop(b);
        assert!(registry.is_empty());
    }

    #[derive(Default)]
    struct CountCut(std::sync::atomic::AtomicUsize);

    impl SessionCut for CountCut {
        fn cut(&self, _notice: CutNotice) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        fn session_id(&self) -> u64 {
            0
        }
    }

    #[test]
    fn an_identity_s_sessions_are_cut_and_no_one_else_s() {
        let registry = SessionRegistry::new();
        let session = |identity: &str| NewSession {
            identity: identity.into(),
            connection: "pg-prod".into(),
            grants: Vec::new(),
            client_addr: "127.0.0.1:5000".parse().unwrap(),
            application_name: None,
            started_at: OffsetDateTime::UNIX_EPOCH,
        };
        let alice_cut = Arc::new(CountCut::default());
        let bob_cut = Arc::new(CountCut::default());
        let a1 = registry.register(session("alice"));
        let a2 = registry.register(session("alice"));
        let b = registry.register(session("bob"));
        a1.set_cut(alice_cut.clone());
        a2.set_cut(alice_cut.clone());
        b.set_cut(bob_cut.clone());
        assert_eq!(
            registry.identities(),
            ["alice".to_string(), "bob".to_string()].into()
        );
        let notice = CutNotice {
            message: "disabled".into(),
            detail: None,
            hint: None,
        };
        assert_eq!(registry.cut_identity("alice", &notice), 2);
        assert_eq!(alice_cut.0.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert_eq!(bob_cut.0.load(std::sync::atomic::Ordering::SeqCst), 0);
        assert_eq!(registry.cut_identity("carol", &notice), 0);

        // One session by id, and no other.
        let before = alice_cut.0.load(std::sync::atomic::Ordering::SeqCst);
        assert!(matches!(
            registry.cut_session(a1.id(), &notice),
            CutSession::Cut(s) if s.id == a1.id() && s.identity == "alice"
        ));
        assert_eq!(
            alice_cut.0.load(std::sync::atomic::Ordering::SeqCst),
            before + 1
        );
        assert_eq!(bob_cut.0.load(std::sync::atomic::Ordering::SeqCst), 0);
        assert_eq!(
            registry.cut_session("ses_nope", &notice),
            CutSession::Unknown
        );
        let starting = registry.register(session("carol"));
        assert!(matches!(
            registry.cut_session(starting.id(), &notice),
            CutSession::Starting(_)
        ));
    }
}
