//! The audit chain in the store: appends, queries, export, verification, concurrent
//! writers and the group-commit writer, on both backends.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use crate::common::{TestDb, TestResult, manual_clock, t};
use futures_util::TryStreamExt;
use periscope_audit::{AuditSigner, ChainError, Head, Start};
use periscope_store::{
    AuditQuery, AuditWriter, AuditWriterConfig, Backend, EventDraft, ExportFrom, StoreError,
};
use serde_json::json;
use sqlx::Executor;

fn draft(secs: i64, actor: &str, action: &str, target: &str) -> EventDraft {
    EventDraft::new(t(secs), actor, action, target)
}

/// A writer with the default tuning, the test key and a manual clock.
fn default_writer(db: &TestDb) -> AuditWriter {
    let (clock, _) = manual_clock();
    AuditWriter::spawn(
        db.store.clone(),
        signer(),
        clock,
        AuditWriterConfig::default(),
    )
}

fn signer() -> AuditSigner {
    AuditSigner::from_seed(&[7; 32])
}

async fn events_round_trip_and_hash_the_same(db: TestDb) -> TestResult {
    let store = &db.store;
    assert_eq!(store.audit_head().await?, Head::GENESIS);
    let details = json!({
        "sql": "SELECT email FROM users WHERE id = $1",
        "rows": 3,
        "ratio": 0.1,
        "tiny": 1.0e-300,
        "big": u64::MAX,
        "text": "é \u{1F50D} \"quoted\" \\ \n",
        "nested": {"b": [1, 2, {"a": null}], "a": true}
    });
    let written = store
        .append_audit(vec![
            draft(0, "alice", "query", "pg-prod")
                .with_details(details.clone())
                .with_grant("g-1"),
            draft(1, "bob", "session.start", "pg-prod"),
        ])
        .await?;
    assert_eq!(written.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(store.audit_head().await?, written[1].head());
    let read = store.audit_event(1).await?;
    assert_eq!(read, written[0]);
    assert_eq!(read.details, details);
    assert_eq!(read.compute_hash(), read.hash);
    assert!(matches!(
        store.audit_event(3).await,
        Err(StoreError::NotFound { .. })
    ));

    let key = signer().verifier_key();
    let report = store.verify_audit(&[key], Start::Genesis).await?;
    assert_eq!(report.events_checked, 2);
    Ok(())
}

async fn tail_and_search(db: TestDb) -> TestResult {
    let store = &db.store;
    let mut drafts = Vec::new();
    for i in 0..30 {
        let actor = if i % 3 == 0 { "alice" } else { "bob" };
        let action = ["request.create", "request.approve", "query"][i % 3];
        drafts.push(draft(i as i64, actor, action, &format!("pg-{}", i % 2)));
    }
    store.append_audit(drafts).await?;

    let tail = store.audit_tail(5).await?;
    assert_eq!(
        tail.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [26, 27, 28, 29, 30]
    );

    let alice = store
        .search_audit(&AuditQuery {
            actor: Some("alice".into()),
            ..AuditQuery::default()
        })
        .await?;
    assert_eq!(alice.len(), 10);
    assert!(alice.iter().all(|e| e.actor == "alice"));
    assert!(
        alice.windows(2).all(|w| w[0].seq < w[1].seq),
        "oldest first"
    );

    let requests = store
        .search_audit(&AuditQuery {
            action: Some("request.".into()),
            target: Some("pg-0".into()),
            since: Some(t(10)),
            until: Some(t(20)),
            limit: 3,
            ..AuditQuery::default()
        })
        .await?;
    // Seconds 10..20 with target pg-0 (even) and a request.* action (i % 3 != 2):
    // 10, 12, 16, 18 -> newest three, oldest first.
    let secs: Vec<u64> = requests.iter().map(|e| e.seq - 1).collect();
    assert_eq!(secs, [12, 16, 18]);
    assert!(requests.iter().all(|e| e.action.starts_with("request.")));

    let exact = store
        .search_audit(&AuditQuery {
            action: Some("query".into()),
            limit: 1000,
            ..AuditQuery::default()
        })
        .await?;
    assert_eq!(exact.len(), 10);

    // Keyset paging: each page starts below the previous page's oldest seq,
    // and the pages together are every match exactly once.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .search_audit(&AuditQuery {
                actor: Some("bob".into()),
                before_seq: before,
                limit: 7,
                ..AuditQuery::default()
            })
            .await?;
        let Some(oldest) = page.first() else { break };
        before = Some(oldest.seq);
        seen.extend(page.iter().rev().map(|e| e.seq));
    }
    assert_eq!(seen.len(), 20);
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "newest first, no repeat"
    );

    // A window of the chain: from_seq (inclusive) to before_seq (exclusive).
    let window = store
        .search_audit(&AuditQuery {
            from_seq: Some(11),
            before_seq: Some(21),
            action: Some("query".into()),
            ..AuditQuery::default()
        })
        .await?;
    assert_eq!(
        window.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [12, 15, 18]
    );

    // Text search: any of actor, action, target, details; ASCII case ignored;
    // LIKE wildcards in the text are literal.
    store
        .append_audit(vec![
            draft(40, "carol", "query", "pg-9").with_details(json!({"sql": "SELECT 'Needle_%'"})),
        ])
        .await?;
    let text = |t: &str| AuditQuery {
        text: Some(t.into()),
        ..AuditQuery::default()
    };
    let found = store.search_audit(&text("NEEDLE_%")).await?;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].actor, "carol");
    assert!(store.search_audit(&text("needle__")).await?.is_empty());
    assert!(store.search_audit(&text("need%e")).await?.is_empty());
    assert_eq!(store.search_audit(&text("PG-9")).await?.len(), 1);
    Ok(())
}

async fn export_streams_every_page(db: TestDb) -> TestResult {
    let store = &db.store;
    // More than two pages of 500.
    let drafts: Vec<_> = (0..1234)
        .map(|i| draft(i, "alice", "query", "pg"))
        .collect();
    store.append_audit(drafts).await?;

    let all: Vec<_> = store.export_audit(ExportFrom::Start).try_collect().await?;
    assert_eq!(all.len(), 1234);
    assert!(all.iter().enumerate().all(|(i, e)| e.seq == i as u64 + 1));

    let from_seq: Vec<_> = store
        .export_audit(ExportFrom::Seq(1000))
        .try_collect()
        .await?;
    assert_eq!(from_seq.first().map(|e| e.seq), Some(1000));
    assert_eq!(from_seq.len(), 235);

    let from_time: Vec<_> = store
        .export_audit(ExportFrom::Time(t(600)))
        .try_collect()
        .await?;
    assert_eq!(from_time.first().map(|e| e.seq), Some(601));
    assert_eq!(from_time.len(), 634);

    let none: Vec<_> = store
        .export_audit(ExportFrom::Time(t(5000)))
        .try_collect()
        .await?;
    assert!(none.is_empty());
    Ok(())
}

async fn verify_names_a_tampered_event(db: TestDb) -> TestResult {
    let store = &db.store;
    let drafts: Vec<_> = (0..10).map(|i| draft(i, "alice", "query", "pg")).collect();
    store.append_audit(drafts).await?;
    let signer = signer();
    store
        .add_checkpoint(&signer.sign_checkpoint(store.audit_head().await?, t(11)))
        .await?;
    let keys = [signer.verifier_key()];
    let report = store.verify_audit(&keys, Start::Genesis).await?;
    assert_eq!(
        (report.events_checked, report.last_checkpoint_seq),
        (10, Some(10))
    );

    let mut raw = db.raw().await;
    raw.execute("UPDATE audit_events SET target = 'pg-other' WHERE seq = 4")
        .await?;
    let err = store.verify_audit(&keys, Start::Genesis).await.unwrap_err();
    assert_eq!(err.seq(), Some(4), "{err}");
    assert!(matches!(err, ChainError::HashMismatch { .. }), "{err:?}");
    Ok(())
}

/// Many appenders at once, over separate pool connections and (on PostgreSQL)
/// separate `Store`s, like replicas: one chain, no gap, every link valid.
async fn concurrent_appenders_make_one_chain(db: TestDb) -> TestResult {
    let replica = db.replica().await;
    let mut tasks = Vec::new();
    for task in 0..16 {
        let store = if task % 2 == 0 {
            db.store.clone()
        } else {
            replica.clone()
        };
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..20 {
                let events = store
                    .append_audit(vec![
                        draft(i, &format!("writer{task}"), "query", "pg"),
                        draft(i, &format!("writer{task}"), "query", "pg"),
                    ])
                    .await?;
                // A transaction's events are contiguous.
                assert_eq!(events[1].seq, events[0].seq + 1);
                seqs.extend(events.iter().map(|e| e.seq));
            }
            Ok::<_, StoreError>(seqs)
        }));
    }
    let mut all = BTreeSet::new();
    for task in tasks {
        for seq in task.await?? {
            assert!(all.insert(seq), "seq {seq} handed out twice");
        }
    }
    assert_eq!(all.len(), 640);
    assert_eq!(all.last(), Some(&640));
    let report = db
        .store
        .verify_audit(&[signer().verifier_key()], Start::Genesis)
        .await?;
    assert_eq!(report.events_checked, 640);
    Ok(())
}

async fn writer_group_commits_and_checkpoints(db: TestDb) -> TestResult {
    let (clock, _) = manual_clock();
    let config = AuditWriterConfig {
        checkpoint_every: 100,
        ..AuditWriterConfig::default()
    };
    let writer = AuditWriter::spawn(db.store.clone(), signer(), clock, config);

    // One at a time: each batch holds one event, so a checkpoint lands exactly on
    // every hundredth.
    for i in 0..250 {
        assert_eq!(
            writer.append(draft(i, "alice", "query", "pg")).await?,
            i as u64 + 1
        );
    }
    let periodic: Vec<u64> = db
        .store
        .audit_checkpoints(None)
        .await?
        .iter()
        .map(|c| c.seq)
        .collect();
    assert_eq!(periodic, [100, 200]);
    assert_eq!(writer.stats().batches, 250);

    // All at once: concurrent submissions share transactions.
    let mut tasks = Vec::new();
    for i in 0..500 {
        let writer = writer.clone();
        tasks.push(tokio::spawn(async move {
            writer.append(draft(i, "alice", "query", "pg-prod")).await
        }));
    }
    let mut seqs = BTreeSet::new();
    for task in tasks {
        seqs.insert(task.await??);
    }
    assert_eq!(seqs, (251..=750).collect());
    let stats = writer.stats();
    assert_eq!(stats.events, 750);
    assert!(
        stats.index_commits < 750,
        "no group commit happened: {stats:?}"
    );

    // A refused draft fails alone.
    let bad = writer
        .append(draft(1, "", "query", "pg"))
        .await
        .unwrap_err();
    assert!(matches!(bad, StoreError::Audit(_)), "{bad:?}");
    assert_eq!(writer.append(draft(1, "alice", "query", "pg")).await?, 751);

    let last = writer
        .shutdown()
        .await?
        .expect("a non-empty chain is checkpointed");
    assert_eq!(last.seq, 751);
    assert_eq!(
        writer.shutdown().await?,
        Some(last.clone()),
        "shutdown is idempotent"
    );
    assert!(matches!(
        writer.append(draft(2, "alice", "query", "pg")).await,
        Err(StoreError::WriterClosed)
    ));

    let checkpoints = db.store.audit_checkpoints(None).await?;
    assert_eq!(checkpoints.last(), Some(&last));
    assert_eq!(db.store.audit_checkpoints(Some(751)).await?, vec![last]);
    let report = db
        .store
        .verify_audit(&[signer().verifier_key()], Start::Genesis)
        .await?;
    assert_eq!(report.events_checked, 751);
    assert_eq!(report.checkpoints_verified, checkpoints.len() as u64);
    assert_eq!(report.uncovered_events, 0);
    Ok(())
}

/// When the database refuses a batch, every waiting submitter gets the error and
/// nothing is acknowledged; once the database is back, the chain goes on gap-free.
/// On the embedded store with process-crash durability the redo file is the
/// durable record: the events are acknowledged and indexed once the table is back.
async fn writer_failure_reaches_every_submitter(db: TestDb) -> TestResult {
    let writer = default_writer(&db);
    assert_eq!(writer.append(draft(0, "alice", "query", "pg")).await?, 1);

    let mut raw = db.raw().await;
    raw.execute("ALTER TABLE audit_events RENAME TO audit_events_away")
        .await?;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let writer = writer.clone();
        tasks.push(tokio::spawn(async move {
            writer.append(draft(i, "alice", "query", "pg")).await
        }));
    }
    if db.store.backend() == Backend::Sqlite {
        // Process-crash durability on the embedded store: the redo file is
        // the durable record, so the events are acknowledged; the index
        // keeps retrying and takes them once the table is back.
        let mut seqs = BTreeSet::new();
        for task in tasks {
            seqs.insert(task.await??);
        }
        assert_eq!(seqs, (2..=51).collect());
        raw.execute("ALTER TABLE audit_events_away RENAME TO audit_events")
            .await?;
        assert_eq!(writer.append(draft(9, "alice", "query", "pg")).await?, 52);
        writer.shutdown().await?;
        let report = db
            .store
            .verify_audit(&[signer().verifier_key()], Start::Genesis)
            .await?;
        assert_eq!(report.events_checked, 52);
        return Ok(());
    }
    for task in tasks {
        let err = task.await?.unwrap_err();
        assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
    }
    assert!(writer.stats().failed_batches >= 1);
    raw.execute("ALTER TABLE audit_events_away RENAME TO audit_events")
        .await?;

    assert_eq!(writer.append(draft(9, "alice", "query", "pg")).await?, 2);
    writer.shutdown().await?;
    let report = db
        .store
        .verify_audit(&[signer().verifier_key()], Start::Genesis)
        .await?;
    assert_eq!(report.events_checked, 2);
    Ok(())
}

/// The group-commit writer and the store's own transactions (a request, an
/// identity, a refused login: state changes with their events) append to the
/// same chain from one process at the same time: on SQLite the writer has its
/// own connection, and both must still take turns on the file without a busy
/// error, a duplicate seq or a gap.
async fn writer_and_store_transactions_take_turns(db: TestDb) -> TestResult {
    let writer = default_writer(&db);
    let mut tasks = Vec::new();
    for i in 0..300 {
        let writer = writer.clone();
        let store = db.store.clone();
        tasks.push(tokio::spawn(async move {
            if i % 3 == 0 {
                let events = store
                    .append_audit(vec![draft(i, "approver", "request.approve", "pg")])
                    .await?;
                Ok::<_, StoreError>(events[0].seq)
            } else {
                writer.append(draft(i, "alice", "query", "pg")).await
            }
        }));
    }
    let mut seqs = BTreeSet::new();
    for task in tasks {
        let seq = task.await??;
        assert!(seqs.insert(seq), "seq {seq} handed out twice");
    }
    assert_eq!(seqs, (1..=300).collect());
    writer.shutdown().await?;
    let report = db
        .store
        .verify_audit(&[signer().verifier_key()], Start::Genesis)
        .await?;
    assert_eq!(report.events_checked, 300);
    assert_eq!(report.uncovered_events, 0);
    Ok(())
}

/// Drafts enqueued as one unit are written next to each other in a single
/// commit, even when the writer is idle and would otherwise commit the first
/// on its own.
async fn writer_commits_a_unit_at_once(db: TestDb) -> TestResult {
    let writer = default_writer(&db);
    assert_eq!(writer.append(draft(0, "alice", "query", "pg")).await?, 1);
    for round in 0..3u64 {
        let unit = (0..4)
            .map(|i| draft(i, "alice", "query.result", "pg"))
            .collect();
        let seqs = writer
            .enqueue_all(unit)
            .await?
            .committed()
            .await?
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        let first = 2 + round * 4;
        assert_eq!(seqs, (first..first + 4).collect::<Vec<_>>());
        assert_eq!(writer.stats().batches, 2 + round, "one commit per unit");
    }
    assert!(
        writer
            .enqueue_all(Vec::new())
            .await?
            .committed()
            .await?
            .is_empty()
    );
    // Handed over without waiting for room: the same one commit, after
    // everything before it.
    let unit = (0..3).map(|i| draft(i, "bob", "query", "pg")).collect();
    let outcome = writer.enqueue_unit_now(unit)?.committed().await?;
    let seqs = outcome.into_iter().collect::<Result<Vec<_>, _>>()?;
    assert_eq!(seqs, vec![14, 15, 16]);
    assert_eq!(writer.stats().batches, 5);
    writer.shutdown().await?;
    Ok(())
}

/// Two replicas, each with its own writer and key, on one database: one chain,
/// verified with both keys.
async fn two_writers_share_one_chain(db: TestDb) -> TestResult {
    let replica = db.replica().await;
    let keys = [
        AuditSigner::from_seed(&[1; 32]),
        AuditSigner::from_seed(&[2; 32]),
    ];
    let verifier_keys: Vec<_> = keys.iter().map(AuditSigner::verifier_key).collect();
    let config = AuditWriterConfig {
        checkpoint_every: 50,
        ..AuditWriterConfig::default()
    };
    let [k1, k2] = keys;
    let (clock, _) = manual_clock();
    let writers = [
        AuditWriter::spawn(db.store.clone(), k1, clock.clone(), config.clone()),
        AuditWriter::spawn(replica, k2, clock, config),
    ];
    let mut tasks = Vec::new();
    for i in 0..400 {
        let writer = writers[i % 2].clone();
        tasks.push(tokio::spawn(async move {
            writer.append(draft(i as i64, "alice", "query", "pg")).await
        }));
    }
    let mut seqs = BTreeSet::new();
    for task in tasks {
        assert!(seqs.insert(task.await??));
    }
    assert_eq!(seqs, (1..=400).collect());
    for writer in &writers {
        writer.shutdown().await?;
    }
    let report = db
        .store
        .verify_audit(&verifier_keys, Start::Genesis)
        .await?;
    assert_eq!(report.events_checked, 400);
    assert_eq!(report.uncovered_events, 0);
    Ok(())
}

/// A session's events, as the proxy writes them, among other sessions' and
/// other identities' events.
async fn a_session_s_events_are_read_through_indexes(db: TestDb) -> TestResult {
    let store = &db.store;
    let ev = |secs: i64, actor: &str, action: &str, session: &str| {
        draft(secs, actor, action, "pg-prod").with_details(json!({ "session": session, "n": secs }))
    };
    let mut drafts = vec![ev(0, "alice", "session.start", "ses_a")];
    drafts.push(ev(1, "bob", "session.start", "ses_b"));
    for i in 0..10 {
        drafts.push(ev(2 + i, "alice", "query", "ses_a"));
        drafts.push(ev(2 + i, "bob", "query", "ses_b"));
        drafts.push(ev(2 + i, "alice", "query.result", "ses_a"));
        drafts.push(draft(2 + i, "carol", "request.create", "req_1"));
    }
    drafts.push(ev(20, "alice", "query.refused", "ses_a"));
    drafts.push(ev(21, "admin", "session.ended_by_admin", "ses_a"));
    drafts.push(ev(22, "alice", "session.end", "ses_a"));
    // Later events of alice in another session are not part of it.
    drafts.push(ev(23, "alice", "session.start", "ses_c"));
    drafts.push(ev(24, "alice", "query", "ses_c"));
    store.append_audit(drafts).await?;

    assert_eq!(store.session_events("ses_nope", None, 100).await?, None);
    let all = store.session_events("ses_a", None, 100).await?.unwrap();
    assert_eq!(all.identity, "alice");
    assert!(!all.more);
    let actions: Vec<&str> = all.events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions.len(), 24, "{actions:?}");
    assert_eq!(actions[0], "session.start");
    assert_eq!(
        &actions[21..],
        ["query.refused", "session.ended_by_admin", "session.end"]
    );
    assert!(all.events.iter().all(|e| e.details["session"] == "ses_a"));
    assert!(all.events.windows(2).all(|w| w[0].seq < w[1].seq));

    // Paged: 5 statements' worth at a time, the other events in place.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.session_events("ses_a", after, 5).await?.unwrap();
        seen.extend(page.events.iter().map(|e| e.seq));
        if !page.more {
            break;
        }
        after = page.events.last().map(|e| e.seq);
    }
    assert_eq!(seen, all.events.iter().map(|e| e.seq).collect::<Vec<_>>());

    // A live session (no end yet) reads up to the head.
    let live = store.session_events("ses_c", None, 100).await?.unwrap();
    assert_eq!(live.events.len(), 2);

    if !db.is_postgres() {
        // The lookup by session id uses the partial index, not a walk.
        use sqlx::Row;
        let mut raw = db.raw().await;
        let rows = sqlx::query(
            "EXPLAIN QUERY PLAN SELECT seq FROM audit_events WHERE action NOT IN \
             ('query', 'query.result', 'query.refused') AND json_extract(details, '$.session') = 'ses_a' \
             ORDER BY seq",
        )
        .fetch_all(&mut raw)
        .await?;
        let plan: Vec<String> = rows
            .iter()
            .map(|r| r.try_get::<String, _>("detail").unwrap_or_default())
            .collect();
        assert!(
            plan.iter().any(|d| d.contains("audit_events_by_session")),
            "{plan:?}"
        );
    }
    Ok(())
}

both_backends!(
    events_round_trip_and_hash_the_same,
    tail_and_search,
    export_streams_every_page,
    verify_names_a_tampered_event,
    concurrent_appenders_make_one_chain,
    writer_group_commits_and_checkpoints,
    writer_failure_reaches_every_submitter,
    two_writers_share_one_chain,
    writer_and_store_transactions_take_turns,
    writer_commits_a_unit_at_once,
    a_session_s_events_are_read_through_indexes,
);
