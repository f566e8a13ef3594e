//! The provider's memory: configuration, users, clients, keys, faults and
//! the grants in flight, behind one mutex that no handler holds across an
//! `.await` (signing happens after the lock is released).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::clock::Clock;
use crate::keys::{KeyRing, SigningKey};
use crate::model::{Client, Fault, User};

/// Lifetimes and rates, fixed at start.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) code_ttl: Duration,
    pub(crate) access_token_ttl: Duration,
    pub(crate) id_token_ttl: Duration,
    pub(crate) refresh_token_ttl: Duration,
    pub(crate) device_code_ttl: Duration,
    pub(crate) device_poll_interval: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            code_ttl: Duration::from_secs(60),
            access_token_ttl: Duration::from_secs(600),
            id_token_ttl: Duration::from_secs(600),
            refresh_token_ttl: Duration::from_secs(24 * 3600),
            device_code_ttl: Duration::from_secs(600),
            device_poll_interval: Duration::from_secs(5),
        }
    }
}

/// Everything the handlers share.
#[derive(Debug)]
pub(crate) struct Shared {
    /// `http://127.0.0.1:<port>`, no trailing slash; fixed for the
    /// provider's life (a restart binds the same port).
    pub(crate) issuer: String,
    pub(crate) settings: Settings,
    pub(crate) clock: Clock,
    inner: Mutex<Inner>,
}

impl Shared {
    pub(crate) fn new(issuer: String, settings: Settings, inner: Inner) -> Arc<Self> {
        Arc::new(Shared {
            issuer,
            settings,
            clock: Clock::default(),
            inner: Mutex::new(inner),
        })
    }

    /// The state. A handler that panicked while holding the lock left the
    /// maps consistent (every change is a single insert or remove), so a
    /// poisoned lock is still used.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An endpoint's absolute URL.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }
}

/// Who signed in, to which client, for what: what every token is about.
#[derive(Debug, Clone)]
pub(crate) struct Authn {
    pub(crate) sub: String,
    pub(crate) client_id: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) nonce: Option<String>,
    /// When the user authenticated (seconds), kept across refreshes.
    pub(crate) auth_time: u64,
}

impl Authn {
    pub(crate) fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// An authorization code, until it expires (kept after use to detect replays).
#[derive(Debug)]
pub(crate) struct CodeGrant {
    pub(crate) authn: Authn,
    pub(crate) redirect_uri: String,
    pub(crate) code_challenge: String,
    pub(crate) expires_ms: u64,
    pub(crate) used: bool,
    /// Digests of the access and refresh tokens this code was exchanged
    /// for, revoked if the code is replayed (RFC 6749 §4.1.2).
    pub(crate) issued: Vec<[u8; 32]>,
}

/// An access token.
#[derive(Debug)]
pub(crate) struct AccessGrant {
    pub(crate) authn: Authn,
    pub(crate) expires_ms: u64,
}

/// A refresh token (single-use: exchanging it issues a new one).
#[derive(Debug)]
pub(crate) struct RefreshGrant {
    pub(crate) authn: Authn,
    pub(crate) expires_ms: u64,
}

/// Where a device authorization stands.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum DeviceStatus {
    Pending,
    Approved {
        sub: String,
        auth_time: u64,
    },
    Denied,
    /// Tokens were issued; the device code is spent.
    Redeemed,
}

/// A device authorization (RFC 8628).
#[derive(Debug)]
pub(crate) struct DeviceGrant {
    pub(crate) client_id: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) expires_ms: u64,
    /// Grows by 5 s at each `slow_down`.
    pub(crate) interval_ms: u64,
    pub(crate) last_poll_ms: Option<u64>,
    pub(crate) status: DeviceStatus,
}

/// A fault and how many more ID tokens it applies to (`None`: until cleared).
#[derive(Debug, Clone)]
pub(crate) struct ActiveFault {
    pub(crate) fault: Fault,
    pub(crate) remaining: Option<u32>,
}

/// The mutable part.
#[derive(Debug)]
pub(crate) struct Inner {
    /// By user name (so pickers list them in order).
    pub(crate) users: BTreeMap<String, User>,
    pub(crate) clients: HashMap<String, Client>,
    pub(crate) keys: KeyRing,
    pub(crate) faults: Vec<ActiveFault>,
    pub(crate) codes: HashMap<[u8; 32], CodeGrant>,
    pub(crate) access: HashMap<[u8; 32], AccessGrant>,
    pub(crate) refresh: HashMap<[u8; 32], RefreshGrant>,
    pub(crate) devices: HashMap<[u8; 32], DeviceGrant>,
    /// Normalised user code to device code digest.
    pub(crate) user_codes: HashMap<String, [u8; 32]>,
}

impl Inner {
    pub(crate) fn new(users: Vec<User>, clients: Vec<Client>, key: SigningKey) -> Self {
        Inner {
            users: users.into_iter().map(|u| (u.username.clone(), u)).collect(),
            clients: clients.into_iter().map(|c| (c.id.clone(), c)).collect(),
            keys: KeyRing::new(key),
            faults: Vec::new(),
            codes: HashMap::new(),
            access: HashMap::new(),
            refresh: HashMap::new(),
            devices: HashMap::new(),
            user_codes: HashMap::new(),
        }
    }

    /// The user a login hint names: by user name, subject or email.
    pub(crate) fn find_user(&self, hint: &str) -> Option<&User> {
        self.users.get(hint).or_else(|| {
            self.users
                .values()
                .find(|u| u.sub == hint || u.email.as_deref() == Some(hint))
        })
    }

    /// The user with this subject, as they are now.
    pub(crate) fn user_by_sub(&self, sub: &str) -> Option<&User> {
        self.users.values().find(|u| u.sub == sub)
    }

    /// The faults for the next ID token; one-shot faults are used up.
    pub(crate) fn take_faults(&mut self) -> Vec<Fault> {
        let faults = self.faults.iter().map(|f| f.fault).collect();
        for f in &mut self.faults {
            if let Some(n) = f.remaining.as_mut() {
                *n = n.saturating_sub(1);
            }
        }
        self.faults.retain(|f| f.remaining != Some(0));
        faults
    }

    /// Forgets what has expired, so a long-running demo does not grow.
    /// Device codes are kept a day past expiry, so a late poll hears
    /// `expired_token` rather than "unknown".
    pub(crate) fn prune(&mut self, now_ms: u64) {
        const DEVICE_GRACE_MS: u64 = 24 * 3600 * 1000;
        self.codes.retain(|_, g| g.expires_ms > now_ms);
        self.access.retain(|_, g| g.expires_ms > now_ms);
        self.refresh.retain(|_, g| g.expires_ms > now_ms);
        self.devices
            .retain(|_, g| g.expires_ms.saturating_add(DEVICE_GRACE_MS) > now_ms);
        let devices = &self.devices;
        self.user_codes.retain(|_, d| devices.contains_key(d));
    }
}
