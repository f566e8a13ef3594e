//! Messages a client (frontend) sends after startup: typed, borrowed views
//! decoded from a [`Frame`], and encoders for the few the proxy sends upstream
//! itself.
//!
//! Decoding validates the whole message once; the views then hand out slices
//! of the original frame, so inspecting a Bind with a thousand parameters
//! allocates nothing.

use bytes::{BufMut, BytesMut};

use crate::codec::{CANCEL_REQUEST_CODE, Frame, PROTOCOL_3_0, Reader, SSL_REQUEST_CODE};
use crate::error::ProtocolError;

/// Frontend message type bytes.
pub mod tag {
    /// Simple query.
    pub const QUERY: u8 = b'Q';
    /// Extended protocol: parse a statement.
    pub const PARSE: u8 = b'P';
    /// Extended protocol: bind a portal.
    pub const BIND: u8 = b'B';
    /// Extended protocol: describe a statement or portal.
    pub const DESCRIBE: u8 = b'D';
    /// Extended protocol: execute a portal.
    pub const EXECUTE: u8 = b'E';
    /// Extended protocol: close a statement or portal.
    pub const CLOSE: u8 = b'C';
    /// Extended protocol: end of batch, ask for ReadyForQuery.
    pub const SYNC: u8 = b'S';
    /// Extended protocol: ask the server to flush its output.
    pub const FLUSH: u8 = b'H';
    /// End of session.
    pub const TERMINATE: u8 = b'X';
    /// COPY FROM STDIN data.
    pub const COPY_DATA: u8 = b'd';
    /// COPY FROM STDIN end.
    pub const COPY_DONE: u8 = b'c';
    /// COPY FROM STDIN abort.
    pub const COPY_FAIL: u8 = b'f';
    /// Fast-path function call.
    pub const FUNCTION_CALL: u8 = b'F';
    /// Password, SASLInitialResponse, SASLResponse or GSS response: the
    /// meaning depends on the authentication exchange in progress.
    pub const AUTH_RESPONSE: u8 = b'p';
}

/// Whether Describe/Close targets a prepared statement or a portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `S`: a prepared statement.
    Statement,
    /// `P`: a portal.
    Portal,
}

impl Target {
    fn decode(r: &mut Reader<'_>) -> Result<Self, ProtocolError> {
        match r.u8()? {
            b'S' => Ok(Target::Statement),
            b'P' => Ok(Target::Portal),
            other => Err(ProtocolError::InvalidValue {
                what: "Describe/Close target",
                value: other.into(),
            }),
        }
    }
}

/// A list of big-endian `i16` format codes, validated to be 0 (text) or 1
/// (binary).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormatCodes<'a>(&'a [u8]);

impl<'a> FormatCodes<'a> {
    fn decode(r: &mut Reader<'a>) -> Result<Self, ProtocolError> {
        let n = r.count16()?;
        let raw = r.bytes(n * 2)?;
        for pair in raw.chunks_exact(2) {
            let code = i16::from_be_bytes([pair[0], pair[1]]);
            if code != 0 && code != 1 {
                return Err(ProtocolError::InvalidValue {
                    what: "format code",
                    value: code.into(),
                });
            }
        }
        Ok(FormatCodes(raw))
    }

    /// Number of codes.
    pub fn len(&self) -> usize {
        self.0.len() / 2
    }

    /// True when no code is given (all text).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The codes: `true` means binary.
    pub fn iter(&self) -> impl Iterator<Item = bool> + 'a {
        self.0.chunks_exact(2).map(|p| p[1] == 1)
    }
}

/// A list of length-prefixed values (`-1` = NULL), validated at decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Values<'a> {
    count: usize,
    raw: &'a [u8],
}

impl<'a> Values<'a> {
    /// Reads the count and the values, checking every length once.
    pub(crate) fn decode(r: &mut Reader<'a>, what: &'static str) -> Result<Self, ProtocolError> {
        let count = r.count16()?;
        let start = r.clone().rest();
        let mut inner = Reader::new(start, what);
        for _ in 0..count {
            inner.value()?;
        }
        let used = start.len() - inner.remaining();
        let raw = r.bytes(used)?;
        Ok(Values { count, raw })
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when there are no values.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The values, `None` for SQL NULL.
    pub fn iter(&self) -> impl Iterator<Item = Option<&'a [u8]>> + 'a {
        let mut r = Reader::new(self.raw, "value");
        let mut left = self.count;
        std::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            left -= 1;
            r.value().ok()
        })
    }
}

/// A list of big-endian type OIDs (Parse parameter types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Oids<'a>(&'a [u8]);

impl<'a> Oids<'a> {
    /// Number of OIDs.
    pub fn len(&self) -> usize {
        self.0.len() / 4
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The OIDs (0 = unspecified).
    pub fn iter(&self) -> impl Iterator<Item = u32> + 'a {
        self.0
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }
}

/// A Bind message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bind<'a> {
    /// Destination portal (empty = unnamed).
    pub portal: &'a str,
    /// Source prepared statement (empty = unnamed).
    pub statement: &'a str,
    /// Parameter format codes (none = all text, one = applies to all).
    pub param_formats: FormatCodes<'a>,
    /// Parameter values.
    pub params: Values<'a>,
    /// Result column format codes.
    pub result_formats: FormatCodes<'a>,
}

/// A FunctionCall (fast-path) message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionCall<'a> {
    /// OID of the function.
    pub function_oid: u32,
    /// Argument format codes.
    pub arg_formats: FormatCodes<'a>,
    /// Arguments.
    pub args: Values<'a>,
    /// Whether the result is wanted in binary.
    pub binary_result: bool,
}

/// A typed view of one frontend message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrontendMessage<'a> {
    /// Simple query: one or more statements.
    Query {
        /// The SQL text.
        sql: &'a str,
    },
    /// Parse a statement.
    Parse {
        /// Statement name (empty = unnamed).
        name: &'a str,
        /// The SQL text.
        sql: &'a str,
        /// Declared parameter types.
        param_types: Oids<'a>,
    },
    /// Bind a portal.
    Bind(Bind<'a>),
    /// Describe a statement or portal.
    Describe {
        /// Statement or portal.
        target: Target,
        /// Its name.
        name: &'a str,
    },
    /// Execute a portal.
    Execute {
        /// Portal name.
        portal: &'a str,
        /// Row limit, 0 or less = no limit.
        max_rows: i32,
    },
    /// Close a statement or portal.
    Close {
        /// Statement or portal.
        target: Target,
        /// Its name.
        name: &'a str,
    },
    /// End of an extended-protocol batch.
    Sync,
    /// Flush request.
    Flush,
    /// End of session.
    Terminate,
    /// COPY FROM STDIN data.
    CopyData(&'a [u8]),
    /// COPY FROM STDIN finished.
    CopyDone,
    /// COPY FROM STDIN aborted.
    CopyFail {
        /// The client's reason.
        message: &'a str,
    },
    /// Fast-path function call.
    FunctionCall(FunctionCall<'a>),
    /// A `p` message: its body is a password, a SASL initial response or a
    /// SASL response depending on the exchange; see [`decode_password`] and
    /// [`SaslInitialResponse::decode`].
    AuthResponse(&'a [u8]),
}

impl<'a> FrontendMessage<'a> {
    /// Decodes a frame received from a client.
    pub fn decode(frame: Frame<'a>) -> Result<Self, ProtocolError> {
        let body = frame.body();
        let msg = match frame.tag() {
            tag::QUERY => {
                let mut r = Reader::new(body, "Query");
                let sql = r.cstr()?;
                r.finish()?;
                FrontendMessage::Query { sql }
            }
            tag::PARSE => {
                let mut r = Reader::new(body, "Parse");
                let name = r.cstr()?;
                let sql = r.cstr()?;
                let mut r = r.within("Parse parameter types");
                let n = r.count16()?;
                let param_types = Oids(r.bytes(n * 4)?);
                r.within("Parse").finish()?;
                FrontendMessage::Parse {
                    name,
                    sql,
                    param_types,
                }
            }
            tag::BIND => {
                let mut r = Reader::new(body, "Bind");
                let portal = r.cstr()?;
                let statement = r.cstr()?;
                let mut r = r.within("Bind parameter formats");
                let param_formats = FormatCodes::decode(&mut r)?;
                let mut r = r.within("Bind parameters");
                let params = Values::decode(&mut r, "Bind parameter")?;
                let mut r = r.within("Bind result formats");
                let result_formats = FormatCodes::decode(&mut r)?;
                r.within("Bind").finish()?;
                FrontendMessage::Bind(Bind {
                    portal,
                    statement,
                    param_formats,
                    params,
                    result_formats,
                })
            }
            tag::DESCRIBE | tag::CLOSE => {
                let what = if frame.tag() == tag::DESCRIBE {
                    "Describe"
                } else {
                    "Close"
                };
                let mut r = Reader::new(body, what);
                let target = Target::decode(&mut r)?;
                let name = r.cstr()?;
                r.finish()?;
                if frame.tag() == tag::DESCRIBE {
                    FrontendMessage::Describe { target, name }
                } else {
                    FrontendMessage::Close { target, name }
                }
            }
            tag::EXECUTE => {
                let mut r = Reader::new(body, "Execute");
                let portal = r.cstr()?;
                let max_rows = r.i32()?;
                r.finish()?;
                FrontendMessage::Execute { portal, max_rows }
            }
            tag::SYNC => empty(body, "Sync", FrontendMessage::Sync)?,
            tag::FLUSH => empty(body, "Flush", FrontendMessage::Flush)?,
            tag::TERMINATE => empty(body, "Terminate", FrontendMessage::Terminate)?,
            tag::COPY_DATA => FrontendMessage::CopyData(body),
            tag::COPY_DONE => empty(body, "CopyDone", FrontendMessage::CopyDone)?,
            tag::COPY_FAIL => {
                let mut r = Reader::new(body, "CopyFail");
                let message = r.cstr()?;
                r.finish()?;
                FrontendMessage::CopyFail { message }
            }
            tag::FUNCTION_CALL => {
                let mut r = Reader::new(body, "FunctionCall");
                let function_oid = r.u32()?;
                let mut r = r.within("FunctionCall argument formats");
                let arg_formats = FormatCodes::decode(&mut r)?;
                let mut r = r.within("FunctionCall arguments");
                let args = Values::decode(&mut r, "FunctionCall argument")?;
                let mut r = r.within("FunctionCall result format");
                let result_format = r.i16()?;
                if result_format != 0 && result_format != 1 {
                    return Err(ProtocolError::InvalidValue {
                        what: "FunctionCall result format",
                        value: result_format.into(),
                    });
                }
                r.within("FunctionCall").finish()?;
                FrontendMessage::FunctionCall(FunctionCall {
                    function_oid,
                    arg_formats,
                    args,
                    binary_result: result_format == 1,
                })
            }
            tag::AUTH_RESPONSE => FrontendMessage::AuthResponse(body),
            other => {
                return Err(ProtocolError::UnknownMessage {
                    direction: "frontend",
                    tag: other,
                });
            }
        };
        Ok(msg)
    }
}

fn empty<'a>(
    body: &[u8],
    what: &'static str,
    msg: FrontendMessage<'a>,
) -> Result<FrontendMessage<'a>, ProtocolError> {
    Reader::new(body, what).finish().map(|()| msg)
}

/// Whether `tag` is a message type a client may send after startup; used to
/// refuse anything else before it reaches the upstream.
pub fn is_known_tag(t: u8) -> bool {
    matches!(
        t,
        tag::QUERY
            | tag::PARSE
            | tag::BIND
            | tag::DESCRIBE
            | tag::EXECUTE
            | tag::CLOSE
            | tag::SYNC
            | tag::FLUSH
            | tag::TERMINATE
            | tag::COPY_DATA
            | tag::COPY_DONE
            | tag::COPY_FAIL
            | tag::FUNCTION_CALL
            | tag::AUTH_RESPONSE
    )
}

/// Decodes the body of a PasswordMessage (cleartext or MD5 answer).
pub fn decode_password(body: &[u8]) -> Result<&str, ProtocolError> {
    let mut r = Reader::new(body, "PasswordMessage");
    let password = r.cstr()?;
    r.finish()?;
    Ok(password)
}

/// The body of a SASLInitialResponse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaslInitialResponse<'a> {
    /// Chosen mechanism, e.g. `SCRAM-SHA-256`.
    pub mechanism: &'a str,
    /// Initial client response, absent when the length is -1.
    pub data: Option<&'a [u8]>,
}

impl<'a> SaslInitialResponse<'a> {
    /// Decodes a `p` body sent in answer to AuthenticationSASL.
    pub fn decode(body: &'a [u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(body, "SASLInitialResponse");
        let mechanism = r.cstr()?;
        let data = r.value()?;
        r.finish()?;
        Ok(Self { mechanism, data })
    }
}

/// Writes a frame: tag, a length placeholder, the body, then the real length.
/// The bodies written by this crate are bounded well below `i32::MAX`.
pub fn put_frame(out: &mut BytesMut, tag: u8, body: impl FnOnce(&mut BytesMut)) {
    out.put_u8(tag);
    let at = out.len();
    out.put_i32(0);
    body(out);
    let len = i32::try_from(out.len() - at).unwrap_or(i32::MAX);
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

/// Writes a C string; interior NUL bytes (which would end the string early on
/// the wire) are dropped.
pub fn put_cstr(out: &mut BytesMut, s: &str) {
    if memchr::memchr(0, s.as_bytes()).is_none() {
        out.put_slice(s.as_bytes());
    } else {
        out.extend(s.bytes().filter(|&b| b != 0));
    }
    out.put_u8(0);
}

/// Encoders for frontend messages: what the proxy sends upstream on its own
/// (startup, authentication, cancel, terminate) and what tests send.
pub mod encode {
    use super::*;

    /// StartupMessage, protocol 3.0, with `params` in order.
    pub fn startup_message<'p>(
        out: &mut BytesMut,
        params: impl IntoIterator<Item = (&'p str, &'p str)>,
    ) {
        let at = out.len();
        out.put_i32(0);
        out.put_i32(PROTOCOL_3_0);
        for (name, value) in params {
            put_cstr(out, name);
            put_cstr(out, value);
        }
        out.put_u8(0);
        let len = i32::try_from(out.len() - at).unwrap_or(i32::MAX);
        out[at..at + 4].copy_from_slice(&len.to_be_bytes());
    }

    /// SSLRequest.
    pub fn ssl_request(out: &mut BytesMut) {
        out.put_i32(8);
        out.put_i32(SSL_REQUEST_CODE);
    }

    /// CancelRequest for the given key.
    pub fn cancel_request(out: &mut BytesMut, process_id: i32, secret_key: &[u8]) {
        let len = i32::try_from(12 + secret_key.len()).unwrap_or(i32::MAX);
        out.put_i32(len);
        out.put_i32(CANCEL_REQUEST_CODE);
        out.put_i32(process_id);
        out.put_slice(secret_key);
    }

    /// PasswordMessage (cleartext password or MD5 answer).
    pub fn password(out: &mut BytesMut, password: &str) {
        put_frame(out, tag::AUTH_RESPONSE, |o| put_cstr(o, password));
    }

    /// SASLInitialResponse.
    pub fn sasl_initial_response(out: &mut BytesMut, mechanism: &str, data: &[u8]) {
        put_frame(out, tag::AUTH_RESPONSE, |o| {
            put_cstr(o, mechanism);
            o.put_i32(i32::try_from(data.len()).unwrap_or(i32::MAX));
            o.put_slice(data);
        });
    }

    /// SASLResponse.
    pub fn sasl_response(out: &mut BytesMut, data: &[u8]) {
        put_frame(out, tag::AUTH_RESPONSE, |o| o.put_slice(data));
    }

    /// Simple Query.
    pub fn query(out: &mut BytesMut, sql: &str) {
        put_frame(out, tag::QUERY, |o| put_cstr(o, sql));
    }

    /// Sync.
    pub fn sync(out: &mut BytesMut) {
        put_frame(out, tag::SYNC, |_| {});
    }

    /// Terminate.
    pub fn terminate(out: &mut BytesMut) {
        put_frame(out, tag::TERMINATE, |_| {});
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        out.extend(((body.len() + 4) as i32).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    fn decode(bytes: &[u8]) -> Result<FrontendMessage<'_>, ProtocolError> {
        let frame = Frame::parse(bytes, 1 << 20)?.expect("complete frame");
        FrontendMessage::decode(frame)
    }

    #[test]
    fn bind_views_borrow_from_the_frame() {
        let mut body = b"portal\0stmt\0".to_vec();
        body.extend(1i16.to_be_bytes());
        body.extend(1i16.to_be_bytes()); // binary params
        body.extend(2i16.to_be_bytes());
        body.extend(3i32.to_be_bytes());
        body.extend(b"abc");
        body.extend((-1i32).to_be_bytes());
        body.extend(0i16.to_be_bytes());
        let bytes = frame(b'B', &body);
        let FrontendMessage::Bind(bind) = decode(&bytes).unwrap() else {
            panic!("not bind")
        };
        assert_eq!((bind.portal, bind.statement), ("portal", "stmt"));
        assert_eq!(bind.param_formats.iter().collect::<Vec<_>>(), [true]);
        assert_eq!(
            bind.params.iter().collect::<Vec<_>>(),
            [Some(&b"abc"[..]), None]
        );
        assert!(bind.result_formats.is_empty());
    }

    #[test]
    fn bind_with_lying_counts_is_refused() {
        let mut body = b"\0\0".to_vec();
        body.extend(0i16.to_be_bytes());
        body.extend(5i16.to_be_bytes()); // five params announced, one present
        body.extend(1i32.to_be_bytes());
        body.push(b'x');
        assert!(matches!(
            decode(&frame(b'B', &body)),
            Err(ProtocolError::Truncated {
                what: "Bind parameter",
                ..
            })
        ));
        let mut body = b"\0\0".to_vec();
        body.extend((-3i16).to_be_bytes());
        assert_eq!(
            decode(&frame(b'B', &body)),
            Err(ProtocolError::InvalidValue {
                what: "Bind parameter formats",
                value: -3
            })
        );
        let mut body = b"\0\0".to_vec();
        body.extend(0i16.to_be_bytes());
        body.extend(1i16.to_be_bytes());
        body.extend((-2i32).to_be_bytes());
        assert_eq!(
            decode(&frame(b'B', &body)),
            Err(ProtocolError::InvalidValue {
                what: "Bind parameter",
                value: -2
            })
        );
    }

    #[test]
    fn simple_messages_decode_and_reject_garbage() {
        assert_eq!(
            decode(&frame(b'Q', b"select 1\0")),
            Ok(FrontendMessage::Query { sql: "select 1" })
        );
        assert_eq!(
            decode(&frame(b'Q', b"select 1")),
            Err(ProtocolError::MissingNul { what: "Query" })
        );
        assert_eq!(
            decode(&frame(b'Q', b"\xff\0")),
            Err(ProtocolError::InvalidUtf8 { what: "Query" })
        );
        assert_eq!(
            decode(&frame(b'S', b"x")),
            Err(ProtocolError::TrailingBytes {
                what: "Sync",
                extra: 1
            })
        );
        assert_eq!(
            decode(&frame(b'D', b"Xname\0")),
            Err(ProtocolError::InvalidValue {
                what: "Describe/Close target",
                value: b'X'.into()
            })
        );
        assert_eq!(
            decode(&frame(b'?', b"")),
            Err(ProtocolError::UnknownMessage {
                direction: "frontend",
                tag: b'?'
            })
        );
    }

    #[test]
    fn parse_and_execute() {
        let mut body = b"s1\0select $1\0".to_vec();
        body.extend(1i16.to_be_bytes());
        body.extend(23u32.to_be_bytes());
        let bytes = frame(b'P', &body);
        let FrontendMessage::Parse {
            name,
            sql,
            param_types,
        } = decode(&bytes).unwrap()
        else {
            panic!("not parse")
        };
        assert_eq!((name, sql), ("s1", "select $1"));
        assert_eq!(param_types.iter().collect::<Vec<_>>(), [23]);
        let mut body = b"p\0".to_vec();
        body.extend(10i32.to_be_bytes());
        assert_eq!(
            decode(&frame(b'E', &body)),
            Ok(FrontendMessage::Execute {
                portal: "p",
                max_rows: 10
            })
        );
    }

    #[test]
    fn encoders_round_trip_through_the_decoder() {
        let mut out = BytesMut::new();
        encode::query(&mut out, "select\0 1");
        assert_eq!(decode(&out), Ok(FrontendMessage::Query { sql: "select 1" }));
        let mut out = BytesMut::new();
        encode::sasl_initial_response(&mut out, "SCRAM-SHA-256", b"n,,n=,r=abc");
        let FrontendMessage::AuthResponse(body) = decode(&out).unwrap() else {
            panic!("not p")
        };
        assert_eq!(
            SaslInitialResponse::decode(body),
            Ok(SaslInitialResponse {
                mechanism: "SCRAM-SHA-256",
                data: Some(b"n,,n=,r=abc")
            })
        );
    }
}
