//! The JSONL export: one JSON record per line, for offline verification.
//!
//! ```text
//! {"type":"header","format":"periscope-audit-jsonl","version":1,"key_id":"…"}   (optional, first line only)
//! {"type":"event","seq":1,"time":"…","actor":"…",…,"prev_hash":"…","hash":"…"}
//! {"type":"event","seq":2,…}
//! {"type":"checkpoint","seq":2,"hash":"…","time":"…","key_id":"…","signature":"…"}
//! ```
//!
//! Records are in seq order and each checkpoint comes right after the event it signs,
//! so a verifier reads the file once, front to back, holding only a few checkpoints.
//! Field order within a line does not matter; hashes are recomputed from values.

use std::io::{self, BufRead, BufWriter, Read as _, Write};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::checkpoint::Checkpoint;
use crate::event::AuditEvent;
use crate::keys::{AuditVerifierKey, KeyId};
use crate::verify::{ChainError, ChainVerifier, Start, VerifyReport};

/// The `format` a header must announce.
pub const JSONL_FORMAT: &str = "periscope-audit-jsonl";
/// The export format version this crate writes and reads.
pub const JSONL_VERSION: u32 = 1;
/// Longest line accepted (16 MiB): bounds memory when reading a hostile file, while
/// leaving far more room than any real event needs.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// The optional first line: says what the file is and, informationally, which key
/// signed its checkpoints. Not signed itself; nothing in it is relied on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JsonlHeader {
    /// Always [`JSONL_FORMAT`].
    pub format: String,
    /// Always [`JSONL_VERSION`] for files this crate writes.
    pub version: u32,
    /// Id of the key whose public half verifies the checkpoints, to help the auditor
    /// pick the right key file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<KeyId>,
}

impl JsonlHeader {
    /// The header for this crate's format and version.
    pub fn new(key_id: Option<KeyId>) -> Self {
        JsonlHeader {
            format: JSONL_FORMAT.to_owned(),
            version: JSONL_VERSION,
            key_id,
        }
    }
}

/// One line of an export.
#[derive(Clone, Debug, PartialEq)]
pub enum JsonlRecord {
    /// `{"type":"header",…}`
    Header(JsonlHeader),
    /// `{"type":"event",…}`
    Event(AuditEvent),
    /// `{"type":"checkpoint",…}`
    Checkpoint(Checkpoint),
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum RecordRef<'a> {
    Header(&'a JsonlHeader),
    Event(&'a AuditEvent),
    Checkpoint(&'a Checkpoint),
}

/// Writes an export line by line (buffered). Callers write events in seq order and
/// each checkpoint right after its event; [`write_jsonl`] does that merge for them.
#[derive(Debug)]
pub struct JsonlWriter<W: Write> {
    out: BufWriter<W>,
    wrote_record: bool,
}

impl<W: Write> JsonlWriter<W> {
    /// Starts an export into `out`.
    pub fn new(out: W) -> Self {
        JsonlWriter {
            out: BufWriter::new(out),
            wrote_record: false,
        }
    }

    /// Writes the header; only allowed before any other record.
    pub fn write_header(&mut self, header: &JsonlHeader) -> io::Result<()> {
        if self.wrote_record {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the export header must be the first line",
            ));
        }
        self.write(&RecordRef::Header(header))
    }

    /// Writes one event.
    pub fn write_event(&mut self, event: &AuditEvent) -> io::Result<()> {
        self.write(&RecordRef::Event(event))
    }

    /// Writes one checkpoint.
    pub fn write_checkpoint(&mut self, checkpoint: &Checkpoint) -> io::Result<()> {
        self.write(&RecordRef::Checkpoint(checkpoint))
    }

    /// Flushes and returns the underlying writer.
    pub fn into_inner(self) -> io::Result<W> {
        self.out
            .into_inner()
            .map_err(io::IntoInnerError::into_error)
    }

    fn write(&mut self, record: &RecordRef<'_>) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, record)?;
        self.out.write_all(b"\n")?;
        self.wrote_record = true;
        Ok(())
    }
}

/// Counts of what [`write_jsonl`] wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExportSummary {
    /// Event lines.
    pub events: u64,
    /// Checkpoint lines.
    pub checkpoints: u64,
}

/// Why an export stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Writing the output failed.
    #[error("could not write the export: {0}")]
    Io(#[from] io::Error),
    /// The event source (a store query) failed.
    #[error("could not read the events to export: {0}")]
    Source(Box<dyn std::error::Error + Send + Sync>),
}

/// Writes a complete export: the optional header, then `events` (in seq order, streamed)
/// with each checkpoint placed right after the event it signs.
///
/// Checkpoints for seqs before the first event come first (a `--since` export should
/// include the checkpoint just before its first event: it vouches for the start);
/// checkpoints past the last event come last (a verifier will report those events as
/// missing).
pub fn write_jsonl<W, I, E>(
    out: W,
    header: Option<&JsonlHeader>,
    events: I,
    checkpoints: &[Checkpoint],
) -> Result<ExportSummary, ExportError>
where
    W: Write,
    I: IntoIterator<Item = Result<AuditEvent, E>>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut sorted: Vec<&Checkpoint> = checkpoints.iter().collect();
    sorted.sort_by_key(|c| c.seq);
    let mut next_checkpoint = sorted.into_iter().peekable();
    let mut writer = JsonlWriter::new(out);
    let mut summary = ExportSummary {
        events: 0,
        checkpoints: 0,
    };
    if let Some(header) = header {
        writer.write_header(header)?;
    }
    for event in events {
        let event = event.map_err(|e| ExportError::Source(e.into()))?;
        while let Some(cp) = next_checkpoint.next_if(|c| c.seq < event.seq) {
            writer.write_checkpoint(cp)?;
            summary.checkpoints += 1;
        }
        writer.write_event(&event)?;
        summary.events += 1;
        while let Some(cp) = next_checkpoint.next_if(|c| c.seq == event.seq) {
            writer.write_checkpoint(cp)?;
            summary.checkpoints += 1;
        }
    }
    for cp in next_checkpoint {
        writer.write_checkpoint(cp)?;
        summary.checkpoints += 1;
    }
    writer.into_inner()?;
    Ok(summary)
}

/// A line of an export that cannot be read as a record; itself a verification
/// failure, since a damaged line can hide a deleted or altered event.
#[derive(Debug, thiserror::Error)]
#[error("line {line} {problem}")]
pub struct JsonlError {
    /// 1-based line number in the file.
    pub line: u64,
    /// What is wrong with it.
    pub problem: JsonlProblem,
}

/// What is wrong with a line.
#[derive(Debug, thiserror::Error)]
pub enum JsonlProblem {
    /// Reading failed.
    #[error("could not be read: {0}")]
    Io(io::Error),
    /// Longer than [`MAX_LINE_BYTES`].
    #[error("is longer than {} MiB", MAX_LINE_BYTES / (1024 * 1024))]
    TooLong,
    /// Not UTF-8.
    #[error("is not valid UTF-8")]
    NotUtf8,
    /// Blank.
    #[error("is empty, but every line must be one JSON record")]
    Empty,
    /// Not JSON, or not an object.
    #[error("is not a JSON object: {0}")]
    NotJson(String),
    /// A member appears twice in the line's object.
    #[error("{0}")]
    DuplicateKey(String),
    /// No `type` field, or one this version does not know.
    #[error("{0}")]
    Type(String),
    /// A record whose fields are missing, unknown or malformed.
    #[error("is not a valid {kind} record: {reason}")]
    Record {
        /// `event`, `checkpoint` or `header`.
        kind: &'static str,
        /// What serde objected to.
        reason: String,
    },
    /// A header after the first line.
    #[error("holds a header, which is only allowed on the first line")]
    HeaderNotFirst,
    /// A header for another format or version.
    #[error(
        "announces format {format:?} version {version}; this verifier reads {JSONL_FORMAT:?} version {JSONL_VERSION}"
    )]
    Unsupported {
        /// The announced format.
        format: String,
        /// The announced version.
        version: u32,
    },
}

/// Reads an export one line at a time, with a bounded line buffer, yielding records
/// or the first bad line (after which it yields nothing more).
#[derive(Debug)]
pub struct JsonlReader<R: BufRead> {
    input: R,
    line: u64,
    buf: Vec<u8>,
    done: bool,
}

impl<R: BufRead> JsonlReader<R> {
    /// Reads from `input` (wrap a file in a `BufReader`).
    pub fn new(input: R) -> Self {
        JsonlReader {
            input,
            line: 0,
            buf: Vec::new(),
            done: false,
        }
    }

    /// Number of lines read so far (the line of the last record returned).
    pub fn line(&self) -> u64 {
        self.line
    }

    fn fail(&mut self, problem: JsonlProblem) -> Option<Result<JsonlRecord, JsonlError>> {
        self.done = true;
        Some(Err(JsonlError {
            line: self.line,
            problem,
        }))
    }

    fn parse(&self, text: &str) -> Result<JsonlRecord, JsonlProblem> {
        // Fast path for lines as the writer spells them ("type" first): one pass
        // straight into the record. Anything else (another field order, or any error)
        // goes through the general path, which accepts exactly the same records and
        // words the errors.
        let record = match parse_type_first(text) {
            Ok(record) => record,
            Err(_) => parse_any_order(text)?,
        };
        if let JsonlRecord::Header(header) = &record {
            if self.line != 1 {
                return Err(JsonlProblem::HeaderNotFirst);
            }
            if header.format != JSONL_FORMAT || header.version != JSONL_VERSION {
                return Err(JsonlProblem::Unsupported {
                    format: header.format.clone(),
                    version: header.version,
                });
            }
        }
        Ok(record)
    }
}

/// The record kinds, as spelled in `"type"`.
#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum RecordKind {
    Header,
    Event,
    Checkpoint,
}

/// Parses a line whose first member is `"type"`, deserialising the rest of the object
/// directly into the record named by it.
fn parse_type_first(text: &str) -> Result<JsonlRecord, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let record = serde::Deserializer::deserialize_map(&mut de, TypeFirst)?;
    de.end()?;
    Ok(record)
}

struct TypeFirst;

impl<'de> serde::de::Visitor<'de> for TypeFirst {
    type Value = JsonlRecord;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object whose first member is \"type\"")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<JsonlRecord, A::Error> {
        use serde::de::Error as _;
        use serde::de::value::MapAccessDeserializer;
        match map.next_key::<std::borrow::Cow<'de, str>>()? {
            Some(key) if key == "type" => {}
            _ => return Err(A::Error::custom("\"type\" is not the first member")),
        }
        let rest = |map| MapAccessDeserializer::new(map);
        match map.next_value::<RecordKind>()? {
            RecordKind::Event => AuditEvent::deserialize(rest(map)).map(JsonlRecord::Event),
            RecordKind::Checkpoint => {
                Checkpoint::deserialize(rest(map)).map(JsonlRecord::Checkpoint)
            }
            RecordKind::Header => JsonlHeader::deserialize(rest(map)).map(JsonlRecord::Header),
        }
    }
}

/// Parses a line with its members in any order: first into a JSON object (refusing a
/// member named twice, which JSON parsers resolve differently), then into the record
/// its `"type"` names.
fn parse_any_order(text: &str) -> Result<JsonlRecord, JsonlProblem> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| JsonlProblem::NotJson(serde_reason(&e)))?;
    let Value::Object(_) = value else {
        return Err(JsonlProblem::NotJson(
            "the line is not an object".to_owned(),
        ));
    };
    let StrictObject(mut map) =
        serde_json::from_str(text).map_err(|e| JsonlProblem::DuplicateKey(serde_reason(&e)))?;
    let kind = match map.remove("type") {
        Some(Value::String(kind)) => kind,
        Some(other) => {
            return Err(JsonlProblem::Type(format!(
                "has a \"type\" that is not a string: {other}"
            )));
        }
        None => return Err(JsonlProblem::Type("has no \"type\" field".to_owned())),
    };
    let body = Value::Object(map);
    let record = |kind: &'static str, e: serde_json::Error| JsonlProblem::Record {
        kind,
        reason: serde_reason(&e),
    };
    match kind.as_str() {
        "event" => serde_json::from_value(body)
            .map(JsonlRecord::Event)
            .map_err(|e| record("event", e)),
        "checkpoint" => serde_json::from_value(body)
            .map(JsonlRecord::Checkpoint)
            .map_err(|e| record("checkpoint", e)),
        "header" => serde_json::from_value(body)
            .map(JsonlRecord::Header)
            .map_err(|e| record("header", e)),
        other => Err(JsonlProblem::Type(format!(
            "has unknown type {other:?} (expected \"event\", \"checkpoint\" or \"header\")"
        ))),
    }
}

/// A top-level JSON object whose members must have distinct names.
struct StrictObject(serde_json::Map<String, Value>);

impl<'de> Deserialize<'de> for StrictObject {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> serde::de::Visitor<'de> for Members {
            type Value = StrictObject;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut access: A,
            ) -> Result<StrictObject, A::Error> {
                let mut map = serde_json::Map::new();
                while let Some(key) = access.next_key::<String>()? {
                    if map.contains_key(&key) {
                        return Err(serde::de::Error::custom(format_args!(
                            "has the member {key:?} twice"
                        )));
                    }
                    let value = access.next_value()?;
                    map.insert(key, value);
                }
                Ok(StrictObject(map))
            }
        }
        deserializer.deserialize_map(Members)
    }
}

/// serde_json's message without its " at line 1 column N" suffix, which would be
/// confusing next to the file's own line number; the column is kept.
fn serde_reason(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rsplit_once(" at line ") {
        Some((reason, _)) if e.column() > 0 => format!("{reason} (column {})", e.column()),
        Some((reason, _)) => reason.to_owned(),
        None => text,
    }
}

impl<R: BufRead> Iterator for JsonlReader<R> {
    type Item = Result<JsonlRecord, JsonlError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        self.buf.clear();
        let limit = MAX_LINE_BYTES as u64 + 1;
        let read = (&mut self.input)
            .take(limit)
            .read_until(b'\n', &mut self.buf);
        if let Ok(0) = read {
            self.done = true;
            return None;
        }
        self.line += 1;
        if let Err(e) = read {
            return self.fail(JsonlProblem::Io(e));
        }
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
            if self.buf.last() == Some(&b'\r') {
                self.buf.pop();
            }
        } else if self.buf.len() > MAX_LINE_BYTES {
            return self.fail(JsonlProblem::TooLong);
        }
        let Ok(text) = std::str::from_utf8(&self.buf) else {
            return self.fail(JsonlProblem::NotUtf8);
        };
        if text.trim().is_empty() {
            return self.fail(JsonlProblem::Empty);
        }
        match self.parse(text) {
            Ok(record) => Some(Ok(record)),
            Err(problem) => self.fail(problem),
        }
    }
}

/// Verifies an export read from `input`, streaming: memory does not grow with the
/// file. A malformed line fails verification like any broken link.
pub fn verify_jsonl<R: BufRead>(
    input: R,
    keys: &[AuditVerifierKey],
    start: Start,
) -> Result<VerifyReport, ChainError> {
    let mut verifier = ChainVerifier::new(keys, start);
    for record in JsonlReader::new(input) {
        match record {
            Ok(JsonlRecord::Header(_)) => {}
            Ok(JsonlRecord::Event(event)) => verifier.add_event(&event)?,
            Ok(JsonlRecord::Checkpoint(checkpoint)) => verifier.add_checkpoint(checkpoint)?,
            Err(error) => {
                return Err(ChainError::Jsonl {
                    after: verifier.last_seq(),
                    error,
                });
            }
        }
    }
    verifier.finish()
}
