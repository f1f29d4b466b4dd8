//! Inbox views: the conversation list filtered, sorted and paged within the caller's read scope,
//! and the tab counts.
//!
//! Every filter is a condition on one row of `conversations` (tags: one `exists` per tag on
//! `conversation_tags`; text: the search index), so filters combine freely. Pages are keyset
//! pages on the sort key and the id: a conversation inserted while a client pages does not shift
//! the pages after the cursor, and none is returned twice.

use serde::Serialize;
use switchboard_store::{bind_all, with_pool, Backend, Database, SqlValue};

use super::view::{conversation_columns, ConversationRow, ConversationView};
use crate::page::{page_size, paginate, Cursor, Page};
use crate::{ProjectionError, ReadScope};

/// Whose conversations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assignee {
    /// The caller's.
    Me,
    /// Nobody's (no agent; a group may hold it).
    Nobody,
    /// This agent's.
    Agent(String),
}

/// Whether free-form replies are allowed now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowState {
    /// The customer-service window is open.
    Open,
    /// Closed or never opened: only templates reach the customer.
    Closed,
}

/// The order of a view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    /// Newest activity first.
    #[default]
    LastActivity,
    /// The customer waiting longest first; conversations nobody waits on come last.
    WaitingLongest,
    /// Newest conversation first.
    Created,
}

impl Sort {
    /// The sort key expression, whether it ascends, and the key of a row.
    fn key(self) -> (&'static str, bool) {
        match self {
            Self::LastActivity => ("last_activity_at", false),
            Self::Created => ("started_at", false),
            Self::WaitingLongest => ("coalesce(waiting_since, 9223372036854775807)", true),
        }
    }

    /// Tags cursors, so that a cursor of one sort is not taken for another's.
    fn code(self) -> &'static str {
        match self {
            Self::LastActivity => "a:",
            Self::WaitingLongest => "w:",
            Self::Created => "c:",
        }
    }

    fn key_of(self, row: &ConversationRow) -> i64 {
        match self {
            Self::LastActivity => row.last_activity_at,
            Self::Created => row.started_at,
            Self::WaitingLongest => row.waiting_since.unwrap_or(i64::MAX),
        }
    }
}

/// What a view shows: every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboxFilter {
    /// Any of these statuses (empty: any).
    pub statuses: Vec<String>,
    /// Whose.
    pub assignee: Option<Assignee>,
    /// Assigned to this group.
    pub group: Option<String>,
    /// Every one of these tags.
    pub tags: Vec<String>,
    /// With (`true`) or without (`false`) unread customer messages.
    pub unread: Option<bool>,
    /// The customer-service window's state now.
    pub window: Option<WindowState>,
    /// On this business number.
    pub phone_number_id: Option<String>,
    /// Held (`true`) or free (`false`) now.
    pub locked: Option<bool>,
    /// Customer name, number or message text (see [`crate::search`]).
    pub text: Option<String>,
}

/// SQL text with its arguments, numbered in the order they are introduced (as both backends
/// bind them).
struct Sql {
    text: String,
    args: Vec<SqlValue>,
}

impl Sql {
    /// Starts with the scope's `$1` (mode) and `$2` (agent id): `select` must not use other
    /// arguments, nor these before the scope does (SQLite numbers them as they first appear).
    fn scoped(select: &str, scope: &ReadScope) -> Self {
        let (mode, me) = scope.args();
        Self {
            text: format!("{select} where {}", scope.condition()),
            args: vec![mode.into(), me.into()],
        }
    }

    /// The placeholder of a new argument.
    fn arg(&mut self, value: impl Into<SqlValue>) -> String {
        self.args.push(value.into());
        format!("${}", self.args.len())
    }

    fn and(&mut self, condition: &str) {
        self.text.push_str(" and ");
        self.text.push_str(condition);
    }

    /// Adds the filter's conditions; `me` is the caller, `now` Unix milliseconds.
    fn filter(&mut self, filter: &InboxFilter, backend: Backend, me: &str, now: i64) {
        if !filter.statuses.is_empty() {
            let list: Vec<String> = filter
                .statuses
                .iter()
                .map(|s| self.arg(s.as_str()))
                .collect();
            self.and(&format!("status in ({})", list.join(", ")));
        }
        match &filter.assignee {
            Some(Assignee::Me) => {
                let p = self.arg(me);
                self.and(&format!("assigned_agent_id = {p}"));
            }
            Some(Assignee::Nobody) => self.and("assigned_agent_id is null"),
            Some(Assignee::Agent(agent)) => {
                let p = self.arg(agent.as_str());
                self.and(&format!("assigned_agent_id = {p}"));
            }
            None => {}
        }
        if let Some(group) = &filter.group {
            let p = self.arg(group.as_str());
            self.and(&format!("assigned_group_id = {p}"));
        }
        for tag in &filter.tags {
            let p = self.arg(tag.as_str());
            self.and(&format!(
                "exists (select 1 from conversation_tags t where t.conversation_id = conversations.id and t.tag = {p})"
            ));
        }
        match filter.unread {
            Some(true) => self.and("unread_count > 0"),
            Some(false) => self.and("unread_count = 0"),
            None => {}
        }
        if let Some(window) = filter.window {
            let p = self.arg(now);
            self.and(&match window {
                WindowState::Open => format!("window_closes_at > {p}"),
                WindowState::Closed => {
                    format!("(window_closes_at is null or window_closes_at <= {p})")
                }
            });
        }
        if let Some(number) = &filter.phone_number_id {
            let p = self.arg(number.as_str());
            self.and(&format!("phone_number_id = {p}"));
        }
        if let Some(locked) = filter.locked {
            let p = self.arg(now);
            self.and(&if locked {
                format!("lock_expires_at > {p}")
            } else {
                format!("(lock_expires_at is null or lock_expires_at <= {p})")
            });
        }
        if let Some(text) = &filter.text {
            let matching =
                crate::search::conversations_matching(backend, self.args.len() + 1, text);
            self.args.extend(matching.args);
            self.and(&format!("id in ({})", matching.sql));
        }
    }
}

/// The conversations of a view as `scope` may see them, one page at a time, for the agent `me`
/// (`assignee=me`); `now` (Unix milliseconds) decides which windows are open and which locks
/// are held.
///
/// A conversation whose sort key changes while a client pages (new activity, an answer ending
/// the wait) moves in the order: it may then be passed over or come again. Conversations that
/// arrive meanwhile do not shift the pages after the cursor.
///
/// # Errors
/// [`ProjectionError::InvalidCursor`] for a bad cursor (or one of another sort); database
/// failures.
#[allow(clippy::too_many_arguments)]
pub async fn list(
    db: &Database,
    scope: &ReadScope,
    me: &str,
    filter: &InboxFilter,
    sort: Sort,
    now: i64,
    cursor: Option<&str>,
    limit: Option<u32>,
) -> Result<Page<ConversationView>, ProjectionError> {
    let limit = page_size(limit, 50, 200);
    let after = cursor.map(Cursor::parse).transpose()?;
    if *scope == ReadScope::Nothing {
        return Ok(Page {
            items: vec![],
            next_cursor: None,
        });
    }
    let mut sql = Sql::scoped(
        concat!("select ", conversation_columns!(), " from conversations"),
        scope,
    );
    sql.filter(filter, db.backend(), me, now);
    let (key, ascending) = sort.key();
    let (order, beyond) = if ascending {
        ("asc", ">")
    } else {
        ("desc", "<")
    };
    if let Some(Cursor { key: at, tie }) = after {
        let tie = tie
            .strip_prefix(sort.code())
            .ok_or(ProjectionError::InvalidCursor)?
            .to_owned();
        let (k, t) = (sql.arg(at), sql.arg(tie));
        sql.and(&format!(
            "({key} {beyond} {k} or ({key} = {k} and id {beyond} {t}))"
        ));
    }
    let fetch = sql.arg(i64::from(limit) + 1);
    sql.text.push_str(&format!(
        " order by {key} {order}, id {order} limit {fetch}"
    ));
    let rows: Vec<ConversationRow> = with_pool!(db, pool =>
        bind_all!(sqlx::query_as(&sql.text), sql.args.iter().cloned()).fetch_all(pool).await?);
    Ok(paginate(rows, limit, |row| {
        Cursor::encode(sort.key_of(row), &format!("{}{}", sort.code(), row.id))
    }))
}

/// The tab badges: how many conversations of a view are the caller's, nobody's, in all, and in
/// each status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Counts {
    /// Assigned to the caller.
    pub mine: i64,
    /// Assigned to no agent.
    pub unassigned: i64,
    /// All.
    pub all: i64,
    /// Per status: `open`, `pending`, `snoozed`, `resolved` (each present, 0 when none).
    pub by_status: std::collections::BTreeMap<String, i64>,
}

/// [`Counts`] of the conversations `scope` may see that match `filter`, in one query.
///
/// # Errors
/// Database failures.
pub async fn counts(
    db: &Database,
    scope: &ReadScope,
    me: &str,
    filter: &InboxFilter,
    now: i64,
) -> Result<Counts, ProjectionError> {
    if *scope == ReadScope::Nothing {
        return Ok(Counts::default());
    }
    // The caller's id comes from a one-row table so that the arguments appear in order.
    let mut sql = Sql::scoped(
        "select status, count(*),
            sum(case when assigned_agent_id = caller.me then 1 else 0 end),
            sum(case when assigned_agent_id is null then 1 else 0 end)
         from (select $1 as mode, $2 as scope_agent, $3 as me) caller, conversations",
        scope,
    );
    sql.args.push(me.into());
    sql.filter(filter, db.backend(), me, now);
    sql.text.push_str(" group by status");
    let rows: Vec<(String, i64, i64, i64)> = with_pool!(db, pool =>
        bind_all!(sqlx::query_as(&sql.text), sql.args.iter().cloned()).fetch_all(pool).await?);
    let mut counts = Counts::default();
    for status in ["open", "pending", "snoozed", "resolved"] {
        counts.by_status.insert(status.to_owned(), 0);
    }
    for (status, all, mine, unassigned) in rows {
        counts.all += all;
        counts.mine += mine;
        counts.unassigned += unassigned;
        counts.by_status.insert(status, all);
    }
    Ok(counts)
}
