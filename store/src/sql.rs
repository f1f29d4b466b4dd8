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

/// Prefix of SQL that only SQLite runs (maintenance of its FTS5 search index, which has no
/// PostgreSQL counterpart); PostgreSQL skips such statements.
pub const SQLITE_ONLY: &str = "/* sqlite only */ ";

/// One SQL statement with its arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// The SQL text (see the module doc for the dialect rules); usually a constant, owned
    /// when rewritten (rebuilds write the same statements into shadow tables).
    pub sql: std::borrow::Cow<'static, str>,
    /// Arguments for `$1, $2, …` in order.
    pub args: Vec<SqlValue>,
    /// Built for one batch (a folded multi-row statement, see [`crate::coalesce`]): sent as
    /// text with its arguments written in, never prepared.
    pub once: bool,
}

impl Statement {
    /// Whether only SQLite runs it (its SQL starts with [`SQLITE_ONLY`]).
    pub fn sqlite_only(&self) -> bool {
        self.sql.starts_with(SQLITE_ONLY)
    }

    /// A statement with arguments.
    pub fn new(sql: &'static str, args: Vec<SqlValue>) -> Self {
        Self {
            sql: std::borrow::Cow::Borrowed(sql),
            args,
            once: false,
        }
    }

    /// A statement whose SQL was built at run time.
    pub fn owned(sql: String, args: Vec<SqlValue>) -> Self {
        Self {
            sql: std::borrow::Cow::Owned(sql),
            args,
            once: false,
        }
    }

    /// The same statement with every whole-word occurrence of each table name `from` replaced
    /// by `to` (for writing into shadow tables).
    pub fn retarget(&self, tables: &[(&str, String)]) -> Self {
        let mut sql = self.sql.to_string();
        for (from, to) in tables {
            sql = replace_word(&sql, from, to);
        }
        Self::owned(sql, self.args.clone())
    }
}

/// Writes `text` to `out` with each `$n` outside quoted strings and identifiers replaced by
/// what `with` writes for `n`.
pub(crate) fn replace_placeholders(
    text: &str,
    out: &mut String,
    mut with: impl FnMut(usize, &mut String),
) {
    let mut quote: Option<char> = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(open), c) if c == open => quote = None,
            (None, '\'' | '"') => quote = Some(c),
            (None, '$') if chars.peek().is_some_and(char::is_ascii_digit) => {
                let mut n = 0usize;
                while let Some(digit) = chars.peek().and_then(|d| d.to_digit(10)) {
                    n = n * 10 + digit as usize;
                    chars.next();
                }
                with(n, out);
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
}

/// Replaces `word` where it stands alone (not inside a longer identifier).
pub fn replace_word(text: &str, word: &str, with: &str) -> String {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(at) = rest.find(word) {
        let before = rest[..at].chars().next_back();
        let after = rest[at + word.len()..].chars().next();
        out.push_str(&rest[..at]);
        if before.is_some_and(is_ident) || after.is_some_and(is_ident) {
            out.push_str(word);
        } else {
            out.push_str(with);
        }
        rest = &rest[at + word.len()..];
    }
    out.push_str(rest);
    out
}

/// Binds a statement's arguments onto a sqlx query of either backend (text with U+0000 shown
/// as ␀: see [`crate::nul`]): `bind_all!(sqlx::query(sql), args)` with `args` yielding
/// [`SqlValue`]s. Read models use it for queries whose text is built per request.
#[macro_export]
macro_rules! bind_all {
    ($query:expr, $args:expr) => {{
        let mut query = $query;
        for arg in $args {
            query = match arg {
                $crate::sql::SqlValue::Text(value) => query.bind(value.map($crate::nul::visible)),
                $crate::sql::SqlValue::Int(value) => query.bind(value),
            };
        }
        query
    }};
}

#[cfg(test)]
mod tests {
    use super::replace_word;

    #[test]
    fn only_whole_table_names_are_replaced() {
        assert_eq!(
            replace_word(
                "update agents set x = agents.x where agent_groups.a = 1",
                "agents",
                "agents__rebuild"
            ),
            "update agents__rebuild set x = agents__rebuild.x where agent_groups.a = 1"
        );
        assert_eq!(
            replace_word("messages_by_conversation", "messages", "m"),
            "messages_by_conversation"
        );
    }
}
