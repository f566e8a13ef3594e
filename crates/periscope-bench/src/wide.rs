//! The wide PII result: `SELECT * FROM customers` read whole through one
//! endpoint, with the time to the first row, the wall time, and the peak
//! memory of the process in between (pgbouncer, gateway).

use std::collections::HashSet;
use std::time::Instant;

use anyhow::{Context as _, bail};
use futures_util::StreamExt as _;
use tokio_postgres::SimpleQueryMessage;

use crate::procfs;
use crate::setup::Endpoint;

/// The figures of one read.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// Rows received.
    pub rows: u64,
    /// Bytes of text values received.
    pub bytes: u64,
    /// Seconds from sending the query to the last row.
    pub wall_s: f64,
    /// Milliseconds from sending the query to the first row.
    pub first_row_ms: f64,
    /// Peak resident memory of the endpoint's process during the read, MiB.
    pub peak_rss_mib: Option<f64>,
    /// Resident memory of that process before the read, MiB.
    pub rss_before_mib: Option<f64>,
    /// Cells of the `email` column holding a seeded raw address.
    pub raw_emails: u64,
}

/// Reads the whole table once, in the simple protocol (text values, as psql).
pub async fn run(
    endpoint: &Endpoint,
    emails: &HashSet<String>,
    sql: &str,
) -> anyhow::Result<Outcome> {
    let config = endpoint.pg_config();
    let client = match &endpoint.ca {
        Some(ca) => {
            let (client, connection) = config.connect(crate::tls::connector(ca)?).await?;
            tokio::spawn(connection);
            client
        }
        None => {
            let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
            tokio::spawn(connection);
            client
        }
    };
    let rss_before = endpoint
        .pid
        .and_then(|pid| procfs::status_kib(pid, "VmRSS"));
    if let Some(pid) = endpoint.pid {
        procfs::reset_peak(pid).context("resetting VmHWM (needs Linux and permission)")?;
    }
    let started = Instant::now();
    let mut first_row = None;
    let mut rows = 0u64;
    let mut bytes = 0u64;
    let mut raw_emails = 0u64;
    let mut email_col = None;
    let stream = client.simple_query_raw(sql).await?;
    futures_util::pin_mut!(stream);
    while let Some(message) = stream.next().await {
        match message? {
            SimpleQueryMessage::RowDescription(columns) => {
                email_col = columns.iter().position(|c| c.name() == "email");
            }
            SimpleQueryMessage::Row(row) => {
                if first_row.is_none() {
                    first_row = Some(started.elapsed());
                }
                rows += 1;
                for i in 0..row.len() {
                    let value = row.get(i).unwrap_or_default();
                    bytes += value.len() as u64;
                    if Some(i) == email_col && emails.contains(value) {
                        raw_emails += 1;
                    }
                }
            }
            SimpleQueryMessage::CommandComplete(_) => {}
            _ => {}
        }
    }
    let wall = started.elapsed();
    let peak = endpoint
        .pid
        .and_then(|pid| procfs::status_kib(pid, "VmHWM"));
    if rows == 0 {
        bail!("{}: the wide query returned no row", endpoint.name);
    }
    Ok(Outcome {
        rows,
        bytes,
        wall_s: wall.as_secs_f64(),
        first_row_ms: first_row.unwrap_or(wall).as_secs_f64() * 1000.0,
        peak_rss_mib: peak.map(|k| k as f64 / 1024.0),
        rss_before_mib: rss_before.map(|k| k as f64 / 1024.0),
        raw_emails,
    })
}
