//! Quick replies as agents pick them: shortcode, title, text and who may use them.

use serde::Serialize;
use switchboard_domain::quick_reply::{QuickReplyEvent, QuickReplyMedia, Visibility};
use switchboard_store::{with_pool, Database, RecordedEvent, SqlValue, Statement};

use crate::page::rfc3339;
use crate::{DecodedEvent, Projection, ProjectionError};

/// Builds `quick_replies`.
pub struct QuickRepliesProjection;

const CREATED: &str = "
insert into quick_replies (id, shortcode, title, text, visibility, agent_id, group_id, created_by,
    created_at, updated_at, version, media)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, $11)
on conflict (id) do update set shortcode = excluded.shortcode, title = excluded.title,
    text = excluded.text, media = excluded.media, visibility = excluded.visibility, agent_id = excluded.agent_id,
    group_id = excluded.group_id, created_by = excluded.created_by,
    created_at = excluded.created_at, updated_at = excluded.updated_at, version = excluded.version";
const CHANGED: &str =
    "update quick_replies set title = $1, text = $2, updated_at = $3, version = $4, media = $5
    where id = $6";
const DELETED: &str = "delete from quick_replies where id = $1";

impl Projection for QuickRepliesProjection {
    fn name(&self) -> &'static str {
        "quick_replies"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["quick_replies"]
    }

    fn reads(&self) -> &'static [&'static str] {
        &["QuickReply"]
    }

    fn apply(&self, event: &RecordedEvent, decoded: &DecodedEvent, out: &mut Vec<Statement>) {
        let DecodedEvent::QuickReply(quick_reply) = decoded else {
            return;
        };
        let id = event.aggregate_id.as_str();
        match quick_reply {
            QuickReplyEvent::Created {
                shortcode,
                title,
                text,
                media,
                visibility,
                by,
                at,
            } => {
                let (kind, agent, group) = visibility_columns(visibility);
                out.push(Statement::new(
                    CREATED,
                    vec![
                        id.into(),
                        shortcode.as_str().into(),
                        title.as_str().into(),
                        text.as_str().into(),
                        kind.into(),
                        agent.into(),
                        group.into(),
                        by.to_string().into(),
                        at.unix_millis().into(),
                        SqlValue::from(event.sequence),
                        media_json(media.as_ref()),
                    ],
                ));
            }
            QuickReplyEvent::Changed {
                title,
                text,
                media,
                at,
                ..
            } => out.push(Statement::new(
                CHANGED,
                vec![
                    title.as_str().into(),
                    text.as_str().into(),
                    at.unix_millis().into(),
                    SqlValue::from(event.sequence),
                    media_json(media.as_ref()),
                    id.into(),
                ],
            )),
            QuickReplyEvent::Deleted { .. } => {
                out.push(Statement::new(DELETED, vec![id.into()]));
            }
        }
    }
}

fn media_json(media: Option<&QuickReplyMedia>) -> SqlValue {
    media.and_then(|m| serde_json::to_string(m).ok()).into()
}

/// How a visibility is stored and shown: its name, the author (personal) and the group.
pub fn visibility_columns(
    visibility: &Visibility,
) -> (&'static str, Option<String>, Option<String>) {
    match visibility {
        Visibility::Personal { agent } => ("personal", Some(agent.to_string()), None),
        Visibility::Group { group } => ("group", None, Some(group.to_string())),
        Visibility::Everyone => ("everyone", None, None),
    }
}

/// A quick reply as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct QuickReplyView {
    /// Id.
    pub id: String,
    /// `/shortcode`.
    pub shortcode: String,
    /// Title.
    pub title: String,
    /// Text with `{{customer.name}}`, `{{agent.name}}`, `{{conversation.id}}` and any other
    /// variables a send fills.
    pub text: String,
    /// Media sent with the text as its caption: `{kind: image|video|document, id | link,
    /// filename?}`.
    #[schema(value_type = Option<Object>)]
    pub media: Option<QuickReplyMedia>,
    /// `personal`, `group` or `everyone`.
    #[schema(value_type = crate::wire::VisibilityDoc)]
    pub visibility: String,
    /// The author, for a personal one.
    pub agent_id: Option<String>,
    /// The group, for a group's.
    pub group_id: Option<String>,
    /// Who created it.
    pub created_by: String,
    /// When last changed.
    pub updated_at: String,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    shortcode: String,
    title: String,
    text: String,
    media: Option<String>,
    visibility: String,
    agent_id: Option<String>,
    group_id: Option<String>,
    created_by: String,
    updated_at: i64,
}

impl From<Row> for QuickReplyView {
    fn from(row: Row) -> Self {
        Self {
            id: row.id,
            shortcode: row.shortcode,
            title: row.title,
            text: row.text,
            media: row.media.and_then(|m| serde_json::from_str(&m).ok()),
            visibility: row.visibility,
            agent_id: row.agent_id,
            group_id: row.group_id,
            created_by: row.created_by,
            updated_at: rfc3339(row.updated_at),
        }
    }
}

/// The quick replies `agent` may use (their own, their groups', everyone's), by shortcode;
/// with `q`, those whose shortcode starts with it or whose title or text contains it.
///
/// # Errors
/// Database failures.
pub async fn usable(
    db: &Database,
    agent: &str,
    q: Option<&str>,
) -> Result<Vec<QuickReplyView>, ProjectionError> {
    let sql =
        "select id, shortcode, title, text, media, visibility, agent_id, group_id, created_by,
            updated_at
        from quick_replies
        where (visibility = 'everyone' or (visibility = 'personal' and agent_id = $1)
            or (visibility = 'group'
                and group_id in (select group_id from agent_groups where agent_id = $1)))
          and ($2 = '' or shortcode like $3 or lower(title) like $4 or lower(text) like $4)
        order by shortcode, visibility, id limit 500";
    let q = q.unwrap_or("").trim().to_lowercase();
    // LIKE's wildcards are taken out rather than escaped: both backends, one spelling.
    let plain: String = q
        .trim_start_matches('/')
        .chars()
        .filter(|c| !matches!(c, '%' | '_' | '\\'))
        .collect();
    let prefix = format!("/{plain}%");
    let words = format!("%{plain}%");
    let rows: Vec<Row> = with_pool!(db, pool => sqlx::query_as(sql)
        .bind(agent).bind(&q).bind(&prefix).bind(&words).fetch_all(pool).await?);
    Ok(rows.into_iter().map(QuickReplyView::from).collect())
}
