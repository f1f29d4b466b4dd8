//! The global log reader: never skips an event that commits late, never repeats one.

use std::collections::HashSet;

use switchboard_store::{Database, EventRepository, LogCursor};

use crate::helpers::{Backend, FreshDatabase};
use crate::on_both_backends;

const INSERT: &str = "insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
                      values ('Probe', $1, 1, 'ProbeRecorded', '1.0', '{}', '{}')";

async fn migrated(backend: Backend) -> (Database, FreshDatabase) {
    let fresh = FreshDatabase::new(backend).await;
    let database = Database::connect(&fresh.config).await.expect("connect");
    database.migrate().await.expect("migrate");
    (database, fresh)
}

/// Reads everything after `cursor`, page by page; returns the aggregate ids and the new cursor.
async fn read_rest(log: &EventRepository, mut cursor: LogCursor) -> (Vec<String>, LogCursor) {
    let mut ids = Vec::new();
    loop {
        let page = log.read_all(cursor, 2).await.expect("read");
        let Some(last) = page.last() else {
            return (ids, cursor);
        };
        cursor = last.cursor;
        ids.extend(page.into_iter().map(|e| e.aggregate_id));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_that_commits_late_is_read_once_after_it_commits() {
    if crate::helpers::postgres_url().is_none() {
        return;
    }
    let (database, _fresh) = migrated(Backend::Postgres).await;
    let Database::Postgres(pool) = &database else {
        unreachable!("PostgreSQL backend")
    };
    let log = EventRepository::new(database.clone(), crate::helpers::test_master_keys());

    // A writer takes its position first and holds its transaction open...
    let mut held = pool.begin().await.expect("begin");
    sqlx::query(INSERT)
        .bind("late")
        .execute(&mut *held)
        .await
        .expect("insert late");
    // ...while others commit after it.
    for id in ["early-commit-1", "early-commit-2"] {
        sqlx::query(INSERT)
            .bind(id)
            .execute(pool)
            .await
            .expect("insert");
    }
    let (first_read, cursor) = read_rest(&log, LogCursor::START).await;
    assert!(
        !first_read.contains(&"late".to_owned()),
        "uncommitted event not visible"
    );

    held.commit().await.expect("commit late");
    // Other transactions in the cluster (parallel tests) may still hold the horizon back for a
    // moment; the reader delivers once they end.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let (mut second_read, mut cursor) = (Vec::new(), cursor);
    while first_read.len() + second_read.len() < 3 && std::time::Instant::now() < deadline {
        let (more, next) = read_rest(&log, cursor).await;
        second_read.extend(more);
        cursor = next;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let all: Vec<String> = first_read.iter().chain(&second_read).cloned().collect();
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!(all.len(), 3, "every event read: {all:?}");
    assert_eq!(unique.len(), 3, "no event read twice: {all:?}");
    assert!(
        all.contains(&"late".to_owned()),
        "the late event is delivered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_that_writes_no_events_does_not_hold_the_log_back() {
    if crate::helpers::postgres_url().is_none() {
        return;
    }
    let (database, _fresh) = migrated(Backend::Postgres).await;
    let Database::Postgres(pool) = &database else {
        unreachable!("PostgreSQL backend")
    };
    let log = EventRepository::new(database.clone(), crate::helpers::test_master_keys());
    // A long transaction that writes something else (a projection batch, a session update)...
    let mut other = pool.begin().await.expect("begin");
    sqlx::query("insert into projection_checkpoints (name, transaction_id, position) values ('probe', 0, 0)")
        .execute(&mut *other)
        .await
        .expect("other write");
    // ...does not keep an event committed after it from readers.
    sqlx::query(INSERT)
        .bind("after")
        .execute(pool)
        .await
        .expect("insert");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (read, _) = read_rest(&log, LogCursor::START).await;
        if read == ["after"] {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "held back by a transaction that writes no events"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Events must be the first thing a transaction writes (else it could register too late).
    let refused = sqlx::query(INSERT)
        .bind("late-registration")
        .execute(&mut *other)
        .await;
    assert!(refused.is_err(), "an event after another write is refused");
    other.rollback().await.expect("rollback");
}

async fn the_reader_pages_through_the_log_in_order(backend: Backend) {
    let (database, _fresh) = migrated(backend).await;
    let log = EventRepository::new(database.clone(), crate::helpers::test_master_keys());
    for i in 0..7 {
        switchboard_store::with_pool!(&database, pool => sqlx::query(INSERT)
            .bind(format!("e{i}")).execute(pool).await.map(|_| ()).expect("insert"));
    }
    // On PostgreSQL a transaction still in flight anywhere in the cluster (another test's) holds
    // newer events back until it ends; the reader delivers them afterwards, so read until done.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let (mut ids, mut cursor) = (Vec::new(), LogCursor::START);
    while ids.len() < 7 && std::time::Instant::now() < deadline {
        let (more, next) = read_rest(&log, cursor).await;
        ids.extend(more);
        cursor = next;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(ids, (0..7).map(|i| format!("e{i}")).collect::<Vec<_>>());
    // A position handed to a client turns back into the same cursor.
    assert_eq!(
        log.cursor_after(cursor.position).await.expect("cursor"),
        cursor
    );
    assert!(log.read_all(cursor, 10).await.expect("read").is_empty());
    assert_eq!(log.count().await.expect("count"), 7);
}

on_both_backends!(the_reader_pages_through_the_log_in_order);

/// The reader follows the log-order index and stops at its page: it never sorts the unread
/// rest of the log (it did, ordering by its own `bigint` output column, which made every read
/// of a long backlog cost a sort of all of it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reader_reads_a_page_through_the_log_order_index_without_sorting() {
    if crate::helpers::postgres_url().is_none() {
        return;
    }
    let (database, _fresh) = migrated(Backend::Postgres).await;
    let Database::Postgres(pool) = &database else {
        unreachable!("PostgreSQL backend")
    };
    for batch in 0..4 {
        sqlx::query(
            "insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
             select 'Probe', $1 || g, 1, 'ProbeRecorded', '1.0', '{}', '{}' from generate_series(1, 5000) g",
        )
        .bind(format!("b{batch}-"))
        .execute(pool)
        .await
        .expect("insert");
    }
    sqlx::query("analyze events")
        .execute(pool)
        .await
        .expect("analyze");
    let explain = format!(
        "explain (format json) {}",
        switchboard_store::READ_ALL_POSTGRES
            .replace("$1", "'0'")
            .replace("$2", "0")
            .replace("$3", "1000")
            .replace("$4", "'999999999'")
    );
    let plan: serde_json::Value = sqlx::query_scalar(&explain)
        .fetch_one(pool)
        .await
        .expect("explain");
    let text = plan.to_string();
    assert!(
        text.contains("events_log_order") && !text.contains("\"Sort\""),
        "the reader's plan should scan the log-order index without a sort: {text}"
    );
}
