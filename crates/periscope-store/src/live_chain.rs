//! The embedded store's audit chain when a process crash is what it must
//! survive (`[audit] durability = "process-crash"`, the default).
//!
//! Committing each group of events to SQLite put a transaction (file
//! locks, a head read, b-tree pages written to the WAL) and two thread
//! hand-offs (to the writer thread and back) into every proxied statement:
//! about a third of the gateway's CPU per statement. Here the durable
//! record is instead an append-only redo file beside the database
//! (`<database>-audit-redo-a` and `-b`, used in turn): the submitter links its events after the
//! in-memory head, hashes them and hands them to the OS in one `write`, on
//! its own thread, and its events are acknowledged when that returns. A
//! process crash cannot undo a completed `write`, which is the guarantee
//! `process-crash` promises.
//!
//! SQLite remains the searchable index. A thread of its own inserts what
//! the redo file holds in large transactions (every [`INDEX_INTERVAL`], or
//! sooner when much is waiting or a reader asks), so a commit's pages serve
//! hundreds of events instead of a handful. Past [`REDO_SWITCH_BYTES`]
//! appends go to the other file, and the full one is emptied once
//! everything in it is indexed; both are replayed into the index when the store
//! is opened after a crash ([`recover`]).
//!
//! Readers in this process see every acknowledged event: each audit read
//! first waits for the index to reach the head as it was when the read
//! started ([`LiveChain::indexed_to_head`]).
//!
//! A write transaction through the pool that appends events itself (a
//! grant together with its `request.approve`, say) pauses the chain
//! ([`LiveChain::pause`]): it inserts the events not yet indexed, links its
//! own after the in-memory head, and on commit moves the head; units
//! submitted meanwhile wait and are written when it ends. So the chain has
//! one order whoever appends.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use periscope_audit::{AuditEvent, AuditSigner, Checkpoint, EventDraft, Head, next_event_line};
use periscope_audit::{JsonlReader, JsonlRecord, JsonlWriter};
use serde_json::Value;
use tokio::sync::{oneshot, watch};

use crate::audit::EventRow;
use crate::error::StoreError;
use crate::sqlite_chain::{SqliteChain, SqliteFile};
use crate::writer::{Clock, Counters, UnitOutcome, closing_checkpoint, periodic_checkpoint};

/// Longest an acknowledged event waits before the indexer inserts it, when
/// nothing asks for it sooner.
pub(crate) const INDEX_INTERVAL: Duration = Duration::from_millis(50);

/// Events waiting for the index beyond which the indexer starts at once.
const INDEX_EAGER: usize = 2048;

/// Size past which appends go to the other redo file (and the full one is
/// emptied once all it holds is indexed).
const REDO_SWITCH_BYTES: u64 = 4 * 1024 * 1024;

/// Longest a reader waits for the index to catch up before it gets an error.
const READ_WAIT: Duration = Duration::from_secs(10);

/// The two redo files of the database at `database`.
pub(crate) fn redo_paths(database: &Path) -> [PathBuf; 2] {
    ["-audit-redo-a", "-audit-redo-b"].map(|suffix| {
        let mut name = database.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    })
}

/// The live chains of this process, by database file.
type Registry = Vec<(PathBuf, Weak<LiveChain>)>;

fn registry() -> MutexGuard<'static, Registry> {
    static CHAINS: Mutex<Registry> = Mutex::new(Vec::new());
    CHAINS.lock().unwrap_or_else(|e| e.into_inner())
}

/// The same file under whatever name a store opened it.
fn registry_key(database: &Path) -> PathBuf {
    std::fs::canonicalize(database).unwrap_or_else(|_| database.to_path_buf())
}

/// The live chain of the database at `database` running in this process,
/// unless it has shut down.
pub(crate) fn running(database: &Path) -> Option<Arc<LiveChain>> {
    let key = registry_key(database);
    registry()
        .iter()
        .filter(|(path, _)| *path == key)
        .find_map(|(_, chain)| chain.upgrade())
        .filter(|chain| !chain.lock().closing)
}

/// The chain of a process-crash-durable embedded store. See the module
/// documentation.
pub(crate) struct LiveChain {
    state: Mutex<State>,
    /// Wakes the indexer: much is waiting, a reader waits, or shutdown.
    kick: Condvar,
    /// Every event up to this seq is in the index.
    indexed: watch::Sender<u64>,
    signer: AuditSigner,
    clock: Clock,
    checkpoint_every: u64,
    stats: Arc<Counters>,
    /// The indexer has stopped (after draining, at shutdown). Outside the
    /// state lock: it is read inside the `indexed` channel's lock.
    indexer_stopped: AtomicBool,
}

impl std::fmt::Debug for LiveChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveChain")
            .field("head", &self.lock().head.seq)
            .field("indexed", &*self.indexed.borrow())
            .finish_non_exhaustive()
    }
}

/// A unit written while a pool transaction had the chain paused.
type Deferred = (
    Vec<EventDraft>,
    oneshot::Sender<Result<UnitOutcome, StoreError>>,
);

struct State {
    head: Head,
    /// The redo file appended to, and its length.
    redo: File,
    redo_len: u64,
    /// The other redo file, empty, to switch to when `redo` is full.
    spare: Option<File>,
    /// The full file switched away from, with the last seq written to it:
    /// emptied (and made the spare) once the index has that seq.
    full: Option<(File, u64)>,
    /// Written to the redo file, not yet taken by the indexer, in seq order.
    pending: Vec<EventRow>,
    pending_checkpoints: Vec<Checkpoint>,
    /// Lowest seq the indexer or a paused transaction is inserting now.
    in_flight_from: Option<u64>,
    taken_by_pause_from: Option<u64>,
    /// A pool transaction appends to the chain; units wait in `deferred`.
    paused: bool,
    deferred: VecDeque<Deferred>,
    /// A reader waits for the index: the indexer should not wait.
    urgent: bool,
    /// No more units: the indexer drains what is left and stops.
    closing: bool,
    last_checkpoint: Option<Checkpoint>,
}

impl State {
    /// Puts events (and checkpoints) taken for the index but not inserted
    /// back in front of those waiting, keeping seq order.
    fn give_back(&mut self, mut events: Vec<EventRow>, mut checkpoints: Vec<Checkpoint>) {
        events.append(&mut self.pending);
        self.pending = events;
        checkpoints.append(&mut self.pending_checkpoints);
        self.pending_checkpoints = checkpoints;
    }

    /// Empties the full redo file once the index has all it holds, and keeps
    /// it as the spare.
    fn empty_full_file(&mut self) {
        let indexed = self.indexed_through();
        if let Some((file, last)) = self.full.take() {
            if last > indexed {
                self.full = Some((file, last));
                return;
            }
            match file.set_len(0) {
                Ok(()) => self.spare = Some(file),
                Err(e) => {
                    tracing::warn!(error = %e, "could not empty a full audit redo file; retrying after the next index commit");
                    self.full = Some((file, last));
                }
            }
        }
    }

    /// Lets the next chain on these files (a restart in this process) lock
    /// them.
    fn unlock_files(&mut self) {
        let files = [
            Some(&self.redo),
            self.spare.as_ref(),
            self.full.as_ref().map(|(f, _)| f),
        ];
        for file in files.into_iter().flatten() {
            let _ = file.unlock();
        }
    }

    /// Every event up to this seq is in the index.
    fn indexed_through(&self) -> u64 {
        [
            self.pending.first().map(|e| e.seq),
            self.in_flight_from,
            self.taken_by_pause_from,
        ]
        .into_iter()
        .flatten()
        .min()
        .map_or(self.head.seq, |first| first - 1)
    }
}

/// What [`LiveChain::append`] gives back: the unit's outcome now, or, while a
/// pool transaction has the chain paused, later.
pub(crate) enum Appended {
    /// Written (or refused) already.
    Now(Result<UnitOutcome, StoreError>),
    /// Written when the pause ends.
    Later(oneshot::Receiver<Result<UnitOutcome, StoreError>>),
}

impl LiveChain {
    /// The chain of `file` that runs in this process (another `Store` on
    /// the same file, a replica in tests, shares it), or a new one: at the
    /// index's head (complete: [`recover`] ran when the store was opened),
    /// with an empty redo file locked against other processes, and its
    /// indexer thread.
    pub(crate) fn start_or_join(
        file: &SqliteFile,
        signer: AuditSigner,
        clock: Clock,
        checkpoint_every: u64,
        stats: Arc<Counters>,
    ) -> Result<Arc<LiveChain>, StoreError> {
        let mut chains = registry();
        chains.retain(|(_, chain)| chain.upgrade().is_some_and(|c| !c.lock().closing));
        let key = registry_key(&file.path);
        if let Some(chain) = chains
            .iter()
            .find(|(path, _)| *path == key)
            .and_then(|(_, chain)| chain.upgrade())
        {
            return Ok(chain);
        }
        let mut index = SqliteChain::open(file)?;
        let head = index.head()?;
        let [redo, spare] = redo_paths(&file.path).map(|path| open_locked(&file.path, &path));
        let (redo, spare) = (redo?, spare?);
        let (indexed, _) = watch::channel(head.seq);
        let chain = Arc::new(LiveChain {
            state: Mutex::new(State {
                head,
                redo,
                redo_len: 0,
                spare: Some(spare),
                full: None,
                pending: Vec::new(),
                pending_checkpoints: Vec::new(),
                in_flight_from: None,
                taken_by_pause_from: None,
                paused: false,
                deferred: VecDeque::new(),
                urgent: false,
                closing: false,
                last_checkpoint: None,
            }),
            kick: Condvar::new(),
            indexed,
            signer,
            clock,
            checkpoint_every,
            stats,
            indexer_stopped: AtomicBool::new(false),
        });
        let weak = Arc::downgrade(&chain);
        std::thread::Builder::new()
            .name("periscope-audit-index".into())
            .spawn(move || run_indexer(&weak, index))
            .map_err(|e| io_error("start the audit index thread", e))?;
        chains.push((key, Arc::downgrade(&chain)));
        Ok(chain)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Links `drafts` after the head and writes them to the redo file in one
    /// `write`, on the caller's thread. See [`Appended`].
    pub(crate) fn append(&self, drafts: Vec<EventDraft>) -> Appended {
        let mut state = self.lock();
        if state.closing {
            return Appended::Now(Err(StoreError::WriterClosed));
        }
        if state.paused {
            let (reply, outcome) = oneshot::channel();
            state.deferred.push_back((drafts, reply));
            return Appended::Later(outcome);
        }
        let mut spent = Vec::new();
        let outcome = self.write_unit(&mut state, drafts, &mut spent);
        // Freed once the other sessions may append again.
        drop(state);
        drop(spent);
        Appended::Now(outcome)
    }

    /// Links, hashes and writes one unit (with the periodic checkpoint it
    /// crosses), then moves the head. On a failed write nothing moves and
    /// the file is cut back, so a torn line never stays in it.
    ///
    /// The index rows keep the lines' text (see [`EventRow::from_line`]);
    /// the events' `details` go to `spent`, for the caller to free after
    /// unlocking the state.
    fn write_unit(
        &self,
        state: &mut State,
        drafts: Vec<EventDraft>,
        spent: &mut Vec<Value>,
    ) -> Result<UnitOutcome, StoreError> {
        let mut head = state.head;
        let mut events = Vec::with_capacity(drafts.len());
        let mut bytes = Vec::with_capacity(512 * drafts.len());
        let outcomes: UnitOutcome = drafts
            .into_iter()
            .map(|draft| match next_event_line(head, draft) {
                Ok((event, line)) => {
                    head = event.head();
                    bytes.extend_from_slice(line.as_str().as_bytes());
                    let seq = event.seq;
                    let (row, details) = EventRow::from_line(event, line);
                    events.push(row);
                    spent.push(details);
                    Ok(seq)
                }
                Err(refused) => Err(StoreError::Audit(refused)),
            })
            .collect();
        if events.is_empty() {
            return Ok(outcomes);
        }
        let new_head = head;
        let checkpoint = periodic_checkpoint(
            &self.signer,
            &self.clock,
            self.checkpoint_every,
            state.head,
            new_head,
        );
        if let Some(checkpoint) = &checkpoint {
            let mut line = JsonlWriter::new(&mut bytes);
            line.write_checkpoint(checkpoint)
                .and_then(|()| line.into_inner().map(|_| ()))
                .map_err(|e| io_error("encode an audit checkpoint", e))?;
        }
        if let Err(err) = state.redo.write_all(&bytes) {
            let _ = state.redo.set_len(state.redo_len);
            self.stats.failed_batches.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %err, "audit redo write failed; refusing its actions");
            return Err(io_error("write the audit redo file", err));
        }
        state.redo_len += bytes.len() as u64;
        state.head = new_head;
        if let Some(spare) = state.spare.take_if(|_| state.redo_len >= REDO_SWITCH_BYTES) {
            let full = std::mem::replace(&mut state.redo, spare);
            state.full = Some((full, new_head.seq));
            state.redo_len = 0;
        }
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        self.stats
            .events
            .fetch_add(events.len() as u64, Ordering::Relaxed);
        state.pending.extend(events);
        if let Some(checkpoint) = checkpoint {
            self.stats.checkpoints.fetch_add(1, Ordering::Relaxed);
            state.last_checkpoint = Some(checkpoint.clone());
            state.pending_checkpoints.push(checkpoint);
        }
        if state.pending.len() >= INDEX_EAGER {
            self.kick.notify_one();
        }
        Ok(outcomes)
    }

    /// Waits until every event acknowledged before the call is in the index,
    /// so that a read through the pool sees it.
    pub(crate) async fn indexed_to_head(&self) -> Result<(), StoreError> {
        let target = {
            let mut state = self.lock();
            if state.indexed_through() >= state.head.seq {
                return Ok(());
            }
            state.urgent = true;
            self.kick.notify_one();
            state.head.seq
        };
        let mut indexed = self.indexed.subscribe();
        let reached = tokio::time::timeout(READ_WAIT, indexed.wait_for(|seq| *seq >= target));
        match reached.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(StoreError::WriterClosed),
            Err(_) => Err(StoreError::Backend(Arc::new(std::io::Error::new(
                ErrorKind::TimedOut,
                format!(
                    "the audit index did not reach event {target} within {}s; see the gateway log",
                    READ_WAIT.as_secs()
                ),
            )))),
        }
    }

    /// Pauses the chain for a pool transaction that appends events itself.
    /// See [`ChainPause`].
    pub(crate) fn pause(self: &Arc<Self>) -> ChainPause {
        let mut state = self.lock();
        state.paused = true;
        let events = std::mem::take(&mut state.pending);
        let checkpoints = std::mem::take(&mut state.pending_checkpoints);
        state.taken_by_pause_from = events.first().map(|e| e.seq);
        ChainPause {
            chain: Arc::clone(self),
            head: state.head,
            events,
            checkpoints,
            inserted: false,
            committed: false,
        }
    }

    /// Ends a pause: on commit the head moves to the transaction's last
    /// event; otherwise the events it took go back to wait for the index.
    /// Either way the units that waited are written now.
    fn resume(&self, pause: &mut ChainPause) {
        let mut state = self.lock();
        if pause.committed {
            state.head = pause.head;
        } else {
            let (events, checkpoints) = pause.take();
            state.give_back(events, checkpoints);
        }
        state.taken_by_pause_from = None;
        state.paused = false;
        state.empty_full_file();
        let deferred = std::mem::take(&mut state.deferred);
        let mut spent = Vec::new();
        for (drafts, reply) in deferred {
            let outcome = if state.closing {
                Err(StoreError::WriterClosed)
            } else {
                self.write_unit(&mut state, drafts, &mut spent)
            };
            let _ = reply.send(outcome);
        }
        self.indexed.send_replace(state.indexed_through());
    }

    /// Stops taking units, signs the head unless the last checkpoint is at
    /// it, and waits for the indexer to insert everything. Returns the
    /// checkpoint at the head (`None` for an empty chain).
    pub(crate) async fn shutdown(&self) -> Result<Option<Checkpoint>, StoreError> {
        let checkpoint = {
            let mut state = self.lock();
            state.closing = true;
            let (checkpoint, fresh) = closing_checkpoint(
                &self.signer,
                &self.clock,
                state.head,
                state.last_checkpoint.clone(),
            );
            if let (Some(checkpoint), true) = (&checkpoint, fresh) {
                state.last_checkpoint = Some(checkpoint.clone());
                state.pending_checkpoints.push(checkpoint.clone());
                self.stats.checkpoints.fetch_add(1, Ordering::Relaxed);
            }
            self.kick.notify_one();
            checkpoint
        };
        let mut indexed = self.indexed.subscribe();
        let stopped = indexed
            .wait_for(|_| self.indexer_stopped.load(Ordering::Acquire))
            .await;
        if stopped.is_err() && !self.indexer_stopped.load(Ordering::Acquire) {
            return Err(StoreError::WriterClosed);
        }
        let mut state = self.lock();
        if !state.pending.is_empty() || !state.pending_checkpoints.is_empty() {
            state.unlock_files();
            return Err(StoreError::Backend(Arc::new(std::io::Error::other(
                "the audit index could not take every event; they stay in the redo file and are indexed at the next start",
            ))));
        }
        // Everything is indexed: the file holds nothing to replay, and the
        // next chain on this file (a restart in this process) may lock it.
        if state.redo.set_len(0).is_ok() {
            state.redo_len = 0;
        }
        state.empty_full_file();
        state.unlock_files();
        Ok(checkpoint)
    }
}

/// A pool transaction's hold on the chain (see [`LiveChain::pause`]): the
/// events it must insert first, and the head it links after. Dropped
/// without [`ChainPause::committed`], it gives the events back.
pub(crate) struct ChainPause {
    chain: Arc<LiveChain>,
    /// The head to link after; moved on by [`ChainPause::linked`].
    pub(crate) head: Head,
    /// Acknowledged events not yet in the index: the transaction inserts
    /// them before its own.
    pub(crate) events: Vec<EventRow>,
    pub(crate) checkpoints: Vec<Checkpoint>,
    /// The transaction has inserted `events` and `checkpoints`.
    pub(crate) inserted: bool,
    committed: bool,
}

impl ChainPause {
    /// The events (and checkpoints) to insert, lent out for the insert:
    /// [`ChainPause::put_back`] returns them (so a rollback can give them
    /// back to the indexer) and marks them inserted.
    pub(crate) fn take(&mut self) -> (Vec<EventRow>, Vec<Checkpoint>) {
        (
            std::mem::take(&mut self.events),
            std::mem::take(&mut self.checkpoints),
        )
    }

    /// See [`ChainPause::take`]; `inserted` says whether the insert worked.
    pub(crate) fn put_back(
        &mut self,
        events: Vec<EventRow>,
        checkpoints: Vec<Checkpoint>,
        inserted: bool,
    ) {
        self.events = events;
        self.checkpoints = checkpoints;
        self.inserted = inserted;
    }

    /// The transaction linked events up to `head`.
    pub(crate) fn linked(&mut self, head: Head) {
        self.head = head;
    }

    /// The transaction committed: its events and the ones it took are
    /// indexed, and the head moves to its last event.
    pub(crate) fn committed(mut self) {
        self.committed = true;
    }
}

impl Drop for ChainPause {
    fn drop(&mut self) {
        let chain = Arc::clone(&self.chain);
        chain.resume(self);
    }
}

/// The indexer thread: takes what waits, inserts it in one transaction,
/// publishes how far the index goes, empties the redo file when all it
/// holds is indexed. Stops when the chain is dropped, or after draining at
/// shutdown.
fn run_indexer(chain: &Weak<LiveChain>, mut index: SqliteChain) {
    let mut retry_after: Option<Instant> = None;
    loop {
        let Some(chain) = chain.upgrade() else {
            return;
        };
        let (events, checkpoints, closing) = {
            let mut state = chain.lock();
            let ready = |s: &State| s.closing || s.urgent || s.pending.len() >= INDEX_EAGER;
            if !ready(&state) {
                let wait = retry_after.map_or(INDEX_INTERVAL, |at| {
                    at.saturating_duration_since(Instant::now())
                });
                state = chain
                    .kick
                    .wait_timeout_while(state, wait, |s| !ready(s))
                    .map(|(state, _)| state)
                    .unwrap_or_else(|e| e.into_inner().0);
            }
            state.urgent = false;
            let events = std::mem::take(&mut state.pending);
            let checkpoints = std::mem::take(&mut state.pending_checkpoints);
            state.in_flight_from = events.first().map(|e| e.seq);
            (events, checkpoints, state.closing)
        };
        let result = if events.is_empty() && checkpoints.is_empty() {
            Ok(())
        } else {
            index.insert(&events, &checkpoints)
        };
        let mut state = chain.lock();
        state.in_flight_from = None;
        match result {
            Ok(()) => {
                retry_after = None;
                if !events.is_empty() {
                    chain.stats.index_commits.fetch_add(1, Ordering::Relaxed);
                }
                state.empty_full_file();
            }
            Err(err) => {
                tracing::error!(error = %err, events = events.len(), "audit index insert failed; the events are safe in the redo file, retrying");
                state.give_back(events, checkpoints);
                retry_after = Some(Instant::now() + INDEX_INTERVAL);
            }
        }
        chain.indexed.send_replace(state.indexed_through());
        let drained = state.pending.is_empty() && state.pending_checkpoints.is_empty();
        // At shutdown a failing index is not retried: the redo file keeps
        // the events for the next start, and `shutdown` says so.
        if closing && (drained || retry_after.is_some()) {
            chain.indexer_stopped.store(true, Ordering::Release);
            drop(state);
            chain.indexed.send_modify(|_| {});
            return;
        }
    }
}

/// Opens a redo file for appending, locked against other processes, and
/// empties it ([`recover`] has replayed it when the store opened).
fn open_locked(database: &Path, path: &Path) -> Result<File, StoreError> {
    let redo = open_redo(path)?;
    match redo.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(StoreError::Invalid(format!(
                "another process is writing the audit log of {} ({} is locked): the embedded store serves one gateway; run replicas on the PostgreSQL store",
                database.display(),
                path.display()
            )));
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(io_error(&format!("lock {}", path.display()), e));
        }
    }
    redo.set_len(0)
        .map_err(|e| io_error(&format!("empty {}", path.display()), e))?;
    Ok(redo)
}

fn open_redo(path: &Path) -> Result<File, StoreError> {
    let mut options = OpenOptions::new();
    options.create(true).read(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(path)
        .map_err(|e| io_error(&format!("open the audit redo file {}", path.display()), e))
}

fn io_error(doing: &str, err: std::io::Error) -> StoreError {
    StoreError::Backend(Arc::new(std::io::Error::new(
        err.kind(),
        format!("could not {doing}: {err}"),
    )))
}

/// Puts into the index every event and checkpoint of the redo files that
/// it lacks (after a crash: acknowledged, not yet indexed), then empties the
/// files. Each event's hash is recomputed; one already indexed must be the
/// same event. A torn last line (the process died inside a `write` under a
/// power loss) ends that file's replay; a bad line anywhere else is
/// corruption and stops the store from opening, with the file and the
/// line's problem. Returns how many events were replayed.
pub(crate) fn recover(file: &SqliteFile) -> Result<u64, StoreError> {
    if running(&file.path).is_some() {
        return Ok(0);
    }
    let mut events = Vec::new();
    let mut checkpoints = Vec::new();
    let mut replayed_files = Vec::new();
    for path in redo_paths(&file.path) {
        if let Some(redo) = read_redo(&path, &mut events, &mut checkpoints)? {
            replayed_files.push((path, redo));
        }
    }
    if replayed_files.is_empty() {
        return Ok(0);
    }
    events.sort_by_key(|e| e.seq);
    let mut index = SqliteChain::open(file)?;
    let replayed = index.insert_missing(&events, &checkpoints)?;
    for (path, _) in &replayed_files {
        OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| f.set_len(0))
            .map_err(|e| io_error(&format!("empty {}", path.display()), e))?;
    }
    if replayed > 0 {
        tracing::warn!(
            events = replayed,
            "replayed acknowledged audit events from the redo files into the index (the gateway stopped without indexing them)"
        );
    }
    Ok(replayed)
}

/// Reads one redo file's records into `events` and `checkpoints`. `None`
/// when it is missing, empty, or locked by a live gateway (which indexes
/// it); else the file, locked (shared) until the replay ends.
fn read_redo(
    path: &Path,
    events: &mut Vec<AuditEvent>,
    checkpoints: &mut Vec<Checkpoint>,
) -> Result<Option<File>, StoreError> {
    let redo = match File::open(path) {
        Ok(redo) => redo,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(&format!("open {}", path.display()), e)),
    };
    let total = redo
        .metadata()
        .map_err(|e| io_error(&format!("read {}", path.display()), e))?
        .len();
    if total == 0 {
        return Ok(None);
    }
    match redo.try_lock_shared() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(io_error(&format!("lock {}", path.display()), e));
        }
    }
    let reading = redo
        .try_clone()
        .map_err(|e| io_error(&format!("read {}", path.display()), e))?;
    let corrupt =
        |detail: String| StoreError::corrupt(format!("audit redo file {}", path.display()), detail);
    for record in JsonlReader::new(BufReader::new(reading)) {
        match record {
            Ok(JsonlRecord::Event(event)) => {
                if event.compute_hash() != event.hash {
                    return Err(corrupt(format!(
                        "event {} does not hash to its recorded hash",
                        event.seq
                    )));
                }
                events.push(event);
            }
            Ok(JsonlRecord::Checkpoint(checkpoint)) => checkpoints.push(checkpoint),
            Ok(JsonlRecord::Header(_)) => {}
            Err(err) => {
                // Only a last line without its newline may be torn.
                if !last_line_unterminated(path, err.line)? {
                    return Err(corrupt(err.to_string()));
                }
                tracing::warn!(
                    line = err.line,
                    file = %path.display(),
                    "an audit redo file ends in a torn line (never acknowledged); ignoring it"
                );
                break;
            }
        }
    }
    Ok(Some(redo))
}

/// Whether line `line` (1-based) of the file is its last and has no newline.
fn last_line_unterminated(path: &Path, line: u64) -> Result<bool, StoreError> {
    let file = File::open(path).map_err(|e| io_error(&format!("read {}", path.display()), e))?;
    let mut reader = BufReader::new(file);
    let mut buf = Vec::new();
    let mut number = 0u64;
    loop {
        buf.clear();
        let read = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| io_error(&format!("read {}", path.display()), e))?;
        if read == 0 {
            return Ok(false);
        }
        number += 1;
        if number == line {
            let unterminated = buf.last() != Some(&b'\n');
            return Ok(unterminated);
        }
    }
}
