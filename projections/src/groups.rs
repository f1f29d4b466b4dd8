//! The groups agents and conversations can belong to.

use serde::Serialize;
use switchboard_domain::group::GroupEvent;
use switchboard_store::{with_pool, Database, RecordedEvent, Statement};

use crate::page::rfc3339;
use crate::{DecodedEvent, Projection, ProjectionError};

/// Builds the `group_directory` table.
pub struct GroupsProjection;

const CREATED: &str = "insert into group_directory (id, name, created_at) values ($1, $2, $3)";

impl Projection for GroupsProjection {
    fn name(&self) -> &'static str {
        "groups"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["group_directory"]
    }

    fn reads(&self) -> &'static [&'static str] {
        &["Group"]
    }

    fn apply(&self, event: &RecordedEvent, decoded: &DecodedEvent, out: &mut Vec<Statement>) {
        let DecodedEvent::Group(GroupEvent::Created { name, at, .. }) = decoded else {
            return;
        };
        out.push(Statement::new(
            CREATED,
            vec![
                event.aggregate_id.as_str().into(),
                name.as_str().into(),
                at.unix_millis().into(),
            ],
        ));
    }
}

/// A group.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq)]
pub struct GroupView {
    /// Group id.
    pub id: String,
    /// Name.
    pub name: String,
    /// When created.
    pub created_at: String,
}

/// Every group, by name.
///
/// # Errors
/// Database failures.
pub async fn list(db: &Database) -> Result<Vec<GroupView>, ProjectionError> {
    let sql = "select id, name, created_at from group_directory order by name, id limit 10000";
    let rows: Vec<(String, String, i64)> =
        with_pool!(db, pool => sqlx::query_as(sql).fetch_all(pool).await?);
    Ok(rows
        .into_iter()
        .map(|(id, name, created_at)| GroupView {
            id,
            name,
            created_at: rfc3339(created_at),
        })
        .collect())
}
