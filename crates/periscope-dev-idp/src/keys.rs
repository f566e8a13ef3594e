//! Signing keys, the published JWKS and rotation.
//!
//! Keys are generated with `rsa` (2048-bit, RS256) or `p256` (ES256), encoded
//! as DER for `jsonwebtoken`, which signs; the public JWK comes from
//! `jsonwebtoken` too, and its RFC 7638 thumbprint is the `kid`, so a key's
//! id is derived from the key and never collides by accident.
//!
//! The ring holds every key ever made in this run: the current one signs,
//! the published ones appear in the JWKS. Retiring a key unpublishes it
//! (tokens it signed stop verifying) but keeps it, so a test can still ask
//! which keys exist.

use std::sync::Arc;

use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey};
use p256::pkcs8::EncodePrivateKey;
use rsa::pkcs1::EncodeRsaPrivateKey;

use crate::IdpError;

/// The JWS algorithm of a signing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SigningAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit keys: the algorithm every
    /// OpenID provider must support, and the default.
    #[default]
    Rs256,
    /// ECDSA P-256 with SHA-256.
    Es256,
}

impl SigningAlg {
    pub(crate) fn jwt_alg(self) -> Algorithm {
        match self {
            SigningAlg::Rs256 => Algorithm::RS256,
            SigningAlg::Es256 => Algorithm::ES256,
        }
    }
}

/// One private key with its public JWK.
pub(crate) struct SigningKey {
    pub(crate) kid: String,
    pub(crate) alg: SigningAlg,
    pub(crate) encoding: EncodingKey,
    /// The public JWK as published (with `kid`, `use`, `alg`).
    pub(crate) jwk: Jwk,
    /// For [`crate::Fault::AlgConfusion`]: public key material an attacker
    /// knows, misused as an HMAC secret.
    pub(crate) public_bytes: Vec<u8>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generates a key. RSA generation takes a while (tens of milliseconds
    /// optimised, more in a debug build): call from a blocking thread.
    pub(crate) fn generate(alg: SigningAlg) -> Result<Self, IdpError> {
        let key_err = |e: &dyn std::fmt::Display| IdpError::Key(e.to_string());
        let (encoding, public_bytes) = match alg {
            SigningAlg::Rs256 => {
                let private =
                    rsa::PrivateKey::new(&mut getrandom::SysRng, 2048).map_err(|e| key_err(&e))?;
                let der = private.to_pkcs1_der().map_err(|e| key_err(&e))?;
                let public = rsa::traits::PublicKeyParts::n_bytes(&private).to_vec();
                (EncodingKey::from_rsa_der(der.as_bytes()), public)
            }
            SigningAlg::Es256 => {
                use p256::elliptic_curve::Generate;
                let secret = p256::SecretKey::try_generate_from_rng(&mut getrandom::SysRng)
                    .map_err(|e| key_err(&e))?;
                let der = secret.to_pkcs8_der().map_err(|e| key_err(&e))?;
                let public = secret.public_key().to_sec1_bytes().to_vec();
                (EncodingKey::from_ec_der(der.as_bytes()), public)
            }
        };
        let mut jwk = Jwk::from_encoding_key(&encoding, alg.jwt_alg()).map_err(|e| key_err(&e))?;
        let kid = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|e| key_err(&e))?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(SigningKey {
            kid,
            alg,
            encoding,
            jwk,
            public_bytes,
        })
    }
}

/// Every key of this run, which one signs, which ones are published.
#[derive(Debug)]
pub(crate) struct KeyRing {
    keys: Vec<(Arc<SigningKey>, bool)>,
    current: usize,
}

impl KeyRing {
    pub(crate) fn new(first: SigningKey) -> Self {
        KeyRing {
            keys: vec![(Arc::new(first), true)],
            current: 0,
        }
    }

    /// The key that signs now.
    pub(crate) fn current(&self) -> Arc<SigningKey> {
        Arc::clone(&self.keys[self.current].0)
    }

    /// Makes `key` current; the previous one stays published or not.
    pub(crate) fn rotate(&mut self, key: SigningKey, keep_previous: bool) {
        self.keys[self.current].1 = keep_previous;
        self.keys.push((Arc::new(key), true));
        self.current = self.keys.len() - 1;
    }

    /// Unpublishes a key that no longer signs.
    pub(crate) fn retire(&mut self, kid: &str) -> Result<(), IdpError> {
        let refuse = |reason| IdpError::Retire {
            kid: kid.to_string(),
            reason,
        };
        let index = self
            .keys
            .iter()
            .position(|(k, _)| k.kid == kid)
            .ok_or_else(|| refuse("no such key"))?;
        if index == self.current {
            return Err(refuse("it is the current signing key; rotate first"));
        }
        self.keys[index].1 = false;
        Ok(())
    }

    /// The kids in the JWKS, oldest first.
    pub(crate) fn published_kids(&self) -> Vec<String> {
        self.keys
            .iter()
            .filter(|(_, published)| *published)
            .map(|(k, _)| k.kid.clone())
            .collect()
    }

    /// The JWKS document.
    pub(crate) fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: self
                .keys
                .iter()
                .filter(|(_, published)| *published)
                .map(|(k, _)| k.jwk.clone())
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_publish_their_thumbprint_as_kid() {
        for alg in [SigningAlg::Rs256, SigningAlg::Es256] {
            let key = SigningKey::generate(alg).expect("key");
            assert_eq!(key.jwk.common.key_id.as_deref(), Some(key.kid.as_str()));
            assert_eq!(key.kid.len(), 43, "base64url SHA-256 thumbprint");
        }
    }
}
