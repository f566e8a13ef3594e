//! The OpenID Connect client side, on the `openidconnect` crate: discovery,
//! the JWKS cache with key rotation, code and device exchanges, and the ID
//! token checks `openidconnect` leaves to its caller.
//!
//! - **HTTP**: `openidconnect` is built without its own HTTP stack; it runs
//!   over the gateway's reqwest through [`Http`], which follows no redirect
//!   (an OAuth client must not) and bounds every call in time, so an
//!   unreachable provider fails a sign-in within seconds.
//! - **Cache**: a provider's discovery document and JWKS are fetched on
//!   first use and kept for [`METADATA_TTL`]; a token signed with a key the
//!   cached JWKS lacks (the provider rotated) refetches them once and
//!   verifies again, so a rotation costs one fetch and an unknown key id is
//!   refused after it. Nothing is fetched at start: a provider that is down
//!   never keeps the gateway (and its local tokens) from starting.
//! - **Checks** beyond the crate's (`iss`, `aud`, signature with an
//!   asymmetric algorithm, `exp`, `nonce`): `iat` and `nbf` must not lie in
//!   the future beyond [`CLOCK_SKEW`], which the crate does not check unless
//!   told. ID tokens are judged by the system clock, the provider's own
//!   time base, even when the gateway runs with a test clock.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreClaimName, CoreClaimType, CoreClientAuthMethod,
    CoreErrorResponseType, CoreGenderClaim, CoreGrantType, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm,
    CoreResponseMode, CoreResponseType, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreSubjectIdentifierType, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AdditionalProviderMetadata, AsyncHttpClient, ClaimsVerificationError, Client,
    ClientId, ClientSecret, DeviceAuthorizationUrl, EmptyExtraTokenFields, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, HttpRequest, HttpResponse, IdToken, IdTokenClaims, IdTokenFields,
    IssuerUrl, ProviderMetadata, RedirectUrl, SignatureVerificationError, StandardErrorResponse,
    StandardTokenResponse,
};
use serde::{Deserialize, Serialize};

use super::Refusal;

/// How long a provider's discovery document and JWKS are trusted before
/// they are fetched again.
pub const METADATA_TTL: Duration = Duration::from_secs(3600);
/// Longest wait for one call to a provider.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How far in the future `iat` and `nbf` may lie (clocks differ a little).
pub const CLOCK_SKEW: i64 = 60;

/// Claims beyond the standard ones: the groups claim (named in the
/// configuration), `nbf`, and whatever else the provider sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExtraClaims {
    /// Every claim `openidconnect` does not model itself.
    #[serde(flatten)]
    pub claims: serde_json::Map<String, serde_json::Value>,
}
impl AdditionalClaims for ExtraClaims {}

/// Discovery fields the core metadata lacks: the device endpoint (RFC 8628),
/// which not every provider has.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExtraMetadata {
    /// Where the device authorization grant starts.
    #[serde(default)]
    pub device_authorization_endpoint: Option<DeviceAuthorizationUrl>,
}
impl AdditionalProviderMetadata for ExtraMetadata {}

/// A provider's discovery document, with its JWKS.
pub type Metadata = ProviderMetadata<
    ExtraMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// The token endpoint's answer.
pub type Tokens = StandardTokenResponse<
    IdTokenFields<
        ExtraClaims,
        EmptyExtraTokenFields,
        CoreGenderClaim,
        CoreJweContentEncryptionAlgorithm,
        CoreJwsSigningAlgorithm,
    >,
    CoreTokenType,
>;

/// Verified ID token claims.
pub type Claims = IdTokenClaims<ExtraClaims, CoreGenderClaim>;

/// An ID token as received.
pub type OidcIdToken = IdToken<
    ExtraClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

/// The relying party for one provider, built from its discovery document
/// (the device endpoint may or may not be known).
pub type RpClient = Client<
    ExtraClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    Tokens,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// `openidconnect`'s HTTP seam over the gateway's reqwest: no redirects
/// followed, every call bounded by [`CALL_TIMEOUT`].
#[derive(Clone)]
pub struct Http(reqwest::Client);

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Http")
    }
}

impl Http {
    /// A client trusting the system's roots (providers have public
    /// certificates; loopback development providers speak plain HTTP).
    pub fn new() -> Result<Http, reqwest::Error> {
        Ok(Http(
            reqwest::Client::builder()
                .user_agent(concat!("periscope-gateway/", env!("CARGO_PKG_VERSION")))
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(CALL_TIMEOUT)
                .timeout(CALL_TIMEOUT)
                .build()?,
        ))
    }
}

impl<'c> AsyncHttpClient<'c> for Http {
    type Error = reqwest::Error;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, reqwest::Error>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let response = self
                .0
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await?.to_vec();
            let mut out = HttpResponse::new(body);
            *out.status_mut() = status;
            *out.headers_mut() = headers;
            Ok(out)
        })
    }
}

/// What identifies one cached provider: the same issuer under another
/// client id (after a reload) is another relying party.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    issuer: String,
    client_id: String,
}

#[derive(Debug, Clone)]
struct Cached {
    metadata: Arc<Metadata>,
    fetched: Instant,
}

/// Discovery documents (with their JWKS) by provider.
#[derive(Debug, Default)]
pub struct MetadataCache {
    entries: Mutex<HashMap<CacheKey, Cached>>,
}

impl MetadataCache {
    /// The metadata of `issuer`: cached when fresh, else fetched. `fresh`
    /// forces a fetch (the JWKS lacked a token's key).
    pub async fn get(
        &self,
        http: &Http,
        issuer: &str,
        client_id: &str,
        fresh: bool,
    ) -> Result<Arc<Metadata>, Refusal> {
        let key = CacheKey {
            issuer: issuer.to_string(),
            client_id: client_id.to_string(),
        };
        if !fresh
            && let Some(hit) = self
                .lock()
                .get(&key)
                .filter(|c| c.fetched.elapsed() < METADATA_TTL)
        {
            return Ok(Arc::clone(&hit.metadata));
        }
        let issuer_url = IssuerUrl::new(issuer.to_string()).map_err(|e| Refusal::Provider {
            code: "provider_misconfigured",
            detail: format!("the issuer `{issuer}` is not a URL: {e}"),
        })?;
        let metadata = Metadata::discover_async(issuer_url, http)
            .await
            .map_err(|e| discovery_refusal(issuer, &e))?;
        let metadata = Arc::new(metadata);
        self.lock().insert(
            key,
            Cached {
                metadata: Arc::clone(&metadata),
                fetched: Instant::now(),
            },
        );
        Ok(metadata)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CacheKey, Cached>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn discovery_refusal<E: std::error::Error + 'static>(
    issuer: &str,
    e: &openidconnect::DiscoveryError<E>,
) -> Refusal {
    let detail = match e {
        openidconnect::DiscoveryError::Request(inner) => {
            return Refusal::Unreachable {
                detail: format!(
                    "the provider at {issuer} cannot be reached: {}",
                    error_chain(inner)
                ),
            };
        }
        openidconnect::DiscoveryError::Response(status, _, _) => {
            format!("its discovery document answered HTTP {status}")
        }
        openidconnect::DiscoveryError::Validation(v) => {
            format!("its discovery document does not match the configuration: {v}")
        }
        other => format!("its discovery document is unusable: {other}"),
    };
    Refusal::Provider {
        code: "provider_misconfigured",
        detail: format!("the provider at {issuer}: {detail}"),
    }
}

/// An error and its causes on one line.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// The relying party for `metadata` with these credentials.
pub fn client(
    metadata: &Metadata,
    client_id: &str,
    secret: Option<&str>,
    redirect: Option<&str>,
) -> Result<RpClient, Refusal> {
    let mut client = RpClient::from_provider_metadata(
        metadata.clone(),
        ClientId::new(client_id.to_string()),
        secret.map(|s| ClientSecret::new(s.to_string())),
    );
    if let Some(redirect) = redirect {
        let url = RedirectUrl::new(redirect.to_string()).map_err(|e| Refusal::Provider {
            code: "provider_misconfigured",
            detail: format!("the redirect URL `{redirect}` is not a URL: {e}"),
        })?;
        client = client.set_redirect_uri(url);
    }
    Ok(client)
}

/// Signature algorithms an ID token may use: asymmetric ones only, so a
/// token MACed with something public (the algorithm-confusion attack) or
/// unsigned is refused whatever the provider advertises.
pub fn allowed_algs() -> Vec<CoreJwsSigningAlgorithm> {
    use CoreJwsSigningAlgorithm as A;
    vec![
        A::RsaSsaPkcs1V15Sha256,
        A::RsaSsaPkcs1V15Sha384,
        A::RsaSsaPkcs1V15Sha512,
        A::RsaSsaPssSha256,
        A::RsaSsaPssSha384,
        A::RsaSsaPssSha512,
        A::EcdsaP256Sha256,
        A::EcdsaP384Sha384,
        A::EdDsa,
    ]
}

/// How a nonce is checked: the one sent (code flows), or none expected
/// (the device grant has no nonce).
#[derive(Debug, Clone, Copy)]
pub enum ExpectNonce<'a> {
    /// The ID token must carry exactly this nonce.
    Exactly(&'a str),
    /// No nonce was sent.
    None,
}

/// Verifies `id_token` with `client`'s keys: signature (asymmetric only),
/// `iss`, `aud`, `exp`, the nonce, and `iat`/`nbf` not in the future.
/// `Err(None)` means no key matched the token's key id: the caller
/// refetches the JWKS and tries once more.
pub fn verify(
    client: &RpClient,
    id_token: &OidcIdToken,
    nonce: ExpectNonce<'_>,
) -> Result<Claims, Option<Refusal>> {
    let verifier = client.id_token_verifier().set_allowed_algs(allowed_algs());
    let claims = match nonce {
        ExpectNonce::Exactly(expected) => {
            id_token.claims(&verifier, &openidconnect::Nonce::new(expected.to_string()))
        }
        ExpectNonce::None => id_token.claims(&verifier, |_: Option<&openidconnect::Nonce>| Ok(())),
    };
    let claims = claims.map_err(|e| match e {
        ClaimsVerificationError::SignatureVerification(
            SignatureVerificationError::NoMatchingKey,
        ) => None,
        other => Some(claims_refusal(&other)),
    })?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let iat = claims.issue_time().timestamp();
    if iat > now + CLOCK_SKEW {
        return Err(Some(Refusal::Token {
            code: "not_yet_valid",
            detail: format!(
                "the ID token says it was issued {}s in the future",
                iat - now
            ),
        }));
    }
    if let Some(nbf) = claims
        .additional_claims()
        .claims
        .get("nbf")
        .and_then(serde_json::Value::as_i64)
        && nbf > now + CLOCK_SKEW
    {
        return Err(Some(Refusal::Token {
            code: "not_yet_valid",
            detail: format!("the ID token is not valid before {}s from now", nbf - now),
        }));
    }
    Ok(claims.clone())
}

/// The refusal for a failed ID token check: a stable code and what the
/// check said (never the token).
fn claims_refusal(e: &ClaimsVerificationError) -> Refusal {
    let (code, detail) = match e {
        ClaimsVerificationError::InvalidIssuer(d) => ("wrong_issuer", d.clone()),
        ClaimsVerificationError::InvalidAudience(d) => ("wrong_audience", d.clone()),
        ClaimsVerificationError::Expired(d) => ("expired", d.clone()),
        ClaimsVerificationError::InvalidNonce(d) => ("nonce_mismatch", d.clone()),
        ClaimsVerificationError::SignatureVerification(s) => match s {
            SignatureVerificationError::NoMatchingKey => (
                "unknown_key",
                "the ID token is signed with a key the provider does not publish".to_string(),
            ),
            SignatureVerificationError::DisallowedAlg(d)
            | SignatureVerificationError::UnsupportedAlg(d) => {
                ("bad_signature", format!("signature algorithm refused: {d}"))
            }
            SignatureVerificationError::NoSignature => {
                ("bad_signature", "the ID token is not signed".to_string())
            }
            other => ("bad_signature", other.to_string()),
        },
        other => ("invalid_id_token", other.to_string()),
    };
    Refusal::Token { code, detail }
}
