//! Human output shared by the client subcommands: times people can act on ("expires
//! in 29m", "3m ago", plus absolute UTC where it matters) and plain tables.

use std::time::Duration;

use comfy_table::{ContentArrangement, Table};
use time::{OffsetDateTime, UtcOffset};

/// Now, by this machine's clock (the gateway's may differ slightly).
pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// `2026-11-29 05:00:00 UTC`: absolute, unambiguous across time zones.
pub fn utc(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// A duration in at most two units, rounded down: `45s`, `9m 30s`, `29m`, `1h 5m`,
/// `3d 4h` (seconds only while they still matter, under ten minutes).
pub fn span(d: Duration) -> String {
    let secs = d.as_secs();
    let (days, hours, mins, s) = (
        secs / 86_400,
        secs % 86_400 / 3_600,
        secs % 3_600 / 60,
        secs % 60,
    );
    let two = |a: u64, ua: &str, b: u64, ub: &str| {
        if b == 0 {
            format!("{a}{ua}")
        } else {
            format!("{a}{ua} {b}{ub}")
        }
    };
    if days > 0 {
        two(days, "d", hours, "h")
    } else if hours > 0 {
        two(hours, "h", mins, "m")
    } else if mins >= 10 {
        format!("{mins}m")
    } else if mins > 0 {
        two(mins, "m", s, "s")
    } else {
        format!("{s}s")
    }
}

/// Span from seconds, as the API states durations.
pub fn span_secs(secs: u64) -> String {
    span(Duration::from_secs(secs))
}

/// `in 29m` or `3m ago`, relative to `now`.
pub fn relative(t: OffsetDateTime, now: OffsetDateTime) -> String {
    let delta = t - now;
    // To the nearest second: a 10-minute secret read 2 ms later is "in 10m".
    let millis = delta.whole_milliseconds().unsigned_abs();
    let abs = Duration::from_secs(u64::try_from((millis + 500) / 1000).unwrap_or(u64::MAX));
    if delta.is_negative() {
        format!("{} ago", span(abs))
    } else {
        format!("in {}", span(abs))
    }
}

/// `3m ago` for something that happened; a time slightly ahead of this machine's
/// clock (skew with the gateway) reads `just now` rather than a future.
pub fn ago(t: OffsetDateTime, now: OffsetDateTime) -> String {
    if t >= now {
        "just now".to_owned()
    } else {
        relative(t, now)
    }
}

/// `expires in 29m (2026-11-29 05:30:00 UTC)` or `expired 3m ago (...)`.
pub fn expiry(t: OffsetDateTime, now: OffsetDateTime) -> String {
    let verb = if t > now { "expires" } else { "expired" };
    format!("{verb} {} ({})", relative(t, now), utc(t))
}

/// A table without borders, kubectl-style, wrapped to the terminal when there is one.
pub fn table<const N: usize>(header: [&str; N]) -> Table {
    let mut table = Table::new();
    table
        .load_style(comfy_table::presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.to_vec());
    table
}

/// Renders a table, or a sentence when it is empty (a header alone says nothing).
pub fn render(table: &Table, empty: &str) -> String {
    if table.is_empty() {
        return empty.to_owned();
    }
    // NOTHING still pads each cell with one space on the left: trim lines.
    table
        .lines()
        .map(|line| {
            line.trim_end()
                .strip_prefix(' ')
                .unwrap_or(&line)
                .to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A gateway URL as people write it: no trailing `/` on a bare host.
pub fn url(url: &reqwest::Url) -> String {
    crate::client::display_url(url)
}

/// `a, b, c`, or `-` for none.
pub fn list(items: &[String]) -> String {
    if items.is_empty() {
        "-".to_owned()
    } else {
        items.join(", ")
    }
}

/// `s` for plurals.
pub fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Quotes a value for a POSIX shell when it needs it, so a printed command can be
/// pasted as is.
pub fn shell_quote(value: &str) -> String {
    let safe = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:@%+=,".contains(&b));
    if safe {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::format_description::well_known::Rfc3339;

    fn at(text: &str) -> OffsetDateTime {
        OffsetDateTime::parse(text, &Rfc3339).expect("test time")
    }

    #[test]
    fn spans_keep_two_units() {
        assert_eq!(span(Duration::from_secs(45)), "45s");
        assert_eq!(span(Duration::from_secs(29 * 60)), "29m");
        assert_eq!(span(Duration::from_secs(29 * 60 + 5)), "29m");
        assert_eq!(span(Duration::from_secs(9 * 60 + 5)), "9m 5s");
        assert_eq!(span(Duration::from_secs(3_900)), "1h 5m");
        assert_eq!(
            span(Duration::from_secs(3 * 86_400 + 4 * 3_600 + 59)),
            "3d 4h"
        );
    }

    #[test]
    fn relative_times_read_both_ways() {
        let now = at("2026-11-29T05:00:00Z");
        assert_eq!(relative(at("2026-11-29T05:29:00Z"), now), "in 29m");
        assert_eq!(relative(at("2026-11-29T04:57:00Z"), now), "3m ago");
        assert_eq!(ago(at("2026-11-29T04:57:00Z"), now), "3m ago");
        assert_eq!(ago(at("2026-11-29T05:00:02Z"), now), "just now");
        assert_eq!(relative(at("2026-11-29T05:09:59.998Z"), now), "in 10m");
        assert_eq!(
            expiry(at("2026-11-29T05:30:00Z"), now),
            "expires in 30m (2026-11-29 05:30:00 UTC)"
        );
    }

    #[test]
    fn shell_quoting_survives_quotes() {
        assert_eq!(shell_quote("abc_123"), "abc_123");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
