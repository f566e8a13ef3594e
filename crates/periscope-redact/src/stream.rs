//! Streaming line mode: one output line per input line, for pipes and `tail -f`.

use std::io::{self, BufRead, Write};

use crate::scan::{pem_end, pem_unterminated};
use crate::{Counts, Entity, Masker};

/// How each line is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LineFormat {
    /// Plain text (logs, CSV, key=value).
    #[default]
    Text,
    /// One JSON document per line (JSON Lines); a line that does not parse is
    /// masked as text and counted in [`LineStats::invalid_json`], never passed
    /// through unscanned.
    Json,
}

/// What a [`LineRedactor`] has seen so far. Counts only, never values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineStats {
    /// Lines processed.
    pub lines: u64,
    /// Findings masked, per entity.
    pub counts: Counts,
    /// Lines that were not valid JSON in [`LineFormat::Json`] mode.
    pub invalid_json: u64,
}

/// Redacts a stream line by line, keeping the state that spans lines (inside a
/// PEM private key block, every line is masked until the `-----END` line).
#[derive(Debug)]
pub struct LineRedactor<'m> {
    masker: &'m Masker,
    format: LineFormat,
    flush_each_line: bool,
    in_pem: bool,
    stats: LineStats,
}

impl<'m> LineRedactor<'m> {
    /// A redactor for `format` lines.
    pub fn new(masker: &'m Masker, format: LineFormat) -> Self {
        LineRedactor {
            masker,
            format,
            flush_each_line: false,
            in_pem: false,
            stats: LineStats::default(),
        }
    }

    /// Flush the writer after every line: what a pipe after `tail -f` needs.
    pub fn flush_each_line(mut self, yes: bool) -> Self {
        self.flush_each_line = yes;
        self
    }

    /// What has been seen so far.
    pub fn stats(&self) -> &LineStats {
        &self.stats
    }

    /// Copies `reader` to `writer`, masked, one output line per input line, with
    /// each line's terminator (`\n`, `\r\n` or none at the end) kept. Input that
    /// is not UTF-8 is decoded lossily first, so it is still scanned.
    pub fn process<R: BufRead, W: Write>(
        &mut self,
        mut reader: R,
        writer: &mut W,
    ) -> io::Result<()> {
        let mut buf = Vec::with_capacity(8192);
        let mut out = String::with_capacity(8192);
        loop {
            buf.clear();
            if reader.read_until(b'\n', &mut buf)? == 0 {
                break;
            }
            let mut body = buf.len();
            if buf[..body].ends_with(b"\n") {
                body -= 1;
                if buf[..body].ends_with(b"\r") {
                    body -= 1;
                }
            }
            out.clear();
            let line = String::from_utf8_lossy(&buf[..body]);
            self.redact_line(&line, &mut out);
            writer.write_all(out.as_bytes())?;
            writer.write_all(&buf[body..])?;
            if self.flush_each_line {
                writer.flush()?;
            }
        }
        writer.flush()
    }

    /// Masks one line (without its terminator) and appends it to `out`.
    pub fn redact_line(&mut self, line: &str, out: &mut String) {
        self.stats.lines += 1;
        if self.format == LineFormat::Json && !line.trim().is_empty() {
            match serde_json::from_str::<serde_json::Value>(line) {
                Ok(mut doc) => {
                    let counts = self.masker.mask_json(&mut doc);
                    if counts.is_empty() {
                        out.push_str(line);
                    } else {
                        self.stats.counts.merge(&counts);
                        out.push_str(&doc.to_string());
                    }
                    return;
                }
                Err(_) => self.stats.invalid_json += 1,
            }
        }
        self.text_line(line, out);
    }

    fn text_line(&mut self, line: &str, out: &mut String) {
        let mut rest = line;
        if self.in_pem {
            match pem_end(line) {
                Some(end) => {
                    self.masker.render(Entity::PrivateKey, &line[..end], out);
                    rest = &line[end..];
                    self.in_pem = false;
                }
                None => {
                    if !line.is_empty() {
                        self.masker.render(Entity::PrivateKey, line, out);
                    }
                    return;
                }
            }
        }
        let masked = self.masker.mask_str(rest);
        self.stats.counts.merge(&masked.counts);
        out.push_str(&masked.text);
        if pem_unterminated(rest) {
            self.in_pem = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ScanConfig;

    fn run(format: LineFormat, input: &str) -> (String, LineStats) {
        let masker = Masker::new(ScanConfig::new().build());
        let mut r = LineRedactor::new(&masker, format);
        let mut out = Vec::new();
        r.process(input.as_bytes(), &mut out).unwrap();
        (String::from_utf8(out).unwrap(), r.stats().clone())
    }

    #[test]
    fn one_line_out_per_line_in_with_terminators_kept() {
        let (out, stats) = run(
            LineFormat::Text,
            "a alice@example.com\r\nb\n\nlast 10.0.0.1",
        );
        assert_eq!(out, "a [email]\r\nb\n\nlast [ip]");
        assert_eq!(stats.lines, 4);
        assert_eq!(stats.counts.get(Entity::Email), 1);
    }

    #[test]
    fn pem_blocks_are_masked_across_lines() {
        let input = "key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nabcd\n-----END RSA PRIVATE KEY----- done\nafter\n";
        let (out, stats) = run(LineFormat::Text, input);
        assert_eq!(
            out,
            "key:\n[private_key]\n[private_key]\n[private_key]\n[private_key] done\nafter\n"
        );
        assert_eq!(stats.counts.get(Entity::PrivateKey), 1);
    }

    #[test]
    fn json_lines_and_invalid_json() {
        let input = "{\"email\":\"a@b.io\",\"n\":1}\n{\"n\":2}\nnot json bob@example.com\n";
        let (out, stats) = run(LineFormat::Json, input);
        assert_eq!(
            out,
            "{\"email\":\"[email]\",\"n\":1}\n{\"n\":2}\nnot json [email]\n"
        );
        assert_eq!(stats.invalid_json, 1);
        assert_eq!(stats.counts.get(Entity::Email), 2);
    }

    #[test]
    fn invalid_utf8_is_still_scanned() {
        let masker = Masker::new(ScanConfig::new().build());
        let mut r = LineRedactor::new(&masker, LineFormat::Text);
        let mut out = Vec::new();
        r.process(&b"\xff alice@example.com\n"[..], &mut out)
            .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "\u{fffd} [email]\n");
    }
}
