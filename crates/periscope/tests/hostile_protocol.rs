//! Hostile clients against the real gateway's PostgreSQL listener: lengths
//! that are too large, negative or too small, frames cut short, invalid
//! UTF-8 in the startup parameters and in a query, and SQL nested ten
//! thousand levels deep. Each gets a precise error, the gateway does not
//! crash, a bystander session keeps working throughout, no upstream
//! connection is left behind, and the gateway's memory stays flat.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::support::proxy::{Client, UPSTREAM_USER, World, cells, world};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One backend message: its type byte and body.
#[derive(Debug)]
struct Msg {
    tag: u8,
    body: Vec<u8>,
}

impl Msg {
    /// The fields of an ErrorResponse, by field type.
    fn error(&self) -> HashMap<char, String> {
        assert_eq!(self.tag, b'E', "expected an ErrorResponse, got {self:?}");
        self.body
            .split(|b| *b == 0)
            .filter(|f| !f.is_empty())
            .map(|f| (f[0] as char, String::from_utf8_lossy(&f[1..]).into_owned()))
            .collect()
    }
}

/// A hand-driven protocol client over plaintext TCP (`pg-dev` allows it).
struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    async fn connect(port: u16) -> Raw {
        Raw {
            stream: TcpStream::connect(("127.0.0.1", port)).await.unwrap(),
            buf: Vec::new(),
        }
    }

    /// Starts up as alice on `pg-dev` and authenticates with her token.
    async fn login(w: &World) -> Raw {
        let mut raw = Raw::connect(w.pg_port()).await;
        raw.send(&startup(&[(b"user", b"alice"), (b"database", b"pg-dev")]))
            .await;
        let auth = raw.recv().await.expect("an authentication request");
        assert_eq!(auth.tag, b'R', "{auth:?}");
        let mut password = vec![b'p'];
        let body = [w.alice.token.as_bytes(), b"\0"].concat();
        password.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
        password.extend_from_slice(&body);
        raw.send(&password).await;
        loop {
            let msg = raw.recv().await.expect("the session starts");
            assert_ne!(msg.tag, b'E', "login refused: {:?}", msg.error());
            if msg.tag == b'Z' {
                return raw;
            }
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// The next message, or `None` at EOF (or a reset); bounded by 10 s.
    async fn recv(&mut self) -> Option<Msg> {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if self.buf.len() >= 5 {
                    let len = i32::from_be_bytes(self.buf[1..5].try_into().unwrap());
                    let total = 1 + usize::try_from(len).expect("a sane length from the gateway");
                    if self.buf.len() >= total {
                        let frame: Vec<u8> = self.buf.drain(..total).collect();
                        return Some(Msg {
                            tag: frame[0],
                            body: frame[5..].to_vec(),
                        });
                    }
                }
                let mut chunk = [0u8; 8192];
                match self.stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                }
            }
        })
        .await
        .expect("the gateway answers or closes within 10 s")
    }

    /// Everything until the gateway closes the connection.
    async fn until_eof(&mut self) -> Vec<Msg> {
        let mut msgs = Vec::new();
        while let Some(msg) = self.recv().await {
            msgs.push(msg);
        }
        msgs
    }
}

/// A protocol 3.0 startup packet.
fn startup(params: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut body = vec![0, 3, 0, 0];
    for (k, v) in params {
        body.extend_from_slice(k);
        body.push(0);
        body.extend_from_slice(v);
        body.push(0);
    }
    body.push(0);
    let mut packet = (body.len() as i32 + 4).to_be_bytes().to_vec();
    packet.extend_from_slice(&body);
    packet
}

/// A message with an arbitrary declared length and body.
fn message(tag: u8, declared: i32, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend_from_slice(&declared.to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// A message whose length matches its body.
fn sized(tag: u8, body: &[u8]) -> Vec<u8> {
    message(tag, i32::try_from(body.len() + 4).unwrap(), body)
}

/// Sends `bytes` and expects exactly one FATAL 08P01 before the gateway
/// closes the connection; returns its message.
async fn expect_08p01(mut raw: Raw, bytes: &[u8]) -> String {
    raw.send(bytes).await;
    let msgs = raw.until_eof().await;
    assert_eq!(msgs.len(), 1, "one FATAL, then close: {msgs:?}");
    let e = msgs[0].error();
    assert_eq!(e[&'C'], "08P01", "{e:?}");
    assert_eq!(e[&'S'], "FATAL", "{e:?}");
    e[&'M'].clone()
}

/// The gateway's resident set, in KiB.
fn rss_kib(w: &World) -> u64 {
    let pid = w.gw.pid().expect("the gateway runs");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// The bystander still gets answers, and the gateway still runs.
async fn bystander_ok(w: &World, bystander: &Client) {
    let rows = cells(
        &bystander
            .simple_query("SELECT id, email FROM customers WHERE id = 3")
            .await
            .expect("the bystander session keeps working"),
    );
    assert_eq!(rows, vec![vec!["3", "[email]"]]);
    assert!(w.gw.is_running());
}

/// Upstream sessions of the gateway's role, as the server counts them
/// (without the background discovery profile, which comes and goes on its
/// own after the first session).
fn upstream_sessions(w: &World) -> usize {
    w.shop
        .cluster
        .psql(
            "shop",
            &format!(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = '{UPSTREAM_USER}' \
                 AND application_name <> 'periscope-discover'"
            ),
        )
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_startup_packets_get_08p01_before_authentication() {
    let w = world().await;
    let bystander = w.client().await;
    let port = w.pg_port();

    let m = expect_08p01(
        Raw::connect(port).await,
        &[0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0],
    )
    .await;
    assert!(m.contains("exceeds the limit of 10240 bytes"), "{m}");
    let m = expect_08p01(
        Raw::connect(port).await,
        &[0xff, 0xff, 0xff, 0xf0, 0, 3, 0, 0],
    )
    .await;
    assert!(m.contains("length -16"), "{m}");
    let m = expect_08p01(Raw::connect(port).await, &[0, 0, 0, 3]).await;
    assert!(m.contains("length 3"), "{m}");
    let m = expect_08p01(
        Raw::connect(port).await,
        &startup(&[(b"user", b"al\xffice"), (b"database", b"pg-dev")]),
    )
    .await;
    assert!(m.contains("UTF-8"), "{m}");
    let m = expect_08p01(
        Raw::connect(port).await,
        &startup(&[(b"user", b"alice"), (b"application_name", b"\xc3\x28")]),
    )
    .await;
    assert!(m.contains("UTF-8"), "{m}");
    bystander_ok(&w, &bystander).await;

    // A startup packet cut short: the gateway waits for the rest, and closes
    // silently when the client gives up (no one is left to read an error).
    let mut raw = Raw::connect(port).await;
    raw.send(&startup(&[(b"user", b"alice"), (b"database", b"pg-dev")])[..12])
        .await;
    raw.stream.shutdown().await.unwrap();
    let msgs = raw.until_eof().await;
    assert!(msgs.is_empty(), "{msgs:?}");
    bystander_ok(&w, &bystander).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_messages_mid_session_end_only_that_session() {
    let w = world().await;
    let bystander = w.client().await;
    bystander_ok(&w, &bystander).await;
    let baseline_upstream = upstream_sessions(&w);
    let rss_before = rss_kib(&w);

    // Declared lengths: above the 64 MiB limit, negative, below 4.
    let m = expect_08p01(
        Raw::login(&w).await,
        &message(b'Q', i32::MAX, b"SELECT 1\0"),
    )
    .await;
    assert!(m.contains("exceeds the limit of 67108864 bytes"), "{m}");
    let m = expect_08p01(Raw::login(&w).await, &message(b'Q', -2, b"")).await;
    assert!(m.contains("length -2"), "{m}");
    let m = expect_08p01(Raw::login(&w).await, &message(b'Q', 2, b"")).await;
    assert!(m.contains("length 2"), "{m}");
    // A length that runs past the fields: the query string has no NUL.
    let m = expect_08p01(Raw::login(&w).await, &message(b'Q', 12, b"SELECT 1")).await;
    assert!(m.contains("NUL"), "{m}");
    // Invalid UTF-8 in a query, simple and extended protocol.
    let m = expect_08p01(Raw::login(&w).await, &sized(b'Q', b"SELECT '\xff\xfe'\0")).await;
    assert!(m.contains("UTF-8"), "{m}");
    let m = expect_08p01(
        Raw::login(&w).await,
        &sized(b'P', b"\0SELECT '\xc0\x80'\0\0\0"),
    )
    .await;
    assert!(m.contains("UTF-8"), "{m}");
    bystander_ok(&w, &bystander).await;

    // Frames cut short: a header alone, and a body shorter than declared;
    // the client leaves and its session ends.
    for bytes in [&b"Q\0\0"[..], &message(b'Q', 1000, b"SELECT")[..]] {
        let mut raw = Raw::login(&w).await;
        raw.send(bytes).await;
        raw.stream.shutdown().await.unwrap();
        let msgs = raw.until_eof().await;
        assert!(msgs.is_empty(), "{msgs:?}");
    }

    // Ten sessions each announce a 60 MiB query (within the limit) and
    // send nothing more: the gateway must not reserve the memory up front.
    let mut announced = Vec::new();
    for _ in 0..10 {
        let mut raw = Raw::login(&w).await;
        raw.send(&message(b'Q', 60 << 20, b"SELECT ")).await;
        announced.push(raw);
    }
    bystander_ok(&w, &bystander).await;
    let rss_announced = rss_kib(&w);
    drop(announced);
    bystander_ok(&w, &bystander).await;

    // No session leaks an upstream connection.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = upstream_sessions(&w);
        if now == baseline_upstream {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{now} upstream sessions remain, {baseline_upstream} expected"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rss_after = rss_kib(&w);
    eprintln!(
        "gateway RSS: {rss_before} KiB before, {rss_announced} KiB with 10 x 60 MiB announced, {rss_after} KiB after"
    );
    assert!(
        rss_announced < rss_before + 64 * 1024,
        "{rss_before} KiB -> {rss_announced} KiB"
    );
    assert!(
        rss_after < rss_before + 64 * 1024,
        "{rss_before} KiB -> {rss_after} KiB"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn deeply_nested_sql_is_refused_with_a_clear_error_and_the_session_goes_on() {
    let w = world().await;
    let client = w.client().await;
    let depth = 10_000;

    let parens = format!("SELECT {}1{}", "(".repeat(depth), ")".repeat(depth));
    let subqueries = format!(
        "SELECT * FROM {}customers{}",
        "(SELECT * FROM ".repeat(depth),
        " s)".repeat(depth)
    );
    let scalar = format!(
        "SELECT {}email FROM customers{}",
        "(SELECT ".repeat(depth),
        ")".repeat(depth)
    );
    let unions = format!(
        "SELECT email FROM customers{}",
        " UNION SELECT email FROM customers".repeat(depth)
    );
    for sql in [&parens, &subqueries, &scalar, &unions] {
        let started = Instant::now();
        let err = client
            .simple_query(sql)
            .await
            .expect_err("refused, not run or masked by guesswork");
        let db = err.as_db_error().unwrap_or_else(|| panic!("{err}"));
        assert!(
            ["54001", "42601"].contains(&db.code().code()),
            "{}: {db:?}",
            &sql[..40]
        );
        assert!(
            db.message().contains("nest")
                || db.message().contains("deep")
                || db.message().contains("complex"),
            "{db:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(10));
        // The same session goes on.
        let rows = cells(
            &client
                .simple_query("SELECT email FROM customers WHERE id = 1")
                .await
                .unwrap(),
        );
        assert_eq!(rows, vec![vec!["[email]"]]);
    }
    // Same through the extended protocol.
    let err = client.prepare(&subqueries).await.expect_err("refused");
    let db = err.as_db_error().unwrap_or_else(|| panic!("{err}"));
    assert_eq!(db.code().code(), "54001", "{db:?}");
    let row = client.query_one("SELECT 41 + 1", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 42);
}
