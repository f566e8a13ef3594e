//! The three sign-in flows, step by step, as [`Gateway`] methods the HTTP
//! handlers call: begin (web or CLI), the provider's callback, the CLI's
//! hand-off, and the device grant's start and polls.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{
    AsyncHttpClient, AuthorizationCode, CsrfToken, DeviceAuthorizationResponse,
    EmptyExtraDeviceAuthorizationFields, HttpRequest, HttpResponse, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RequestTokenError, Scope, TokenResponse as _,
};
use periscope_audit::{AuditTime, actions};
use periscope_policy::SsoProvider;
use periscope_store::{Identity, SsoFlow, SsoFlowKind, StoreError, TokenScope};
use serde_json::json;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::Refusal;
use super::flow::{
    self, CLI_FLOW_TTL, DEVICE_FLOW_MAX, HANDOFF_TTL, WEB_FLOW_TTL, flow_id, new_handle, nonce_of,
    verifier_of,
};
use super::oidc::{self, ExpectNonce, Http, OidcIdToken};
use super::signin::Via;
use crate::gateway::Gateway;
use crate::websession::StartedWebSession;
use secrecy::{ExposeSecret, SecretString};

/// Path of the callback every provider redirects to.
pub const CALLBACK_PATH: &str = "/sso/callback";
/// Longest a device poll waits on the provider before answering "pending".
const DEVICE_LONG_POLL: Duration = Duration::from_secs(20);

/// How a sign-in begins.
#[derive(Debug, Clone)]
pub enum FlowStart {
    /// A browser; it lands on `return_to` (a path on this gateway).
    Web {
        /// Where to land after sign-in.
        return_to: String,
    },
    /// `periscope login --sso`: the browser is handed back to the CLI's
    /// loopback address with a one-time code the CLI trades with the
    /// verifier of `challenge`.
    Cli {
        /// `http://127.0.0.1:PORT/...` where the CLI listens.
        loopback: String,
        /// S256 challenge of the CLI's own PKCE verifier.
        challenge: String,
    },
}

/// A sign-in begun: where to send the browser.
#[derive(Debug)]
pub struct Begun {
    /// The provider's authorization URL, with `state`, `nonce` and the PKCE
    /// challenge.
    pub authorize_url: String,
    /// The `state`, for the web flow's binding cookie.
    pub state: Zeroizing<String>,
    /// When the flow expires.
    pub expires_at: OffsetDateTime,
    /// The provider's name.
    pub provider: String,
}

/// The callback's query as the provider sent it.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct CallbackParams {
    /// The authorization code.
    pub code: Option<String>,
    /// The `state` we sent.
    pub state: Option<String>,
    /// An error the provider reports instead of a code.
    pub error: Option<String>,
    /// Its description.
    pub error_description: Option<String>,
}

/// Where a successful callback leads.
#[derive(Debug)]
pub enum Landing {
    /// A browser session was created: set its cookie and go to `return_to`.
    Web {
        /// Who signed in.
        identity: String,
        /// The new session.
        session: StartedWebSession,
        /// Where to go.
        return_to: String,
    },
    /// Hand the browser back to the CLI (`redirect` carries the one-time code).
    Cli {
        /// The loopback URL with `code`.
        redirect: Zeroizing<String>,
    },
}

/// A gateway token issued by a CLI or device sign-in.
pub struct Collected {
    /// The token; shown once.
    pub token: Zeroizing<String>,
    /// Its public id.
    pub token_id: String,
    /// Who signed in.
    pub identity: String,
    /// Their roles now.
    pub roles: Vec<String>,
    /// When the token expires.
    pub expires_at: OffsetDateTime,
}

impl std::fmt::Debug for Collected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collected")
            .field("token_id", &self.token_id)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

/// A device grant begun: what the person must do, and the code the CLI
/// polls with.
#[derive(Debug)]
pub struct DeviceStarted {
    /// The device code (the CLI's handle; secret).
    pub device_code: Zeroizing<String>,
    /// The code the person types at the provider.
    pub user_code: String,
    /// Where to type it.
    pub verification_uri: String,
    /// The same with the code filled in, when the provider offers one.
    pub verification_uri_complete: Option<String>,
    /// Seconds between polls.
    pub interval: u64,
    /// When the code expires.
    pub expires_at: OffsetDateTime,
    /// The provider's name.
    pub provider: String,
}

/// The answer to one device poll.
#[derive(Debug)]
pub enum DevicePoll {
    /// Not approved yet: poll again.
    Pending,
    /// Approved: the gateway token.
    Done(Collected),
}

impl Gateway {
    /// The configured provider called `name`, or the first one.
    fn sso_provider(
        &self,
        name: Option<&str>,
    ) -> Result<(SsoProvider, Option<SecretString>), Refusal> {
        let config = self.config();
        let Some(sso) = &config.config.sso else {
            return Err(Refusal::NotConfigured {
                detail: "single sign-on is not configured on this gateway (no `[sso]` in its \
                         configuration); sign in with a token"
                    .into(),
            });
        };
        let provider = match name {
            Some(name) => sso.provider(name).ok_or_else(|| Refusal::NotConfigured {
                detail: format!(
                    "no provider `{name}`; this gateway has: {}",
                    sso.providers
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })?,
            None => sso
                .providers
                .first()
                .ok_or_else(|| Refusal::NotConfigured {
                    detail: "no SSO provider is configured".into(),
                })?,
        };
        let secret = config.sso_secrets.get(&provider.name).cloned();
        Ok((provider.clone(), secret))
    }

    /// The configured providers, `(name, display name)`, the default first.
    pub fn sso_providers(&self) -> Vec<(String, String)> {
        self.config()
            .config
            .sso
            .as_ref()
            .map(|sso| {
                sso.providers
                    .iter()
                    .map(|p| (p.name.clone(), p.display_name.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The URL browsers reach the gateway at: `[sso] public_url`, else
    /// `https://<public_host or API address>:<API port>`.
    pub fn sso_public_url(&self) -> Result<String, Refusal> {
        let config = self.config();
        if let Some(url) = config
            .config
            .sso
            .as_ref()
            .and_then(|s| s.public_url.clone())
        {
            return Ok(url);
        }
        let api = self
            .endpoints()
            .api
            .unwrap_or(config.config.server.api_listen);
        let host = match &config.config.server.public_host {
            Some(host) => host.clone(),
            None if api.ip().is_unspecified() => {
                return Err(Refusal::Provider {
                    code: "provider_misconfigured",
                    detail: "the gateway does not know its own address (the API listens on all \
                             interfaces): set `[sso] public_url`"
                        .into(),
                });
            }
            None => api.ip().to_string(),
        };
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host
        };
        Ok(format!("https://{host}:{}", api.port()))
    }

    /// How long a gateway token from a sign-in lasts (`[sso]
    /// token_lifetime`, 12 h by default, also without `[sso]`): the CLI's,
    /// the device flow's and an MCP client's (OAuth).
    pub fn sso_token_lifetime(&self) -> std::time::Duration {
        self.config()
            .config
            .sso
            .as_ref()
            .map_or(periscope_policy::sso::DEFAULT_SSO_TOKEN_LIFETIME, |s| {
                s.token_lifetime
            })
    }

    /// The redirect URL to register with every provider.
    pub fn sso_redirect_url(&self) -> Result<String, Refusal> {
        Ok(format!("{}{CALLBACK_PATH}", self.sso_public_url()?))
    }

    /// Begins a web or CLI sign-in with `provider` (the default when `None`):
    /// fetches the provider's metadata (failing closed when it is
    /// unreachable), records the flow and returns the authorization URL.
    pub async fn sso_begin(
        &self,
        provider: Option<&str>,
        start: FlowStart,
        client_addr: Option<SocketAddr>,
    ) -> Result<Begun, Refusal> {
        let via = match start {
            FlowStart::Web { .. } => Via::Web,
            FlowStart::Cli { .. } => Via::Cli,
        };
        let result = self.begin(provider, start).await;
        if let Err(refusal) = &result {
            self.sso_refused(refusal, provider, via, None, client_addr)
                .await;
        }
        result
    }

    async fn begin(&self, provider: Option<&str>, start: FlowStart) -> Result<Begun, Refusal> {
        let (provider, secret) = self.sso_provider(provider)?;
        let redirect = self.sso_redirect_url()?;
        let sso = self.sso();
        let metadata = sso
            .cache
            .get(&sso.http, &provider.issuer, &provider.client_id, false)
            .await?;
        let client = oidc::client(
            &metadata,
            &provider.client_id,
            secret.as_ref().map(ExposeSecret::expose_secret),
            Some(&redirect),
        )?;
        let state = Zeroizing::new(new_handle());
        let hasher = self.hasher();
        let verifier = PkceCodeVerifier::new(verifier_of(hasher, &state));
        let challenge = PkceCodeChallenge::from_code_verifier_sha256(&verifier);
        let nonce = nonce_of(hasher, &state);
        let state_for_url = state.to_string();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || CsrfToken::new(state_for_url),
                move || Nonce::new(nonce),
            )
            .set_pkce_challenge(challenge);
        for scope in provider.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, _, _) = request.url();
        let (kind, ttl, return_to, cli_challenge) = match start {
            FlowStart::Web { return_to } => (SsoFlowKind::Web, WEB_FLOW_TTL, Some(return_to), None),
            FlowStart::Cli {
                loopback,
                challenge,
            } => (
                SsoFlowKind::Cli,
                CLI_FLOW_TTL,
                Some(loopback),
                Some(challenge),
            ),
        };
        let now = self.now();
        let expires_at = now + ttl;
        self.store()
            .insert_sso_flow(&SsoFlow {
                flow_id: flow_id(hasher, &state),
                kind,
                provider: provider.name.clone(),
                redirect_uri: redirect,
                return_to,
                cli_challenge,
                poll_secs: None,
                identity: None,
                created_at: audit_time(now)?,
                expires_at: audit_time(expires_at)?,
            })
            .await?;
        Ok(Begun {
            authorize_url: url.to_string(),
            state,
            expires_at,
            provider: provider.name,
        })
    }

    /// Handles the provider's redirect back: checks the `state` (known,
    /// unused, unexpired and, for a browser flow, the one this browser began
    /// per `state_cookie`), exchanges the code with the PKCE verifier,
    /// verifies the ID token and signs the person in. On refusal, also
    /// returns the CLI's loopback URL when the flow was a CLI one, so the
    /// CLI learns why.
    pub async fn sso_callback(
        &self,
        params: &CallbackParams,
        state_cookie: Option<&str>,
        client_addr: Option<SocketAddr>,
    ) -> Result<Landing, (Refusal, Option<String>)> {
        let state = match params.state.as_deref() {
            Some(s) if flow::plausible_handle(s) => s,
            _ => {
                let refusal = Refusal::flow(
                    "missing_state",
                    "the sign-in came back without a valid `state`; start again",
                );
                self.sso_refused(&refusal, None, Via::Web, None, client_addr)
                    .await;
                return Err((refusal, None));
            }
        };
        let id = flow_id(self.hasher(), state);
        let taken = match self.take_code_flow(&id).await {
            Ok(taken) => taken,
            Err(e) => return Err((Refusal::Store(e), None)),
        };
        let Some(flow) = taken else {
            let refusal = Refusal::flow(
                "unknown_state",
                "this sign-in link was already used or has expired; start again",
            );
            self.sso_refused(&refusal, None, Via::Web, None, client_addr)
                .await;
            return Err((refusal, None));
        };
        let via = if flow.kind == SsoFlowKind::Cli {
            Via::Cli
        } else {
            Via::Web
        };
        let loopback = (via == Via::Cli).then(|| flow.return_to.clone()).flatten();
        match self
            .finish_code_flow(&flow, state, params, state_cookie, client_addr)
            .await
        {
            Ok(landing) => Ok(landing),
            Err(refusal) => {
                // Refusals after the sign-in itself are audited there.
                if !matches!(refusal, Refusal::Denied { .. }) {
                    self.sso_refused(&refusal, Some(&flow.provider), via, None, client_addr)
                        .await;
                }
                Err((refusal, loopback))
            }
        }
    }

    async fn take_code_flow(&self, id: &str) -> Result<Option<SsoFlow>, StoreError> {
        if let Some(flow) = self.store().take_sso_flow(id, SsoFlowKind::Web).await? {
            return Ok(Some(flow));
        }
        self.store().take_sso_flow(id, SsoFlowKind::Cli).await
    }

    async fn finish_code_flow(
        &self,
        flow: &SsoFlow,
        state: &str,
        params: &CallbackParams,
        state_cookie: Option<&str>,
        client_addr: Option<SocketAddr>,
    ) -> Result<Landing, Refusal> {
        if flow.kind == SsoFlowKind::Web && state_cookie != Some(state) {
            return Err(Refusal::flow(
                "state_mismatch",
                "this sign-in was not started by this browser (its state cookie is missing or \
                 different); start again from the sign-in page",
            ));
        }
        if self.clock().audit_now() >= flow.expires_at {
            return Err(Refusal::flow(
                "flow_expired",
                "the sign-in took too long and expired; start again",
            ));
        }
        if let Some(error) = &params.error {
            let description = params.error_description.as_deref().unwrap_or("");
            return Err(Refusal::Flow {
                code: if error == "access_denied" {
                    "access_denied"
                } else {
                    "provider_error"
                },
                detail: format!("the provider refused the sign-in: {error} {description}")
                    .trim_end()
                    .to_string(),
            });
        }
        let Some(code) = params.code.as_deref().filter(|c| !c.is_empty()) else {
            return Err(Refusal::flow(
                "missing_code",
                "the provider sent neither a code nor an error",
            ));
        };
        let (provider, secret) = self.sso_provider(Some(&flow.provider))?;
        let verifier = PkceCodeVerifier::new(verifier_of(self.hasher(), state));
        let nonce = nonce_of(self.hasher(), state);
        let sso = self.sso();
        let metadata = sso
            .cache
            .get(&sso.http, &provider.issuer, &provider.client_id, false)
            .await?;
        let client = oidc::client(
            &metadata,
            &provider.client_id,
            secret.as_ref().map(ExposeSecret::expose_secret),
            Some(&flow.redirect_uri),
        )?;
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| Refusal::Provider {
                code: "provider_misconfigured",
                detail: format!("the provider has no token endpoint: {e}"),
            })?
            .set_pkce_verifier(verifier)
            .request_async(&sso.http)
            .await
            .map_err(|e| token_request_refusal(&provider, &e))?;
        let id_token = tokens.id_token().ok_or_else(|| Refusal::Token {
            code: "no_id_token",
            detail: "the token endpoint returned no ID token (is `openid` among the scopes?)"
                .into(),
        })?;
        let claims = self
            .verify_id_token(
                &provider,
                secret.as_ref(),
                id_token,
                ExpectNonce::Exactly(&nonce),
            )
            .await?;
        let via = if flow.kind == SsoFlowKind::Cli {
            Via::Cli
        } else {
            Via::Web
        };
        let identity = self
            .sso_sign_in(&provider, &claims, via, client_addr)
            .await?;
        match flow.kind {
            SsoFlowKind::Cli => self.hand_off(flow, &identity).await,
            _ => {
                let session = self
                    .start_web_session(
                        &identity.name,
                        &format!("sso:{}", provider.name),
                        client_addr,
                    )
                    .await?;
                Ok(Landing::Web {
                    identity: identity.name,
                    session,
                    return_to: flow.return_to.clone().unwrap_or_else(|| "/".into()),
                })
            }
        }
    }

    /// Verifies an ID token with the provider's keys; when none matches its
    /// key id (the provider rotated), refetches them once and tries again.
    async fn verify_id_token(
        &self,
        provider: &SsoProvider,
        secret: Option<&SecretString>,
        id_token: &OidcIdToken,
        nonce: ExpectNonce<'_>,
    ) -> Result<oidc::Claims, Refusal> {
        let sso = self.sso();
        for fresh in [false, true] {
            let metadata = sso
                .cache
                .get(&sso.http, &provider.issuer, &provider.client_id, fresh)
                .await?;
            let client = oidc::client(
                &metadata,
                &provider.client_id,
                secret.map(ExposeSecret::expose_secret),
                None,
            )?;
            match oidc::verify(&client, id_token, nonce) {
                Ok(claims) => return Ok(claims),
                Err(Some(refusal)) => return Err(refusal),
                Err(None) if !fresh => {
                    tracing::info!(provider = %provider.name, "ID token signed with an unknown key: refetching the provider's keys");
                }
                Err(None) => {}
            }
        }
        Err(Refusal::Token {
            code: "unknown_key",
            detail: "the ID token is signed with a key the provider does not publish, even \
                     after its keys were fetched again"
                .into(),
        })
    }

    /// Records the one-time code the CLI trades for its token, and the
    /// loopback URL that carries it there.
    async fn hand_off(&self, flow: &SsoFlow, identity: &Identity) -> Result<Landing, Refusal> {
        let (Some(loopback), Some(challenge)) = (&flow.return_to, &flow.cli_challenge) else {
            return Err(Refusal::flow(
                "bad_flow",
                "the CLI sign-in lost its loopback address",
            ));
        };
        let code = Zeroizing::new(new_handle());
        let now = self.now();
        self.store()
            .insert_sso_flow(&SsoFlow {
                flow_id: flow_id(self.hasher(), &code),
                kind: SsoFlowKind::Handoff,
                provider: flow.provider.clone(),
                redirect_uri: flow.redirect_uri.clone(),
                return_to: None,
                cli_challenge: Some(challenge.clone()),
                poll_secs: None,
                identity: Some(identity.name.clone()),
                created_at: audit_time(now)?,
                expires_at: audit_time(now + HANDOFF_TTL)?,
            })
            .await?;
        let mut url = url::Url::parse(loopback)
            .map_err(|_| Refusal::flow("bad_flow", "the CLI's loopback address is not a URL"))?;
        url.query_pairs_mut().append_pair("code", &code);
        Ok(Landing::Cli {
            redirect: Zeroizing::new(url.to_string()),
        })
    }

    /// The CLI trades its one-time code and PKCE verifier for a gateway
    /// token.
    pub async fn sso_collect(
        &self,
        code: &str,
        verifier: &str,
        client_addr: Option<SocketAddr>,
    ) -> Result<Collected, Refusal> {
        let result = self.collect(code, verifier).await;
        if let Err(refusal) = &result {
            self.sso_refused(refusal, None, Via::Cli, None, client_addr)
                .await;
        }
        result
    }

    async fn collect(&self, code: &str, verifier: &str) -> Result<Collected, Refusal> {
        if !flow::plausible_handle(code) {
            return Err(Refusal::flow(
                "unknown_code",
                "this sign-in code is not valid",
            ));
        }
        let flow = self
            .store()
            .take_sso_flow(&flow_id(self.hasher(), code), SsoFlowKind::Handoff)
            .await?
            .filter(|flow| !crate::oauth::is_oauth_code(flow))
            .ok_or_else(|| {
                Refusal::flow(
                    "unknown_code",
                    "this sign-in code was already used or has expired; run `periscope login \
                     --sso` again",
                )
            })?;
        if self.clock().audit_now() >= flow.expires_at {
            return Err(Refusal::flow(
                "flow_expired",
                "the sign-in code expired; run `periscope login --sso` again",
            ));
        }
        let challenge = flow.cli_challenge.as_deref().unwrap_or("");
        if !flow::verifier_matches(verifier, challenge) {
            return Err(Refusal::flow(
                "bad_verifier",
                "the code verifier does not match the sign-in this code belongs to",
            ));
        }
        let identity = flow
            .identity
            .ok_or_else(|| Refusal::flow("bad_flow", "the sign-in code names no identity"))?;
        self.issue_sso_token(&identity, &flow.provider, Via::Cli)
            .await
    }

    /// Mints the gateway token a CLI or device sign-in yields:
    /// `[sso] token_lifetime` (12 h by default), audited as `token.create`.
    async fn issue_sso_token(
        &self,
        identity: &str,
        provider: &str,
        via: Via,
    ) -> Result<Collected, Refusal> {
        let stored = self.store().get_identity(identity).await?;
        if !stored.is_enabled() {
            return Err(Refusal::denied(
                "disabled",
                format!("identity `{identity}` is disabled at this gateway"),
            ));
        }
        let lifetime = self.sso_token_lifetime();
        let now = self.now();
        let expires_at = now + lifetime;
        let minted = self.hasher().mint(
            identity,
            TokenScope::Api,
            format!("periscope login --sso ({provider}, {})", via.as_str()),
            self.clock().audit_now(),
            Some(audit_time(expires_at)?),
        );
        let draft = self
            .draft(identity, actions::TOKEN_CREATE, &minted.record.token_id)
            .with_details(json!({
                "identity": identity,
                "scope": "api",
                "sso_provider": provider,
                "via": via.as_str(),
                "expires_at": minted.record.expires_at,
            }));
        let token_id = minted.record.token_id.clone();
        let started = std::time::Instant::now();
        self.store()
            .create_token(minted.record, vec![draft])
            .await?;
        self.count_audit(1, started);
        Ok(Collected {
            token: minted.token,
            token_id,
            identity: identity.to_string(),
            roles: stored.roles,
            expires_at,
        })
    }

    /// Begins a device grant with `provider` (the default when `None`).
    pub async fn sso_device_start(
        &self,
        provider: Option<&str>,
        client_addr: Option<SocketAddr>,
    ) -> Result<DeviceStarted, Refusal> {
        let result = self.device_start(provider).await;
        if let Err(refusal) = &result {
            self.sso_refused(refusal, provider, Via::Device, None, client_addr)
                .await;
        }
        result
    }

    async fn device_start(&self, provider: Option<&str>) -> Result<DeviceStarted, Refusal> {
        let (provider, secret) = self.sso_provider(provider)?;
        let sso = self.sso();
        let metadata = sso
            .cache
            .get(&sso.http, &provider.issuer, &provider.client_id, false)
            .await?;
        let Some(device_url) = metadata
            .additional_metadata()
            .device_authorization_endpoint
            .clone()
        else {
            return Err(Refusal::Provider {
                code: "device_unsupported",
                detail: format!(
                    "the provider `{}` offers no device authorization endpoint: use \
                     `periscope login --sso` with a browser",
                    provider.name
                ),
            });
        };
        let client = oidc::client(
            &metadata,
            &provider.client_id,
            secret.as_ref().map(ExposeSecret::expose_secret),
            None,
        )?
        .set_device_authorization_url(device_url);
        let mut request = client.exchange_device_code();
        for scope in provider.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let details: DeviceAuthorizationResponse<EmptyExtraDeviceAuthorizationFields> = request
            .request_async(&sso.http)
            .await
            .map_err(|e| token_request_refusal(&provider, &e))?;
        let ttl = details.expires_in().min(DEVICE_FLOW_MAX);
        let interval = details.interval().as_secs().max(1);
        let now = self.now();
        let expires_at = now + ttl;
        let device_code = Zeroizing::new(details.device_code().secret().clone());
        self.store()
            .insert_sso_flow(&SsoFlow {
                flow_id: flow_id(self.hasher(), &device_code),
                kind: SsoFlowKind::Device,
                provider: provider.name.clone(),
                redirect_uri: String::new(),
                return_to: None,
                cli_challenge: None,
                poll_secs: Some(i64::try_from(interval).unwrap_or(5)),
                identity: None,
                created_at: audit_time(now)?,
                expires_at: audit_time(expires_at)?,
            })
            .await?;
        Ok(DeviceStarted {
            device_code,
            user_code: details.user_code().secret().clone(),
            verification_uri: details.verification_uri().to_string(),
            verification_uri_complete: details
                .verification_uri_complete()
                .map(|u| u.secret().clone()),
            interval,
            expires_at,
            provider: provider.name,
        })
    }

    /// Polls a device grant on the CLI's behalf: waits on the provider up
    /// to 20 s, then answers [`DevicePoll::Pending`] or signs the person in.
    pub async fn sso_device_poll(
        &self,
        device_code: &str,
        client_addr: Option<SocketAddr>,
    ) -> Result<DevicePoll, Refusal> {
        let result = self.device_poll(device_code, client_addr).await;
        if let Err(refusal) = &result
            && !matches!(refusal, Refusal::Denied { .. })
        {
            self.sso_refused(refusal, None, Via::Device, None, client_addr)
                .await;
        }
        result
    }

    async fn device_poll(
        &self,
        device_code: &str,
        client_addr: Option<SocketAddr>,
    ) -> Result<DevicePoll, Refusal> {
        if !flow::plausible_handle(device_code) {
            return Err(Refusal::flow(
                "unknown_device_code",
                "this device code is not valid",
            ));
        }
        let id = flow_id(self.hasher(), device_code);
        let flow = self
            .store()
            .get_sso_flow(&id, SsoFlowKind::Device)
            .await?
            .ok_or_else(|| {
                Refusal::flow(
                    "unknown_device_code",
                    "this device sign-in is unknown, finished or expired; run `periscope login \
                     --sso --device` again",
                )
            })?;
        let now = self.now();
        let remaining = flow.expires_at.to_datetime() - now;
        if remaining <= time::Duration::ZERO {
            let _ = self.store().take_sso_flow(&id, SsoFlowKind::Device).await;
            return Err(Refusal::flow(
                "flow_expired",
                "the device code expired before it was approved; run `periscope login --sso \
                 --device` again",
            ));
        }
        let remaining = Duration::try_from(remaining).unwrap_or(Duration::ZERO);
        let (provider, secret) = self.sso_provider(Some(&flow.provider))?;
        let sso = self.sso();
        let metadata = sso
            .cache
            .get(&sso.http, &provider.issuer, &provider.client_id, false)
            .await?;
        let client = oidc::client(
            &metadata,
            &provider.client_id,
            secret.as_ref().map(ExposeSecret::expose_secret),
            None,
        )?;
        // The grant's state as the provider needs it for a poll: only the
        // device code, the interval and the time left matter.
        let details: DeviceAuthorizationResponse<EmptyExtraDeviceAuthorizationFields> =
            serde_json::from_value(json!({
                "device_code": device_code,
                "user_code": "-",
                "verification_uri": provider.issuer,
                "expires_in": remaining.as_secs().max(1),
                "interval": flow.poll_secs.unwrap_or(5).max(1),
            }))
            .map_err(|e| Refusal::flow("bad_flow", format!("device state: {e}")))?;
        let recording = RecordingHttp {
            http: &sso.http,
            last_error: Mutex::new(None),
        };
        let request =
            client
                .exchange_device_access_token(&details)
                .map_err(|e| Refusal::Provider {
                    code: "provider_misconfigured",
                    detail: format!("the provider has no token endpoint: {e}"),
                })?;
        let polled = tokio::time::timeout(
            DEVICE_LONG_POLL.min(remaining),
            request.request_async(&recording, tokio::time::sleep, Some(remaining)),
        )
        .await;
        let tokens = match polled {
            Err(_) => {
                let failed = recording
                    .last_error
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take();
                return match failed {
                    Some(detail) => Err(Refusal::Unreachable {
                        detail: format!(
                            "the provider `{}` cannot be reached: {detail}",
                            provider.name
                        ),
                    }),
                    None => Ok(DevicePoll::Pending),
                };
            }
            Ok(Err(RequestTokenError::ServerResponse(e))) => {
                let _ = self.store().take_sso_flow(&id, SsoFlowKind::Device).await;
                let code = e.error().to_string();
                return Err(match code.as_str() {
                    "access_denied" => {
                        Refusal::flow("access_denied", "the sign-in was denied at the provider")
                    }
                    "expired_token" => Refusal::flow(
                        "flow_expired",
                        "the device code expired before it was approved",
                    ),
                    _ => Refusal::Token {
                        code: "code_rejected",
                        detail: format!(
                            "the provider refused the device code: {code} {}",
                            e.error_description().map_or("", String::as_str)
                        ),
                    },
                });
            }
            Ok(Err(e)) => return Err(token_request_refusal(&provider, &e)),
            Ok(Ok(tokens)) => tokens,
        };
        // Approved: the flow is taken once, so two concurrent polls cannot
        // both mint a token.
        if self
            .store()
            .take_sso_flow(&id, SsoFlowKind::Device)
            .await?
            .is_none()
        {
            return Err(Refusal::flow(
                "unknown_device_code",
                "this device sign-in was already collected",
            ));
        }
        let id_token = tokens.id_token().ok_or_else(|| Refusal::Token {
            code: "no_id_token",
            detail: "the token endpoint returned no ID token (is `openid` among the scopes?)"
                .into(),
        })?;
        let claims = self
            .verify_id_token(&provider, secret.as_ref(), id_token, ExpectNonce::None)
            .await?;
        let identity = self
            .sso_sign_in(&provider, &claims, Via::Device, client_addr)
            .await?;
        Ok(DevicePoll::Done(
            self.issue_sso_token(&identity.name, &provider.name, Via::Device)
                .await?,
        ))
    }
}

/// The HTTP client of one device poll, remembering the last transport
/// failure: `oauth2` retries those silently, and an unreachable provider
/// must be reported as such rather than as "pending".
struct RecordingHttp<'a> {
    http: &'a Http,
    last_error: Mutex<Option<String>>,
}

impl<'c> AsyncHttpClient<'c> for RecordingHttp<'_> {
    type Error = reqwest::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<HttpResponse, reqwest::Error>> + Send + 'c>,
    >;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let result = self.http.call(request).await;
            let mut last = self.last_error.lock().unwrap_or_else(|e| e.into_inner());
            *last = result.as_ref().err().map(|e| oidc::error_chain(e));
            result
        })
    }
}

/// The refusal for a failed call to the token or device endpoint.
fn token_request_refusal<RE, TE>(provider: &SsoProvider, e: &RequestTokenError<RE, TE>) -> Refusal
where
    RE: std::error::Error + 'static,
    TE: openidconnect::ErrorResponse + 'static,
{
    match e {
        RequestTokenError::Request(inner) => Refusal::Unreachable {
            detail: format!(
                "the provider `{}` cannot be reached: {}",
                provider.name,
                oidc::error_chain(inner)
            ),
        },
        RequestTokenError::ServerResponse(response) => Refusal::Token {
            code: "code_rejected",
            detail: format!("the provider refused the exchange: {response}"),
        },
        RequestTokenError::Parse(err, _) => Refusal::Provider {
            code: "provider_misconfigured",
            detail: format!("the provider's answer could not be read: {err}"),
        },
        RequestTokenError::Other(text) => Refusal::Provider {
            code: "provider_misconfigured",
            detail: text.clone(),
        },
    }
}

/// A flow's time as stored; one out of the store's range is refused as an
/// invalid value (a refused sign-in says the store failed).
pub(crate) fn audit_time(at: OffsetDateTime) -> Result<AuditTime, StoreError> {
    AuditTime::from_datetime(at).map_err(|e| StoreError::Invalid(format!("time out of range: {e}")))
}
