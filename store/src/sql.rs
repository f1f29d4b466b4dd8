//! Backend-neutral statements.
//!
//! Read models are written once: SQL that both PostgreSQL and SQLite accept, with `$1, $2, …`
//! placeholders introduced in increasing order (SQLite numbers `$N` parameters by first
//! appearance, so this keeps both backends binding the same way), and values limited to text
//! and integers.

/// A value bound to a statement.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    /// Text, or NULL.
    Text(Option<String>),
    /// A 64-bit integer, or NULL.
    Int(Option<i64>),
}

impl From<String> for SqlValue {
    fn from(value: String) -> Self {
        Self::Text(Some(value))
    }
}

impl From<&str> for SqlValue {
    fn from(value: &str) -> Self {
        Self::Text(Some(value.to_owned()))
    }
}

impl From<Option<String>> for SqlValue {
    fn from(value: Option<String>) -> Self {
        Self::Text(value)
    }
}

impl From<i64> for SqlValue {
    fn from(value: i64) -> Self {
        Self::Int(Some(value))
    }
}

impl From<Option<i64>> for SqlValue {
    fn from(value: Option<i64>) -> Self {
        Self::Int(value)
    }
}

/// One SQL statement with its arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// The SQL text (see the module doc for the dialect rules).
    pub sql: &'static str,
    /// Arguments for `$1, $2, …` in order.
    pub args: Vec<SqlValue>,
}

impl Statement {
    /// A statement with arguments.
    pub fn new(sql: &'static str, args: Vec<SqlValue>) -> Self {
        Self { sql, args }
    }
}

/// Binds a statement's arguments onto a sqlx query of either backend.
macro_rules! bind_all {
    ($query:expr, $args:expr) => {{
        let mut query = $query;
        for arg in $args {
            query = match arg {
                $crate::sql::SqlValue::Text(value) => query.bind(value),
                $crate::sql::SqlValue::Int(value) => query.bind(value),
            };
        }
        query
    }};
}
pub(crate) use bind_all;
