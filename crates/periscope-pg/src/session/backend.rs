//! Server messages: each matched to the client message it answers, row
//! shapes planned, rows and COPY data masked as they stream, errors and
//! notices scanned, and each statement's outcome recorded.

use std::sync::Arc;

use bytes::BufMut;
use periscope_pg_wire::backend::{BackendMessage, NoticeFields, tag as btag};
use periscope_pg_wire::codec::Frame;
use periscope_pg_wire::frontend::{put_cstr, put_frame};
use periscope_pg_wire::hooks::{BackendAction, SessionEnd};
use periscope_pg_wire::{PgError, sqlstate};
use periscope_shield::masking::MaskCounts;
use periscope_shield::record::{AuditSink, Outcome, ResultSample};
use periscope_shield::statement::StatementRef;
use periscope_sql::StatementClass;

use super::ShieldedSession;
use super::state::{Pending, Portal, Run};
use crate::copy::CopyMasker;
use crate::plan::{FieldInfo, RowPlan};
use crate::sample::PgSample;

fn bad_upstream(what: &str) -> PgError {
    PgError::fatal(
        sqlstate::PROTOCOL_VIOLATION,
        format!("the upstream server sent an unexpected {what}; the session was closed"),
    )
}

impl<A: AuditSink> ShieldedSession<A> {
    /// Records a statement's outcome; `tag` is its CommandComplete tag,
    /// whose last word is the row count when there is one.
    fn outcome(&mut self, run: &mut Run, error: Option<&str>, tag: Option<&str>) {
        let rows = tag
            .and_then(|t| t.rsplit(' ').next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(run.rows);
        let sample = run
            .sample
            .take()
            .filter(|s| !s.is_empty())
            .map(|s| Box::new(s) as Box<dyn ResultSample>);
        self.recorder.outcome(Outcome {
            sample,
            stmt: run.stmt.as_ref(),
            query_seq: run.query_seq.load(std::sync::atomic::Ordering::Relaxed),
            rows,
            started: run.started,
            counts: &run.counts,
            error,
        });
    }

    /// Statements still running when the session ends get their outcome too,
    /// so that every `query` event that ran upstream has a `query.result`:
    /// an error with the SQLSTATE a client would see for the cause.
    pub(super) fn interrupted_outcomes(&mut self, end: &SessionEnd) {
        let code = match end {
            SessionEnd::UpstreamLost(_) => sqlstate::CONNECTION_FAILURE,
            SessionEnd::ClientClosed => sqlstate::CONNECTION_DOES_NOT_EXIST,
            SessionEnd::Terminated(_) => sqlstate::ADMIN_SHUTDOWN,
            SessionEnd::Failed(_) => sqlstate::INTERNAL_ERROR,
        };
        for pending in std::mem::take(&mut self.state.pending) {
            match pending {
                // A query string's current statement, unless it already
                // failed (the server skips the rest) or all have finished.
                Pending::Query(mut q) if !q.failed && q.index < q.seqs.len() => {
                    self.outcome(&mut q.run, Some(code), None);
                }
                Pending::Execute { mut run, .. } => self.outcome(&mut run, Some(code), None),
                _ => {}
            }
        }
    }

    /// What a statement that ran changed: the catalog after DDL, the
    /// session's `search_path`, its SQL-level names.
    fn after_success(&mut self, run: &Run) {
        let Some(st) = run.stmt.as_ref().and_then(StatementRef::get) else {
            return;
        };
        if st.is_ddl()
            && let Some(c) = &self.catalog
        {
            c.mark_stale();
        }
        if self.state.apply(&st.effects) {
            self.options.search_path = self.state.search_path();
        }
    }

    fn plan_for(&self, stmt: Option<&StatementRef>, fields: &[FieldInfo]) -> RowPlan {
        let (Some(masking), Some(catalog)) = (&self.masking, &self.catalog) else {
            return RowPlan::all_unknown(fields.len());
        };
        let outputs = stmt
            .and_then(StatementRef::get)
            .and_then(|st| self.state.outputs_of(st));
        RowPlan::for_result(masking, catalog, outputs, fields)
    }

    fn rewrite_description(&mut self, frame: Frame<'_>, plan: &RowPlan) -> BackendAction {
        let Ok(BackendMessage::RowDescription(desc)) = BackendMessage::decode(frame) else {
            return BackendAction::Terminate(bad_upstream("RowDescription"));
        };
        self.scratch.clear();
        match plan.rewrite_description(&desc, &mut self.scratch) {
            Ok(Some(_)) => BackendAction::Rewrite(self.scratch.split().freeze()),
            Ok(None) => BackendAction::Forward,
            Err(_) => BackendAction::Terminate(bad_upstream("RowDescription")),
        }
    }

    /// Rewrites the description as for the client and, when the session
    /// is recorded, keeps what the client is (or would be) sent on the
    /// plan, for the result samples; the plan is then shared.
    fn describe(&mut self, frame: Frame<'_>, mut plan: RowPlan) -> (BackendAction, Arc<RowPlan>) {
        let action = self.rewrite_description(frame, &plan);
        if self.setup.sample.is_some() {
            let rewritten = match &action {
                BackendAction::Rewrite(b) => Some(b),
                _ => None,
            };
            plan.shown = Some(crate::sample::shown(frame.as_bytes(), rewritten));
        }
        (action, Arc::new(plan))
    }

    fn fields_of(frame: Frame<'_>) -> Option<Vec<FieldInfo>> {
        match BackendMessage::decode(frame) {
            Ok(BackendMessage::RowDescription(desc)) => {
                Some(desc.fields().map(|f| FieldInfo::of(&f)).collect())
            }
            _ => None,
        }
    }

    fn on_row_description(&mut self, frame: Frame<'_>) -> BackendAction {
        let Some(fields) = Self::fields_of(frame) else {
            return BackendAction::Terminate(bad_upstream("RowDescription"));
        };
        match self.state.pending.front() {
            Some(Pending::Query(q)) => {
                let stmt = q.run.stmt.clone();
                let plan = self.plan_for(stmt.as_ref(), &fields);
                let (action, plan) = self.describe(frame, plan);
                if let Some(Pending::Query(q)) = self.state.pending.front_mut() {
                    q.run.plan = Some(plan);
                }
                action
            }
            Some(Pending::DescribeStatement { name }) => {
                let stmt = self.state.statements.get(name).and_then(|p| p.stmt.clone());
                let plan = self.plan_for(stmt.as_ref(), &fields);
                self.state.pending.pop_front();
                self.rewrite_description(frame, &plan)
            }
            Some(Pending::DescribePortal {
                name,
                injected,
                stmt,
            }) => {
                let (name, injected, stmt) = (name.clone(), *injected, stmt.clone());
                let plan = self.plan_for(stmt.as_ref(), &fields);
                self.state.pending.pop_front();
                let (action, plan) = if injected && self.setup.sample.is_none() {
                    (BackendAction::Drop, Arc::new(plan))
                } else {
                    let (action, plan) = self.describe(frame, plan);
                    (
                        if injected {
                            BackendAction::Drop
                        } else {
                            action
                        },
                        plan,
                    )
                };
                // The Execute this describes (the next one of the portal)
                // masks its rows with this plan, even if the portal was
                // closed or bound again meanwhile.
                for pending in self.state.pending.iter_mut() {
                    if let Pending::Execute { portal, run } = pending
                        && *portal == name
                    {
                        if run.plan.is_none() {
                            run.plan = Some(Arc::clone(&plan));
                        }
                        break;
                    }
                }
                let same_statement =
                    |a: &Option<StatementRef>, b: &Option<StatementRef>| match (a, b) {
                        (Some(a), Some(b)) => {
                            Arc::ptr_eq(&a.analysis, &b.analysis) && a.index == b.index
                        }
                        (None, None) => true,
                        _ => false,
                    };
                match self.state.portals.get_mut(&name) {
                    Some(p) if same_statement(&p.stmt, &stmt) => p.plan = Some(plan),
                    Some(_) => {}
                    None => {
                        // A SQL cursor used as a portal (psycopg's named
                        // cursors describe it): its DECLARE's plan.
                        self.state.portals.insert(
                            name,
                            Portal {
                                name_of_statement: String::new(),
                                stmt,
                                plan: Some(plan),
                            },
                        );
                    }
                }
                action
            }
            _ => {
                // Unexpected: mask whatever this describes.
                let plan = RowPlan::all_unknown(fields.len());
                self.rewrite_description(frame, &plan)
            }
        }
    }

    fn on_data_row(&mut self, frame: Frame<'_>) -> BackendAction {
        let Ok(BackendMessage::DataRow(row)) = BackendMessage::decode(frame) else {
            return BackendAction::Terminate(bad_upstream("DataRow"));
        };
        let Some(masking) = self.masking.as_ref() else {
            return BackendAction::Terminate(bad_upstream("DataRow before the catalog"));
        };
        let unknown = || Arc::new(RowPlan::all_unknown(row.len()));
        let (plan, run): (Arc<RowPlan>, &mut Run) = match self.state.pending.front_mut() {
            Some(Pending::Query(q)) => (q.run.plan.clone().unwrap_or_else(unknown), &mut q.run),
            Some(Pending::Execute { portal, run }) => {
                let plan = run
                    .plan
                    .clone()
                    .or_else(|| {
                        self.state
                            .portals
                            .get(portal.as_str())
                            .and_then(|p| p.plan.clone())
                    })
                    .unwrap_or_else(unknown);
                (plan, run.as_mut())
            }
            _ => {
                // A row nobody asked for: nothing of it is shown unmasked.
                let plan = RowPlan::all_unknown(row.len());
                let mut counts = MaskCounts::default();
                self.scratch.clear();
                return match plan.mask_row(masking, &row, &mut self.scratch, &mut counts) {
                    Ok(Some(_)) => BackendAction::Rewrite(self.scratch.split().freeze()),
                    Ok(None) => BackendAction::Forward,
                    Err(_) => BackendAction::Terminate(bad_upstream("DataRow")),
                };
            }
        };
        run.rows += 1;
        self.scratch.clear();
        let action = match plan.mask_row(masking, &row, &mut self.scratch, &mut run.counts) {
            Ok(Some(_)) => BackendAction::Rewrite(self.scratch.split().freeze()),
            Ok(None) => BackendAction::Forward,
            Err(_) => return BackendAction::Terminate(bad_upstream("DataRow")),
        };
        if let Some(limits) = self.setup.sample {
            // The row as the client gets it, within the sample's limits.
            let sent = match &action {
                BackendAction::Rewrite(b) => &b[..],
                _ => frame.as_bytes(),
            };
            run.sample
                .get_or_insert_with(|| PgSample::new(limits))
                .push(&plan, sent);
        }
        action
    }

    fn on_copy_out(&mut self, frame: Frame<'_>) -> BackendAction {
        let Ok(BackendMessage::CopyOutResponse(resp)) = BackendMessage::decode(frame) else {
            return BackendAction::Terminate(bad_upstream("CopyOutResponse"));
        };
        if resp.binary {
            return BackendAction::Terminate(PgError::fatal(
                sqlstate::INSUFFICIENT_PRIVILEGE,
                "binary COPY output cannot be masked; the session was closed",
            ));
        }
        let columns = resp.column_formats().count();
        let Some(run) = self.state.current_run() else {
            return BackendAction::Terminate(bad_upstream("CopyOutResponse"));
        };
        let stmt = run.stmt.clone();
        let st = stmt.as_ref().and_then(StatementRef::get);
        let format = match st.map(|st| &st.class) {
            Some(StatementClass::CopyTo { format, .. }) => format.rows().ok().cloned(),
            _ => None,
        };
        let plan = match (&self.masking, &self.catalog, st) {
            (Some(m), Some(c), Some(st)) => {
                RowPlan::for_copy(m, c, self.state.outputs_of(st), columns)
            }
            _ => RowPlan::all_unknown(columns),
        };
        match format {
            Some(format) => {
                if let Some(run) = self.state.current_run() {
                    run.copy = Some(CopyMasker::new(format, plan));
                }
                BackendAction::Forward
            }
            None => BackendAction::Terminate(PgError::fatal(
                sqlstate::INSUFFICIENT_PRIVILEGE,
                "the format of this COPY output cannot be read by the masking stage; the session was closed",
            )),
        }
    }

    fn on_copy_data(&mut self, frame: Frame<'_>) -> BackendAction {
        let Some(masking) = self.masking.clone() else {
            return BackendAction::Terminate(bad_upstream("CopyData"));
        };
        let Some(run) = self.state.current_run() else {
            return BackendAction::Terminate(bad_upstream("CopyData"));
        };
        let Some(copy) = run.copy.as_mut() else {
            return BackendAction::Terminate(bad_upstream("CopyData without CopyOutResponse"));
        };
        let masked = copy.mask_row(&masking, frame.body(), &mut run.counts);
        run.rows += 1;
        if let Some(limits) = self.setup.sample {
            // The line as the client gets it, within the sample's limits.
            let sent = masked.as_deref().unwrap_or(frame.body());
            run.sample
                .get_or_insert_with(|| PgSample::new(limits))
                .push_copy(sent);
        }
        match masked {
            None => BackendAction::Forward,
            Some(body) => {
                self.scratch.clear();
                put_frame(&mut self.scratch, btag::COPY_DATA, |o| {
                    o.extend_from_slice(&body)
                });
                BackendAction::Rewrite(self.scratch.split().freeze())
            }
        }
    }

    fn on_command_complete(&mut self, frame: Frame<'_>) -> BackendAction {
        let tag = match BackendMessage::decode(frame) {
            Ok(BackendMessage::CommandComplete { tag }) => tag.to_string(),
            _ => return BackendAction::Terminate(bad_upstream("CommandComplete")),
        };
        match self.state.pending.front_mut() {
            Some(Pending::Query(q)) => {
                let next_index = q.index + 1;
                let next = q.analysis.as_ref().map(|a| StatementRef {
                    analysis: Arc::clone(a),
                    index: next_index,
                    sql: Arc::clone(&q.sql),
                });
                let seq = q.seqs.get(next_index).cloned().unwrap_or_default();
                let mut finished = std::mem::replace(&mut q.run, Run::new(next, seq));
                q.index = next_index;
                self.after_success(&finished);
                self.outcome(&mut finished, None, Some(&tag));
            }
            Some(Pending::Execute { .. }) => {
                if let Some(Pending::Execute { mut run, .. }) = self.state.pending.pop_front() {
                    self.after_success(&run);
                    self.outcome(&mut run, None, Some(&tag));
                }
            }
            _ => {}
        }
        BackendAction::Forward
    }

    fn on_error(&mut self, frame: Frame<'_>) -> BackendAction {
        let code = match BackendMessage::decode(frame) {
            Ok(BackendMessage::ErrorResponse(fields)) => fields.code().unwrap_or("").to_string(),
            _ => return BackendAction::Terminate(bad_upstream("ErrorResponse")),
        };
        match self.state.pending.front_mut() {
            Some(Pending::Query(q)) if !q.failed => {
                q.failed = true;
                let mut run = std::mem::replace(&mut q.run, Run::new(None, Arc::default()));
                self.outcome(&mut run, Some(&code), None);
            }
            Some(Pending::Query(_)) => {}
            Some(_) => {
                // The failed message and the rest of its batch are skipped
                // by the server until Sync.
                while let Some(front) = self.state.pending.front() {
                    if matches!(front, Pending::Sync | Pending::Query(_)) {
                        break;
                    }
                    if let Some(Pending::Execute { mut run, .. }) = self.state.pending.pop_front() {
                        self.outcome(&mut run, Some(&code), None);
                    }
                }
            }
            None => {}
        }
        self.scan_notice(frame)
    }

    fn on_ready(&mut self) {
        while let Some(front) = self.state.pending.pop_front() {
            if matches!(front, Pending::Sync | Pending::Query(_)) {
                break;
            }
        }
        // The unnamed portal does not survive the end of a batch.
        self.state.portals.remove("");
    }

    /// Errors and notices can quote values (`Key (email)=(...) already
    /// exists`): every text field is scanned.
    fn scan_notice(&mut self, frame: Frame<'_>) -> BackendAction {
        let Some(masking) = &self.masking else {
            return BackendAction::Forward;
        };
        let fields: NoticeFields<'_> = match BackendMessage::decode(frame) {
            Ok(BackendMessage::ErrorResponse(f) | BackendMessage::NoticeResponse(f)) => f,
            _ => return BackendAction::Forward,
        };
        let touched = |code: u8| !matches!(code, b'S' | b'V' | b'C');
        if !fields
            .iter()
            .any(|(code, value)| touched(code) && masking.might_mask(value))
        {
            return BackendAction::Forward;
        }
        let masker = masking.masker().clone();
        self.scratch.clear();
        put_frame(&mut self.scratch, frame.tag(), |o| {
            for (code, value) in fields.iter() {
                o.put_u8(code);
                if touched(code) {
                    put_cstr(o, &masker.mask_str(value).text);
                } else {
                    put_cstr(o, value);
                }
            }
            o.put_u8(0);
        });
        BackendAction::Rewrite(self.scratch.split().freeze())
    }

    fn on_notification(&mut self, frame: Frame<'_>) -> BackendAction {
        let Some(masking) = &self.masking else {
            return BackendAction::Forward;
        };
        let Ok(BackendMessage::NotificationResponse {
            process_id,
            channel,
            payload,
        }) = BackendMessage::decode(frame)
        else {
            return BackendAction::Terminate(bad_upstream("NotificationResponse"));
        };
        let Some(text) = masking.scan_text(payload, &mut MaskCounts::default()) else {
            return BackendAction::Forward;
        };
        self.scratch.clear();
        put_frame(&mut self.scratch, btag::NOTIFICATION_RESPONSE, |o| {
            o.put_i32(process_id);
            put_cstr(o, channel);
            put_cstr(o, &text);
        });
        BackendAction::Rewrite(self.scratch.split().freeze())
    }

    pub(super) fn handle_backend(&mut self, frame: Frame<'_>) -> BackendAction {
        match frame.tag() {
            btag::DATA_ROW => self.on_data_row(frame),
            btag::ROW_DESCRIPTION => self.on_row_description(frame),
            btag::COMMAND_COMPLETE => self.on_command_complete(frame),
            btag::COPY_DATA => self.on_copy_data(frame),
            btag::COPY_OUT_RESPONSE => self.on_copy_out(frame),
            btag::ERROR_RESPONSE => self.on_error(frame),
            btag::NOTICE_RESPONSE => self.scan_notice(frame),
            btag::NOTIFICATION_RESPONSE => self.on_notification(frame),
            btag::READY_FOR_QUERY => {
                self.on_ready();
                BackendAction::Forward
            }
            btag::NO_DATA => match self.state.pending.front() {
                Some(Pending::DescribePortal { injected, .. }) => {
                    let injected = *injected;
                    self.state.pending.pop_front();
                    if injected {
                        BackendAction::Drop
                    } else {
                        BackendAction::Forward
                    }
                }
                Some(Pending::DescribeStatement { .. }) => {
                    self.state.pending.pop_front();
                    BackendAction::Forward
                }
                _ => BackendAction::Forward,
            },
            btag::PARSE_COMPLETE | btag::BIND_COMPLETE | btag::CLOSE_COMPLETE => {
                if matches!(
                    self.state.pending.front(),
                    Some(Pending::Parse | Pending::Bind | Pending::Close)
                ) {
                    self.state.pending.pop_front();
                }
                BackendAction::Forward
            }
            btag::EMPTY_QUERY_RESPONSE | btag::PORTAL_SUSPENDED => {
                if let Some(Pending::Execute { .. }) = self.state.pending.front() {
                    if let Some(Pending::Execute { mut run, .. }) = self.state.pending.pop_front() {
                        self.outcome(&mut run, None, None);
                    }
                } else if let Some(Pending::Query(q)) = self.state.pending.front_mut() {
                    q.index += 1;
                }
                BackendAction::Forward
            }
            _ => BackendAction::Forward,
        }
    }
}
