//! Masking a terminal's output (a PTY) as it flows.
//!
//! A terminal stream is text with escape sequences in it: colours
//! (`ESC [ 31 m`), cursor moves, window titles (`ESC ] 0 ; title BEL`). The
//! masker takes the escape sequences out of the text, scans the text alone
//! (so a value with a colour change in the middle, `alice@` `ESC[1m`
//! `example.com`, is still one value), masks what it finds, and puts every
//! escape sequence back where it was: escapes pass unchanged, except that an
//! escape inside a masked value moves just after its placeholder. The text
//! payload of a string sequence (OSC, DCS, APC, PM, SOS: a window title can
//! hold `user@host`) is masked too, its framing kept.
//!
//! Like [`crate::stream::StreamMasker`], it is line-aware: a read ending in
//! the middle of a line (or of an escape sequence, or of a UTF-8 character)
//! is kept back until the line is complete, so a value split across reads
//! is found. An interactive terminal also shows unfinished lines (a prompt,
//! the echo of what is typed): the caller calls
//! [`TerminalMasker::flush_partial`] once the output has been quiet for a
//! moment, which masks and shows the unfinished line as it is. The carry-over
//! is bounded as for command output: a line longer than `max_line` bytes is
//! shown in pieces cut at whitespace, and an escape sequence longer than
//! [`MAX_ESCAPE`] bytes is treated as text.

use periscope_redact::{Counts, Masker};

use crate::stream::{CARRY, MAX_LINE};

/// Longest escape sequence kept whole, in bytes; a longer one (a runaway or
/// hostile OSC) is treated as text and scanned as such.
pub const MAX_ESCAPE: usize = 4096;

/// Most complete escape sequences kept back with an unfinished line.
const MAX_ESCAPES_HELD: usize = 1024;

const ESC: u8 = 0x1b;
const BEL: u8 = 0x07;

/// Where the parser is inside an escape sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Esc {
    /// Not in one.
    Ground,
    /// After `ESC`.
    Start,
    /// `ESC [`: parameters and intermediates until a final byte.
    Csi,
    /// `ESC` then intermediates (`ESC ( B`) until a final byte.
    Intermediate,
    /// A string sequence (OSC, DCS, SOS, PM, APC) until BEL or `ESC \`.
    Str,
    /// `ESC` inside a string sequence: `\` ends it.
    StrEscape,
}

/// The masker of one terminal stream.
#[derive(Debug)]
pub struct TerminalMasker<'m> {
    masker: &'m Masker,
    /// The text of the pending line, escape sequences taken out.
    text: Vec<u8>,
    /// Escape sequences of the pending line: (offset in `text`, bytes).
    escapes: Vec<(usize, Vec<u8>)>,
    /// The escape sequence being read.
    esc: Vec<u8>,
    state: Esc,
    max_line: usize,
    carry: usize,
    counts: Counts,
    bytes_in: u64,
}

impl<'m> TerminalMasker<'m> {
    /// A terminal masker with the default bounds.
    pub fn new(masker: &'m Masker) -> Self {
        Self::with_bounds(masker, MAX_LINE, CARRY)
    }

    /// A terminal masker keeping back at most `max_line` bytes of text, and
    /// `carry` bytes after a forced cut (`carry < max_line`).
    pub fn with_bounds(masker: &'m Masker, max_line: usize, carry: usize) -> Self {
        TerminalMasker {
            masker,
            text: Vec::new(),
            escapes: Vec::new(),
            esc: Vec::new(),
            state: Esc::Ground,
            max_line: max_line.max(2),
            carry: carry.min(max_line.max(2) / 2),
            counts: Counts::default(),
            bytes_in: 0,
        }
    }

    /// Takes one read of the terminal and appends to `out` what can be shown
    /// now, masked: every complete line (with its escape sequences), and
    /// pieces of a line that outgrew the bound.
    pub fn push(&mut self, chunk: &[u8], out: &mut String) {
        self.bytes_in += chunk.len() as u64;
        for &b in chunk {
            self.byte(b, out);
        }
        while self.text.len() > self.max_line {
            let cut = self.cut_point();
            self.emit(cut, false, out);
        }
        // A full-screen program moves the cursor instead of writing
        // newlines: its escape sequences are bounded too.
        if self.escapes.len() > MAX_ESCAPES_HELD {
            self.flush_partial(out);
        }
    }

    /// Shows the unfinished line now (a prompt, an echo), masked as it is. An
    /// escape sequence still being read stays back.
    pub fn flush_partial(&mut self, out: &mut String) {
        if !self.text.is_empty() || !self.escapes.is_empty() {
            let len = self.text.len();
            self.emit(len, true, out);
        }
    }

    /// Whether anything is kept back (text or complete escape sequences).
    pub fn has_partial(&self) -> bool {
        !self.text.is_empty() || !self.escapes.is_empty()
    }

    /// The end of the stream: the unfinished line, masked. An unfinished
    /// escape sequence is shown as text, masked.
    pub fn finish(&mut self, out: &mut String) {
        if self.state != Esc::Ground {
            let esc = std::mem::take(&mut self.esc);
            self.text.extend_from_slice(&esc);
            self.state = Esc::Ground;
        }
        self.flush_partial(out);
    }

    /// Masked values so far, per entity.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// Bytes read so far, before masking.
    pub fn bytes_in(&self) -> u64 {
        self.bytes_in
    }

    fn byte(&mut self, b: u8, out: &mut String) {
        match self.state {
            Esc::Ground => {
                if b == ESC {
                    self.esc.push(b);
                    self.state = Esc::Start;
                } else {
                    self.text.push(b);
                    if b == b'\n' {
                        let len = self.text.len();
                        self.emit(len, false, out);
                    }
                }
                return;
            }
            Esc::Start => {
                self.esc.push(b);
                self.state = match b {
                    b'[' => Esc::Csi,
                    b']' | b'P' | b'X' | b'^' | b'_' => Esc::Str,
                    0x20..=0x2f => Esc::Intermediate,
                    // ESC followed by a final byte: a two-byte sequence.
                    0x30..=0x7e => return self.end_escape(),
                    // Anything else (a control): the ESC stands alone.
                    _ => return self.abandon_escape(),
                };
            }
            Esc::Csi => {
                self.esc.push(b);
                match b {
                    0x20..=0x3f => {}
                    0x40..=0x7e => return self.end_escape(),
                    _ => return self.abandon_escape(),
                }
            }
            Esc::Intermediate => {
                self.esc.push(b);
                match b {
                    0x20..=0x2f => {}
                    0x30..=0x7e => return self.end_escape(),
                    _ => return self.abandon_escape(),
                }
            }
            Esc::Str => {
                self.esc.push(b);
                match b {
                    BEL => return self.end_escape(),
                    ESC => self.state = Esc::StrEscape,
                    _ => {}
                }
            }
            Esc::StrEscape => {
                self.esc.push(b);
                match b {
                    b'\\' => return self.end_escape(),
                    ESC => {}
                    _ => self.state = Esc::Str,
                }
            }
        }
        if self.esc.len() > MAX_ESCAPE {
            self.abandon_escape();
        }
    }

    /// A complete escape sequence: kept at the current text offset.
    fn end_escape(&mut self) {
        let esc = std::mem::take(&mut self.esc);
        self.state = Esc::Ground;
        self.escapes.push((self.text.len(), esc));
    }

    /// Not an escape sequence after all (or too long): its bytes are text,
    /// scanned with the rest. A newline among them ends the line at once
    /// only on the next byte; the bound on `text` still holds.
    fn abandon_escape(&mut self) {
        let esc = std::mem::take(&mut self.esc);
        self.state = Esc::Ground;
        self.text.extend_from_slice(&esc);
    }

    fn cut_point(&self) -> usize {
        let rest = &self.text;
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

    /// Masks and appends the first `upto` bytes of text with their escape
    /// sequences (those at offset `upto` too when `with_trailing`), keeping
    /// the rest back.
    fn emit(&mut self, upto: usize, with_trailing: bool, out: &mut String) {
        let split = self
            .escapes
            .iter()
            .position(|(at, _)| *at > upto || (*at == upto && !with_trailing))
            .unwrap_or(self.escapes.len());
        let rest_escapes: Vec<(usize, Vec<u8>)> = self
            .escapes
            .drain(split..)
            .map(|(at, e)| (at - upto, e))
            .collect();
        let escapes = std::mem::replace(&mut self.escapes, rest_escapes);
        let rest_text = self.text.split_off(upto);
        let raw = std::mem::replace(&mut self.text, rest_text);

        // The text as a string, cut at the escapes so that each escape's
        // offset is known in the decoded text (lossy decoding changes
        // lengths).
        let mut text = String::with_capacity(raw.len());
        let mut marks: Vec<(usize, &[u8])> = Vec::with_capacity(escapes.len());
        let mut from = 0;
        for (at, esc) in &escapes {
            text.push_str(&String::from_utf8_lossy(&raw[from..*at]));
            marks.push((text.len(), esc));
            from = *at;
        }
        text.push_str(&String::from_utf8_lossy(&raw[from..]));

        let findings = self.masker.scanner().scan(&text);
        let mut w = Writer {
            text: &text,
            marks: &marks,
            next: 0,
            pos: 0,
            masker: self.masker,
        };
        for f in &findings {
            // Escapes before the value (and at its start) come first.
            w.plain_until(f.span.start, out, &mut self.counts);
            out.push_str(&self.masker.mask_value_as(f.entity, &text[f.span.clone()]));
            self.counts.add(f.entity);
            // Escapes inside the value: just after its placeholder.
            while w.next < marks.len() && marks[w.next].0 < f.span.end {
                push_escape(out, marks[w.next].1, self.masker, &mut self.counts);
                w.next += 1;
            }
            w.pos = f.span.end;
        }
        w.plain_until(text.len(), out, &mut self.counts);
    }
}

/// Writes the text of one emitted line with its escape sequences.
struct Writer<'a> {
    text: &'a str,
    marks: &'a [(usize, &'a [u8])],
    next: usize,
    pos: usize,
    masker: &'a Masker,
}

impl Writer<'_> {
    /// The text from `pos` to `end`, each escape sequence before the
    /// character it preceded (those at `end` included).
    fn plain_until(&mut self, end: usize, out: &mut String, counts: &mut Counts) {
        while self.next < self.marks.len() && self.marks[self.next].0 <= end {
            let (offset, esc) = self.marks[self.next];
            let offset = offset.max(self.pos);
            out.push_str(&self.text[self.pos..offset]);
            self.pos = offset;
            push_escape(out, esc, self.masker, counts);
            self.next += 1;
        }
        out.push_str(&self.text[self.pos..end]);
        self.pos = end;
    }
}

/// Appends an escape sequence as it is, except the text payload of a string
/// sequence (a window title), which is masked.
fn push_escape(out: &mut String, esc: &[u8], masker: &Masker, counts: &mut Counts) {
    let text = String::from_utf8_lossy(esc);
    let is_string = matches!(esc.get(1), Some(b']' | b'P' | b'X' | b'^' | b'_'));
    if !is_string || text.len() < 3 {
        out.push_str(&text);
        return;
    }
    let masked = masker.mask_str(&text[2..]);
    counts.merge(&masked.counts);
    out.push_str(&text[..2]);
    out.push_str(&masked.text);
}

#[cfg(test)]
mod tests {
    use super::*;
    use periscope_redact::{Entity, ScanConfig};

    fn masker() -> Masker {
        Masker::new(ScanConfig::new().build())
    }

    fn run(masker: &Masker, chunks: &[&[u8]]) -> (String, Counts) {
        let mut t = TerminalMasker::new(masker);
        let mut out = String::new();
        for c in chunks {
            t.push(c, &mut out);
        }
        t.finish(&mut out);
        (out, *t.counts())
    }

    #[test]
    fn escapes_pass_unchanged_and_the_text_between_is_masked() {
        let m = masker();
        let (out, counts) = run(
            &m,
            &[b"\x1b[1;31mmail alice@example.com\x1b[0m ok\r\n\x1b]0;bash\x07$ "],
        );
        assert_eq!(out, "\x1b[1;31mmail [email]\x1b[0m ok\r\n\x1b]0;bash\x07$ ");
        assert_eq!(counts.get(Entity::Email), 1);
    }

    #[test]
    fn a_value_split_across_chunks_is_found() {
        let m = masker();
        let (out, _) = run(&m, &[b"user bob@exa", b"mple.org\r\n"]);
        assert_eq!(out, "user [email]\r\n");
        // Byte by byte, with colours around the value: the worst split.
        let text = b"\x1b[32mcarol@example.com\x1b[39m\n";
        let chunks: Vec<&[u8]> = text.chunks(1).collect();
        let (out, _) = run(&m, &chunks);
        assert_eq!(out, "\x1b[32m[email]\x1b[39m\n");
    }

    #[test]
    fn a_value_split_by_an_escape_sequence_is_found() {
        let m = masker();
        // The escape sequence itself split across chunks, in the middle of
        // the value.
        let (out, counts) = run(&m, &[b"to dave@\x1b[", b"1mexample.com\x1b[0m!\n"]);
        assert!(!out.contains("dave@"), "{out:?}");
        assert!(!out.contains("example.com"), "{out:?}");
        assert_eq!(out, "to [email]\x1b[1m\x1b[0m!\n");
        assert_eq!(counts.get(Entity::Email), 1);
        let (out, _) = run(&m, &[b"card 4111 1111\x1b[K 1111 1111\n"]);
        assert_eq!(out, "card [card]\x1b[K\n");
    }

    #[test]
    fn a_window_title_is_masked_inside_its_framing() {
        let m = masker();
        let (out, _) = run(&m, &[b"\x1b]0;erin@example.com: ~\x1b\\done\n"]);
        assert_eq!(out, "\x1b]0;[email]: ~\x1b\\done\n");
    }

    #[test]
    fn a_prompt_is_shown_when_flushed_and_the_rest_stays_back() {
        let m = masker();
        let mut t = TerminalMasker::new(&m);
        let mut out = String::new();
        t.push(b"\x1b[01;32mbash$ \x1b[0", &mut out);
        assert_eq!(out, "");
        t.flush_partial(&mut out);
        // The unfinished escape stays back until it is complete.
        assert_eq!(out, "\x1b[01;32mbash$ ");
        t.push(b"m", &mut out);
        t.flush_partial(&mut out);
        assert_eq!(out, "\x1b[01;32mbash$ \x1b[0m");
        assert!(!t.has_partial());
    }

    #[test]
    fn long_lines_and_runaway_escapes_stay_bounded() {
        let m = masker();
        let mut t = TerminalMasker::with_bounds(&m, 64, 16);
        let mut out = String::new();
        let filler = "x".repeat(50);
        let line = format!("{filler} frank@example.com {filler} \x1b[1mgina@example.com\n");
        for chunk in line.as_bytes().chunks(7) {
            t.push(chunk, &mut out);
            assert!(t.text.len() <= 64 + 7, "carry-over is bounded");
        }
        assert!(!out.contains("@example.com"), "{out}");
        assert_eq!(t.counts().get(Entity::Email), 2);
        // An OSC that never ends is text once it passes MAX_ESCAPE.
        let mut t = TerminalMasker::new(&m);
        let mut out = String::new();
        t.push(b"\x1b]0;", &mut out);
        t.push(&vec![b'y'; MAX_ESCAPE + 10], &mut out);
        assert!(t.esc.len() <= MAX_ESCAPE);
        t.finish(&mut out);
        assert!(out.len() > MAX_ESCAPE);
    }

    #[test]
    fn invalid_utf8_is_decoded_and_still_scanned() {
        let m = masker();
        let (out, _) = run(&m, &[b"\xff hank@example.com\x1b[0m \xc3", b"\xa9\n"]);
        assert_eq!(out, "\u{fffd} [email]\x1b[0m \u{e9}\n");
    }
}
