//! Group commit for audit events.
//!
//! The PostgreSQL proxy records one event per SQL statement, thousands per second.
//! Committing each alone would cost one fsync (SQLite) or one WAL flush (PostgreSQL)
//! per statement. Instead every submitter hands its draft to one writer task through
//! a bounded channel; the task takes everything waiting, appends it in a single
//! transaction, and only after the commit tells each submitter its seq. While one
//! batch commits, the next one accumulates, so the batch size follows the load by
//! itself and an idle gateway still commits each event at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use periscope_audit::{AuditEvent, AuditSigner, AuditTime, Checkpoint, EventDraft, Head};
use tokio::sync::{mpsc, oneshot, watch};

use crate::audit::{insert_checkpoint, insert_events, link_each, read_head};
use crate::error::StoreError;
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
        ack: oneshot::Sender<Result<u64, StoreError>>,
    },
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
    /// Starts the writer task on the current tokio runtime.
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
        tokio::spawn(task.run(receiver, done));
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

impl Task {
    async fn run(self, mut receiver: mpsc::Receiver<Message>, done: watch::Sender<Finished>) {
        let max_batch = self.config.max_batch.max(1);
        let mut messages = Vec::with_capacity(max_batch);
        let mut last_checkpoint = None;
        // `recv_many` waits for at least one message, then takes all that are
        // queued (up to the limit): that is the whole group-commit policy.
        while receiver.recv_many(&mut messages, max_batch).await > 0 {
            let mut batch = Vec::with_capacity(messages.len());
            for message in messages.drain(..) {
                match message {
                    Message::Append { draft, ack } => batch.push((draft, ack)),
                    // Refuse new drafts; the ones already queued are still written
                    // by the next rounds of this loop.
                    Message::Shutdown => receiver.close(),
                }
            }
            if !batch.is_empty()
                && let Some(checkpoint) = self.commit(batch).await
            {
                last_checkpoint = Some(checkpoint);
            }
        }
        let result = self.final_checkpoint(last_checkpoint).await;
        if let Err(err) = &result {
            tracing::error!(error = %err, "audit writer could not write its final checkpoint");
        }
        done.send_replace(Some(result));
    }

    /// Commits one batch and answers every submitter. Returns the checkpoint written
    /// with it, if the batch crossed a multiple of `checkpoint_every`.
    async fn commit(
        &self,
        batch: Vec<(EventDraft, oneshot::Sender<Result<u64, StoreError>>)>,
    ) -> Option<Checkpoint> {
        let (drafts, acks): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        match self.write(drafts).await {
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

    /// One transaction: lock the chain, link the drafts after the head, insert them,
    /// maybe sign a checkpoint, commit. Refused drafts get their own error and take
    /// no seq; the others are unaffected.
    async fn write(
        &self,
        drafts: Vec<EventDraft>,
    ) -> Result<(Vec<Result<u64, StoreError>>, Option<Checkpoint>), StoreError> {
        let mut tx = self.store.begin_write().await?;
        tx.lock_audit_chain().await?;
        let head = read_head(&mut tx).await?;
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
        insert_events(&mut tx, &events).await?;
        let every = self.config.checkpoint_every;
        let checkpoint = (every > 0 && new_head.seq / every > head.seq / every)
            .then(|| self.signer.sign_checkpoint(new_head, (self.clock)()));
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
        if head == Head::GENESIS {
            return Ok(None);
        }
        if let Some(last) = last.filter(|c| c.head() == head) {
            return Ok(Some(last));
        }
        let checkpoint = self.signer.sign_checkpoint(head, (self.clock)());
        self.store.add_checkpoint(&checkpoint).await?;
        self.stats.checkpoints.fetch_add(1, Ordering::Relaxed);
        Ok(Some(checkpoint))
    }
}
