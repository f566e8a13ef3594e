//! What a shielded session tracks between messages.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use periscope_shield::masking::MaskCounts;
use periscope_shield::statement::StatementRef;
use periscope_sql::{Analysis, OutputColumn, SessionEffect, StatementAnalysis, StatementClass};

use crate::copy::CopyMasker;
use crate::plan::RowPlan;
use crate::sample::PgSample;

/// A statement's run: what its outcome event reports.
#[derive(Debug)]
pub(super) struct Run {
    pub(super) stmt: Option<StatementRef>,
    pub(super) started: Instant,
    pub(super) rows: u64,
    pub(super) counts: MaskCounts,
    /// The sequence number of its `query` event, once durable.
    pub(super) query_seq: Arc<AtomicU64>,
    pub(super) plan: Option<Arc<RowPlan>>,
    pub(super) copy: Option<CopyMasker>,
    /// The first masked rows, when the session is recorded.
    pub(super) sample: Option<PgSample>,
}

impl Run {
    pub(super) fn new(stmt: Option<StatementRef>, query_seq: Arc<AtomicU64>) -> Run {
        Run {
            stmt,
            started: Instant::now(),
            rows: 0,
            counts: MaskCounts::default(),
            query_seq,
            plan: None,
            copy: None,
            sample: None,
        }
    }
}

/// A simple Query in flight: its statements run one after the other.
#[derive(Debug)]
pub(super) struct QueryRun {
    pub(super) analysis: Option<Arc<Analysis>>,
    pub(super) sql: Arc<str>,
    pub(super) seqs: Vec<Arc<AtomicU64>>,
    /// The statement running now.
    pub(super) index: usize,
    pub(super) run: Run,
    /// The server reported an error: it skips the rest of the string.
    pub(super) failed: bool,
}

/// A prepared statement of the extended protocol.
#[derive(Debug, Clone)]
pub(super) struct Prepared {
    pub(super) stmt: Option<StatementRef>,
}

/// A portal: its statement, and its plan once described.
#[derive(Debug, Clone)]
pub(super) struct Portal {
    pub(super) name_of_statement: String,
    pub(super) stmt: Option<StatementRef>,
    pub(super) plan: Option<Arc<RowPlan>>,
}

/// What the server owes for a message sent upstream, in order.
#[derive(Debug)]
pub(super) enum Pending {
    Query(Box<QueryRun>),
    Parse,
    Bind,
    DescribeStatement {
        name: String,
    },
    /// `stmt` is the portal's statement when the Describe was sent: a
    /// Close or a new Bind of the same name may come before the answer.
    DescribePortal {
        name: String,
        injected: bool,
        stmt: Option<StatementRef>,
    },
    Execute {
        portal: String,
        run: Box<Run>,
    },
    Close,
    Sync,
}

/// The session's protocol and SQL state.
#[derive(Debug, Default)]
pub(super) struct SessionState {
    pub(super) pending: VecDeque<Pending>,
    /// Extended-protocol prepared statements, by name.
    pub(super) statements: HashMap<String, Prepared>,
    pub(super) portals: HashMap<String, Portal>,
    /// SQL-level `PREPARE`d statements, whose shapes `EXECUTE` reuses.
    pub(super) sql_prepared: HashMap<String, StatementRef>,
    /// SQL-level `DECLARE`d cursors, whose shapes `FETCH` reuses.
    pub(super) sql_cursors: HashMap<String, StatementRef>,
    /// Something of the current extended batch went upstream.
    pub(super) batch_forwarded: bool,
    /// The upstream role (what `$user` stands for).
    upstream_user: String,
    /// The `search_path` a statement set, `$user` as written; `None` is the
    /// role's default.
    search_path: Option<Vec<String>>,
}

impl SessionState {
    pub(super) fn set_upstream_user(&mut self, user: &str) {
        self.upstream_user = user.to_string();
    }

    /// The `search_path` unqualified names resolve through.
    pub(super) fn search_path(&self) -> Vec<String> {
        match &self.search_path {
            None => vec![self.upstream_user.clone(), "public".to_string()],
            Some(path) => path
                .iter()
                .map(|p| {
                    if p == "$user" {
                        self.upstream_user.clone()
                    } else {
                        p.clone()
                    }
                })
                .collect(),
        }
    }

    /// Applies what a statement that ran changed in the session; whether
    /// the `search_path` changed.
    ///
    /// `SET LOCAL` is applied as if it lasted the session: a `search_path`
    /// that outlives its transaction in the proxy's view only changes which
    /// catalog relation an unqualified name resolves to.
    pub(super) fn apply(&mut self, effects: &[SessionEffect]) -> bool {
        let mut path_changed = false;
        for effect in effects {
            match effect {
                SessionEffect::SearchPath { path, .. } => {
                    self.search_path = Some(path.clone());
                    path_changed = true;
                }
                SessionEffect::SearchPathReset { .. } => {
                    self.search_path = None;
                    path_changed = true;
                }
                SessionEffect::Deallocate { name } => {
                    self.sql_prepared.remove(name);
                }
                SessionEffect::DeallocateAll => self.sql_prepared.clear(),
                SessionEffect::CloseCursor { name } => {
                    self.sql_cursors.remove(name);
                }
                SessionEffect::CloseAllCursors => self.sql_cursors.clear(),
            }
        }
        path_changed
    }

    /// The outputs a statement's rows follow: its own, or for `EXECUTE` and
    /// `FETCH` those of the `PREPARE` or `DECLARE` they name; `None` when
    /// they cannot be matched by position.
    pub(super) fn outputs_of<'a>(
        &'a self,
        stmt: &'a StatementAnalysis,
    ) -> Option<&'a [OutputColumn]> {
        let via = match &stmt.class {
            StatementClass::Execute { name } => self.sql_prepared.get(name),
            StatementClass::Fetch { cursor } => self.sql_cursors.get(cursor),
            _ => return stmt.outputs_exact.then_some(stmt.outputs.as_slice()),
        };
        via.and_then(StatementRef::get)
            .filter(|st| st.outputs_exact)
            .map(|st| st.outputs.as_slice())
    }

    /// Remembers SQL-level PREPARE and DECLARE (whose shapes EXECUTE and
    /// FETCH reuse).
    pub(super) fn track_sql_names(&mut self, analysis: &Arc<Analysis>, sql: &Arc<str>) {
        for (index, st) in analysis.statements.iter().enumerate() {
            let r = || StatementRef {
                analysis: Arc::clone(analysis),
                index,
                sql: Arc::clone(sql),
            };
            match &st.class {
                StatementClass::Prepare { name, .. } => {
                    self.sql_prepared.insert(name.clone(), r());
                }
                StatementClass::Declare { name, .. } => {
                    self.sql_cursors.insert(name.clone(), r());
                }
                _ => {}
            }
        }
    }

    /// The statement of a portal: one this session bound, or a SQL-level
    /// cursor (cursors are portals of the same name space).
    pub(super) fn portal_statement(&self, name: &str) -> Option<StatementRef> {
        match self.portals.get(name) {
            Some(p) => p.stmt.clone(),
            None => self.sql_cursors.get(name).cloned(),
        }
    }

    /// The statement a Bind names: extended-protocol first, then SQL-level.
    pub(super) fn statement_named(&self, name: &str) -> Option<StatementRef> {
        match self.statements.get(name) {
            Some(p) => p.stmt.clone(),
            None => self.sql_prepared.get(name).cloned(),
        }
    }

    /// The run the server is answering now, if any.
    pub(super) fn current_run(&mut self) -> Option<&mut Run> {
        match self.pending.front_mut() {
            Some(Pending::Query(q)) => Some(&mut q.run),
            Some(Pending::Execute { run, .. }) => Some(run.as_mut()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_path_follows_effects_and_user() {
        let mut s = SessionState::default();
        s.set_upstream_user("app_ro");
        assert_eq!(s.search_path(), ["app_ro", "public"]);
        assert!(s.apply(&[SessionEffect::SearchPath {
            path: vec!["$user".into(), "sales".into()],
            local: false,
        }]));
        assert_eq!(s.search_path(), ["app_ro", "sales"]);
        assert!(s.apply(&[SessionEffect::SearchPathReset { local: false }]));
        assert_eq!(s.search_path(), ["app_ro", "public"]);
        assert!(!s.apply(&[SessionEffect::DeallocateAll]));
    }
}
