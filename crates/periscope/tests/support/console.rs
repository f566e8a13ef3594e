//! A real browser for the console tests: Debian's headless Chromium driven
//! through `chromedriver` (WebDriver) with `fantoccini`. Each [`Driver`] is
//! one chromedriver process; each [`Driver::browser`] a separate Chromium
//! with its own profile, so two of them are two people's browsers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

/// How long a condition in the browser may take to come true.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A running chromedriver, stopped on drop.
pub struct Driver {
    child: Child,
    url: String,
}

fn find_program(names: &[&str]) -> Option<String> {
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in names {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate.display().to_string());
            }
        }
    }
    for fixed in ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"] {
        if std::path::Path::new(fixed).is_file() && names.contains(&"chromedriver") {
            return Some(fixed.to_string());
        }
    }
    None
}

impl Driver {
    /// Starts chromedriver on a free loopback port and waits until it
    /// answers `/status`.
    pub async fn start() -> Driver {
        let program = find_program(&["chromedriver"]).expect(
            "chromedriver is not installed: install the Debian packages `chromium` and \
             `chromium-driver` (scripts/install-test-deps does)",
        );
        assert!(
            find_program(&["chromium", "chromium-browser"]).is_some(),
            "chromium is not installed: install the Debian packages `chromium` and \
             `chromium-driver` (scripts/install-test-deps does)"
        );
        let port = {
            let probe = TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let child = Command::new(program)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        let driver = Driver { child, url };
        let deadline = Instant::now() + DEADLINE;
        loop {
            let ready = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok();
            if ready {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on {port}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        driver
    }

    /// A new headless Chromium with an empty profile. The gateway's
    /// certificate comes from its own local CA, which this profile does
    /// not know: the session accepts it (`acceptInsecureCerts`).
    pub async fn browser(&self) -> Browser {
        let caps = json!({
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "goog:chromeOptions": {
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--window-size=1280,1000",
                ]
            }
        });
        let caps = caps.as_object().unwrap().clone();
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a Chromium session starts");
        Browser { client }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One person's browser.
pub struct Browser {
    pub client: Client,
}

impl Browser {
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("the page loads");
    }

    pub async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_string()
    }

    /// The text of the first element matching `css`, if there is one.
    pub async fn text(&self, css: &str) -> Option<String> {
        match self.client.find(Locator::Css(css)).await {
            Ok(element) => element.text().await.ok(),
            Err(_) => None,
        }
    }

    /// Waits until an element matching `css` exists and returns its text.
    pub async fn wait_text(&self, css: &str) -> String {
        self.until(css, |_| true).await
    }

    /// Waits until the element matching `css` has a text satisfying `ok`.
    pub async fn until(&self, css: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(text) = self.text(css).await
                && ok(&text)
            {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "`{css}` did not show the expected text within {DEADLINE:?}; last: {:?}; page: {}",
                self.text(css).await,
                self.client.source().await.unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until no element matches `css`.
    pub async fn until_gone(&self, css: &str) {
        let deadline = Instant::now() + DEADLINE;
        while self.client.find(Locator::Css(css)).await.is_ok() {
            assert!(
                Instant::now() < deadline,
                "`{css}` is still there after {DEADLINE:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let element = self.client.find(Locator::Css(css)).await.unwrap();
        element.clear().await.unwrap();
        element.send_keys(text).await.unwrap();
    }

    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no `{css}`: {e}"))
            .click()
            .await
            .unwrap();
    }

    /// Signs in with an API token on the console's sign-in page. Returns
    /// once the form is submitted, not once it is answered: wait for the
    /// page that follows (`#whoami`, or the refusal) before navigating.
    pub async fn sign_in(&self, gateway: &str, token: &str) {
        self.goto(&format!("{gateway}/")).await;
        assert_eq!(
            self.path().await,
            "/signin",
            "signed out, `/` sends to the sign-in page"
        );
        self.fill("#token", token).await;
        self.click("#signin").await;
    }

    /// Saves a screenshot as `DIR/name.png` when `PERISCOPE_CONSOLE_SCREENSHOTS=DIR`.
    pub async fn screenshot(&self, name: &str) {
        if let Some(dir) = std::env::var_os("PERISCOPE_CONSOLE_SCREENSHOTS") {
            let png = self.client.screenshot().await.unwrap();
            std::fs::write(std::path::Path::new(&dir).join(format!("{name}.png")), png).unwrap();
        }
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}
