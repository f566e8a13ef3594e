//! ID token claims, user claims by scope, and the faults applied to them.
//!
//! The claims are built as a JSON object and signed by `jsonwebtoken` with
//! the current key (its `kid` in the header). A fault changes the claims
//! before signing, or the header or signature after; see [`Fault`] for what
//! each one should trip in a relying party.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value, json};

use crate::IdpError;
use crate::keys::SigningKey;
use crate::model::{Fault, User};
use crate::secret;
use crate::state::Authn;

/// Another issuer, for [`Fault::WrongIssuer`] (`.invalid` never resolves).
const WRONG_ISSUER: &str = "http://wrong-issuer.invalid";
/// Another relying party, for [`Fault::WrongAudience`] and [`Fault::ExtraAudience`].
const OTHER_AUDIENCE: &str = "some-other-client";

/// The claims a user contributes for these scopes, `sub` included: the
/// userinfo response, and the user part of an ID token.
pub(crate) fn user_claims(user: &User, authn: &Authn) -> Map<String, Value> {
    let mut claims = Map::new();
    claims.insert("sub".into(), json!(user.sub));
    if let Some(email) = user.email.as_ref().filter(|_| authn.has_scope("email")) {
        claims.insert("email".into(), json!(email));
        claims.insert("email_verified".into(), json!(user.email_verified));
    }
    if authn.has_scope("profile") {
        claims.insert("preferred_username".into(), json!(user.username));
        if let Some(name) = &user.name {
            claims.insert("name".into(), json!(name));
        }
    }
    if authn.has_scope("groups") {
        claims.insert("groups".into(), json!(user.groups));
    }
    for (name, value) in &user.extra_claims {
        claims.insert(name.clone(), value.clone());
    }
    claims
}

/// What one ID token is made of.
pub(crate) struct IdTokenInput<'a> {
    pub(crate) issuer: &'a str,
    pub(crate) user: &'a User,
    pub(crate) authn: &'a Authn,
    /// The access token issued beside it, hashed into `at_hash`.
    pub(crate) access_token: &'a str,
    pub(crate) now_secs: u64,
    pub(crate) ttl_secs: u64,
    pub(crate) faults: &'a [Fault],
}

/// Builds and signs an ID token, applying the faults.
pub(crate) fn sign(input: &IdTokenInput<'_>, key: &SigningKey) -> Result<String, IdpError> {
    let has = |f: Fault| input.faults.contains(&f);
    let claims = claims(input, &has);

    let mut header = Header::new(key.alg.jwt_alg());
    header.kid = Some(if has(Fault::UnknownKid) {
        format!("unknown-{}", &secret::random_token()?[..16])
    } else {
        key.kid.clone()
    });
    let key_err = |e: jsonwebtoken::errors::Error| IdpError::Key(e.to_string());

    let token = if has(Fault::Unsigned) {
        // By design not a JWS: an unsecured JWT (RFC 7519 §6), which no
        // signing library produces; a relying party must refuse it.
        let header = json!({ "alg": "none", "typ": "JWT", "kid": header.kid });
        format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(Value::Object(claims).to_string())
        )
    } else if has(Fault::AlgConfusion) {
        let mut hs_header = Header::new(Algorithm::HS256);
        hs_header.kid = header.kid;
        let mac_key = EncodingKey::from_secret(&key.public_bytes).map_err(key_err)?;
        jsonwebtoken::encode(&hs_header, &claims, &mac_key).map_err(key_err)?
    } else {
        jsonwebtoken::encode(&header, &claims, &key.encoding).map_err(key_err)?
    };

    if has(Fault::BadSignature) {
        return Ok(corrupt_signature(&token));
    }
    Ok(token)
}

fn claims(input: &IdTokenInput<'_>, has: &dyn Fn(Fault) -> bool) -> Map<String, Value> {
    let authn = input.authn;
    let mut claims = user_claims(input.user, authn);

    let issuer = if has(Fault::WrongIssuer) {
        WRONG_ISSUER
    } else {
        input.issuer
    };
    let (audience, azp) = if has(Fault::WrongAudience) {
        (json!(OTHER_AUDIENCE), OTHER_AUDIENCE)
    } else if has(Fault::ExtraAudience) {
        (
            json!([authn.client_id, OTHER_AUDIENCE]),
            authn.client_id.as_str(),
        )
    } else {
        (json!(authn.client_id), authn.client_id.as_str())
    };
    const HOUR: u64 = 3600;
    let (iat, exp) = if has(Fault::Expired) {
        let iat = input.now_secs.saturating_sub(2 * HOUR);
        (iat, input.now_secs.saturating_sub(HOUR))
    } else if has(Fault::NotYetValid) {
        let iat = input.now_secs + HOUR;
        (iat, iat + input.ttl_secs)
    } else {
        (input.now_secs, input.now_secs + input.ttl_secs)
    };
    claims.insert("iss".into(), json!(issuer));
    claims.insert("aud".into(), audience);
    claims.insert("azp".into(), json!(azp));
    claims.insert("iat".into(), json!(iat));
    claims.insert("exp".into(), json!(exp));
    if has(Fault::NotYetValid) {
        claims.insert("nbf".into(), json!(iat));
    }
    claims.insert("auth_time".into(), json!(authn.auth_time.min(iat)));
    claims.insert("at_hash".into(), json!(secret::at_hash(input.access_token)));

    let nonce = if has(Fault::MissingNonce) {
        None
    } else if has(Fault::NonceMismatch) {
        Some("not-the-nonce-you-sent")
    } else {
        authn.nonce.as_deref()
    };
    if let Some(nonce) = nonce {
        claims.insert("nonce".into(), json!(nonce));
    }
    if has(Fault::MissingEmail) {
        claims.remove("email");
        claims.remove("email_verified");
    }
    if has(Fault::EmailNotVerified) && claims.contains_key("email") {
        claims.insert("email_verified".into(), json!(false));
    }
    if has(Fault::MissingGroups) {
        claims.remove("groups");
    }
    claims
}

/// Flips one bit of the signature: still base64url of the right length, so
/// only the cryptographic check can catch it.
fn corrupt_signature(token: &str) -> String {
    let Some((signed, signature)) = token.rsplit_once('.') else {
        return token.to_string();
    };
    let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap_or_default();
    match bytes.first_mut() {
        Some(first) => *first ^= 0x01,
        None => bytes.push(0x01),
    }
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(bytes))
}
