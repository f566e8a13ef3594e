//! Shared world of the SSO tests: the proxy tests' world (a seeded shop
//! behind a real `periscope up`, local users alice and bob) plus a real
//! OpenID Connect provider on loopback (the dev IdP in this process, or
//! PyPI's `oidc-provider-mock` as a process), the gateway configured with it,
//! a browser-less "browser" (real HTTPS, cookies kept by hand, redirects read
//! rather than followed) and the real `periscope login --sso`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use periscope_testkit::GatewayOptions;
use periscope_testkit::idp::{Client as IdpClient, DevIdp, RunningIdp, User as IdpUser};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::Value;

use crate::support::proxy::{
    BIN, UPSTREAM_PASSWORD, World, config, expect, shop, start_gateway, user,
};

/// The gateway's client at the provider.
pub const CLIENT_ID: &str = "periscope";
/// Its secret, given to the gateway through `SSO_CLIENT_SECRET`.
pub const CLIENT_SECRET: &str = "sso-client-secret-for-tests";

/// The `[sso]` section for a provider at `issuer`: groups `eng` → dev,
/// `leads` → lead, `admins` → admin; only example.com addresses; users are
/// named by `preferred_username`.
pub fn sso_config(issuer: &str) -> String {
    format!(
        r#"
[sso]

[[sso.provider]]
name = "test"
issuer = "{issuer}"
client_id = "{CLIENT_ID}"
client_secret_env = "SSO_CLIENT_SECRET"
scopes = ["openid", "email", "profile", "groups"]
username_claim = "preferred_username"
allowed_email_domains = ["example.com"]

[sso.provider.role_map]
eng = ["dev"]
leads = ["lead"]
admins = ["admin"]
"#
    )
}

/// People at the dev provider: carol (eng), dave (eng, leads), mallory
/// (eng, but at another domain), nobody (no group), alice (eng: her name is
/// taken by a local identity).
pub fn people() -> Vec<IdpUser> {
    vec![
        IdpUser::new("carol").with_groups(["eng"]),
        IdpUser::new("dave").with_groups(["eng", "leads"]),
        IdpUser::new("mallory")
            .with_email(Some("mallory@evil.example"), true)
            .with_groups(["eng"]),
        IdpUser::new("nobody").with_groups(["marketing"]),
        IdpUser::new("alice").with_groups(["eng"]),
    ]
}

/// The proxy world with SSO on, the dev provider running.
pub struct SsoWorld {
    pub world: World,
    pub idp: RunningIdp,
}

/// Starts the dev provider, then a seeded gateway configured with it, then
/// registers the gateway's redirect URL (known once it listens).
pub async fn sso_world() -> SsoWorld {
    let idp = people()
        .into_iter()
        .fold(DevIdp::builder(), |b, u| b.user(u))
        .device_poll_interval(Duration::from_secs(1))
        .start()
        .await
        .expect("the dev IdP starts");
    let world = world_for(&sso_config(idp.issuer_url())).await;
    idp.register_client(IdpClient {
        id: CLIENT_ID.into(),
        secret: Some(CLIENT_SECRET.into()),
        redirect_uris: vec![format!("{}/sso/callback", world.gw.api_url())],
    })
    .expect("the gateway registers");
    SsoWorld { world, idp }
}

/// The proxy world (20 customers, alice and bob) with `extra` configuration
/// and the SSO client secret in the environment.
pub async fn world_for(extra: &str) -> World {
    crypto();
    let shop = tokio::task::spawn_blocking(move || shop(20)).await.unwrap();
    let gw = start_gateway(
        GatewayOptions::default()
            .config(config(shop.cluster.port(), extra))
            .test_clock(true)
            .env("PG_PROD_PASSWORD", UPSTREAM_PASSWORD)
            .env("SSO_CLIENT_SECRET", CLIENT_SECRET),
    )
    .await;
    let admin = gw
        .client(Some(gw.bootstrap_token().expect("the admin token")))
        .unwrap();
    let alice = user(&gw, &admin, "alice", &["dev"]).await;
    let bob = user(&gw, &admin, "bob", &["lead"]).await;
    World {
        shop,
        gw,
        admin,
        alice,
        bob,
    }
}

/// reqwest is built without a rustls provider (the workspace's choice):
/// the tests' plain clients need the process default installed.
pub fn crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// One answer, redirects not followed.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub location: Option<String>,
    pub set_cookies: Vec<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Answer {
    /// A query parameter of the redirect.
    pub fn param(&self, name: &str) -> Option<String> {
        let location = self.location.as_ref()?;
        let url = reqwest::Url::parse(location).ok()?;
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// A browser without a screen: HTTPS trusting the gateway's CA, cookies
/// kept per name (the `__Host-` ones are the gateway's), redirects returned
/// to the test.
#[derive(Clone)]
pub struct Browser {
    http: reqwest::Client,
    pub cookies: BTreeMap<String, String>,
}

impl Browser {
    pub fn new(ca_file: &Path) -> Browser {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(ca_file).unwrap())
            .unwrap();
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        Browser {
            http: reqwest::Client::builder()
                .tls_backend_preconfigured(tls)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> Option<String> {
        (!self.cookies.is_empty()).then(|| {
            self.cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Answer {
        let request = match self.cookie_header() {
            Some(cookies) => request.header("cookie", cookies),
            None => request,
        };
        let response = request.send().await.expect("the request is answered");
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_string());
        let set_cookies: Vec<String> = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        for cookie in &set_cookies {
            let pair = cookie.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || cookie.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
        Answer {
            status,
            location,
            set_cookies,
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        }
    }

    pub async fn get(&mut self, url: &str) -> Answer {
        let request = self.http.get(url);
        self.send(request).await
    }

    pub async fn post_form(&mut self, url: &str, form: &[(&str, &str)]) -> Answer {
        let body: String = reqwest::Url::parse_with_params("http://x/", form)
            .unwrap()
            .query()
            .unwrap_or_default()
            .to_string();
        let request = self
            .http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(request).await
    }

    /// A JSON call to the gateway with this browser's cookies (and the CSRF
    /// token when given).
    pub async fn api(
        &mut self,
        method: &str,
        url: &str,
        body: Option<&Value>,
        csrf: Option<&str>,
    ) -> Answer {
        let mut request = self
            .http
            .request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        self.send(request).await
    }

    /// The session cookie, when signed in.
    pub fn session(&self) -> Option<&str> {
        self.cookies
            .get("__Host-periscope_session")
            .map(String::as_str)
    }

    /// The CSRF token the signed-in page embeds.
    pub async fn csrf(&mut self, gateway: &str) -> String {
        let page = self.get(&format!("{gateway}/sso/session")).await;
        let marker = "name=\"csrf_token\" value=\"";
        let start = page.body.find(marker).expect("a sign-out form") + marker.len();
        let end = page.body[start..].find('"').unwrap() + start;
        page.body[start..end].to_string()
    }
}

/// Appends the dev provider's "who signs in" choice to an authorization URL
/// (what a person does on its sign-in page).
pub fn as_person(authorize_url: &str, who: &str) -> String {
    let mut url = reqwest::Url::parse(authorize_url).unwrap();
    url.query_pairs_mut().append_pair("login_hint", who);
    url.to_string()
}

/// The browser's trip through a web sign-in at the dev provider: the
/// gateway's `/sso/login`, the provider, the gateway's callback. Returns
/// the callback's answer.
pub async fn web_sign_in(browser: &mut Browser, gateway: &str, who: &str) -> Answer {
    let begun = browser.get(&format!("{gateway}/sso/login")).await;
    assert_eq!(begun.status, 303, "{}", begun.body);
    let authorize = begun.location.clone().expect("a redirect to the provider");
    let at_idp = browser.get(&as_person(&authorize, who)).await;
    assert_eq!(at_idp.status, 302, "the provider answers: {}", at_idp.body);
    let callback = at_idp.location.clone().expect("back to the gateway");
    assert!(
        callback.starts_with(&format!("{gateway}/sso/callback")),
        "{callback}"
    );
    browser.get(&callback).await
}

/// A running `periscope login --sso ...` and what it printed.
pub struct CliLogin {
    pub child: Child,
    pub config_dir: Option<tempfile::TempDir>,
    stderr: mpsc::Receiver<String>,
    pub printed: Vec<String>,
}

impl CliLogin {
    /// Starts the real binary with its own config dir and no browser.
    pub fn start(gateway: &str, ca_file: &Path, extra: &[&str]) -> CliLogin {
        let config_dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(BIN)
            .args(["login", "--sso", "--url", gateway, "--ca-file"])
            .arg(ca_file)
            .args(extra)
            .env("PERISCOPE_CONFIG_DIR", config_dir.path())
            .env_remove("PERISCOPE_URL")
            .env_remove("PERISCOPE_TOKEN")
            .env("BROWSER", "false")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("periscope runs");
        let (tx, stderr) = mpsc::channel();
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                eprintln!("[periscope login] {line}");
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        CliLogin {
            child,
            config_dir: Some(config_dir),
            stderr,
            printed: Vec::new(),
        }
    }

    /// Waits for a line of stderr containing `needle` (60 s at most).
    pub fn wait_line(&mut self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline
                .checked_duration_since(std::time::Instant::now())
                .unwrap_or_else(|| panic!("no line with {needle:?} in {:?}", self.printed));
            let line = self
                .stderr
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no line with {needle:?} in {:?}", self.printed));
            self.printed.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// Waits for the process to end (60 s at most): exit success, stdout.
    pub fn finish(mut self) -> (bool, String, Vec<String>, tempfile::TempDir) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "periscope login did not finish: {:?}",
                self.printed
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut stdout = String::new();
        std::io::Read::read_to_string(&mut self.child.stdout.take().unwrap(), &mut stdout).unwrap();
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_millis(200)) {
            self.printed.push(line);
        }
        let printed = std::mem::take(&mut self.printed);
        let dir = self.config_dir.take().expect("the config dir");
        (status.success(), stdout, printed, dir)
    }
}

impl Drop for CliLogin {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// The token `periscope login` saved in `config_dir`.
pub fn saved_token(config_dir: &Path) -> String {
    let text = std::fs::read_to_string(config_dir.join("profile.toml")).unwrap();
    let profile: toml::Table = toml::from_str(&text).unwrap();
    profile["token"].as_str().unwrap().to_string()
}

/// The first URL in `line`.
pub fn url_in(line: &str) -> String {
    line.split_whitespace()
        .find(|w| w.starts_with("http://") || w.starts_with("https://"))
        .expect("a URL")
        .to_string()
}

/// `PERISCOPE_OIDC_MOCK`, else where `scripts/install-sso-interop` puts
/// PyPI's `oidc-provider-mock`; a missing install fails with the command
/// that installs it.
pub fn oidc_mock_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("PERISCOPE_OIDC_MOCK") {
        return PathBuf::from(path);
    }
    let cache = std::env::var_os("PERISCOPE_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("periscope")))
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache").join("periscope"))
        })
        .expect("HOME is set");
    let path = cache.join("sso-interop/venv/bin/oidc-provider-mock");
    assert!(
        path.is_file(),
        "PyPI's oidc-provider-mock is not installed at {}: run scripts/install-sso-interop \
         (CI runs it), or set PERISCOPE_OIDC_MOCK to its binary",
        path.display()
    );
    path
}

/// PyPI's `oidc-provider-mock` on a free loopback port; killed on drop.
pub struct OidcMock {
    child: Child,
    pub issuer: String,
}

impl OidcMock {
    /// Starts it with `claims` for every user and waits for its discovery
    /// document.
    pub async fn start(claims: &Value) -> OidcMock {
        crypto();
        let binary = oidc_mock_binary();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(&binary)
            .args([
                "--port",
                &port.to_string(),
                "--user-claims",
                &claims.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
        let issuer = format!("http://127.0.0.1:{port}");
        let mock = OidcMock { child, issuer };
        let http = reqwest::Client::new();
        let discovery = format!("{}/.well-known/openid-configuration", mock.issuer);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = http.get(&discovery).send().await
                && r.status().is_success()
            {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "oidc-provider-mock did not answer on {discovery} within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        mock
    }
}

impl Drop for OidcMock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Audit events with `action`, oldest first.
pub async fn audit(world: &World, action: &str) -> Vec<Value> {
    world.audit(action).await
}

/// The reasons of the `auth.sso.refused` events.
pub async fn refusal_reasons(world: &World) -> Vec<String> {
    audit(world, "auth.sso.refused")
        .await
        .iter()
        .map(|e| e["details"]["reason"].as_str().unwrap_or("").to_string())
        .collect()
}

/// Whether an identity exists.
pub async fn identity_exists(world: &World, name: &str) -> bool {
    let r = world.admin.get("/v1/admin/users").await.unwrap();
    expect(&r, 200)
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["name"] == name)
}
