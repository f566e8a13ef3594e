//! The corpus as SQL text: `CREATE TABLE` and `COPY … FROM STDIN` in the text
//! format, ready for `psql -f` or a driver's `COPY` stream.
//!
//! Writing goes to any [`std::io::Write`] the caller hands in, row by row,
//! so a hundred tables of a million rows never sit in memory.

use std::io::{self, Write};

use super::{Corpus, Table};

impl Corpus {
    /// Writes every table: schema, `DROP`/`CREATE TABLE`, then its rows as a
    /// `COPY` block. At most `max_rows` rows per table (tables smaller on
    /// purpose keep their size).
    pub fn write_sql<W: Write>(&self, max_rows: u64, w: &mut W) -> io::Result<()> {
        let mut schemas: Vec<&str> = self.tables.iter().map(|t| t.schema.as_str()).collect();
        schemas.sort_unstable();
        schemas.dedup();
        for s in schemas {
            writeln!(w, "CREATE SCHEMA IF NOT EXISTS {s};")?;
        }
        for t in &self.tables {
            self.write_table_sql(t, t.rows.min(max_rows), w)?;
        }
        Ok(())
    }

    /// Writes one table's DDL and its first `rows` rows; tables are
    /// independent, so a loader may write them in parallel.
    pub fn write_table_sql<W: Write>(&self, table: &Table, rows: u64, w: &mut W) -> io::Result<()> {
        let qualified = format!("{}.{}", table.schema, table.name);
        writeln!(w, "DROP TABLE IF EXISTS {qualified};")?;
        let columns: Vec<String> = table
            .columns
            .iter()
            .map(|c| format!("{} {}", c.name, c.sql_type))
            .collect();
        writeln!(w, "CREATE TABLE {qualified} ({});", columns.join(", "))?;
        let names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
        writeln!(w, "COPY {qualified} ({}) FROM STDIN;", names.join(", "))?;
        let mut line = String::new();
        for row in 0..rows {
            line.clear();
            for i in 0..table.columns.len() {
                if i > 0 {
                    line.push('\t');
                }
                match self.value(table, i, row) {
                    None => line.push_str("\\N"),
                    Some(v) => copy_escape(&v, &mut line),
                }
            }
            line.push('\n');
            w.write_all(line.as_bytes())?;
        }
        writeln!(w, "\\.")
    }
}

/// Escapes a value for `COPY` text format.
fn copy_escape(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_escapes() {
        let mut s = String::new();
        copy_escape("a\\b\tc\nd\"e", &mut s);
        assert_eq!(s, "a\\\\b\\tc\\nd\"e");
    }
}
