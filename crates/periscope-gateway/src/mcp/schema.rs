//! `schema_describe`: the tables and columns of a PostgreSQL connection with
//! how each column reaches the caller now.
//!
//! The column list is read upstream with the connection's injected
//! credentials (read-only, like discovery), names and types only, never a
//! value; each column is then classified by the shield crate's own
//! [`column_shield`] under the caller's decision (configured and discovered
//! tags, `periscope:` comment tags, name classification, the caller's
//! grants), so what this tool says is what a `query` will do.

use std::time::Duration;

use periscope_pg_wire::{Limits, UpstreamConnection};
use periscope_policy::ConnectionKind;
use periscope_shield::catalog::{ColumnInfo, Sensitivity, column_shield, comment_tag};
use serde::Serialize;

use super::outcome::{Outcome, Refusal};
use crate::gateway::{Caller, Gateway};
use crate::upstream::upstream_target;

/// How long reaching the upstream may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Most columns described in one call (a filter narrows it).
const MAX_COLUMNS: usize = 2_000;

/// One column as the caller will see it.
#[derive(Debug, Serialize)]
struct Column {
    name: String,
    #[serde(rename = "type")]
    type_name: String,
    /// The placeholder its values become (`[email]`), when masked whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    masked_as: Option<String>,
    /// The entity or tag that makes it sensitive.
    #[serde(skip_serializing_if = "Option::is_none")]
    sensitivity: Option<String>,
    /// The masking operator (`redact`, `partial`, `token`, `drop`).
    #[serde(skip_serializing_if = "Option::is_none")]
    operator: Option<String>,
    /// The shield a grant would lift to see it (`unmask:email`).
    #[serde(skip_serializing_if = "Option::is_none")]
    lifted_by: Option<String>,
}

/// One table.
#[derive(Debug, Serialize)]
struct Table {
    schema: String,
    table: String,
    columns: Vec<Column>,
}

/// The outcome of `schema_describe`.
pub(crate) async fn describe(
    gateway: &Gateway,
    caller: &Caller,
    connection: &str,
    schema: Option<&str>,
    table: Option<&str>,
) -> Outcome {
    if schema
        .into_iter()
        .chain(table)
        .any(|name| name.contains('\0'))
    {
        return Outcome::failed(
            "a schema or table name cannot contain a NUL character",
            None,
        );
    }
    let decision = match gateway
        .authorize(&caller.policy_identity, connection, "mcp")
        .await
    {
        Ok(Ok(d)) => d,
        Ok(Err(reason)) => {
            return Outcome::refused(
                reason.user_message(),
                Refusal {
                    detail: Some("`policy_explain` shows your access".into()),
                    ..Refusal::default()
                },
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "schema_describe: cannot decide");
            return Outcome::failed(
                "the gateway cannot decide right now; try again shortly",
                None,
            );
        }
    };
    let Some(allowance) = decision.allowance().cloned() else {
        return Outcome::failed(
            "the gateway cannot decide right now; try again shortly",
            None,
        );
    };
    let config = gateway.config();
    let Some(conn) = config.config.connection(connection) else {
        return Outcome::failed(format!("connection `{connection}` does not exist"), None);
    };
    if conn.kind != ConnectionKind::Postgres {
        return Outcome::failed(
            format!("connection `{connection}` is not a PostgreSQL connection"),
            Some("exec runs its commands".into()),
        );
    }
    let Ok(target) = upstream_target(
        conn,
        vec![("default_transaction_read_only".into(), "on".into())],
    ) else {
        return Outcome::failed(
            format!(
                "the upstream of connection `{connection}` is not reachable with its credentials; ask an administrator"
            ),
            None,
        );
    };
    let mut upstream = match UpstreamConnection::open(
        &target,
        &[("application_name", "periscope-mcp-schema")],
        CONNECT_TIMEOUT,
        Limits::DEFAULT,
    )
    .await
    {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!(connection, error = %e, "schema_describe: upstream unreachable");
            return Outcome::failed(
                format!("could not reach the upstream of connection `{connection}`"),
                None,
            );
        }
    };
    let mut filter = String::new();
    if let Some(s) = schema {
        filter.push_str(&format!(" AND n.nspname = {}", literal(s)));
    }
    if let Some(t) = table {
        filter.push_str(&format!(" AND c.relname = {}", literal(t)));
    }
    let sql = format!(
        "SELECT n.nspname, c.relname, a.attname, \
                pg_catalog.format_type(a.atttypid, a.atttypmod), \
                COALESCE(pg_catalog.col_description(c.oid, a.attnum), '') \
         FROM pg_catalog.pg_attribute a \
         JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') \
           AND a.attnum > 0 AND NOT a.attisdropped \
           AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
           AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'{filter} \
         ORDER BY n.nspname, c.relname, a.attnum \
         LIMIT {}",
        MAX_COLUMNS + 1
    );
    let rows = upstream.session().simple_query(&sql).await;
    upstream.close().await;
    let rows = match rows {
        Ok(sets) => sets.into_iter().next().unwrap_or_default(),
        Err(e) => {
            tracing::warn!(connection, error = %e, "schema_describe: catalog query failed");
            return Outcome::failed(
                format!("could not read the catalog of connection `{connection}`"),
                None,
            );
        }
    };
    let truncated = rows.len() > MAX_COLUMNS;
    let mut tables: Vec<Table> = Vec::new();
    for row in rows.into_iter().take(MAX_COLUMNS) {
        let get = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
        let (schema, table, column, type_name, comment) = (get(0), get(1), get(2), get(3), get(4));
        let info = ColumnInfo {
            schema: schema.clone(),
            table: table.clone(),
            column: column.clone(),
            type_id: 0,
            type_name: type_name.clone(),
            comment_tag: comment_tag(&comment),
            system: None,
        };
        let shield = column_shield(&info, allowance.shields());
        let described = Column {
            name: column,
            type_name,
            masked_as: shield.as_ref().map(|s| s.sensitivity.placeholder()),
            sensitivity: shield.as_ref().map(|s| s.sensitivity.count_key()),
            operator: shield.as_ref().map(|s| s.operator.to_string()),
            lifted_by: shield.as_ref().and_then(|s| match &s.sensitivity {
                Sensitivity::Sampled => None,
                other => Some(format!("unmask:{}", other.count_key())),
            }),
        };
        match tables.last_mut() {
            Some(t) if t.schema == schema && t.table == table => t.columns.push(described),
            _ => tables.push(Table {
                schema,
                table,
                columns: vec![described],
            }),
        }
    }
    Outcome::completed(serde_json::json!({
        "connection": connection,
        "tables": tables,
        "truncated": truncated,
        "note": "columns without masked_as are shown, but their values are still scanned and \
                 personal data in them is masked",
    }))
}

/// A SQL string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
