//! Who is calling: API tokens and `periscope connect` session secrets.
//!
//! A credential looks like `psc_<id>_<secret>` (API token) or
//! `pss_<id>_<secret>` (session secret): the prefix makes a leaked token easy
//! to recognise (secret scanners, the redaction engine), `<id>` is public and
//! finds the row, `<secret>` is 256 random bits of which the store keeps only
//! `HMAC-SHA-256(keys/token-hmac.key, secret)`. The check compares hashes in
//! constant time.
//!
//! Identity is behind [`IdentityProvider`]. Single sign-on (`crate::sso`)
//! does not add a second provider: a sign-in creates or updates an identity
//! and hands it a token minted here, so the API and every proxy check SSO
//! identities exactly like local ones.

use base64::Engine as _;
use futures_util::future::BoxFuture;
use hmac::{KeyInit, Mac};
use periscope_audit::AuditTime;
use periscope_store::{Identity, NewToken, Store, StoreError, TokenScope};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::datadir::SecretKey;

/// Prefix of API tokens.
pub const API_TOKEN_PREFIX: &str = "psc_";
/// Prefix of session secrets minted by `periscope connect`.
pub const SESSION_SECRET_PREFIX: &str = "pss_";
/// Random bytes in a token id (public).
const ID_BYTES: usize = 8;
/// Random bytes in a token secret: 256 bits.
const SECRET_BYTES: usize = 32;

type HmacSha256 = hmac::Hmac<Sha256>;

/// An identity whose credential checked out.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The identity as stored now (roles included).
    pub identity: Identity,
    /// The public id of the credential used.
    pub token_id: String,
    /// What the credential may be used for.
    pub scope: TokenScope,
    /// When the credential expires, if ever.
    pub expires_at: Option<OffsetDateTime>,
    /// Whether the last recorded use is older than a minute (the caller then
    /// records this one, and audits it).
    pub needs_touch: bool,
}

/// Why a credential was refused. Each has a stable code for the audit log.
#[derive(Debug, thiserror::Error)]
pub enum AuthFailure {
    /// Nothing was presented.
    #[error("no credentials: send `Authorization: Bearer <token>` (see `periscope login`)")]
    Missing,
    /// The text is not a Periscope credential at all.
    #[error("the credential is not a Periscope token (they start with `psc_`)")]
    Malformed,
    /// No such token, or the secret is wrong: told apart only in the audit log.
    #[error("invalid token")]
    Invalid {
        /// `unknown_token` or `bad_secret`.
        code: &'static str,
        /// The owner, when the id exists (for the audit actor).
        owner: Option<String>,
    },
    /// The token expired.
    #[error(
        "token {token_id} expired at {at}: sign in again (`periscope login --sso`), or ask an \
         administrator for a new one (`periscope admin token create {owner}`)"
    )]
    Expired {
        /// Token id.
        token_id: String,
        /// Owner.
        owner: String,
        /// Expiry.
        at: String,
    },
    /// The token was revoked.
    #[error("token {token_id} was revoked at {at}")]
    Revoked {
        /// Token id.
        token_id: String,
        /// Owner.
        owner: String,
        /// Revocation time.
        at: String,
    },
    /// The identity is disabled.
    #[error("identity `{owner}` is disabled")]
    Disabled {
        /// The identity.
        owner: String,
    },
    /// A session secret was used on the API, or for another connection.
    #[error("{message}")]
    WrongScope {
        /// Owner.
        owner: String,
        /// What to do instead.
        message: String,
    },
    /// The credential belongs to someone else than the user named at login.
    #[error("this token does not belong to user `{claimed}`")]
    WrongUser {
        /// The user the client named.
        claimed: String,
        /// The real owner.
        owner: String,
    },
    /// The store could not be asked.
    #[error("authentication is unavailable: {0}")]
    Unavailable(StoreError),
}

impl AuthFailure {
    /// A stable code for audit details and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::Malformed => "malformed",
            AuthFailure::Invalid { code, .. } => code,
            AuthFailure::Expired { .. } => "expired",
            AuthFailure::Revoked { .. } => "revoked",
            AuthFailure::Disabled { .. } => "disabled",
            AuthFailure::WrongScope { .. } => "wrong_scope",
            AuthFailure::WrongUser { .. } => "wrong_user",
            AuthFailure::Unavailable(_) => "unavailable",
        }
    }

    /// The identity the failed attempt concerned, when known, for the audit actor.
    pub fn owner(&self) -> Option<&str> {
        match self {
            AuthFailure::Invalid { owner, .. } => owner.as_deref(),
            AuthFailure::Expired { owner, .. }
            | AuthFailure::Revoked { owner, .. }
            | AuthFailure::Disabled { owner }
            | AuthFailure::WrongScope { owner, .. }
            | AuthFailure::WrongUser { owner, .. } => Some(owner),
            _ => None,
        }
    }
}

/// Turns a presented credential into an identity. Local tokens today; an
/// OIDC provider implements the same trait later.
pub trait IdentityProvider: Send + Sync + 'static {
    /// Checks `credential` at `now`: the secret, expiry, revocation and the
    /// owner's state. Scope checks (API vs. session) are the caller's.
    fn verify<'a>(
        &'a self,
        credential: &'a str,
        now: OffsetDateTime,
    ) -> BoxFuture<'a, Result<Verified, AuthFailure>>;
}

/// Keys and compares token secrets.
#[derive(Clone)]
pub struct TokenHasher {
    key: SecretKey,
}

impl std::fmt::Debug for TokenHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenHasher(***)")
    }
}

impl TokenHasher {
    /// A hasher under `key` (`keys/token-hmac.key`).
    pub fn new(key: SecretKey) -> TokenHasher {
        TokenHasher { key }
    }

    fn hash(&self, secret: &str) -> Vec<u8> {
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(self.key.expose())
            .expect("HMAC accepts keys of any length");
        mac.update(secret.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// The keyed hash of a secret, as stored (tokens, browser sessions).
    pub(crate) fn hash_secret(&self, secret: &str) -> Vec<u8> {
        self.hash(secret)
    }

    /// A value derived from `input` for one `purpose` (domain-separated:
    /// `HMAC(key, purpose || 0 || input)`), e.g. a session's CSRF token or a
    /// sign-in flow's nonce: unguessable without the key, never stored.
    pub(crate) fn derive(&self, purpose: &str, input: &str) -> [u8; 32] {
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(self.key.expose())
            .expect("HMAC accepts keys of any length");
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(input.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Whether `secret` hashes to `stored`, in constant time.
    pub fn matches(&self, secret: &str, stored: &[u8]) -> bool {
        let computed = self.hash(secret);
        computed.len() == stored.len() && bool::from(computed.ct_eq(stored))
    }
}

/// A freshly minted credential: the text to show once, and the row to store.
pub struct Minted {
    /// The full credential; shown to its owner once, never stored.
    pub token: Zeroizing<String>,
    /// What the store keeps.
    pub record: NewToken,
}

impl std::fmt::Debug for Minted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Minted")
            .field("token_id", &self.record.token_id)
            .finish_non_exhaustive()
    }
}

/// Random bytes from the operating system.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system provides randomness");
    bytes
}

/// A random lowercase hex id with `prefix`, e.g. `req_4f9c2a1b7e3d6a05`.
pub(crate) fn random_id(prefix: &str) -> String {
    format!("{prefix}{}", hex::encode(random_bytes::<ID_BYTES>()))
}

impl TokenHasher {
    /// Mints a credential for `identity`: an API token for [`TokenScope::Api`],
    /// a session secret for [`TokenScope::Connect`].
    pub fn mint(
        &self,
        identity: &str,
        scope: TokenScope,
        description: String,
        created_at: AuditTime,
        expires_at: Option<AuditTime>,
    ) -> Minted {
        let prefix = match scope {
            TokenScope::Api => API_TOKEN_PREFIX,
            TokenScope::Connect { .. } => SESSION_SECRET_PREFIX,
        };
        let id = hex::encode(random_bytes::<ID_BYTES>());
        let secret = Zeroizing::new(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(Zeroizing::new(random_bytes::<SECRET_BYTES>())),
        );
        let token = Zeroizing::new(format!("{prefix}{id}_{}", secret.as_str()));
        Minted {
            record: NewToken {
                token_id: id,
                identity: identity.to_string(),
                scope,
                secret_hash: self.hash(&secret),
                description,
                created_at,
                expires_at,
            },
            token,
        }
    }
}

/// Splits a credential into its id and secret; `None` when it is not one.
pub fn parse_token(credential: &str) -> Option<(&str, &str)> {
    let rest = credential
        .strip_prefix(API_TOKEN_PREFIX)
        .or_else(|| credential.strip_prefix(SESSION_SECRET_PREFIX))?;
    let (id, secret) = rest.split_once('_')?;
    let id_ok = id.len() == ID_BYTES * 2 && id.bytes().all(|b| b.is_ascii_hexdigit());
    let secret_ok = !secret.is_empty()
        && secret.len() <= 128
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (id_ok && secret_ok).then_some((id, secret))
}

/// Local tokens kept in the store.
#[derive(Debug, Clone)]
pub struct LocalTokens {
    store: Store,
    hasher: TokenHasher,
}

impl LocalTokens {
    /// Tokens in `store`, hashed under `hasher`'s key.
    pub fn new(store: Store, hasher: TokenHasher) -> LocalTokens {
        LocalTokens { store, hasher }
    }
}

impl IdentityProvider for LocalTokens {
    fn verify<'a>(
        &'a self,
        credential: &'a str,
        now: OffsetDateTime,
    ) -> BoxFuture<'a, Result<Verified, AuthFailure>> {
        Box::pin(async move {
            let (id, secret) = parse_token(credential).ok_or(AuthFailure::Malformed)?;
            let record = self
                .store
                .find_token(id)
                .await
                .map_err(AuthFailure::Unavailable)?;
            let Some(record) = record else {
                // Hash anyway, so an unknown id costs the same time as a wrong secret.
                let _ = self.hasher.matches(secret, &[0; 32]);
                return Err(AuthFailure::Invalid {
                    code: "unknown_token",
                    owner: None,
                });
            };
            let owner = record.identity.name.clone();
            if !self.hasher.matches(secret, &record.secret_hash) {
                return Err(AuthFailure::Invalid {
                    code: "bad_secret",
                    owner: Some(owner),
                });
            }
            let expected_prefix = match record.scope {
                TokenScope::Api => API_TOKEN_PREFIX,
                TokenScope::Connect { .. } => SESSION_SECRET_PREFIX,
            };
            if !credential.starts_with(expected_prefix) {
                return Err(AuthFailure::Invalid {
                    code: "bad_prefix",
                    owner: Some(owner),
                });
            }
            let now_text =
                AuditTime::from_datetime(now).expect("gateway clocks stay within years 0000-9999");
            if let Some(at) = &record.revoked_at {
                return Err(AuthFailure::Revoked {
                    token_id: record.token_id,
                    owner,
                    at: at.to_string(),
                });
            }
            if let Some(at) = record.expires_at.as_ref().filter(|at| **at <= now_text) {
                return Err(AuthFailure::Expired {
                    token_id: record.token_id.clone(),
                    owner,
                    at: at.to_string(),
                });
            }
            if !record.identity.is_enabled() {
                return Err(AuthFailure::Disabled { owner });
            }
            Ok(Verified {
                needs_touch: record.needs_touch(&now_text),
                expires_at: record.expires_at.as_ref().map(AuditTime::to_datetime),
                identity: record.identity,
                token_id: record.token_id,
                scope: record.scope,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher() -> TokenHasher {
        TokenHasher::new(SecretKey::from_bytes([7; 32]))
    }

    #[test]
    fn minted_tokens_parse_and_only_their_secret_matches() {
        let h = hasher();
        let t = AuditTime::parse("2026-11-29T05:00:00.000000Z").unwrap();
        let minted = h.mint("alice", TokenScope::Api, String::new(), t, None);
        assert!(minted.token.starts_with("psc_"));
        let (id, secret) = parse_token(&minted.token).unwrap();
        assert_eq!(id, minted.record.token_id);
        assert!(secret.len() >= 43, "256 bits of secret");
        assert!(h.matches(secret, &minted.record.secret_hash));
        assert!(!h.matches("x", &minted.record.secret_hash));
        assert!(!format!("{minted:?}").contains(secret));
    }

    #[test]
    fn malformed_credentials_are_recognised() {
        for bad in [
            "",
            "psc_",
            "psc_zz_abc",
            "psc_0123456789abcdef_",
            "bearer psc_0123456789abcdef_abc",
            "psc_0123456789abcdef_a b",
        ] {
            assert!(parse_token(bad).is_none(), "{bad:?}");
        }
        assert!(parse_token("pss_0123456789abcdef_abc-_9").is_some());
    }
}
