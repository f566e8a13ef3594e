//! What `POST /v1/exec` and `POST /v1/logs` share: the handle that ends a
//! running stream from outside (grant end, administrator), and the NDJSON
//! answer (`start`, then `stdout`/`stderr` pieces as they come, then the
//! `end` frame), so both data planes speak exactly the same protocol; and
//! their admission (the policy's decision, then the connection).

use std::convert::Infallible;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use periscope_api::{EXEC_CONTENT_TYPE, ExecFrame};
use periscope_audit::actions::Action;
use periscope_exec::run::{EndReason, Outcome, Output};
use periscope_policy::{Allowance, ConnectionConfig};
use periscope_shield::grants::GrantEvent;
use periscope_shield::grants::{CutNotice, SessionCut};
use periscope_shield::masking::MaskCounts;
use periscope_shield::record::AuditSink;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::Failure;
use crate::audit_sink::{GatewaySink, SessionContext};
use crate::gateway::{Caller, Gateway};
use crate::sessions::NewSession;

/// A streaming request the policy let through.
pub(super) struct Admitted {
    /// The grant bus, subscribed before the decision read the grants, so a
    /// grant that ends from then on cannot be missed.
    pub(super) bus: broadcast::Receiver<GrantEvent>,
    /// The decision the stream runs under.
    pub(super) allowance: Allowance,
    /// The connection, as configured now.
    pub(super) conn: ConnectionConfig,
}

/// Who opens a command-plane stream (exec, logs, shell), and from where.
pub(super) struct Opener<'a> {
    pub(super) gateway: &'a Gateway,
    pub(super) caller: &'a Caller,
    pub(super) client_addr: std::net::SocketAddr,
    /// The agent acting for the caller (an MCP client), when one is.
    pub(super) agent: Option<crate::agent::Agent>,
    /// What the registry and the audit call the client (`periscope exec`).
    pub(super) application: &'static str,
}

/// A stream's session, started: its audit sink (every event carrying the
/// identity, the connection, the grants and the agent), holding its entry
/// in the session registry, and the session's id.
pub(super) struct StreamSession {
    pub(super) sink: GatewaySink,
    pub(super) session: String,
}

impl Opener<'_> {
    /// Starts the session of a stream on `connection` under `allowance`,
    /// listening to `bus` for the end of its grants: registers it, then
    /// makes its `start` event durable (the common details, `session`,
    /// `via`, `client_addr`, `token_id` and `grants`, plus the kind's own
    /// `details`) before anything runs. When the audit log cannot take the
    /// event, the stream does not start and the failure says what did not
    /// happen (`not_done`, e.g. "the command was not started").
    pub(super) async fn start(
        self,
        connection: &str,
        allowance: &Allowance,
        bus: broadcast::Receiver<GrantEvent>,
        start: Action,
        details: serde_json::Value,
        not_done: &str,
    ) -> Result<StreamSession, Failure> {
        let grants: Vec<String> = allowance
            .shields()
            .grant_ids()
            .into_iter()
            .map(str::to_string)
            .collect();
        let identity = self.caller.name().to_string();
        let sink = GatewaySink::new(SessionContext {
            gateway: self.gateway.clone(),
            identity: identity.clone(),
            connection: connection.to_string(),
            client_addr: self.client_addr,
            application_name: Some(self.application.into()),
            agent: self.agent,
            client_tls: true,
            credential: "api_token",
            token_id: self.caller.token_id.clone(),
            roles: allowance
                .role_names()
                .iter()
                .map(|r| r.to_string())
                .collect(),
            grants: grants.clone(),
            allowance: allowance.clone(),
            bus: Mutex::new(Some(bus)),
        });
        let guard = self.gateway.sessions().register(NewSession {
            identity,
            connection: connection.to_string(),
            grants: grants.clone(),
            client_addr: self.client_addr,
            application_name: Some(self.application.into()),
            started_at: self.gateway.now(),
        });
        let session = guard.id().to_string();
        let mut all = serde_json::json!({
            "session": session,
            "via": "api",
            "client_addr": self.client_addr.to_string(),
            "token_id": self.caller.token_id,
            "grants": grants,
        });
        if let (Some(map), serde_json::Value::Object(own)) = (all.as_object_mut(), details) {
            map.extend(own);
        }
        let mut draft = sink.draft(start).with_details(all);
        for g in &grants {
            draft = draft.with_grant(g.clone());
        }
        sink.submit(draft)
            .await
            .map_err(|e| Failure::unavailable(format!("{e}; {not_done}")))?;
        sink.keep(guard);
        Ok(StreamSession { sink, session })
    }
}

/// The policy's decision for `caller` on `connection` (`purpose` names the
/// request in the decision's audit), then the connection itself. A refusal
/// says why and how to see one's access.
pub(super) async fn admit(
    gateway: &Gateway,
    caller: &Caller,
    connection: &str,
    purpose: &str,
) -> Result<Admitted, Failure> {
    let bus = gateway.subscribe();
    let decision = gateway
        .authorize(&caller.policy_identity, connection, purpose)
        .await?
        .map_err(|reason| {
            Failure::forbidden(reason.user_message())
                .with_hint("`periscope policy explain` shows your access")
        })?;
    let Some(allowance) = decision.allowance().cloned() else {
        return Err(Failure::internal(
            "an allowed decision without an allowance",
        ));
    };
    let Some(conn) = gateway.config().config.connection(connection).cloned() else {
        return Err(Failure::not_found(format!(
            "connection `{connection}` does not exist"
        )));
    };
    Ok(Admitted {
        bus,
        allowance,
        conn,
    })
}

/// Distinguishes streaming sessions in the grant watcher's logs.
static NEXT_CUT_ID: AtomicU64 = AtomicU64::new(1);

/// Ends a running command or log read from outside: the run waits on the
/// receiver handed out by [`StreamCut::new`].
pub(super) struct StreamCut {
    id: u64,
    tx: Mutex<Option<oneshot::Sender<CutNotice>>>,
}

impl StreamCut {
    /// A cut, and the receiver its run waits on.
    pub(super) fn new() -> (StreamCut, oneshot::Receiver<CutNotice>) {
        let (tx, rx) = oneshot::channel();
        let cut = StreamCut {
            id: NEXT_CUT_ID.fetch_add(1, Ordering::Relaxed),
            tx: Mutex::new(Some(tx)),
        };
        (cut, rx)
    }
}

impl SessionCut for StreamCut {
    fn cut(&self, notice: CutNotice) {
        if let Some(tx) = self.tx.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = tx.send(notice);
        }
    }

    fn session_id(&self) -> u64 {
        self.id
    }
}

/// One NDJSON line.
fn frame(f: &ExecFrame) -> Bytes {
    let mut line = serde_json::to_vec(f).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

/// Where the answer's body is.
enum BodyState {
    Start {
        session: String,
        out_rx: mpsc::Receiver<Output>,
        end_rx: oneshot::Receiver<ExecFrame>,
    },
    Output {
        out_rx: mpsc::Receiver<Output>,
        end_rx: oneshot::Receiver<ExecFrame>,
    },
    Done,
}

/// The streamed answer: `start` with the session id, each output piece as
/// the run sends it (the channel's bound is the back-pressure), then the
/// `end` frame; a run that ends without one ends the body.
pub(super) fn ndjson_response(
    session: String,
    out_rx: mpsc::Receiver<Output>,
    end_rx: oneshot::Receiver<ExecFrame>,
) -> Response {
    let state = BodyState::Start {
        session,
        out_rx,
        end_rx,
    };
    let stream = futures_util::stream::unfold(state, |state| async move {
        match state {
            BodyState::Start {
                session,
                out_rx,
                end_rx,
            } => Some((
                Ok::<Bytes, Infallible>(frame(&ExecFrame::Start { session })),
                BodyState::Output { out_rx, end_rx },
            )),
            BodyState::Output { mut out_rx, end_rx } => match out_rx.recv().await {
                Some(Output::Stdout(data)) => Some((
                    Ok(frame(&ExecFrame::Stdout { data })),
                    BodyState::Output { out_rx, end_rx },
                )),
                Some(Output::Stderr(data)) => Some((
                    Ok(frame(&ExecFrame::Stderr { data })),
                    BodyState::Output { out_rx, end_rx },
                )),
                None => match end_rx.await {
                    Ok(end) => Some((Ok(frame(&end)), BodyState::Done)),
                    Err(_) => None,
                },
            },
            BodyState::Done => None,
        }
    });
    let mut response = (StatusCode::OK, Body::from_stream(stream)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(EXEC_CONTENT_TYPE),
    );
    response
}

/// The details every stream's end event shares (`exec.end`, `logs.end`,
/// `shell.end`): the session, why it ended, the exit, the masked counts per
/// entity, the duration and, when the gateway cut it, why; each kind adds
/// its own byte counts.
pub(super) fn end_details(session: &str, outcome: &Outcome) -> serde_json::Value {
    let mut counts = MaskCounts::default();
    counts.merge_entities(&outcome.masked);
    serde_json::json!({
        "session": session,
        "reason": outcome.reason.code(),
        "exit_code": outcome.exit_code,
        "signal": outcome.signal,
        "masked": counts.to_json(),
        "duration_ms": u64::try_from(outcome.duration.as_millis()).unwrap_or(u64::MAX),
        "message": match &outcome.reason {
            EndReason::Cut(n) => Some(n.message.clone()),
            _ => None,
        },
    })
}

/// [`end_details`] with a kind's own fields added.
pub(super) fn end_details_with(
    session: &str,
    outcome: &Outcome,
    extra: serde_json::Value,
) -> serde_json::Value {
    let mut details = end_details(session, outcome);
    if let (Some(map), serde_json::Value::Object(extra)) = (details.as_object_mut(), extra) {
        map.extend(extra);
    }
    details
}
