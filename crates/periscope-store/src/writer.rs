//! Group commit for audit events.
//!
//! The PostgreSQL proxy records one event per SQL statement, thousands per second.
//! Committing each alone would cost one fsync (SQLite) or one WAL flush (PostgreSQL)
//! per statement. Instead every submitter hands its draft to one writer task through
//! a channel; the task takes everything waiting, appends it in a single
//! transaction, and only after the commit tells each submitter its seq. While one
//! batch commits, the next one accumulates, so the batch size follows the load by
//! itself and an idle gateway still commits each event at once.
//!
//! Room in the queue is counted by a semaphore: [`AuditWriter::append`] and
//! [`AuditWriter::enqueue_all`] wait for room, so a flood of submitters slows
//! down rather than growing the queue. [`AuditWriter::enqueue_unit_now`]
//! hands a unit over without waiting, for a caller that must not await
//! between deciding an event's place and handing it over (a proxied session
//! keeps its events in order this way) and whose own waiting bounds how many
//! of its units can be queued.
//!
//! On SQLite the writer runs on a thread of its own with its own connection,
//! so a batch is begun, linked, inserted and committed without a hop between
//! threads (see `sqlite_chain`); on PostgreSQL it is a tokio task using the
//! pool, and the chain lock serialises it with other replicas' writers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use periscope_audit::{AuditEvent, AuditSigner, AuditTime, Checkpoint, EventDraft, Head};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};

use crate::audit::{insert_checkpoint, insert_events, link_each, read_head};
use crate::error::StoreError;
use crate::live_chain::{Appended, LiveChain};
use crate::sqlite_chain::{SqliteChain, SqliteFile};
use crate::store::Store;

/// Where the writer reads the time it writes into checkpoints. The gateway passes
/// its injectable clock, so tests control time and the store never reads the system
/// clock itself.
pub type Clock = Arc<dyn Fn() -> AuditTime + Send + Sync>;

/// Tuning of an [`AuditWriter`].
#[derive(Clone, Debug)]
pub struct AuditWriterConfig {
    /// Sign a checkpoint each time the chain passes a multiple of this many events
    /// (counted on the shared chain, so replicas together sign about one per N).
    /// 0 disables periodic checkpoints (the one at shutdown is still written).
    pub checkpoint_every: u64,
    /// Most events committed in one transaction.
    pub max_batch: usize,
    /// Drafts that may wait for the writer through [`AuditWriter::append`]
    /// and [`AuditWriter::enqueue_all`]; when full, those submitters wait
    /// (they slow down rather than grow the queue).
    pub queue: usize,
}

impl Default for AuditWriterConfig {
    fn default() -> Self {
        AuditWriterConfig {
            checkpoint_every: 1000,
            max_batch: 1000,
            queue: 8192,
        }
    }
}

enum Message {
    /// Drafts written next to each other, in this order, in one transaction.
    Write {
        drafts: Vec<EventDraft>,
        /// Learns each draft's outcome, or the error that failed the batch.
        reply: oneshot::Sender<Result<UnitOutcome, StoreError>>,
        /// The room the drafts take in the queue, given back when the writer
        /// takes them (none for [`AuditWriter::enqueue_unit_now`]).
        _room: Option<OwnedSemaphorePermit>,
    },
    Shutdown,
}

/// How each draft of a unit went, in the order given: its seq, or why it
/// alone was refused.
pub type UnitOutcome = Vec<Result<u64, StoreError>>;

/// What the task reports when it ends: the last checkpoint it wrote, if any.
type Finished = Option<Result<Option<Checkpoint>, StoreError>>;

/// Handle to the group-commit task; clones share the task.
///
/// Dropping every handle also ends the task after it has written what was queued
/// and a final checkpoint, but only [`AuditWriter::shutdown`] lets the caller wait
/// for that.
#[derive(Clone)]
pub struct AuditWriter {
    /// The embedded store's chain when it is process-crash durable: units
    /// are written on the submitter's thread (see `live_chain`); the queue
    /// and its task are then unused.
    live: Option<Arc<LiveChain>>,
    queue: mpsc::UnboundedSender<Message>,
    room: Arc<Semaphore>,
    room_size: usize,
    finished: watch::Receiver<Finished>,
    stats: Arc<Counters>,
}

/// What the writer has done so far, for metrics: `events / batches` is the average
/// group size, i.e. how many events each fsync served.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Transactions committed.
    pub batches: u64,
    /// Events committed.
    pub events: u64,
    /// Batches that failed (each of their submitters got the error).
    pub failed_batches: u64,
    /// Checkpoints written (periodic and final).
    pub checkpoints: u64,
    /// Transactions that put events into the searchable index. The same as
    /// `batches`, except on the live chain (embedded store, process-crash
    /// durability), where a batch is one write to the redo file and the
    /// index takes many batches per transaction in the background.
    pub index_commits: u64,
}

impl std::fmt::Debug for AuditWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditWriter")
            .field("live", &self.live.is_some())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) batches: AtomicU64,
    pub(crate) events: AtomicU64,
    pub(crate) failed_batches: AtomicU64,
    pub(crate) checkpoints: AtomicU64,
    pub(crate) index_commits: AtomicU64,
}

impl AuditWriter {
    /// Starts the writer: on SQLite with `process-crash` durability, the
    /// live chain (units written to the redo file on the submitter's
    /// thread, indexed in the background; see `live_chain`); on SQLite with
    /// `power-loss`, on a thread of its own with its own connection to the
    /// file (see `sqlite_chain`); on PostgreSQL, as a task on the current
    /// tokio runtime using the store's pool.
    ///
    /// A live chain that cannot start (its redo file cannot be opened)
    /// leaves the writer refusing every unit, so nothing is acknowledged.
    pub fn spawn(
        store: Store,
        signer: AuditSigner,
        clock: Clock,
        config: AuditWriterConfig,
    ) -> AuditWriter {
        let (queue, receiver) = mpsc::unbounded_channel();
        let room_size = config.queue.clamp(1, Semaphore::MAX_PERMITS);
        let room = Arc::new(Semaphore::new(room_size));
        let (done, finished) = watch::channel(None);
        let stats = Arc::new(Counters::default());
        let live_file = task_file_for_live(&store);
        if let Some(file) = live_file {
            let checkpoint_every = config.checkpoint_every;
            let counters = stats.clone();
            let live = LiveChain::start_or_join(&file, signer, clock, checkpoint_every, counters);
            drop(receiver);
            let live = match live {
                Ok(live) => Some(live),
                Err(err) => {
                    tracing::error!(error = %err, "could not start the audit chain");
                    None
                }
            };
            drop(done);
            return AuditWriter {
                live,
                queue,
                room,
                room_size,
                finished,
                stats,
            };
        }
        let task = Task {
            store,
            signer,
            clock,
            config,
            stats: stats.clone(),
        };
        match task.store.sqlite_file().cloned() {
            Some(file) => {
                let spawned = std::thread::Builder::new()
                    .name("periscope-audit-writer".into())
                    .spawn(move || task.run_on_thread(&file, receiver, done));
                if let Err(err) = spawned {
                    // The receiver went down with the closure: every append
                    // fails with `WriterClosed`, so nothing is acknowledged.
                    tracing::error!(error = %err, "could not start the audit writer thread");
                }
            }
            None => {
                tokio::spawn(task.run(receiver, done));
            }
        }
        AuditWriter {
            live: None,
            queue,
            room,
            room_size,
            finished,
            stats,
        }
    }

    /// Counters since the writer started.
    pub fn stats(&self) -> WriterStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        WriterStats {
            batches: read(&self.stats.batches),
            events: read(&self.stats.events),
            failed_batches: read(&self.stats.failed_batches),
            checkpoints: read(&self.stats.checkpoints),
            index_commits: read(&self.stats.index_commits),
        }
    }

    /// Appends one event and resolves to its seq once it is committed (durable).
    ///
    /// An error means the event is not recorded: the caller must refuse the action
    /// it describes.
    pub async fn append(&self, draft: EventDraft) -> Result<u64, StoreError> {
        let mut outcome = self.enqueue_all(vec![draft]).await?.committed().await?;
        outcome.pop().unwrap_or(Err(StoreError::WriterClosed))
    }

    /// Hands several events to the writer as one unit: they are written in
    /// this order, next to each other, in the same transaction (one commit,
    /// one fsync for all of them), after everything enqueued before.
    ///
    /// [`AuditWriter::append`] is a unit of one; a proxied session hands
    /// over its units with [`AuditWriter::enqueue_unit_now`] instead.
    pub async fn enqueue_all(&self, drafts: Vec<EventDraft>) -> Result<EnqueuedUnit, StoreError> {
        if self.live.is_some() {
            return self.unit(drafts, None);
        }
        let room = self.room_for(drafts.len()).await?;
        self.unit(drafts, Some(room))
    }

    /// Like [`AuditWriter::enqueue_all`], but hands the unit over at once,
    /// without waiting for room in the queue: when it returns, the unit's
    /// place in the log is fixed (after everything enqueued before it).
    ///
    /// For a caller whose events must keep the order in which it decides
    /// them, from code that cannot await (a proxied session's audit sink), and
    /// whose queued units are bounded by its own waiting: a session waits for
    /// its statement's event before it sends more results, so it never has
    /// more than a few units queued.
    pub fn enqueue_unit_now(&self, drafts: Vec<EventDraft>) -> Result<EnqueuedUnit, StoreError> {
        self.unit(drafts, None)
    }

    fn unit(
        &self,
        drafts: Vec<EventDraft>,
        room: Option<OwnedSemaphorePermit>,
    ) -> Result<EnqueuedUnit, StoreError> {
        if let Some(live) = &self.live {
            return Ok(match live.append(drafts) {
                Appended::Now(outcome) => EnqueuedUnit {
                    acked: Acked::Ready(outcome),
                },
                Appended::Later(acked) => EnqueuedUnit {
                    acked: Acked::Waiting(acked),
                },
            });
        }
        let (ack, acked) = oneshot::channel();
        if drafts.is_empty() {
            let _ = ack.send(Ok(Vec::new()));
        } else {
            self.queue
                .send(Message::Write {
                    drafts,
                    reply: ack,
                    _room: room,
                })
                .map_err(|_| StoreError::WriterClosed)?;
        }
        Ok(EnqueuedUnit {
            acked: Acked::Waiting(acked),
        })
    }

    /// Waits for room for `drafts` more drafts in the queue (a unit larger than
    /// the whole queue waits for all of it).
    async fn room_for(&self, drafts: usize) -> Result<OwnedSemaphorePermit, StoreError> {
        let wanted = drafts.clamp(1, self.room_size) as u32;
        Arc::clone(&self.room)
            .acquire_many_owned(wanted)
            .await
            .map_err(|_| StoreError::WriterClosed)
    }

    /// Stops accepting drafts, commits everything already submitted, writes a final
    /// checkpoint at the chain head, and returns it (`None` for an empty chain).
    /// Calling it again, from any clone, waits for the same end and returns the same
    /// result.
    pub async fn shutdown(&self) -> Result<Option<Checkpoint>, StoreError> {
        if let Some(live) = &self.live {
            return live.shutdown().await;
        }
        // Ignore a closed queue: the task is already finishing.
        let _ = self.queue.send(Message::Shutdown);
        let mut finished = self.finished.clone();
        let result = finished
            .wait_for(Option::is_some)
            .await
            .map_err(|_| StoreError::WriterClosed)?
            .clone();
        result.unwrap_or(Err(StoreError::WriterClosed))
    }
}

/// A unit handed to the writer by [`AuditWriter::enqueue_all`] or
/// [`AuditWriter::enqueue_unit_now`], not yet known to be committed.
#[derive(Debug)]
pub struct EnqueuedUnit {
    acked: Acked,
}

#[derive(Debug)]
enum Acked {
    /// Written already, on the submitter's thread (the live chain).
    Ready(Result<UnitOutcome, StoreError>),
    Waiting(oneshot::Receiver<Result<UnitOutcome, StoreError>>),
}

impl EnqueuedUnit {
    /// Resolves once the unit is durable: each draft's seq (or why that
    /// draft alone was refused), or the error that failed the whole unit,
    /// in which case none of them is recorded.
    pub async fn committed(self) -> Result<UnitOutcome, StoreError> {
        match self.acked {
            Acked::Ready(outcome) => outcome,
            Acked::Waiting(acked) => acked.await.map_err(|_| StoreError::WriterClosed)?,
        }
    }

    /// Whether the unit is already durable (or failed): [`EnqueuedUnit::committed`]
    /// then returns without waiting.
    pub fn is_settled(&self) -> bool {
        matches!(self.acked, Acked::Ready(_))
    }
}

/// The file a live chain runs on: an embedded store whose audit events must
/// survive a process crash (not a power loss).
fn task_file_for_live(store: &Store) -> Option<SqliteFile> {
    store
        .sqlite_file()
        .filter(|file| file.durability == periscope_policy::AuditDurability::ProcessCrash)
        .cloned()
}

struct Task {
    store: Store,
    signer: AuditSigner,
    clock: Clock,
    config: AuditWriterConfig,
    stats: Arc<Counters>,
}

/// A batch's submitters, each with how many of the batch's drafts are theirs.
type Replies = Vec<(oneshot::Sender<Result<UnitOutcome, StoreError>>, usize)>;

/// What one batch's transaction produced: each draft's seq or refusal, and the
/// checkpoint written with it.
type Written = (Vec<Result<u64, StoreError>>, Option<Checkpoint>);

impl Task {
    /// The writer on the tokio runtime, through the store's pool (PostgreSQL).
    async fn run(
        self,
        mut receiver: mpsc::UnboundedReceiver<Message>,
        done: watch::Sender<Finished>,
    ) {
        let max_batch = self.config.max_batch.max(1);
        let mut messages = Vec::with_capacity(max_batch);
        let mut last_checkpoint = None;
        // `recv_many` waits for at least one message, then takes all that are
        // queued (up to the limit): that is the whole group-commit policy.
        while receiver.recv_many(&mut messages, max_batch).await > 0 {
            let (drafts, replies) = take_batch(&mut messages, &mut receiver);
            if replies.is_empty() {
                continue;
            }
            let written = self.write(drafts).await;
            if let Some(checkpoint) = self.answer(replies, written) {
                last_checkpoint = Some(checkpoint);
            }
        }
        let result = self.final_checkpoint(last_checkpoint).await;
        self.finish(result, &done);
    }

    /// The writer on its own thread with its own SQLite connection: the same
    /// policy as [`Task::run`], with blocking receives.
    fn run_on_thread(
        self,
        file: &SqliteFile,
        mut receiver: mpsc::UnboundedReceiver<Message>,
        done: watch::Sender<Finished>,
    ) {
        let max_batch = self.config.max_batch.max(1);
        let mut messages = Vec::with_capacity(max_batch);
        let mut last_checkpoint = None;
        let mut chain = None;
        while let Some(first) = receiver.blocking_recv() {
            messages.push(first);
            while messages.len() < max_batch {
                match receiver.try_recv() {
                    Ok(message) => messages.push(message),
                    Err(_) => break,
                }
            }
            let (drafts, replies) = take_batch(&mut messages, &mut receiver);
            if replies.is_empty() {
                continue;
            }
            // Opened on first use, and again after a failed open, so a file
            // that is briefly unavailable fails batches, not the writer.
            let written = open_chain(&mut chain, file)
                .and_then(|chain| chain.append(|head| self.link(head, drafts)));
            if let Some(checkpoint) = self.answer(replies, written) {
                last_checkpoint = Some(checkpoint);
            }
        }
        let result = open_chain(&mut chain, file).and_then(|chain| {
            let head = chain.head()?;
            let (checkpoint, fresh) = self.closing_checkpoint(head, last_checkpoint);
            if let (Some(checkpoint), true) = (&checkpoint, fresh) {
                chain.add_checkpoint(checkpoint)?;
                self.stats.checkpoints.fetch_add(1, Ordering::Relaxed);
            }
            Ok(checkpoint)
        });
        self.finish(result, &done);
    }

    fn finish(
        &self,
        result: Result<Option<Checkpoint>, StoreError>,
        done: &watch::Sender<Finished>,
    ) {
        if let Err(err) = &result {
            tracing::error!(error = %err, "audit writer could not write its final checkpoint");
        }
        done.send_replace(Some(result));
    }

    /// Answers every submitter of one batch and counts it. Returns the
    /// checkpoint written with it, if any.
    fn answer(&self, replies: Replies, written: Result<Written, StoreError>) -> Option<Checkpoint> {
        // A submitter that stopped waiting still had its events written, so
        // the results of the sends below are ignored.
        match written {
            Ok((outcomes, checkpoint)) => {
                let written = outcomes.iter().filter(|o| o.is_ok()).count() as u64;
                self.stats.batches.fetch_add(1, Ordering::Relaxed);
                self.stats.index_commits.fetch_add(1, Ordering::Relaxed);
                self.stats.events.fetch_add(written, Ordering::Relaxed);
                if checkpoint.is_some() {
                    self.stats.checkpoints.fetch_add(1, Ordering::Relaxed);
                }
                let mut outcomes = outcomes.into_iter();
                for (reply, drafts) in replies {
                    let _ = reply.send(Ok(outcomes.by_ref().take(drafts).collect()));
                }
                checkpoint
            }
            Err(err) => {
                self.stats.failed_batches.fetch_add(1, Ordering::Relaxed);
                let events: usize = replies.iter().map(|(_, drafts)| drafts).sum();
                tracing::error!(error = %err, events, "audit batch failed; refusing its actions");
                for (reply, _) in replies {
                    let _ = reply.send(Err(err.clone()));
                }
                None
            }
        }
    }

    /// Links the drafts after `head`: the events to insert, the checkpoint to
    /// sign with them if the batch crosses a multiple of `checkpoint_every`, and
    /// each draft's outcome (refused drafts get their own error and take no seq;
    /// the others are unaffected).
    fn link(
        &self,
        head: Head,
        drafts: Vec<EventDraft>,
    ) -> (
        Vec<AuditEvent>,
        Option<Checkpoint>,
        Vec<Result<u64, StoreError>>,
    ) {
        let (linked, new_head) = link_each(head, drafts);
        let mut events: Vec<AuditEvent> = Vec::with_capacity(linked.len());
        let outcomes = linked
            .into_iter()
            .map(|linked| match linked {
                Ok(event) => {
                    let seq = event.seq;
                    events.push(event);
                    Ok(seq)
                }
                Err(refused) => Err(StoreError::Audit(refused)),
            })
            .collect();
        let checkpoint = periodic_checkpoint(
            &self.signer,
            &self.clock,
            self.config.checkpoint_every,
            head,
            new_head,
        );
        (events, checkpoint, outcomes)
    }

    /// One transaction through the pool: lock the chain, link the drafts after
    /// the head, insert them, maybe sign a checkpoint, commit.
    async fn write(&self, drafts: Vec<EventDraft>) -> Result<Written, StoreError> {
        let mut tx = self.store.begin_write().await?;
        tx.lock_audit_chain().await?;
        let head = read_head(&mut tx).await?;
        let (events, checkpoint, outcomes) = self.link(head, drafts);
        insert_events(&mut tx, &events).await?;
        if let Some(checkpoint) = &checkpoint {
            insert_checkpoint(&mut tx, checkpoint).await?;
        }
        tx.commit().await?;
        Ok((outcomes, checkpoint))
    }

    /// Signs the current head (which covers this writer's events and any other
    /// replica's before them), unless the chain is empty.
    async fn final_checkpoint(
        &self,
        last: Option<Checkpoint>,
    ) -> Result<Option<Checkpoint>, StoreError> {
        let head = self.store.audit_head().await?;
        let (checkpoint, fresh) = self.closing_checkpoint(head, last);
        if let (Some(checkpoint), true) = (&checkpoint, fresh) {
            self.store.add_checkpoint(checkpoint).await?;
            self.stats.checkpoints.fetch_add(1, Ordering::Relaxed);
        }
        Ok(checkpoint)
    }

    fn closing_checkpoint(
        &self,
        head: Head,
        last: Option<Checkpoint>,
    ) -> (Option<Checkpoint>, bool) {
        closing_checkpoint(&self.signer, &self.clock, head, last)
    }
}

/// The checkpoint to sign with a batch that moves the head from `old` to
/// `new`: one when it passes a multiple of `every` (0: never).
pub(crate) fn periodic_checkpoint(
    signer: &AuditSigner,
    clock: &Clock,
    every: u64,
    old: Head,
    new: Head,
) -> Option<Checkpoint> {
    (every > 0 && new.seq / every > old.seq / every).then(|| signer.sign_checkpoint(new, clock()))
}

/// The checkpoint to end on at `head`: none for an empty chain, the last one
/// written if it is at the head already, else a new one (`true`: still to be
/// stored).
pub(crate) fn closing_checkpoint(
    signer: &AuditSigner,
    clock: &Clock,
    head: Head,
    last: Option<Checkpoint>,
) -> (Option<Checkpoint>, bool) {
    if head == Head::GENESIS {
        return (None, false);
    }
    match last.filter(|c| c.head() == head) {
        Some(last) => (Some(last), false),
        None => (Some(signer.sign_checkpoint(head, clock())), true),
    }
}

/// Splits received messages into the drafts to write and their submitters; a
/// shutdown request closes the queue (drafts already queued are still written
/// by the next rounds).
fn take_batch(
    messages: &mut Vec<Message>,
    receiver: &mut mpsc::UnboundedReceiver<Message>,
) -> (Vec<EventDraft>, Replies) {
    let mut drafts = Vec::with_capacity(messages.len());
    let mut replies = Vec::with_capacity(messages.len());
    for message in messages.drain(..) {
        match message {
            Message::Write {
                drafts: mut theirs,
                reply,
                _room,
            } => {
                replies.push((reply, theirs.len()));
                drafts.append(&mut theirs);
            }
            Message::Shutdown => receiver.close(),
        }
    }
    (drafts, replies)
}

/// The writer thread's connection, opened if it is not yet.
fn open_chain<'a>(
    chain: &'a mut Option<SqliteChain>,
    file: &SqliteFile,
) -> Result<&'a mut SqliteChain, StoreError> {
    if chain.is_none() {
        *chain = Some(SqliteChain::open(file)?);
    }
    chain.as_mut().ok_or(StoreError::WriterClosed)
}
