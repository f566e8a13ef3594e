//! Group commit for audit events.
//!
//! The PostgreSQL proxy records one event per SQL statement, thousands per second.
//! Committing each alone would cost one fsync (SQLite) or one WAL flush (PostgreSQL)
//! per statement. Instead every submitter hands its draft to one writer task through
//! a bounded channel; the task takes everything waiting, appends it in a single
//! transaction, and only after the commit tells each submitter its seq. While one
//! batch commits, the next one accumulates, so the batch size follows the load by
//! itself and an idle gateway still commits each event at once.
//!
//! On SQLite the writer runs on a thread of its own with its own connection,
//! so a batch is begun, linked, inserted and committed without a hop between
//! threads (see `sqlite_chain`); on PostgreSQL it is a tokio task using the
//! pool, and the chain lock serialises it with other replicas' writers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use periscope_audit::{AuditEvent, AuditSigner, AuditTime, Checkpoint, EventDraft, Head};
use tokio::sync::{mpsc, oneshot, watch};

use crate::audit::{insert_checkpoint, insert_events, link_each, read_head};
use crate::error::StoreError;
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
    /// Drafts that may wait for the writer; when full, submitters wait (the proxy
    /// slows down rather than acknowledging what is not written).
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
    Append {
        draft: EventDraft,
        ack: Ack,
    },
    /// Several drafts that must share one transaction.
    AppendAll(Vec<(EventDraft, Ack)>),
    Shutdown,
}

/// What the task reports when it ends: the last checkpoint it wrote, if any.
type Finished = Option<Result<Option<Checkpoint>, StoreError>>;

/// Handle to the group-commit task; clones share the task.
///
/// Dropping every handle also ends the task after it has written what was queued
/// and a final checkpoint, but only [`AuditWriter::shutdown`] lets the caller wait
/// for that.
#[derive(Clone, Debug)]
pub struct AuditWriter {
    queue: mpsc::Sender<Message>,
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
}

#[derive(Debug, Default)]
struct Counters {
    batches: AtomicU64,
    events: AtomicU64,
    failed_batches: AtomicU64,
    checkpoints: AtomicU64,
}

impl AuditWriter {
    /// Starts the writer: on SQLite, on a thread of its own with its own
    /// connection to the file (see `sqlite_chain`); on PostgreSQL, as a task on
    /// the current tokio runtime using the store's pool.
    pub fn spawn(
        store: Store,
        signer: AuditSigner,
        clock: Clock,
        config: AuditWriterConfig,
    ) -> AuditWriter {
        let (queue, receiver) = mpsc::channel(config.queue.max(1));
        let (done, finished) = watch::channel(None);
        let stats = Arc::new(Counters::default());
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
            queue,
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
        }
    }

    /// Appends one event and resolves to its seq once it is committed (durable).
    ///
    /// An error means the event is not recorded: the caller must refuse the action
    /// it describes.
    pub async fn append(&self, draft: EventDraft) -> Result<u64, StoreError> {
        self.enqueue(draft).await?.committed().await
    }

    /// Hands one event to the writer and returns once it is queued (waiting only
    /// for room in the queue), with a handle that resolves when it is committed.
    ///
    /// Events are written in the order they are enqueued, so a caller that must
    /// keep its events in order (one proxied session) enqueues them one after
    /// the other and awaits the commits concurrently, instead of waiting for
    /// each commit before handing over the next event.
    pub async fn enqueue(&self, draft: EventDraft) -> Result<Enqueued, StoreError> {
        let (ack, acked) = oneshot::channel();
        self.queue
            .send(Message::Append { draft, ack })
            .await
            .map_err(|_| StoreError::WriterClosed)?;
        Ok(Enqueued { acked })
    }

    /// Hands several events to the writer as one unit: they are written in
    /// this order, next to each other, in the same transaction (one commit,
    /// one fsync for all of them), after everything enqueued before.
    ///
    /// A session uses it to write a statement's outcome, which nobody waits
    /// for, together with its next statement, which must be committed before
    /// its results are shown.
    pub async fn enqueue_all(&self, drafts: Vec<EventDraft>) -> Result<Vec<Enqueued>, StoreError> {
        let mut handles = Vec::with_capacity(drafts.len());
        let mut message = Vec::with_capacity(drafts.len());
        for draft in drafts {
            let (ack, acked) = oneshot::channel();
            message.push((draft, ack));
            handles.push(Enqueued { acked });
        }
        if message.is_empty() {
            return Ok(handles);
        }
        self.queue
            .send(Message::AppendAll(message))
            .await
            .map_err(|_| StoreError::WriterClosed)?;
        Ok(handles)
    }

    /// Stops accepting drafts, commits everything already submitted, writes a final
    /// checkpoint at the chain head, and returns it (`None` for an empty chain).
    /// Calling it again, from any clone, waits for the same end and returns the same
    /// result.
    pub async fn shutdown(&self) -> Result<Option<Checkpoint>, StoreError> {
        // Ignore a closed queue: the task is already finishing.
        let _ = self.queue.send(Message::Shutdown).await;
        let mut finished = self.finished.clone();
        let result = finished
            .wait_for(Option::is_some)
            .await
            .map_err(|_| StoreError::WriterClosed)?
            .clone();
        result.unwrap_or(Err(StoreError::WriterClosed))
    }
}

/// An event handed to the writer by [`AuditWriter::enqueue`], not yet known to
/// be committed.
#[derive(Debug)]
pub struct Enqueued {
    acked: oneshot::Receiver<Result<u64, StoreError>>,
}

impl Enqueued {
    /// Resolves to the event's seq once it is committed (durable); an error
    /// means it is not recorded.
    pub async fn committed(self) -> Result<u64, StoreError> {
        self.acked.await.map_err(|_| StoreError::WriterClosed)?
    }
}

struct Task {
    store: Store,
    signer: AuditSigner,
    clock: Clock,
    config: AuditWriterConfig,
    stats: Arc<Counters>,
}

type Ack = oneshot::Sender<Result<u64, StoreError>>;

/// What one batch's transaction produced: each draft's seq or refusal, and the
/// checkpoint written with it.
type Written = (Vec<Result<u64, StoreError>>, Option<Checkpoint>);

impl Task {
    /// The writer on the tokio runtime, through the store's pool (PostgreSQL).
    async fn run(self, mut receiver: mpsc::Receiver<Message>, done: watch::Sender<Finished>) {
        let max_batch = self.config.max_batch.max(1);
        let mut messages = Vec::with_capacity(max_batch);
        let mut last_checkpoint = None;
        // `recv_many` waits for at least one message, then takes all that are
        // queued (up to the limit): that is the whole group-commit policy.
        while receiver.recv_many(&mut messages, max_batch).await > 0 {
            let (drafts, acks) = take_batch(&mut messages, &mut receiver);
            if acks.is_empty() {
                continue;
            }
            let written = self.write(drafts).await;
            if let Some(checkpoint) = self.answer(acks, written) {
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
        mut receiver: mpsc::Receiver<Message>,
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
            let (drafts, acks) = take_batch(&mut messages, &mut receiver);
            if acks.is_empty() {
                continue;
            }
            // Opened on first use, and again after a failed open, so a file
            // that is briefly unavailable fails batches, not the writer.
            let written = open_chain(&mut chain, file)
                .and_then(|chain| chain.append(|head| self.link(head, drafts)));
            if let Some(checkpoint) = self.answer(acks, written) {
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
    fn answer(&self, acks: Vec<Ack>, written: Result<Written, StoreError>) -> Option<Checkpoint> {
        match written {
            Ok((outcomes, checkpoint)) => {
                let written = outcomes.iter().filter(|o| o.is_ok()).count() as u64;
                self.stats.batches.fetch_add(1, Ordering::Relaxed);
                self.stats.events.fetch_add(written, Ordering::Relaxed);
                if checkpoint.is_some() {
                    self.stats.checkpoints.fetch_add(1, Ordering::Relaxed);
                }
                for (ack, outcome) in acks.into_iter().zip(outcomes) {
                    // A submitter that stopped waiting still had its event written.
                    let _ = ack.send(outcome);
                }
                checkpoint
            }
            Err(err) => {
                self.stats.failed_batches.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %err, events = acks.len(), "audit batch failed; refusing its actions");
                for ack in acks {
                    let _ = ack.send(Err(err.clone()));
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
        let every = self.config.checkpoint_every;
        let checkpoint = (every > 0 && new_head.seq / every > head.seq / every)
            .then(|| self.signer.sign_checkpoint(new_head, (self.clock)()));
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

    /// The checkpoint to end on at `head`: none for an empty chain, the last one
    /// written if it is at the head already, else a new one (`true`: still to be
    /// stored).
    fn closing_checkpoint(
        &self,
        head: Head,
        last: Option<Checkpoint>,
    ) -> (Option<Checkpoint>, bool) {
        if head == Head::GENESIS {
            return (None, false);
        }
        match last.filter(|c| c.head() == head) {
            Some(last) => (Some(last), false),
            None => (
                Some(self.signer.sign_checkpoint(head, (self.clock)())),
                true,
            ),
        }
    }
}

/// Splits received messages into the drafts to write and their submitters; a
/// shutdown request closes the queue (drafts already queued are still written
/// by the next rounds).
fn take_batch(
    messages: &mut Vec<Message>,
    receiver: &mut mpsc::Receiver<Message>,
) -> (Vec<EventDraft>, Vec<Ack>) {
    let mut drafts = Vec::with_capacity(messages.len());
    let mut acks = Vec::with_capacity(messages.len());
    for message in messages.drain(..) {
        match message {
            Message::Append { draft, ack } => {
                drafts.push(draft);
                acks.push(ack);
            }
            Message::AppendAll(all) => {
                for (draft, ack) in all {
                    drafts.push(draft);
                    acks.push(ack);
                }
            }
            Message::Shutdown => receiver.close(),
        }
    }
    (drafts, acks)
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
