//! Client messages: each statement analysed and guarded before anything goes
//! upstream, its `query` event submitted, and what the server will owe
//! recorded in order.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use bytes::BufMut;
use periscope_pg_wire::codec::Frame;
use periscope_pg_wire::frontend::{FrontendMessage, Target, put_cstr, put_frame, tag as ftag};
use periscope_pg_wire::hooks::{CopyState, FrontendAction, ProtocolState};
use periscope_pg_wire::{PgError, sqlstate};
use periscope_shield::record::AuditSink;
use periscope_shield::statement::{self, Refusal, StatementRef};
use periscope_sql::Analysis;
use serde_json::Value;

use super::ShieldedSession;
use super::state::{Pending, Portal, Prepared, QueryRun, Run};
use crate::refusal::refusal_error;

impl<A: AuditSink> ShieldedSession<A> {
    /// Guards a whole query string: the first statement a shield stops
    /// refuses all of it.
    fn guard(&self, sql: &str) -> Result<Option<Arc<Analysis>>, Box<Refusal>> {
        let Some(catalog) = &self.catalog else {
            return Err(Box::new(statement::not_ready()));
        };
        statement::decide(
            sql,
            catalog.data().as_ref(),
            &self.setup.analyses,
            &self.options,
            &self.setup.allowance,
        )
    }

    /// Records the refusal and answers the client with it once recorded.
    fn refuse(
        &mut self,
        sql: &str,
        refused: Box<Refusal>,
        state: &ProtocolState,
        extended: bool,
    ) -> FrontendAction {
        let mut details = self.recorder.statement_details(None, sql);
        // The analysis (when it exists) gives the literal-free text.
        if let Some(catalog) = &self.catalog
            && let Ok(analysis) =
                self.setup
                    .analyses
                    .get_or_analyze(sql, catalog.data().as_ref(), &self.options)
        {
            details.insert("text".into(), Value::from(analysis.normalized()));
        }
        self.recorder.refusal(details, &refused);
        if (extended || state.in_extended_batch) && self.state.batch_forwarded {
            // The relay forwards this batch's Sync so the server closes it.
            self.state.pending.push_back(Pending::Sync);
            self.state.batch_forwarded = false;
        }
        FrontendAction::Refuse(refusal_error(&refused))
    }

    fn on_query(&mut self, sql: &str, state: &ProtocolState) -> FrontendAction {
        let analysis = match self.guard(sql) {
            Ok(a) => a,
            Err(refused) => return self.refuse(sql, refused, state, false),
        };
        let sql: Arc<str> = sql.into();
        let mut events = Vec::new();
        let mut seqs = Vec::new();
        match &analysis {
            Some(a) => {
                self.state.track_sql_names(a, &sql);
                for index in 0..a.statements.len() {
                    let r = StatementRef {
                        analysis: Arc::clone(a),
                        index,
                        sql: Arc::clone(&sql),
                    };
                    let seq = Arc::new(AtomicU64::new(0));
                    events.push((
                        self.recorder.statement_details(Some(&r), &sql),
                        Arc::clone(&seq),
                    ));
                    seqs.push(seq);
                }
            }
            None => {
                let seq = Arc::new(AtomicU64::new(0));
                events.push((
                    self.recorder.statement_details(None, &sql),
                    Arc::clone(&seq),
                ));
                seqs.push(seq);
            }
        }
        self.recorder.actions(events);
        let first = analysis.as_ref().map(|a| StatementRef {
            analysis: Arc::clone(a),
            index: 0,
            sql: Arc::clone(&sql),
        });
        let run = Run::new(first, seqs.first().cloned().unwrap_or_default());
        self.state
            .pending
            .push_back(Pending::Query(Box::new(QueryRun {
                analysis,
                sql,
                seqs,
                index: 0,
                run,
                failed: false,
            })));
        FrontendAction::Forward
    }

    fn on_parse(&mut self, name: &str, sql: &str, state: &ProtocolState) -> FrontendAction {
        let analysis = match self.guard(sql) {
            Ok(a) => a,
            Err(refused) => return self.refuse(sql, refused, state, true),
        };
        let sql: Arc<str> = sql.into();
        if let Some(a) = &analysis {
            self.state.track_sql_names(a, &sql);
        }
        let stmt = analysis.map(|analysis| StatementRef {
            analysis,
            index: 0,
            sql,
        });
        self.state
            .statements
            .insert(name.to_string(), Prepared { stmt });
        self.state.batch_forwarded = true;
        self.state.pending.push_back(Pending::Parse);
        FrontendAction::Forward
    }

    fn on_execute(&mut self, portal: &str, frame: Frame<'_>) -> FrontendAction {
        let known = self.state.portals.get(portal).cloned();
        let (stmt, statement_name, described) = match &known {
            Some(p) => (
                p.stmt.clone(),
                p.name_of_statement.clone(),
                p.plan.is_some(),
            ),
            None => (None, String::new(), false),
        };
        let seq = Arc::new(AtomicU64::new(0));
        let sql = stmt
            .as_ref()
            .map(|s| s.text().to_string())
            .unwrap_or_default();
        let mut details = self.recorder.statement_details(stmt.as_ref(), &sql);
        details.insert("protocol".into(), Value::from("extended"));
        details.insert("statement".into(), Value::from(statement_name));
        details.insert("portal".into(), Value::from(portal.to_string()));
        self.recorder.actions(vec![(details, Arc::clone(&seq))]);
        self.state.batch_forwarded = true;
        let mut run = Box::new(Run::new(stmt, seq));
        // The rows follow the plan of the portal as it is now, whatever a
        // later Close or Bind of the same name does before they arrive.
        run.plan = known.as_ref().and_then(|p| p.plan.clone());
        if described {
            self.state.pending.push_back(Pending::Execute {
                portal: portal.to_string(),
                run,
            });
            return FrontendAction::Forward;
        }
        // Nobody described this portal: describe it ourselves so its rows
        // are masked with the real shape, and drop the answer.
        self.scratch.clear();
        put_frame(&mut self.scratch, ftag::DESCRIBE, |o| {
            o.put_u8(b'P');
            put_cstr(o, portal);
        });
        self.scratch.extend_from_slice(frame.as_bytes());
        let bytes = self.scratch.split().freeze();
        self.state.pending.push_back(Pending::DescribePortal {
            name: portal.to_string(),
            injected: true,
            stmt: self.state.portal_statement(portal),
        });
        self.state.pending.push_back(Pending::Execute {
            portal: portal.to_string(),
            run,
        });
        FrontendAction::Replace(bytes)
    }

    pub(super) fn handle_frontend(
        &mut self,
        frame: Frame<'_>,
        state: &ProtocolState,
    ) -> FrontendAction {
        let msg = match FrontendMessage::decode(frame) {
            Ok(m) => m,
            Err(e) => {
                return FrontendAction::Terminate(PgError::fatal(
                    sqlstate::PROTOCOL_VIOLATION,
                    format!("invalid message: {e}"),
                ));
            }
        };
        match msg {
            FrontendMessage::Query { sql } => self.on_query(sql, state),
            FrontendMessage::Parse { name, sql, .. } => self.on_parse(name, sql, state),
            FrontendMessage::Bind(bind) => {
                let stmt = self.state.statement_named(bind.statement);
                self.state.portals.insert(
                    bind.portal.to_string(),
                    Portal {
                        name_of_statement: bind.statement.to_string(),
                        stmt,
                        plan: None,
                    },
                );
                self.state.batch_forwarded = true;
                self.state.pending.push_back(Pending::Bind);
                FrontendAction::Forward
            }
            FrontendMessage::Describe { target, name } => {
                self.state.batch_forwarded = true;
                self.state.pending.push_back(match target {
                    Target::Statement => Pending::DescribeStatement {
                        name: name.to_string(),
                    },
                    Target::Portal => Pending::DescribePortal {
                        name: name.to_string(),
                        injected: false,
                        stmt: self.state.portal_statement(name),
                    },
                });
                FrontendAction::Forward
            }
            FrontendMessage::Execute { portal, .. } => self.on_execute(portal, frame),
            FrontendMessage::Close { target, name } => {
                match target {
                    Target::Statement => {
                        self.state.statements.remove(name);
                    }
                    Target::Portal => {
                        self.state.portals.remove(name);
                    }
                }
                self.state.batch_forwarded = true;
                self.state.pending.push_back(Pending::Close);
                FrontendAction::Forward
            }
            FrontendMessage::Sync => {
                self.state.batch_forwarded = false;
                // The server ignores Sync while COPY FROM STDIN runs.
                if state.copy != CopyState::In {
                    self.state.pending.push_back(Pending::Sync);
                }
                FrontendAction::Forward
            }
            FrontendMessage::FunctionCall(_) => {
                let refused = statement::function_call();
                let details = self
                    .recorder
                    .statement_details(None, "<fast-path function call>");
                self.recorder.refusal(details, &refused);
                FrontendAction::Refuse(refusal_error(&refused))
            }
            _ => FrontendAction::Forward,
        }
    }
}
