//! What the test areas share: a provider with known clients and users, and a
//! relying party built on `openidconnect` over the workspace's reqwest 0.13
//! (the shape the gateway's SSO client will take).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreClaimName, CoreClaimType,
    CoreClientAuthMethod, CoreErrorResponseType, CoreGenderClaim, CoreGrantType, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm,
    CoreResponseMode, CoreResponseType, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreSubjectIdentifierType, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AdditionalProviderMetadata, AsyncHttpClient, AuthorizationCode,
    ClaimsVerificationError, Client, ClientId, ClientSecret, CsrfToken, DeviceAuthorizationUrl,
    EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, HttpRequest,
    HttpResponse, IdTokenClaims, IdTokenFields, IdTokenVerifier, IssuerUrl, Nonce,
    PkceCodeChallenge, PkceCodeVerifier, ProviderMetadata, RedirectUrl, Scope,
    StandardErrorResponse, StandardTokenResponse, TokenResponse as _,
};
use periscope_dev_idp::{DevIdp, RunningIdp, User};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The gateway-like confidential client.
pub const GATEWAY: &str = "gateway";
pub const GATEWAY_SECRET: &str = "gateway-secret-for-tests";
/// Port 9 (discard): the tests read the redirect, never follow it.
pub const GATEWAY_REDIRECT: &str = "http://127.0.0.1:9/sso/callback";
/// A CLI-like public client with a loopback redirect on any port.
pub const CLI: &str = "periscope-cli";
pub const CLI_REDIRECT_REGISTERED: &str = "http://127.0.0.1/callback";

/// Alice: two groups and an extra claim. Bob: no email.
pub fn alice() -> User {
    User::new("alice")
        .with_name("Alice Liddell")
        .with_groups(["eng", "sre"])
        .with_claim("department", json!("platform"))
}

pub fn bob() -> User {
    User::new("bob").with_email(None, false)
}

/// A provider with the gateway and CLI clients, Alice and Bob, and a 1 s
/// device polling interval.
pub async fn idp() -> RunningIdp {
    DevIdp::builder()
        .client(GATEWAY, GATEWAY_SECRET, [GATEWAY_REDIRECT])
        .public_client(CLI, [CLI_REDIRECT_REGISTERED])
        .user(alice())
        .user(bob())
        .device_poll_interval(Duration::from_secs(1))
        .start()
        .await
        .expect("dev IdP starts")
}

/// openidconnect's HTTP seam over our reqwest: no redirects followed (an
/// OAuth client must not follow them, and the tests read them).
#[derive(Clone)]
pub struct Http(pub reqwest::Client);

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

pub fn http() -> Http {
    // reqwest is built with rustls but no provider (the workspace's choice);
    // plain-HTTP tests still need one installed to build a client.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Http(
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("reqwest client"),
    )
}

/// The `groups` claim, which openidconnect does not know.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Groups {
    #[serde(default)]
    pub groups: Option<Vec<String>>,
    #[serde(default)]
    pub department: Option<String>,
}
impl AdditionalClaims for Groups {}

/// Discovery fields the core metadata lacks: the device endpoint (RFC 8628)
/// and the PKCE methods (RFC 8414).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExtraMetadata {
    pub device_authorization_endpoint: DeviceAuthorizationUrl,
    #[serde(default)]
    pub code_challenge_methods_supported: Option<Vec<String>>,
}
impl AdditionalProviderMetadata for ExtraMetadata {}

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

pub type Tokens = StandardTokenResponse<
    IdTokenFields<
        Groups,
        EmptyExtraTokenFields,
        CoreGenderClaim,
        CoreJweContentEncryptionAlgorithm,
        CoreJwsSigningAlgorithm,
    >,
    CoreTokenType,
>;

pub type Claims = IdTokenClaims<Groups, CoreGenderClaim>;

/// The client as discovery makes it (`Device`: whether the device
/// endpoint is set yet).
pub type RpClientWith<Device> = Client<
    Groups,
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
    Device,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The client with every endpoint the tests use.
pub type RpClient = RpClientWith<EndpointSet>;

/// A relying party: discovered metadata (with the JWKS as fetched then) and
/// a client built from it.
pub struct Rp {
    pub http: Http,
    pub metadata: Metadata,
    pub client: RpClient,
    pub redirect: String,
}

/// One authorization request as sent.
pub struct Request {
    pub url: url::Url,
    pub csrf: CsrfToken,
    pub nonce: Nonce,
    pub verifier: PkceCodeVerifier,
}

/// Where a request to the provider sent us (the provider's redirects are
/// not followed).
pub struct Answer {
    pub status: reqwest::StatusCode,
    pub location: Option<url::Url>,
    pub body: String,
}

impl Answer {
    /// A query parameter of the redirect.
    pub fn param(&self, name: &str) -> Option<String> {
        self.location.as_ref().and_then(|l| {
            l.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        })
    }
}

impl Rp {
    /// The gateway client, discovered from `idp`.
    pub async fn gateway(idp: &RunningIdp) -> Rp {
        Rp::new(
            idp,
            GATEWAY,
            Some(GATEWAY_SECRET),
            GATEWAY_REDIRECT.to_string(),
        )
        .await
    }

    pub async fn new(idp: &RunningIdp, id: &str, secret: Option<&str>, redirect: String) -> Rp {
        let http = http();
        let issuer = IssuerUrl::new(idp.issuer_url().to_string()).expect("issuer URL");
        let metadata = Metadata::discover_async(issuer, &http)
            .await
            .expect("discovery");
        let client = Self::client_from(&metadata, id, secret, &redirect);
        Rp {
            http,
            metadata,
            client,
            redirect,
        }
    }

    fn client_from(
        metadata: &Metadata,
        id: &str,
        secret: Option<&str>,
        redirect: &str,
    ) -> RpClient {
        let device = metadata
            .additional_metadata()
            .device_authorization_endpoint
            .clone();
        RpClientWith::<EndpointNotSet>::from_provider_metadata(
            metadata.clone(),
            ClientId::new(id.to_string()),
            secret.map(|s| ClientSecret::new(s.to_string())),
        )
        .set_redirect_uri(RedirectUrl::new(redirect.to_string()).expect("redirect URL"))
        .set_device_authorization_url(device)
    }

    /// Discovers again (fetching the JWKS anew), keeping the client's identity.
    pub async fn refetch(&mut self) {
        let issuer = self.metadata.issuer().clone();
        self.metadata = Metadata::discover_async(issuer, &self.http)
            .await
            .expect("discovery");
        let id = self.client.client_id().to_string();
        // The client secret is not readable back from the client; the only
        // confidential client in these tests is the gateway.
        let secret = (id == GATEWAY).then_some(GATEWAY_SECRET);
        self.client = Self::client_from(&self.metadata, &id, secret, &self.redirect);
    }

    /// An authorization request for `login_hint` with email, profile and
    /// groups scopes and an S256 challenge.
    pub fn request(&self, login_hint: Option<&str>) -> Request {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = self
            .client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("email".into()))
            .add_scope(Scope::new("profile".into()))
            .add_scope(Scope::new("groups".into()))
            .set_pkce_challenge(challenge);
        if let Some(hint) = login_hint {
            request = request.add_extra_param("login_hint", hint.to_string());
        }
        let (url, csrf, nonce) = request.url();
        Request {
            url,
            csrf,
            nonce,
            verifier,
        }
    }

    /// GETs `url` without following a redirect.
    pub async fn get(&self, url: &str) -> Answer {
        answer(self.http.0.get(url).send().await.expect("GET")).await
    }

    /// POSTs a form without following a redirect.
    pub async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> Answer {
        answer(self.http.0.post(url).form(form).send().await.expect("POST")).await
    }

    /// Sends the request and returns the code, checking `state` came back.
    pub async fn code(&self, request: &Request) -> String {
        let answer = self.get(request.url.as_str()).await;
        assert_eq!(answer.status, reqwest::StatusCode::FOUND, "{}", answer.body);
        assert_eq!(
            answer.param("state").as_deref(),
            Some(request.csrf.secret().as_str()),
            "state is echoed"
        );
        answer.param("code").expect("a code in the redirect")
    }

    /// Exchanges a code with openidconnect.
    pub async fn exchange(&self, code: &str, verifier: PkceCodeVerifier) -> Result<Tokens, String> {
        self.client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .expect("token endpoint discovered")
            .set_pkce_verifier(verifier)
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                openidconnect::RequestTokenError::ServerResponse(r) => r.error().to_string(),
                other => format!("{other:?}"),
            })
    }

    /// The whole code flow for `user`; returns the tokens and the nonce sent.
    pub async fn sign_in(&self, user: &str) -> (Tokens, Nonce) {
        let request = self.request(Some(user));
        let code = self.code(&request).await;
        let tokens = self
            .exchange(&code, request.verifier)
            .await
            .expect("code exchange");
        (tokens, request.nonce)
    }

    /// The verifier the gateway should use: openidconnect's, plus a check
    /// that `iat` is not in the future (openidconnect accepts any `iat` by
    /// default and does not read `nbf`).
    pub fn verifier(&self) -> IdTokenVerifier<'_, CoreJsonWebKey> {
        self.client
            .id_token_verifier()
            .set_issue_time_verifier_fn(|iat| {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("clock after 1970")
                    .as_secs();
                let skew = 60;
                if iat.timestamp() > i64::try_from(now + skew).expect("time fits") {
                    Err(format!("issued in the future ({iat})"))
                } else {
                    Ok(())
                }
            })
    }

    /// Verifies the ID token of `tokens` against `nonce`.
    pub fn verify(
        &self,
        tokens: &Tokens,
        nonce: &Nonce,
    ) -> Result<Claims, ClaimsVerificationError> {
        let id_token = tokens.id_token().expect("an ID token");
        id_token.claims(&self.verifier(), nonce).cloned()
    }
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status();
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .map(|v| url::Url::parse(v.to_str().expect("ASCII location")).expect("absolute location"));
    let body = response.text().await.expect("body");
    Answer {
        status,
        location,
        body,
    }
}

/// The header of a compact JWS, decoded (to read `kid` and `alg`).
pub fn jose_header(token: &str) -> serde_json::Value {
    use base64::Engine;
    let header = token.split('.').next().expect("a header segment");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .expect("base64url header");
    serde_json::from_slice(&bytes).expect("JSON header")
}
