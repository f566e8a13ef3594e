//! Framing: finding message boundaries in a byte buffer without copying, with
//! every length validated against [`Limits`] before it is trusted.
//!
//! A regular message is `tag: u8, len: i32 (counts itself), body`. Startup-phase
//! packets (StartupMessage, SSLRequest, GSSENCRequest, CancelRequest) have no
//! tag: `len: i32, code: i32, ...`. Both are parsed from borrowed slices; the
//! caller decides whether to forward the original bytes or decode them.

use crate::error::ProtocolError;

/// Size limits applied to every length word before memory is reserved for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest regular message (tag excluded, length word included). PostgreSQL
    /// itself caps most messages at 1 GiB; a proxy that buffers whole messages
    /// needs a much tighter bound to keep memory per session predictable.
    pub max_message: usize,
    /// Largest startup-phase packet. PostgreSQL uses 10 000 bytes.
    pub max_startup: usize,
}

impl Limits {
    /// Default: 64 MiB messages, 10 KiB startup packets.
    pub const DEFAULT: Limits = Limits {
        max_message: 64 * 1024 * 1024,
        max_startup: 10 * 1024,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Protocol version 3.0 as sent in a StartupMessage.
pub const PROTOCOL_3_0: i32 = 196_608;
/// Request code of an SSLRequest packet.
pub const SSL_REQUEST_CODE: i32 = 80_877_103;
/// Request code of a GSSENCRequest packet.
pub const GSSENC_REQUEST_CODE: i32 = 80_877_104;
/// Request code of a CancelRequest packet.
pub const CANCEL_REQUEST_CODE: i32 = 80_877_102;

/// One complete regular message, borrowed from the receive buffer.
///
/// Hooks get this view so that inspecting a message costs nothing and
/// forwarding it means forwarding [`Frame::as_bytes`] unchanged.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    raw: &'a [u8],
}

impl<'a> Frame<'a> {
    /// Finds the first complete frame at the start of `buf`.
    ///
    /// Returns `Ok(None)` when more bytes are needed, and an error as soon as
    /// the 5-byte header is present and its length is invalid, so a hostile
    /// length is refused before the caller reserves room for it.
    pub fn parse(buf: &'a [u8], max_message: usize) -> Result<Option<Frame<'a>>, ProtocolError> {
        match frame_len(buf, max_message)? {
            Some(total) if buf.len() >= total => Ok(Some(Frame { raw: &buf[..total] })),
            _ => Ok(None),
        }
    }

    /// The message type byte.
    pub fn tag(&self) -> u8 {
        self.raw[0]
    }

    /// The body after the type byte and the length word.
    pub fn body(&self) -> &'a [u8] {
        &self.raw[5..]
    }

    /// The whole frame as received: what pass-through forwards.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }

    /// Total length on the wire (type byte included).
    #[allow(clippy::len_without_is_empty)] // a frame is never empty
    pub fn len(&self) -> usize {
        self.raw.len()
    }
}

impl std::fmt::Debug for Frame<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print bodies: they carry query results and passwords.
        f.debug_struct("Frame")
            .field("tag", &(self.tag() as char))
            .field("len", &self.raw.len())
            .finish()
    }
}

/// Total wire length (type byte included) of the frame starting at `buf`, once
/// its header is present; `Ok(None)` while fewer than 5 bytes are buffered.
///
/// This is what a reader uses to reserve exactly the room a large frame needs,
/// after the length has passed validation.
pub fn frame_len(buf: &[u8], max_message: usize) -> Result<Option<usize>, ProtocolError> {
    let Some(header) = buf.get(1..5) else {
        return Ok(None);
    };
    let len = i32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    if len < 4 {
        return Err(ProtocolError::InvalidLength {
            what: "message",
            len: len.into(),
            min: 4,
        });
    }
    let len = len as usize; // non-negative i32: lossless
    if len > max_message {
        return Err(ProtocolError::TooLarge {
            what: "message",
            len,
            max: max_message,
        });
    }
    Ok(Some(len + 1))
}

/// Total length of the untyped startup-phase packet starting at `buf`, once its
/// 4-byte length word is present.
pub fn startup_packet_len(buf: &[u8], max_startup: usize) -> Result<Option<usize>, ProtocolError> {
    let Some(header) = buf.get(0..4) else {
        return Ok(None);
    };
    let len = i32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    if len < 8 {
        return Err(ProtocolError::InvalidLength {
            what: "startup packet",
            len: len.into(),
            min: 8,
        });
    }
    let len = len as usize;
    if len > max_startup {
        return Err(ProtocolError::TooLarge {
            what: "startup packet",
            len,
            max: max_startup,
        });
    }
    Ok(Some(len))
}

/// A decoded startup-phase packet (the first packet of a connection, or the
/// first one after a TLS upgrade).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartupPacket<'a> {
    /// The client asks to upgrade to TLS; answered `S` or `N`.
    SslRequest,
    /// The client asks for GSSAPI encryption; the proxy always answers `N`.
    GssEncRequest,
    /// Cancel the running statement of the session owning this key.
    CancelRequest {
        /// Backend process id the client was given.
        process_id: i32,
        /// Secret key the client was given (4 bytes in protocol 3.0, up to
        /// 256 in 3.2).
        secret_key: &'a [u8],
    },
    /// A session start.
    Startup(StartupMessage<'a>),
}

/// The parameters of a StartupMessage, borrowed from the packet.
#[derive(Clone, PartialEq, Eq)]
pub struct StartupMessage<'a> {
    /// Requested protocol major version (always 3 once decoded).
    pub major: u16,
    /// Requested protocol minor version (0 for 3.0; higher ones are
    /// negotiated down).
    pub minor: u16,
    params: &'a [u8],
}

impl<'a> StartupMessage<'a> {
    /// The `name, value` pairs in the order the client sent them.
    pub fn params(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        // Validated at decode: pairs of NUL-terminated UTF-8 strings.
        let mut rest = self.params;
        std::iter::from_fn(move || {
            let mut reader = Reader::new(rest, "startup parameter");
            let name = reader.cstr().ok()?;
            if name.is_empty() {
                return None;
            }
            let value = reader.cstr().ok()?;
            rest = reader.rest();
            Some((name, value))
        })
    }

    /// Value of one parameter, if present.
    pub fn param(&self, name: &str) -> Option<&'a str> {
        self.params().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

impl std::fmt::Debug for StartupMessage<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartupMessage")
            .field("major", &self.major)
            .field("minor", &self.minor)
            .field("params", &self.params().collect::<Vec<_>>())
            .finish()
    }
}

impl<'a> StartupPacket<'a> {
    /// Decodes one complete startup-phase packet (`packet` holds exactly the
    /// bytes counted by its length word, as [`startup_packet_len`] delimits).
    pub fn decode(packet: &'a [u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(packet, "startup packet");
        let len = r.i32()?;
        if len < 8 || len as usize != packet.len() {
            return Err(ProtocolError::InvalidLength {
                what: "startup packet",
                len: len.into(),
                min: 8,
            });
        }
        let code = r.i32()?;
        match code {
            SSL_REQUEST_CODE => {
                r.finish()?;
                Ok(StartupPacket::SslRequest)
            }
            GSSENC_REQUEST_CODE => {
                r.finish()?;
                Ok(StartupPacket::GssEncRequest)
            }
            CANCEL_REQUEST_CODE => {
                let mut r = r.within("CancelRequest");
                let process_id = r.i32()?;
                let secret_key = r.rest();
                if secret_key.len() < 4 || secret_key.len() > 256 {
                    return Err(ProtocolError::InvalidValue {
                        what: "CancelRequest secret key length",
                        value: secret_key.len() as i64,
                    });
                }
                Ok(StartupPacket::CancelRequest {
                    process_id,
                    secret_key,
                })
            }
            _ => {
                let major = (code as u32 >> 16) as u16;
                let minor = (code as u32 & 0xffff) as u16;
                if major != 3 {
                    return Err(ProtocolError::UnsupportedProtocol { major, minor });
                }
                let params = r.rest();
                validate_startup_params(params)?;
                Ok(StartupPacket::Startup(StartupMessage {
                    major,
                    minor,
                    params,
                }))
            }
        }
    }
}

fn validate_startup_params(params: &[u8]) -> Result<(), ProtocolError> {
    let mut r = Reader::new(params, "StartupMessage parameter");
    loop {
        let name = r.cstr()?;
        if name.is_empty() {
            return r.finish();
        }
        r.cstr()?;
    }
}

/// A bounds-checked cursor over one message body. Every read names the field
/// it was reading in its error, and none can panic.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Self { buf, what }
    }

    /// Same position, reporting errors under another field name.
    pub(crate) fn within(self, what: &'static str) -> Self {
        Self {
            buf: self.buf,
            what,
        }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], ProtocolError> {
        if n > self.buf.len() {
            return Err(ProtocolError::Truncated {
                what: self.what,
                needed: n,
                available: self.buf.len(),
            });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ProtocolError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, ProtocolError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn i16(&mut self) -> Result<i16, ProtocolError> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    pub(crate) fn i32(&mut self) -> Result<i32, ProtocolError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, ProtocolError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// A count word that must be non-negative.
    pub(crate) fn count16(&mut self) -> Result<usize, ProtocolError> {
        let n = self.i16()?;
        usize::try_from(n).map_err(|_| ProtocolError::InvalidValue {
            what: self.what,
            value: n.into(),
        })
    }

    /// A NUL-terminated UTF-8 string (terminator consumed, not returned).
    pub(crate) fn cstr(&mut self) -> Result<&'a str, ProtocolError> {
        let Some(nul) = memchr::memchr(0, self.buf) else {
            return Err(ProtocolError::MissingNul { what: self.what });
        };
        let s = std::str::from_utf8(&self.buf[..nul])
            .map_err(|_| ProtocolError::InvalidUtf8 { what: self.what })?;
        self.buf = &self.buf[nul + 1..];
        Ok(s)
    }

    /// A length-prefixed value: `-1` is NULL, other negatives are invalid.
    pub(crate) fn value(&mut self) -> Result<Option<&'a [u8]>, ProtocolError> {
        let len = self.i32()?;
        match len {
            -1 => Ok(None),
            n if n < 0 => Err(ProtocolError::InvalidValue {
                what: self.what,
                value: n.into(),
            }),
            n => self.bytes(n as usize).map(Some),
        }
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    pub(crate) fn finish(&self) -> Result<(), ProtocolError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(ProtocolError::TrailingBytes {
                what: self.what,
                extra: self.buf.len(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn startup(params: &[(&str, &str)], version: i32) -> Vec<u8> {
        let mut body = version.to_be_bytes().to_vec();
        for (k, v) in params {
            body.extend_from_slice(k.as_bytes());
            body.push(0);
            body.extend_from_slice(v.as_bytes());
            body.push(0);
        }
        body.push(0);
        let mut out = ((body.len() + 4) as i32).to_be_bytes().to_vec();
        out.extend(body);
        out
    }

    #[test]
    fn frame_waits_for_header_and_body() {
        let msg = [b'Q', 0, 0, 0, 6, b'x', 0];
        assert_eq!(Frame::parse(&msg[..3], 100), Ok(None));
        assert_eq!(Frame::parse(&msg[..6], 100), Ok(None));
        let frame = Frame::parse(&msg, 100).unwrap().unwrap();
        assert_eq!(frame.tag(), b'Q');
        assert_eq!(frame.body(), b"x\0");
        assert_eq!(frame.len(), 7);
    }

    #[test]
    fn frame_rejects_short_negative_and_huge_lengths_from_the_header_alone() {
        assert!(matches!(
            Frame::parse(&[b'Q', 0, 0, 0, 3], 100),
            Err(ProtocolError::InvalidLength { len: 3, .. })
        ));
        assert!(matches!(
            Frame::parse(&[b'Q', 0xff, 0xff, 0xff, 0xff], 100),
            Err(ProtocolError::InvalidLength { len: -1, .. })
        ));
        assert_eq!(
            Frame::parse(&[b'D', 0x7f, 0xff, 0xff, 0xff], 1000),
            Err(ProtocolError::TooLarge {
                what: "message",
                len: i32::MAX as usize,
                max: 1000
            })
        );
    }

    #[test]
    fn startup_message_params_are_kept_in_order() {
        let packet = startup(
            &[("user", "alice"), ("database", "pg-prod"), ("x", "")],
            PROTOCOL_3_0,
        );
        let StartupPacket::Startup(msg) = StartupPacket::decode(&packet).unwrap() else {
            panic!("not a startup message")
        };
        assert_eq!((msg.major, msg.minor), (3, 0));
        assert_eq!(
            msg.params().collect::<Vec<_>>(),
            [("user", "alice"), ("database", "pg-prod"), ("x", "")]
        );
        assert_eq!(msg.param("database"), Some("pg-prod"));
    }

    #[test]
    fn startup_packet_errors_are_precise() {
        let mut packet = startup(&[("user", "alice")], PROTOCOL_3_0);
        // Drop the final terminator: the last string now lacks its NUL... no,
        // the value keeps its NUL but the list terminator is missing.
        packet.pop();
        let len = packet.len() as i32;
        packet[..4].copy_from_slice(&len.to_be_bytes());
        assert_eq!(
            StartupPacket::decode(&packet),
            Err(ProtocolError::MissingNul {
                what: "StartupMessage parameter"
            })
        );

        let bad_utf8 = startup(&[("user", "\u{e9}")], PROTOCOL_3_0);
        let mut bad_utf8 = bad_utf8.clone();
        let pos = bad_utf8.iter().position(|&b| b == 0xc3).unwrap();
        bad_utf8[pos] = 0xff;
        assert_eq!(
            StartupPacket::decode(&bad_utf8),
            Err(ProtocolError::InvalidUtf8 {
                what: "StartupMessage parameter"
            })
        );

        let v2 = startup(&[], 2 << 16);
        assert_eq!(
            StartupPacket::decode(&v2),
            Err(ProtocolError::UnsupportedProtocol { major: 2, minor: 0 })
        );
    }

    #[test]
    fn startup_packet_length_is_validated_before_reading() {
        assert!(startup_packet_len(&[0, 0, 0], 10).unwrap().is_none());
        assert!(matches!(
            startup_packet_len(&[0, 0, 0, 7], 10_240),
            Err(ProtocolError::InvalidLength { len: 7, .. })
        ));
        assert!(matches!(
            startup_packet_len(&[0x7f, 0, 0, 0], 10_240),
            Err(ProtocolError::TooLarge { .. })
        ));
        assert_eq!(startup_packet_len(&[0, 0, 0, 8], 10_240), Ok(Some(8)));
    }

    #[test]
    fn special_requests_decode() {
        let ssl = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
        assert_eq!(StartupPacket::decode(&ssl), Ok(StartupPacket::SslRequest));
        let mut cancel = vec![0, 0, 0, 16];
        cancel.extend(CANCEL_REQUEST_CODE.to_be_bytes());
        cancel.extend(42i32.to_be_bytes());
        cancel.extend([1, 2, 3, 4]);
        assert_eq!(
            StartupPacket::decode(&cancel),
            Ok(StartupPacket::CancelRequest {
                process_id: 42,
                secret_key: &[1, 2, 3, 4]
            })
        );
        // SSLRequest with trailing bytes.
        let mut long_ssl = vec![0, 0, 0, 9, 0x04, 0xd2, 0x16, 0x2f, 0];
        assert!(matches!(
            StartupPacket::decode(&long_ssl),
            Err(ProtocolError::TrailingBytes { .. })
        ));
        long_ssl[3] = 20; // length disagrees with the packet
        assert!(matches!(
            StartupPacket::decode(&long_ssl),
            Err(ProtocolError::InvalidLength { .. })
        ));
    }
}
