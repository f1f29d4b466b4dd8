//! How far the global reader may read on PostgreSQL: the high-water mark.
//!
//! A position is taken at insert but becomes visible at commit, so a reader that moved past an
//! event still in flight would never see it. The reader therefore reads only events whose
//! writing transaction id is below a mark that no event writer still in flight can be under.
//! Using the oldest running transaction of any kind (`pg_snapshot_xmin`) is safe but lets any
//! long transaction — a projection batch, a session update, the sender — hold the whole log
//! back. The mark here waits for event writers only:
//!
//! 1. Every statement inserting events first registers its transaction (a trigger, see the
//!    migration `0014_event_writers.sql`): a shared advisory lock saying "an event writer is
//!    here", taken *before* the transaction has an id, then one keyed by the id it then gets.
//!    A transaction that already had an id (it wrote something else first) is refused.
//! 2. The reader takes `next` = the next transaction id to be assigned, then (a later statement)
//!    looks at the advisory locks held: every event writer holding the first lock is either
//!    identified by its second lock, or (between the two) counted as unknown.
//! 3. The mark is `next`, lowered to the smallest id of a registered writer, or to the oldest
//!    running transaction while an unknown one is registering (a rare, short window).
//! 4. The events are read in a third statement, whose snapshot is younger than step 2.
//!
//! Why nothing is skipped: an event writer with an id below `next` got it after registering,
//! so at step 2 it either still holds its locks (the mark stays below it) or has released them,
//! which PostgreSQL does only after its commit became visible, so step 4 sees its events. A
//! writer that gets its id after step 1 has an id of at least `next`, above the mark.

use sqlx::PgPool;

use crate::StoreError;

/// The mark: events of transactions below it are all committed (or never will be).
pub(crate) async fn mark(pool: &PgPool) -> Result<i64, StoreError> {
    const NEXT: &str = "select pg_snapshot_xmax(pg_current_snapshot())::text::bigint";
    const WRITERS: &str = "
select max(case when x.objid is not null
                then ((x.classid::bigint & 65535) << 32) | x.objid::bigint end) as writer,
       pg_snapshot_xmin(pg_current_snapshot())::text::bigint as oldest
  from pg_locks k
  left join pg_locks x on x.pid = k.pid and x.locktype = 'advisory' and x.objsubid = 2
       and x.classid::bigint >> 16 = 21335 and x.classid::bigint <> 1398276095
 where k.locktype = 'advisory' and k.objsubid = 2 and k.granted
   and k.classid::bigint = 1398276095 and k.objid::bigint = 0
 group by k.pid";
    let next: i64 = sqlx::query_scalar(NEXT).fetch_one(pool).await?;
    let writers: Vec<(Option<i64>, i64)> = sqlx::query_as(WRITERS).fetch_all(pool).await?;
    Ok(writers
        .into_iter()
        .map(|(writer, oldest)| writer.unwrap_or(oldest))
        .fold(next, i64::min))
}
