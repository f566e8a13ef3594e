//! `--since` and `--grep`, applied to the text **after** masking.
//!
//! Filtering masked text is what makes `--grep` safe: a pattern can only
//! match what the engineer would see anyway, so `--grep 'alice@example'`
//! finds nothing where the address was masked, and a grep cannot be used to
//! probe a masked value one guess at a time.
//!
//! `--since` keeps the lines whose leading timestamp is at or after the
//! given instant. A line without a leading timestamp (a stack trace's
//! continuation) follows the decision of the line before it; the lines
//! before the first timestamp are kept. Timestamps are read as
//! `YYYY-MM-DD[T ]HH:MM:SS[.fraction][Z|±HH[:MM]| UTC]`, without a zone
//! meaning UTC: RFC 3339, `journalctl -o short-iso` and most application
//! loggers.

use regex::{Regex, RegexBuilder};

/// Longest `--grep` pattern, in bytes.
pub const MAX_GREP: usize = 1024;
/// Memory a compiled `--grep` may use: a hostile pattern is refused, not run.
const GREP_SIZE_LIMIT: usize = 1 << 20;

/// A `--grep` pattern that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    /// Longer than [`MAX_GREP`].
    #[error("the --grep pattern is longer than {MAX_GREP} bytes")]
    TooLong,
    /// Not a regular expression (or too large once compiled).
    #[error("the --grep pattern is not a valid regular expression: {0}")]
    Invalid(String),
}

/// The filter of one read: which lines of the masked stream reach the client.
#[derive(Debug, Clone)]
pub struct LineFilter {
    since: Option<i64>,
    grep: Option<Regex>,
    /// Whether the last line seen passed `since` (continuation lines follow it).
    recent: bool,
    /// Whether the next piece starts a line.
    at_line_start: bool,
}

impl LineFilter {
    /// A filter keeping lines at or after `since` (Unix seconds) that match
    /// `grep`; both optional.
    pub fn new(since: Option<i64>, grep: Option<&str>) -> Result<Self, FilterError> {
        let grep = match grep {
            None => None,
            Some(p) if p.len() > MAX_GREP => return Err(FilterError::TooLong),
            Some(p) => Some(
                RegexBuilder::new(p)
                    .size_limit(GREP_SIZE_LIMIT)
                    .dfa_size_limit(GREP_SIZE_LIMIT)
                    .build()
                    .map_err(|e| FilterError::Invalid(e.to_string()))?,
            ),
        };
        Ok(LineFilter {
            since,
            grep,
            recent: true,
            at_line_start: true,
        })
    }

    /// Whether the filter lets everything through.
    pub fn is_noop(&self) -> bool {
        self.since.is_none() && self.grep.is_none()
    }

    /// Appends to `out` the lines of `piece` (masked text: whole lines, or a
    /// piece of a line longer than the masker's bound) that pass. Returns
    /// how many whole lines passed.
    pub fn apply(&mut self, piece: &str, out: &mut String) -> u64 {
        let mut lines = 0;
        for segment in piece.split_inclusive('\n') {
            let starts_line = self.at_line_start;
            self.at_line_start = segment.ends_with('\n');
            if let Some(since) = self.since
                && starts_line
                && let Some(at) = leading_timestamp(segment)
            {
                self.recent = at >= since;
            }
            if !self.recent {
                continue;
            }
            if let Some(grep) = &self.grep
                && !grep.is_match(segment.trim_end_matches(['\n', '\r']))
            {
                continue;
            }
            out.push_str(segment);
            if self.at_line_start {
                lines += 1;
            }
        }
        lines
    }
}

/// The Unix time of the timestamp a line starts with, if it starts with one.
pub fn leading_timestamp(line: &str) -> Option<i64> {
    let b = line.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let s = b.get(range)?;
        if !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(s).ok()?.parse().ok()
    };
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    let second = second.min(59);
    let mut i = 19;
    if b.get(i) == Some(&b'.') || b.get(i) == Some(&b',') {
        i += 1;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    let offset = match b.get(i) {
        Some(b'Z') => 0,
        Some(&sign @ (b'+' | b'-')) => {
            let h = num(i + 1..i + 3)?;
            let m = if b.get(i + 3) == Some(&b':') {
                num(i + 4..i + 6)?
            } else {
                num(i + 3..i + 5).unwrap_or(0)
            };
            let secs = h * 3600 + m * 60;
            if sign == b'+' { secs } else { -secs }
        }
        _ => 0,
    };
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// `YYYY-MM-DD HH:MM:SS UTC` for a Unix time: the form `journalctl --since`
/// reads.
pub fn journal_time(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_the_usual_forms() {
        let t = 1_765_044_131; // 2025-12-06T18:02:11Z
        assert_eq!(leading_timestamp("2025-12-06T18:02:11Z ok"), Some(t));
        assert_eq!(leading_timestamp("2025-12-06 18:02:11 ok"), Some(t));
        assert_eq!(leading_timestamp("2025-12-06T18:02:11.123456Z x"), Some(t));
        assert_eq!(leading_timestamp("2025-12-06T19:02:11+0100 host"), Some(t));
        assert_eq!(leading_timestamp("2025-12-06T13:02:11-05:00 x"), Some(t));
        assert_eq!(leading_timestamp("  at com.example.Foo"), None);
        assert_eq!(leading_timestamp("2025-13-06T18:02:11Z"), None);
        assert_eq!(journal_time(t), "2025-12-06 18:02:11 UTC");
        assert_eq!(journal_time(0), "1970-01-01 00:00:00 UTC");
    }

    #[test]
    fn since_keeps_recent_lines_and_their_continuations() {
        let since = leading_timestamp("2025-12-06T18:00:00Z").unwrap();
        let mut f = LineFilter::new(Some(since), None).unwrap();
        let mut out = String::new();
        let text = "preamble\n2025-12-06T17:59:59Z old\n  old trace\n2025-12-06T18:00:00Z new\n  new trace\n";
        let n = f.apply(text, &mut out);
        assert_eq!(out, "preamble\n2025-12-06T18:00:00Z new\n  new trace\n");
        assert_eq!(n, 3);
    }

    #[test]
    fn grep_matches_the_masked_text_only() {
        let mut f = LineFilter::new(None, Some("paid|\\[email\\]")).unwrap();
        let mut out = String::new();
        f.apply("order 1 paid\nlogin [email]\nnothing\n", &mut out);
        assert_eq!(out, "order 1 paid\nlogin [email]\n");
        assert!(matches!(
            LineFilter::new(None, Some("(")),
            Err(FilterError::Invalid(_))
        ));
        assert!(matches!(
            LineFilter::new(None, Some(&"a".repeat(2000))),
            Err(FilterError::TooLong)
        ));
        // A pattern whose automaton would be huge is refused, not run.
        assert!(LineFilter::new(None, Some("\\w{1000}\\w{1000}\\w{1000}")).is_err());
    }
}
