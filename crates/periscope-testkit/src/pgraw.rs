//! A hand-driven PostgreSQL protocol client, for what drivers do not let a
//! test do or see: message order (`ParseComplete` before `BindComplete`),
//! batches a driver would never send (Execute without Describe), malformed
//! or hostile messages, and what the server says right before it closes.
//!
//! It works on bytes: it frames messages by their length word and nothing
//! more, so it trusts no codec of the code under test. A test that wants
//! typed messages decodes [`Message::raw`] with the codec it checks.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a read waits for the server before the test fails.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// One message from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its type byte (`'Z'` ReadyForQuery, `'E'` ErrorResponse, ...).
    pub tag: u8,
    /// The whole frame: tag, length word and body.
    pub raw: Vec<u8>,
}

impl Message {
    /// The body, after the tag and the length word.
    pub fn body(&self) -> &[u8] {
        &self.raw[5..]
    }

    /// The fields of an ErrorResponse or NoticeResponse by code (`'C'` the
    /// SQLSTATE, `'M'` the message, `'S'` the severity...); empty for other
    /// messages.
    pub fn fields(&self) -> BTreeMap<char, String> {
        if self.tag != b'E' && self.tag != b'N' {
            return BTreeMap::new();
        }
        self.body()
            .split(|b| *b == 0)
            .filter(|f| !f.is_empty())
            .map(|f| {
                (
                    char::from(f[0]),
                    String::from_utf8_lossy(&f[1..]).into_owned(),
                )
            })
            .collect()
    }

    /// The values of a DataRow (`None` for NULL); `None` for other messages
    /// or a malformed row.
    pub fn data_row(&self) -> Option<Vec<Option<Vec<u8>>>> {
        if self.tag != b'D' {
            return None;
        }
        let body = self.body();
        let count = u16::from_be_bytes(body.get(0..2)?.try_into().ok()?);
        let mut at = 2;
        let mut values = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let len = i32::from_be_bytes(body.get(at..at + 4)?.try_into().ok()?);
            at += 4;
            if len < 0 {
                values.push(None);
                continue;
            }
            let end = at + usize::try_from(len).ok()?;
            values.push(Some(body.get(at..end)?.to_vec()));
            at = end;
        }
        Some(values)
    }
}

/// A protocol client on a plaintext TCP connection.
#[derive(Debug)]
pub struct RawClient {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl RawClient {
    /// Connects; nothing is sent yet.
    pub async fn connect(addr: SocketAddr) -> RawClient {
        RawClient {
            stream: TcpStream::connect(addr)
                .await
                .unwrap_or_else(|e| panic!("connect to {addr}: {e}")),
            buf: Vec::new(),
        }
    }

    /// Connects, starts up with `params` (`user`, `database`, ...) and
    /// answers the password request with `password`; returns the messages
    /// up to the first ReadyForQuery. Fails the test if the login is
    /// refused.
    pub async fn login(
        addr: SocketAddr,
        params: &[(&str, &str)],
        password: &str,
    ) -> (RawClient, Vec<Message>) {
        let mut client = RawClient::connect(addr).await;
        client.send(&build::startup(params)).await;
        let auth = client.recv().await;
        assert_eq!(
            auth.tag, b'R',
            "expected an authentication request: {auth:?}"
        );
        client.send(&build::password(password)).await;
        let msgs = client.until_ready().await;
        if let Some(refusal) = msgs.iter().find(|m| m.tag == b'E') {
            panic!("login refused: {:?}", refusal.fields());
        }
        (client, msgs)
    }

    /// The connection itself, for a test that writes and reads at once
    /// (split it) to see how the server paces a flood.
    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Sends bytes as they are.
    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .await
            .unwrap_or_else(|e| panic!("send to the server: {e}"));
    }

    /// Sends a simple Query.
    pub async fn query(&mut self, sql: &str) {
        self.send(&build::query(sql)).await;
    }

    /// The next message, or `None` at EOF (or a reset). Fails the test when
    /// the server neither answers nor closes within 10 s.
    pub async fn try_recv(&mut self) -> Option<Message> {
        tokio::time::timeout(READ_TIMEOUT, async {
            loop {
                if self.buf.len() >= 5 {
                    let len =
                        i32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]);
                    let total = 1 + usize::try_from(len).expect("a sane length from the server");
                    if self.buf.len() >= total {
                        let raw: Vec<u8> = self.buf.drain(..total).collect();
                        return Some(Message { tag: raw[0], raw });
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
        .expect("the server answers or closes within 10 s")
    }

    /// The next message; fails the test at EOF.
    pub async fn recv(&mut self) -> Message {
        self.try_recv()
            .await
            .expect("a message, not the end of the connection")
    }

    /// Everything up to and including the next ReadyForQuery.
    pub async fn until_ready(&mut self) -> Vec<Message> {
        let mut msgs = Vec::new();
        loop {
            let msg = self.recv().await;
            let done = msg.tag == b'Z';
            msgs.push(msg);
            if done {
                return msgs;
            }
        }
    }

    /// Everything the server says until it closes the connection.
    pub async fn until_eof(&mut self) -> Vec<Message> {
        let mut msgs = Vec::new();
        while let Some(msg) = self.try_recv().await {
            msgs.push(msg);
        }
        msgs
    }
}

/// Builders of frontend messages, well-formed or deliberately not.
pub mod build {
    /// A protocol 3.0 StartupMessage.
    pub fn startup(params: &[(&str, &str)]) -> Vec<u8> {
        let raw: Vec<(&[u8], &[u8])> = params
            .iter()
            .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
            .collect();
        startup_bytes(&raw)
    }

    /// A StartupMessage with arbitrary bytes as keys and values.
    pub fn startup_bytes(params: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut body = vec![0, 3, 0, 0];
        for (k, v) in params {
            body.extend_from_slice(k);
            body.push(0);
            body.extend_from_slice(v);
            body.push(0);
        }
        body.push(0);
        let mut packet = length(body.len() + 4).to_vec();
        packet.extend_from_slice(&body);
        packet
    }

    /// A PasswordMessage.
    pub fn password(password: &str) -> Vec<u8> {
        sized(b'p', &cstr(password))
    }

    /// A simple Query.
    pub fn query(sql: &str) -> Vec<u8> {
        sized(b'Q', &cstr(sql))
    }

    /// Parse of `sql` as statement `name`, no parameter types.
    pub fn parse(name: &str, sql: &str) -> Vec<u8> {
        let mut body = cstr(name);
        body.extend_from_slice(&cstr(sql));
        body.extend_from_slice(&0i16.to_be_bytes());
        sized(b'P', &body)
    }

    /// Bind of statement `statement` to `portal`, no parameters, text
    /// results.
    pub fn bind(portal: &str, statement: &str) -> Vec<u8> {
        let mut body = cstr(portal);
        body.extend_from_slice(&cstr(statement));
        body.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        sized(b'B', &body)
    }

    /// Execute of `portal`, at most `max_rows` (0: all).
    pub fn execute(portal: &str, max_rows: i32) -> Vec<u8> {
        let mut body = cstr(portal);
        body.extend_from_slice(&max_rows.to_be_bytes());
        sized(b'E', &body)
    }

    /// Sync.
    pub fn sync() -> Vec<u8> {
        sized(b'S', &[])
    }

    /// Terminate.
    pub fn terminate() -> Vec<u8> {
        sized(b'X', &[])
    }

    /// A message with an arbitrary declared length and body (hostile input).
    pub fn message(tag: u8, declared: i32, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        out.extend_from_slice(&declared.to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    /// A message whose length word matches its body.
    pub fn sized(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        out.extend_from_slice(&length(body.len() + 4));
        out.extend_from_slice(body);
        out
    }

    fn cstr(s: &str) -> Vec<u8> {
        let mut out = s.as_bytes().to_vec();
        out.push(0);
        out
    }

    fn length(n: usize) -> [u8; 4] {
        i32::try_from(n)
            .expect("a test message under 2 GiB")
            .to_be_bytes()
    }
}
