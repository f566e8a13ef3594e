//! Messages a server (backend) sends: typed, borrowed views decoded from a
//! [`Frame`], and encoders for everything the proxy sends a client itself
//! (authentication, errors, the ready-state, rebuilt rows).
//!
//! [`DataRow`] is the hot path of masking: its fields are handed out as slices
//! of the received frame, and [`DataRowWriter`] rebuilds a row into a reusable
//! buffer when a field is replaced.

use bytes::{BufMut, BytesMut};

use crate::codec::{Frame, Reader};
use crate::error::{PgError, ProtocolError};
use crate::frontend::{Values, put_cstr, put_frame};

/// Backend message type bytes.
pub mod tag {
    /// Authentication request or result.
    pub const AUTHENTICATION: u8 = b'R';
    /// Run-time parameter report.
    pub const PARAMETER_STATUS: u8 = b'S';
    /// Cancellation key.
    pub const BACKEND_KEY_DATA: u8 = b'K';
    /// Ready for a new query.
    pub const READY_FOR_QUERY: u8 = b'Z';
    /// Result column descriptions.
    pub const ROW_DESCRIPTION: u8 = b'T';
    /// One result row.
    pub const DATA_ROW: u8 = b'D';
    /// A statement finished.
    pub const COMMAND_COMPLETE: u8 = b'C';
    /// The query string was empty.
    pub const EMPTY_QUERY_RESPONSE: u8 = b'I';
    /// An error.
    pub const ERROR_RESPONSE: u8 = b'E';
    /// A notice (warning, RAISE NOTICE...).
    pub const NOTICE_RESPONSE: u8 = b'N';
    /// LISTEN/NOTIFY notification.
    pub const NOTIFICATION_RESPONSE: u8 = b'A';
    /// Parse done.
    pub const PARSE_COMPLETE: u8 = b'1';
    /// Bind done.
    pub const BIND_COMPLETE: u8 = b'2';
    /// Close done.
    pub const CLOSE_COMPLETE: u8 = b'3';
    /// The described statement returns no rows.
    pub const NO_DATA: u8 = b'n';
    /// Statement parameter types.
    pub const PARAMETER_DESCRIPTION: u8 = b't';
    /// Execute hit its row limit.
    pub const PORTAL_SUSPENDED: u8 = b's';
    /// COPY FROM STDIN starts.
    pub const COPY_IN_RESPONSE: u8 = b'G';
    /// COPY TO STDOUT starts.
    pub const COPY_OUT_RESPONSE: u8 = b'H';
    /// Bidirectional copy (replication) starts.
    pub const COPY_BOTH_RESPONSE: u8 = b'W';
    /// COPY data.
    pub const COPY_DATA: u8 = b'd';
    /// COPY finished.
    pub const COPY_DONE: u8 = b'c';
    /// Fast-path function result.
    pub const FUNCTION_CALL_RESPONSE: u8 = b'V';
    /// The server supports an older minor protocol version.
    pub const NEGOTIATE_PROTOCOL_VERSION: u8 = b'v';
}

/// Transaction status reported by ReadyForQuery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TransactionStatus {
    /// `I`: not in a transaction block.
    #[default]
    Idle,
    /// `T`: in a transaction block.
    InTransaction,
    /// `E`: in a failed transaction block; statements are refused until
    /// ROLLBACK.
    Failed,
}

impl TransactionStatus {
    /// The status byte on the wire.
    pub fn as_byte(self) -> u8 {
        match self {
            TransactionStatus::Idle => b'I',
            TransactionStatus::InTransaction => b'T',
            TransactionStatus::Failed => b'E',
        }
    }
}

/// An authentication request or result (`R` messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authentication<'a> {
    /// Authentication succeeded.
    Ok,
    /// Send the password in clear.
    CleartextPassword,
    /// Send `md5(md5(password + user) + salt)`.
    Md5Password {
        /// The salt.
        salt: [u8; 4],
    },
    /// Start SASL with one of these mechanisms.
    Sasl(Mechanisms<'a>),
    /// SASL challenge.
    SaslContinue(&'a [u8]),
    /// SASL outcome (server signature).
    SaslFinal(&'a [u8]),
    /// A method the proxy does not speak (Kerberos, GSS, SSPI...), by code.
    Unsupported(i32),
}

/// A NUL-terminated list of SASL mechanism names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mechanisms<'a>(&'a [u8]);

impl<'a> Mechanisms<'a> {
    /// The mechanism names.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        let mut r = Reader::new(self.0, "SASL mechanism");
        std::iter::from_fn(move || r.cstr().ok().filter(|s| !s.is_empty()))
    }
}

/// Error or notice fields: `(code, value)` pairs such as `('C', "42501")`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoticeFields<'a>(&'a [u8]);

impl<'a> NoticeFields<'a> {
    fn decode(body: &'a [u8], what: &'static str) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(body, what);
        loop {
            let code = r.u8()?;
            if code == 0 {
                r.finish()?;
                return Ok(NoticeFields(body));
            }
            r.cstr()?;
        }
    }

    /// All fields in order.
    pub fn iter(&self) -> impl Iterator<Item = (u8, &'a str)> + 'a {
        let mut r = Reader::new(self.0, "notice field");
        std::iter::from_fn(move || {
            let code = r.u8().ok().filter(|&c| c != 0)?;
            Some((code, r.cstr().ok()?))
        })
    }

    /// One field by its code (`C` SQLSTATE, `M` message, `S` severity...).
    pub fn get(&self, code: u8) -> Option<&'a str> {
        self.iter().find(|(c, _)| *c == code).map(|(_, v)| v)
    }

    /// The SQLSTATE (`C`).
    pub fn code(&self) -> Option<&'a str> {
        self.get(b'C')
    }

    /// The primary message (`M`).
    pub fn message(&self) -> Option<&'a str> {
        self.get(b'M')
    }

    /// The non-localised severity (`V`), falling back to `S`.
    pub fn severity(&self) -> Option<&'a str> {
        self.get(b'V').or_else(|| self.get(b'S'))
    }
}

/// One column of a RowDescription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldDescription<'a> {
    /// Column name as the client will see it.
    pub name: &'a str,
    /// OID of the source table, 0 if the column is computed.
    pub table_oid: u32,
    /// Attribute number in the source table, 0 if computed.
    pub column_id: i16,
    /// OID of the data type.
    pub type_oid: u32,
    /// Type size (negative = variable).
    pub type_size: i16,
    /// Type modifier.
    pub type_modifier: i32,
    /// Whether values are sent in binary.
    pub binary: bool,
}

/// The columns of a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowDescription<'a> {
    count: usize,
    raw: &'a [u8],
}

impl<'a> RowDescription<'a> {
    fn decode(body: &'a [u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(body, "RowDescription");
        let count = r.count16()?;
        let raw = r.clone().rest();
        for _ in 0..count {
            read_field(&mut r)?;
        }
        r.finish()?;
        Ok(Self { count, raw })
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True for a description of zero columns.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The columns in order.
    pub fn fields(&self) -> impl Iterator<Item = FieldDescription<'a>> + 'a {
        let mut r = Reader::new(self.raw, "RowDescription field");
        let mut left = self.count;
        std::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            left -= 1;
            read_field(&mut r).ok()
        })
    }
}

fn read_field<'a>(r: &mut Reader<'a>) -> Result<FieldDescription<'a>, ProtocolError> {
    let name = r.cstr()?;
    let table_oid = r.u32()?;
    let column_id = r.i16()?;
    let type_oid = r.u32()?;
    let type_size = r.i16()?;
    let type_modifier = r.i32()?;
    let format = r.i16()?;
    if format != 0 && format != 1 {
        return Err(ProtocolError::InvalidValue {
            what: "RowDescription format code",
            value: format.into(),
        });
    }
    Ok(FieldDescription {
        name,
        table_oid,
        column_id,
        type_oid,
        type_size,
        type_modifier,
        binary: format == 1,
    })
}

/// One result row: its values as slices of the received frame (the same
/// count-prefixed list of length-prefixed values as Bind's parameters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataRow<'a>(Values<'a>);

impl<'a> DataRow<'a> {
    /// Decodes a DataRow body, validating every field length once.
    pub fn decode(body: &'a [u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(body, "DataRow");
        let values = Values::decode(&mut r, "DataRow field")?;
        r.finish()?;
        Ok(Self(values))
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for a row of zero columns.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The values in column order, `None` for SQL NULL. Allocation-free.
    pub fn fields(&self) -> impl Iterator<Item = Option<&'a [u8]>> + 'a {
        self.0.iter()
    }
}

/// Builds a DataRow into a caller-owned buffer, so a masking stage can reuse
/// one buffer for every row it rewrites.
#[derive(Debug)]
pub struct DataRowWriter<'b> {
    out: &'b mut BytesMut,
    start: usize,
    count: u16,
}

impl<'b> DataRowWriter<'b> {
    /// Starts a row at the end of `out`.
    pub fn new(out: &'b mut BytesMut) -> Self {
        let start = out.len();
        out.put_u8(tag::DATA_ROW);
        out.put_i32(0);
        out.put_i16(0);
        Self {
            out,
            start,
            count: 0,
        }
    }

    /// Appends one value (`None` = NULL).
    pub fn push(&mut self, value: Option<&[u8]>) -> Result<(), ProtocolError> {
        if self.count == i16::MAX as u16 {
            return Err(ProtocolError::TooLarge {
                what: "DataRow field count",
                len: usize::from(self.count) + 1,
                max: i16::MAX as usize,
            });
        }
        match value {
            None => self.out.put_i32(-1),
            Some(v) => {
                let len = i32::try_from(v.len()).map_err(|_| ProtocolError::TooLarge {
                    what: "DataRow field",
                    len: v.len(),
                    max: i32::MAX as usize,
                })?;
                self.out.put_i32(len);
                self.out.put_slice(v);
            }
        }
        self.count += 1;
        Ok(())
    }

    /// Patches the length and field count; returns the frame's length.
    pub fn finish(self) -> Result<usize, ProtocolError> {
        let total = self.out.len() - self.start;
        let len = i32::try_from(total - 1).map_err(|_| ProtocolError::TooLarge {
            what: "DataRow",
            len: total - 1,
            max: i32::MAX as usize,
        })?;
        self.out[self.start + 1..self.start + 5].copy_from_slice(&len.to_be_bytes());
        self.out[self.start + 5..self.start + 7].copy_from_slice(&self.count.to_be_bytes());
        Ok(total)
    }
}

/// COPY format description from CopyIn/CopyOut/CopyBothResponse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyResponse<'a> {
    /// Whether the overall format is binary.
    pub binary: bool,
    raw_formats: &'a [u8],
}

impl<'a> CopyResponse<'a> {
    fn decode(body: &'a [u8], what: &'static str) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(body, what);
        let overall = r.u8()?;
        if overall > 1 {
            return Err(ProtocolError::InvalidValue {
                what,
                value: overall.into(),
            });
        }
        let n = r.count16()?;
        let raw_formats = r.bytes(n * 2)?;
        r.finish()?;
        Ok(Self {
            binary: overall == 1,
            raw_formats,
        })
    }

    /// Per-column formats: `true` means binary.
    pub fn column_formats(&self) -> impl Iterator<Item = bool> + 'a {
        self.raw_formats.chunks_exact(2).map(|p| p[1] == 1)
    }
}

/// A typed view of one backend message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendMessage<'a> {
    /// Authentication request or result.
    Authentication(Authentication<'a>),
    /// A run-time parameter's current value.
    ParameterStatus {
        /// Parameter name.
        name: &'a str,
        /// Its value.
        value: &'a str,
    },
    /// The key a client needs to cancel a statement of this session.
    BackendKeyData {
        /// Backend process id.
        process_id: i32,
        /// Secret key (4 bytes in protocol 3.0).
        secret_key: &'a [u8],
    },
    /// Ready for the next query.
    ReadyForQuery(TransactionStatus),
    /// Result columns.
    RowDescription(RowDescription<'a>),
    /// One row.
    DataRow(DataRow<'a>),
    /// Statement finished, with its tag (`SELECT 3`).
    CommandComplete {
        /// The command tag.
        tag: &'a str,
    },
    /// Empty query string.
    EmptyQueryResponse,
    /// An error.
    ErrorResponse(NoticeFields<'a>),
    /// A notice.
    NoticeResponse(NoticeFields<'a>),
    /// A NOTIFY delivered to this session.
    NotificationResponse {
        /// Notifying backend's process id.
        process_id: i32,
        /// Channel name.
        channel: &'a str,
        /// Payload.
        payload: &'a str,
    },
    /// Parse done.
    ParseComplete,
    /// Bind done.
    BindComplete,
    /// Close done.
    CloseComplete,
    /// No rows will be returned.
    NoData,
    /// Parameter types of a described statement.
    ParameterDescription {
        /// Type OIDs as raw big-endian words; see [`oids`].
        types: &'a [u8],
    },
    /// Execute reached its row limit.
    PortalSuspended,
    /// COPY FROM STDIN starts.
    CopyInResponse(CopyResponse<'a>),
    /// COPY TO STDOUT starts.
    CopyOutResponse(CopyResponse<'a>),
    /// Bidirectional copy starts.
    CopyBothResponse(CopyResponse<'a>),
    /// COPY data.
    CopyData(&'a [u8]),
    /// COPY done.
    CopyDone,
    /// Fast-path function result (`None` = NULL).
    FunctionCallResponse(Option<&'a [u8]>),
    /// The server speaks an older minor version / lacks some options.
    NegotiateProtocolVersion {
        /// Newest minor version the server supports.
        newest_minor: i32,
        /// Number of unrecognised `_pq_.` options it lists.
        unrecognized: usize,
    },
}

/// Iterates the big-endian OIDs of a ParameterDescription.
pub fn oids(types: &[u8]) -> impl Iterator<Item = u32> + '_ {
    types
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
}

impl<'a> BackendMessage<'a> {
    /// Decodes a frame received from a server.
    pub fn decode(frame: Frame<'a>) -> Result<Self, ProtocolError> {
        let body = frame.body();
        let msg = match frame.tag() {
            tag::AUTHENTICATION => BackendMessage::Authentication(decode_auth(body)?),
            tag::PARAMETER_STATUS => {
                let mut r = Reader::new(body, "ParameterStatus");
                let name = r.cstr()?;
                let value = r.cstr()?;
                r.finish()?;
                BackendMessage::ParameterStatus { name, value }
            }
            tag::BACKEND_KEY_DATA => {
                let mut r = Reader::new(body, "BackendKeyData");
                let process_id = r.i32()?;
                let secret_key = r.rest();
                if secret_key.len() < 4 || secret_key.len() > 256 {
                    return Err(ProtocolError::InvalidValue {
                        what: "BackendKeyData secret key length",
                        value: secret_key.len() as i64,
                    });
                }
                BackendMessage::BackendKeyData {
                    process_id,
                    secret_key,
                }
            }
            tag::READY_FOR_QUERY => {
                let mut r = Reader::new(body, "ReadyForQuery");
                let status = match r.u8()? {
                    b'I' => TransactionStatus::Idle,
                    b'T' => TransactionStatus::InTransaction,
                    b'E' => TransactionStatus::Failed,
                    other => {
                        return Err(ProtocolError::InvalidValue {
                            what: "ReadyForQuery status",
                            value: other.into(),
                        });
                    }
                };
                r.finish()?;
                BackendMessage::ReadyForQuery(status)
            }
            tag::ROW_DESCRIPTION => BackendMessage::RowDescription(RowDescription::decode(body)?),
            tag::DATA_ROW => BackendMessage::DataRow(DataRow::decode(body)?),
            tag::COMMAND_COMPLETE => {
                let mut r = Reader::new(body, "CommandComplete");
                let tag = r.cstr()?;
                r.finish()?;
                BackendMessage::CommandComplete { tag }
            }
            tag::EMPTY_QUERY_RESPONSE => empty(
                body,
                "EmptyQueryResponse",
                BackendMessage::EmptyQueryResponse,
            )?,
            tag::ERROR_RESPONSE => {
                BackendMessage::ErrorResponse(NoticeFields::decode(body, "ErrorResponse")?)
            }
            tag::NOTICE_RESPONSE => {
                BackendMessage::NoticeResponse(NoticeFields::decode(body, "NoticeResponse")?)
            }
            tag::NOTIFICATION_RESPONSE => {
                let mut r = Reader::new(body, "NotificationResponse");
                let process_id = r.i32()?;
                let channel = r.cstr()?;
                let payload = r.cstr()?;
                r.finish()?;
                BackendMessage::NotificationResponse {
                    process_id,
                    channel,
                    payload,
                }
            }
            tag::PARSE_COMPLETE => empty(body, "ParseComplete", BackendMessage::ParseComplete)?,
            tag::BIND_COMPLETE => empty(body, "BindComplete", BackendMessage::BindComplete)?,
            tag::CLOSE_COMPLETE => empty(body, "CloseComplete", BackendMessage::CloseComplete)?,
            tag::NO_DATA => empty(body, "NoData", BackendMessage::NoData)?,
            tag::PORTAL_SUSPENDED => {
                empty(body, "PortalSuspended", BackendMessage::PortalSuspended)?
            }
            tag::PARAMETER_DESCRIPTION => {
                let mut r = Reader::new(body, "ParameterDescription");
                let n = r.count16()?;
                let types = r.bytes(n * 4)?;
                r.finish()?;
                BackendMessage::ParameterDescription { types }
            }
            tag::COPY_IN_RESPONSE => {
                BackendMessage::CopyInResponse(CopyResponse::decode(body, "CopyInResponse")?)
            }
            tag::COPY_OUT_RESPONSE => {
                BackendMessage::CopyOutResponse(CopyResponse::decode(body, "CopyOutResponse")?)
            }
            tag::COPY_BOTH_RESPONSE => {
                BackendMessage::CopyBothResponse(CopyResponse::decode(body, "CopyBothResponse")?)
            }
            tag::COPY_DATA => BackendMessage::CopyData(body),
            tag::COPY_DONE => empty(body, "CopyDone", BackendMessage::CopyDone)?,
            tag::FUNCTION_CALL_RESPONSE => {
                let mut r = Reader::new(body, "FunctionCallResponse");
                let value = r.value()?;
                r.finish()?;
                BackendMessage::FunctionCallResponse(value)
            }
            tag::NEGOTIATE_PROTOCOL_VERSION => {
                let mut r = Reader::new(body, "NegotiateProtocolVersion");
                let newest_minor = r.i32()?;
                let n = r.i32()?;
                let unrecognized = usize::try_from(n).map_err(|_| ProtocolError::InvalidValue {
                    what: "NegotiateProtocolVersion option count",
                    value: n.into(),
                })?;
                // Each option is at least its NUL: a count above the body size
                // is a lie, refused before looping on it.
                if unrecognized > r.remaining() {
                    return Err(ProtocolError::Truncated {
                        what: "NegotiateProtocolVersion options",
                        needed: unrecognized,
                        available: r.remaining(),
                    });
                }
                for _ in 0..unrecognized {
                    r.cstr()?;
                }
                r.finish()?;
                BackendMessage::NegotiateProtocolVersion {
                    newest_minor,
                    unrecognized,
                }
            }
            other => {
                return Err(ProtocolError::UnknownMessage {
                    direction: "backend",
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
    msg: BackendMessage<'a>,
) -> Result<BackendMessage<'a>, ProtocolError> {
    Reader::new(body, what).finish().map(|()| msg)
}

fn decode_auth(body: &[u8]) -> Result<Authentication<'_>, ProtocolError> {
    let mut r = Reader::new(body, "Authentication");
    let code = r.i32()?;
    let auth = match code {
        0 => Authentication::Ok,
        3 => Authentication::CleartextPassword,
        5 => {
            let salt = r.bytes(4)?;
            Authentication::Md5Password {
                salt: [salt[0], salt[1], salt[2], salt[3]],
            }
        }
        10 => {
            let raw = r.rest();
            let mut check = Reader::new(raw, "AuthenticationSASL mechanisms");
            loop {
                if check.cstr()?.is_empty() {
                    check.finish()?;
                    break;
                }
            }
            Authentication::Sasl(Mechanisms(raw))
        }
        11 => Authentication::SaslContinue(r.rest()),
        12 => Authentication::SaslFinal(r.rest()),
        other => {
            r.rest();
            Authentication::Unsupported(other)
        }
    };
    r.finish()?;
    Ok(auth)
}

/// Whether `tag` is a message type a server may send; anything else from the
/// upstream ends the session rather than reaching the client.
pub fn is_known_tag(t: u8) -> bool {
    matches!(
        t,
        tag::AUTHENTICATION
            | tag::PARAMETER_STATUS
            | tag::BACKEND_KEY_DATA
            | tag::READY_FOR_QUERY
            | tag::ROW_DESCRIPTION
            | tag::DATA_ROW
            | tag::COMMAND_COMPLETE
            | tag::EMPTY_QUERY_RESPONSE
            | tag::ERROR_RESPONSE
            | tag::NOTICE_RESPONSE
            | tag::NOTIFICATION_RESPONSE
            | tag::PARSE_COMPLETE
            | tag::BIND_COMPLETE
            | tag::CLOSE_COMPLETE
            | tag::NO_DATA
            | tag::PARAMETER_DESCRIPTION
            | tag::PORTAL_SUSPENDED
            | tag::COPY_IN_RESPONSE
            | tag::COPY_OUT_RESPONSE
            | tag::COPY_BOTH_RESPONSE
            | tag::COPY_DATA
            | tag::COPY_DONE
            | tag::FUNCTION_CALL_RESPONSE
            | tag::NEGOTIATE_PROTOCOL_VERSION
    )
}

/// Encoders for the backend messages the proxy sends a client itself.
pub mod encode {
    use super::*;

    fn auth(out: &mut BytesMut, code: i32) {
        put_frame(out, tag::AUTHENTICATION, |o| o.put_i32(code));
    }

    /// AuthenticationOk.
    pub fn authentication_ok(out: &mut BytesMut) {
        auth(out, 0);
    }

    /// AuthenticationCleartextPassword: ask for the Periscope token.
    pub fn authentication_cleartext_password(out: &mut BytesMut) {
        auth(out, 3);
    }

    /// ParameterStatus.
    pub fn parameter_status(out: &mut BytesMut, name: &str, value: &str) {
        put_frame(out, tag::PARAMETER_STATUS, |o| {
            put_cstr(o, name);
            put_cstr(o, value);
        });
    }

    /// BackendKeyData.
    pub fn backend_key_data(out: &mut BytesMut, process_id: i32, secret_key: &[u8]) {
        put_frame(out, tag::BACKEND_KEY_DATA, |o| {
            o.put_i32(process_id);
            o.put_slice(secret_key);
        });
    }

    /// ReadyForQuery.
    pub fn ready_for_query(out: &mut BytesMut, status: TransactionStatus) {
        put_frame(out, tag::READY_FOR_QUERY, |o| o.put_u8(status.as_byte()));
    }

    /// ErrorResponse (or, for FATAL, the last message of a session), with
    /// severity, SQLSTATE, message and optional detail and hint.
    pub fn error_response(out: &mut BytesMut, error: &PgError) {
        put_notice(out, tag::ERROR_RESPONSE, error);
    }

    /// NoticeResponse with the same fields as an error (severity from
    /// `error`, usually a warning text the gateway wants shown).
    pub fn notice_response(out: &mut BytesMut, notice: &PgError) {
        put_notice(out, tag::NOTICE_RESPONSE, notice);
    }

    fn put_notice(out: &mut BytesMut, t: u8, e: &PgError) {
        put_frame(out, t, |o| {
            for (code, value) in [
                (b'S', Some(e.severity.as_str())),
                (b'V', Some(e.severity.as_str())),
                (b'C', Some(e.code)),
                (b'M', Some(e.message.as_str())),
                (b'D', e.detail.as_deref()),
                (b'H', e.hint.as_deref()),
            ] {
                if let Some(value) = value {
                    o.put_u8(code);
                    put_cstr(o, value);
                }
            }
            o.put_u8(0);
        });
    }

    /// RowDescription from field descriptions (e.g. a rewritten one whose
    /// masked columns became text).
    pub fn row_description<'f>(
        out: &mut BytesMut,
        fields: impl ExactSizeIterator<Item = FieldDescription<'f>>,
    ) -> Result<(), ProtocolError> {
        let n = i16::try_from(fields.len()).map_err(|_| ProtocolError::TooLarge {
            what: "RowDescription field count",
            len: fields.len(),
            max: i16::MAX as usize,
        })?;
        put_frame(out, tag::ROW_DESCRIPTION, |o| {
            o.put_i16(n);
            for f in fields {
                put_cstr(o, f.name);
                o.put_u32(f.table_oid);
                o.put_i16(f.column_id);
                o.put_u32(f.type_oid);
                o.put_i16(f.type_size);
                o.put_i32(f.type_modifier);
                o.put_i16(i16::from(f.binary));
            }
        });
        Ok(())
    }

    /// CommandComplete.
    pub fn command_complete(out: &mut BytesMut, command_tag: &str) {
        put_frame(out, tag::COMMAND_COMPLETE, |o| put_cstr(o, command_tag));
    }

    /// EmptyQueryResponse.
    pub fn empty_query_response(out: &mut BytesMut) {
        put_frame(out, tag::EMPTY_QUERY_RESPONSE, |_| {});
    }

    /// NegotiateProtocolVersion: the proxy speaks minor version 0 and none of
    /// the listed `_pq_.` options.
    pub fn negotiate_protocol_version(out: &mut BytesMut, newest_minor: i32, options: &[&str]) {
        put_frame(out, tag::NEGOTIATE_PROTOCOL_VERSION, |o| {
            o.put_i32(newest_minor);
            o.put_i32(i32::try_from(options.len()).unwrap_or(i32::MAX));
            for option in options {
                put_cstr(o, option);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::sqlstate;

    fn decode(bytes: &[u8]) -> Result<BackendMessage<'_>, ProtocolError> {
        let frame = Frame::parse(bytes, 1 << 20)?.expect("complete frame");
        BackendMessage::decode(frame)
    }

    #[test]
    fn data_row_fields_are_slices_and_rebuild_round_trips() {
        let mut out = BytesMut::new();
        let mut w = DataRowWriter::new(&mut out);
        w.push(Some(b"alice@example.com")).unwrap();
        w.push(None).unwrap();
        w.push(Some(b"")).unwrap();
        let len = w.finish().unwrap();
        assert_eq!(len, out.len());
        let BackendMessage::DataRow(row) = decode(&out).unwrap() else {
            panic!("not a row")
        };
        let fields: Vec<_> = row.fields().collect();
        assert_eq!(
            fields,
            [Some(&b"alice@example.com"[..]), None, Some(&b""[..])]
        );
        // The first field points into the frame: no copy was made.
        let field_ptr = fields[0].unwrap().as_ptr();
        assert!(out.as_ptr_range().contains(&field_ptr));

        // Mask the first field, keep the others.
        let mut rebuilt = BytesMut::new();
        let mut w = DataRowWriter::new(&mut rebuilt);
        for (i, f) in row.fields().enumerate() {
            w.push(if i == 0 { Some(b"[email]") } else { f }).unwrap();
        }
        w.finish().unwrap();
        let BackendMessage::DataRow(row) = decode(&rebuilt).unwrap() else {
            panic!("not a row")
        };
        assert_eq!(row.fields().next(), Some(Some(&b"[email]"[..])));
        assert_eq!(row.len(), 3);
    }

    #[test]
    fn data_row_with_bad_lengths_is_refused() {
        // Two fields announced, one present.
        let mut body = 2i16.to_be_bytes().to_vec();
        body.extend(1i32.to_be_bytes());
        body.push(b'x');
        let mut frame = vec![b'D'];
        frame.extend(((body.len() + 4) as i32).to_be_bytes());
        frame.extend(&body);
        assert!(matches!(
            decode(&frame),
            Err(ProtocolError::Truncated {
                what: "DataRow field",
                ..
            })
        ));
        // A field length claiming 2 GiB inside a tiny frame.
        let mut body = 1i16.to_be_bytes().to_vec();
        body.extend(i32::MAX.to_be_bytes());
        let mut frame = vec![b'D'];
        frame.extend(((body.len() + 4) as i32).to_be_bytes());
        frame.extend(&body);
        assert!(matches!(
            decode(&frame),
            Err(ProtocolError::Truncated { .. })
        ));
        // Body shorter than the field count.
        assert!(matches!(
            decode(&[b'D', 0, 0, 0, 4]),
            Err(ProtocolError::Truncated {
                what: "DataRow",
                ..
            })
        ));
    }

    #[test]
    fn error_response_encodes_every_field() {
        let mut out = BytesMut::new();
        let err = PgError::error(sqlstate::INSUFFICIENT_PRIVILEGE, "writes are shielded")
            .with_detail("shield: write")
            .with_hint("periscope request pg-prod --lift write");
        encode::error_response(&mut out, &err);
        let BackendMessage::ErrorResponse(fields) = decode(&out).unwrap() else {
            panic!("not an error")
        };
        assert_eq!(fields.code(), Some("42501"));
        assert_eq!(fields.severity(), Some("ERROR"));
        assert_eq!(fields.message(), Some("writes are shielded"));
        assert_eq!(fields.get(b'D'), Some("shield: write"));
        assert_eq!(
            fields.get(b'H'),
            Some("periscope request pg-prod --lift write")
        );
    }

    #[test]
    fn row_description_round_trips() {
        let fields = [
            FieldDescription {
                name: "email",
                table_oid: 16384,
                column_id: 3,
                type_oid: 25,
                type_size: -1,
                type_modifier: -1,
                binary: false,
            },
            FieldDescription {
                name: "id",
                table_oid: 16384,
                column_id: 1,
                type_oid: 20,
                type_size: 8,
                type_modifier: -1,
                binary: true,
            },
        ];
        let mut out = BytesMut::new();
        encode::row_description(&mut out, fields.iter().copied()).unwrap();
        let BackendMessage::RowDescription(desc) = decode(&out).unwrap() else {
            panic!("not a row description")
        };
        assert_eq!(desc.fields().collect::<Vec<_>>(), fields);
    }

    #[test]
    fn authentication_variants() {
        let mut out = BytesMut::new();
        put_frame(&mut out, b'R', |o| {
            o.put_i32(10);
            o.put_slice(b"SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0");
        });
        let BackendMessage::Authentication(Authentication::Sasl(m)) = decode(&out).unwrap() else {
            panic!("not sasl")
        };
        assert_eq!(
            m.iter().collect::<Vec<_>>(),
            ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]
        );
        let md5 = [b'R', 0, 0, 0, 12, 0, 0, 0, 5, 1, 2, 3, 4];
        assert_eq!(
            decode(&md5),
            Ok(BackendMessage::Authentication(
                Authentication::Md5Password { salt: [1, 2, 3, 4] }
            ))
        );
        let short_md5 = [b'R', 0, 0, 0, 10, 0, 0, 0, 5, 1, 2];
        assert!(matches!(
            decode(&short_md5),
            Err(ProtocolError::Truncated { .. })
        ));
    }

    #[test]
    fn ready_for_query_status_is_validated() {
        assert_eq!(
            decode(&[b'Z', 0, 0, 0, 5, b'T']),
            Ok(BackendMessage::ReadyForQuery(
                TransactionStatus::InTransaction
            ))
        );
        assert_eq!(
            decode(&[b'Z', 0, 0, 0, 5, b'?']),
            Err(ProtocolError::InvalidValue {
                what: "ReadyForQuery status",
                value: b'?'.into()
            })
        );
    }
}
