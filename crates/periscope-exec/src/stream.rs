//! Masking an output stream as it flows.
//!
//! A process writes whenever it likes: a pipe read can end in the middle of
//! a line, of a word, even of a UTF-8 character. The masker therefore keeps
//! the unfinished line back (the carry-over) and masks whole lines, so an
//! e-mail address or a key split across two reads is still found. The
//! carry-over is bounded: a line longer than [`MAX_LINE`] bytes is masked in
//! pieces, each cut at the last whitespace before its last [`CARRY`] bytes
//! when there is one (so no word is split), or else [`CARRY`] bytes before
//! the end at a character boundary. Memory per stream stays below
//! `MAX_LINE` plus one read, whatever the output.

use periscope_redact::{Counts, LineFormat, LineRedactor, Masker};

/// Longest line kept back whole, in bytes.
pub const MAX_LINE: usize = 64 * 1024;
/// Bytes kept back after a forced cut of a long line, so that a value
/// shorter than this that straddles the cut point is seen whole.
pub const CARRY: usize = 1024;

/// The masker of one output stream (stdout or stderr).
#[derive(Debug)]
pub struct StreamMasker<'m> {
    redactor: LineRedactor<'m>,
    pending: Vec<u8>,
    max_line: usize,
    carry: usize,
    bytes_in: u64,
}

impl<'m> StreamMasker<'m> {
    /// A stream masker with the default bounds.
    pub fn new(masker: &'m Masker) -> Self {
        Self::with_bounds(masker, MAX_LINE, CARRY)
    }

    /// A stream masker keeping back at most `max_line` bytes, and `carry`
    /// bytes after a forced cut (`carry < max_line`).
    pub fn with_bounds(masker: &'m Masker, max_line: usize, carry: usize) -> Self {
        StreamMasker {
            redactor: LineRedactor::new(masker, LineFormat::Text),
            pending: Vec::new(),
            max_line: max_line.max(2),
            carry: carry.min(max_line.max(2) / 2),
            bytes_in: 0,
        }
    }

    /// Takes one read of the stream and appends to `out` what can be shown
    /// now, masked: every complete line, and pieces of a line that outgrew
    /// the bound.
    pub fn push(&mut self, chunk: &[u8], out: &mut String) {
        self.bytes_in += chunk.len() as u64;
        self.pending.extend_from_slice(chunk);
        let pending = std::mem::take(&mut self.pending);
        let mut start = 0;
        while let Some(i) = memchr::memchr(b'\n', &pending[start..]) {
            let end = start + i;
            self.line(&pending[start..end], true, out);
            start = end + 1;
        }
        let mut rest = &pending[start..];
        while rest.len() > self.max_line {
            let cut = self.cut_point(rest);
            self.line(&rest[..cut], false, out);
            rest = &rest[cut..];
        }
        self.pending = rest.to_vec();
    }

    /// The end of the stream: the unfinished line, masked, without a
    /// terminator.
    pub fn finish(&mut self, out: &mut String) {
        let pending = std::mem::take(&mut self.pending);
        if !pending.is_empty() {
            self.line(&pending, false, out);
        }
    }

    /// Masked values so far, per entity.
    pub fn counts(&self) -> &Counts {
        &self.redactor.stats().counts
    }

    /// Bytes read so far, before masking.
    pub fn bytes_in(&self) -> u64 {
        self.bytes_in
    }

    fn cut_point(&self, rest: &[u8]) -> usize {
        let limit = rest.len() - self.carry;
        if let Some(ws) = rest[..limit].iter().rposition(u8::is_ascii_whitespace) {
            return ws + 1;
        }
        let mut cut = limit;
        while cut > 0 && rest[cut] & 0xC0 == 0x80 {
            cut -= 1;
        }
        if cut == 0 { limit } else { cut }
    }

    fn line(&mut self, raw: &[u8], newline: bool, out: &mut String) {
        let mut body = raw;
        let mut cr = false;
        if newline && let Some(stripped) = body.strip_suffix(b"\r") {
            body = stripped;
            cr = true;
        }
        let text = String::from_utf8_lossy(body);
        self.redactor.redact_line(&text, out);
        if cr {
            out.push('\r');
        }
        if newline {
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use periscope_redact::{Entity, ScanConfig};

    fn masker() -> Masker {
        Masker::new(ScanConfig::new().build())
    }

    fn run(masker: &Masker, chunks: &[&[u8]]) -> (String, Counts) {
        let mut s = StreamMasker::new(masker);
        let mut out = String::new();
        for c in chunks {
            s.push(c, &mut out);
        }
        s.finish(&mut out);
        (out, *s.counts())
    }

    #[test]
    fn a_value_split_across_reads_is_found() {
        let m = masker();
        let (out, counts) = run(
            &m,
            &[
                b"user alice@exa",
                b"mple.com paid\nkey AKIA",
                b"IOSFODNN7EXAMPLE\n",
            ],
        );
        assert_eq!(out, "user [email] paid\nkey [aws_access_key]\n");
        assert_eq!(counts.get(Entity::Email), 1);
        assert_eq!(counts.get(Entity::AwsAccessKey), 1);
        // Byte by byte: the worst split there is.
        let text = b"card 4111 1111 1111 1111 ok\r\n";
        let chunks: Vec<&[u8]> = text.chunks(1).collect();
        let (out, _) = run(&m, &chunks);
        assert_eq!(out, "card [card] ok\r\n");
    }

    #[test]
    fn nothing_is_shown_before_its_line_is_complete() {
        let m = masker();
        let mut s = StreamMasker::new(&m);
        let mut out = String::new();
        s.push(b"bob@example.org wrote", &mut out);
        assert_eq!(out, "");
        s.finish(&mut out);
        assert_eq!(out, "[email] wrote");
    }

    #[test]
    fn long_lines_are_cut_at_whitespace_and_stay_bounded() {
        let m = masker();
        let mut s = StreamMasker::with_bounds(&m, 64, 16);
        let mut out = String::new();
        let filler = "x".repeat(50);
        let line = format!("{filler} carol@example.com {filler} dave@example.com");
        for chunk in line.as_bytes().chunks(7) {
            s.push(chunk, &mut out);
            assert!(s.pending.len() <= 64 + 7, "carry-over is bounded");
        }
        s.finish(&mut out);
        assert!(!out.contains("@example.com"), "{out}");
        assert_eq!(s.counts().get(Entity::Email), 2);
    }

    #[test]
    fn invalid_utf8_is_decoded_and_still_scanned() {
        let m = masker();
        let (out, _) = run(&m, &[b"\xff\xfe eve@example.com \xc3", b"\xa9\n"]);
        assert_eq!(out, "\u{fffd}\u{fffd} [email] \u{e9}\n");
    }
}
