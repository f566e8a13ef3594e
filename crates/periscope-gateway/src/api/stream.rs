//! What `POST /v1/exec` and `POST /v1/logs` share: the handle that ends a
//! running stream from outside (grant end, administrator), and the NDJSON
//! answer (`start`, then `stdout`/`stderr` pieces as they come, then the
//! `end` frame), so both data planes speak exactly the same protocol.

use std::convert::Infallible;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use periscope_api::{EXEC_CONTENT_TYPE, ExecFrame};
use periscope_exec::run::Output;
use periscope_shield::grants::{CutNotice, SessionCut};
use tokio::sync::{mpsc, oneshot};

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
