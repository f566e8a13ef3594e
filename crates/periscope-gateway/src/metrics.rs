//! Prometheus metrics, served at `GET /metrics`.
//!
//! One process-wide recorder (the `metrics` facade is global): the gateway
//! installs it at start, and every counter below is recorded through these
//! helpers so the names exist in exactly one place.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// HTTP requests served, by route template and status code.
pub const HTTP_REQUESTS: &str = "periscope_http_requests_total";
/// Grants in force now (across replicas: counted in the store).
pub const GRANTS_ACTIVE: &str = "periscope_grants_active";
/// Live proxy sessions on this gateway.
pub const SESSIONS_ACTIVE: &str = "periscope_sessions_active";
/// Audit events committed by this gateway.
pub const AUDIT_EVENTS: &str = "periscope_audit_events_total";
/// Audit transactions committed by this gateway's writer: events divided by
/// commits is how many events each commit (each fsync) carried.
pub const AUDIT_COMMITS: &str = "periscope_audit_commits_total";
/// Time to commit an audit event (durable), seconds.
pub const AUDIT_WRITE_SECONDS: &str = "periscope_audit_write_seconds";
/// Webhook deliveries that failed for good (after every retry) or were dropped.
pub const WEBHOOK_FAILURES: &str = "periscope_webhook_failures_total";

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder once per process. `None` when another
/// recorder was installed first (an embedding program's own); metrics then go
/// there and `/metrics` says so.
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(AUDIT_WRITE_SECONDS.to_string()),
                    &[
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                    ],
                )
                .expect("the bucket list is not empty");
            match builder.install_recorder() {
                Ok(handle) => {
                    describe();
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "another metrics recorder is installed; /metrics will be empty");
                    None
                }
            }
        })
        .clone()
}

fn describe() {
    metrics::describe_counter!(HTTP_REQUESTS, "HTTP requests served, by route and status");
    metrics::describe_gauge!(GRANTS_ACTIVE, "Grants in force now");
    metrics::describe_gauge!(SESSIONS_ACTIVE, "Live proxy sessions on this gateway");
    metrics::describe_counter!(AUDIT_EVENTS, "Audit events committed by this gateway");
    metrics::describe_counter!(
        AUDIT_COMMITS,
        "Audit transactions committed by this gateway's writer"
    );
    metrics::describe_histogram!(
        AUDIT_WRITE_SECONDS,
        metrics::Unit::Seconds,
        "Time to commit an audit event durably"
    );
    metrics::describe_counter!(
        WEBHOOK_FAILURES,
        "Webhook deliveries that failed after every retry, or were dropped"
    );
    // Gauges and counters appear at 0 from the first scrape, not only after
    // their first event.
    metrics::gauge!(GRANTS_ACTIVE).set(0.0);
    metrics::gauge!(SESSIONS_ACTIVE).set(0.0);
    metrics::counter!(AUDIT_EVENTS).increment(0);
    metrics::counter!(WEBHOOK_FAILURES).increment(0);
}

/// The Prometheus text exposition.
pub fn render() -> String {
    match HANDLE.get().and_then(Option::as_ref) {
        Some(handle) => handle.render(),
        None => "# metrics are recorded by another recorder in this process\n".to_string(),
    }
}

/// Drains histogram buffers; called periodically.
pub fn upkeep() {
    if let Some(handle) = HANDLE.get().and_then(Option::as_ref) {
        handle.run_upkeep();
    }
}

/// Counts one served HTTP request.
pub fn http_request(route: &str, status: u16) {
    metrics::counter!(HTTP_REQUESTS, "route" => route.to_string(), "status" => status.to_string())
        .increment(1);
}

/// Sets the number of grants in force.
pub fn grants_active(n: usize) {
    metrics::gauge!(GRANTS_ACTIVE).set(n as f64);
}

/// Sets the number of live sessions.
pub fn sessions_active(n: usize) {
    metrics::gauge!(SESSIONS_ACTIVE).set(n as f64);
}

/// Records how long someone waited for an audit commit.
pub fn audit_waited(took: Duration) {
    metrics::histogram!(AUDIT_WRITE_SECONDS).record(took.as_secs_f64());
}

/// Sets the audit counters when metrics are served: the events and commits
/// counted by the writer's own statistics (no per-event bookkeeping on the
/// hot path), plus the events committed inside other store transactions.
pub fn audit_totals(events: u64, commits: u64) {
    metrics::counter!(AUDIT_EVENTS).absolute(events);
    metrics::counter!(AUDIT_COMMITS).absolute(commits);
}

/// Counts a webhook delivery given up on.
pub fn webhook_failure() {
    metrics::counter!(WEBHOOK_FAILURES).increment(1);
}
