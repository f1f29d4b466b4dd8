//! A batch of statements in one round trip on PostgreSQL, and in one hand-off to SQLite.
//!
//! sqlx runs each statement as its own exchange with the server and waits for its answer, so a
//! projection batch of a few hundred events paid a few hundred round trips inside its
//! transaction (and held PostgreSQL's oldest running transaction that long). PostgreSQL's
//! simple-query protocol takes many statements in one message and runs them in order, with the
//! same semantics as one by one; sqlx sends one through [`sqlx::raw_sql`].
//!
//! Planning each statement anew would then cost more than the round trips saved, so every
//! distinct statement is prepared once per connection (`PREPARE sb_<hash> (text, bigint, …)`,
//! with the types sqlx would have bound) and the batch is a list of `EXECUTE`s: the server
//! reuses the plan. Such a message carries no bind parameters, so arguments are written as
//! literals. Each `PREPARE` goes to the server in a message of its own: PostgreSQL keeps the
//! whole message a statement was prepared from as its source text and copies it on every
//! `EXECUTE` (prepared inside a batch of thousands of statements, every later execution copied
//! megabytes; `perf` showed 86 % of a rebuild's server time in that copy). No crate writes PostgreSQL literals for sqlx, and our arguments are only ever text
//! and 64-bit integers: integers as numbers (negative ones in parentheses), NULL as `NULL`, text
//! as a standard-conforming string literal (quotes doubled; the batch sets
//! `standard_conforming_strings` for its transaction, so a backslash is just a backslash; U+0000,
//! which PostgreSQL text cannot hold, shown as U+2400 like the bound path does).
//!
//! SQLite runs in-process, but sqlx drives each connection from a worker thread of its own and
//! hands every statement over and its answer back through channels: `perf` on a rebuild showed
//! 63 % of the time in waking those threads, not in SQLite. So SQLite too gets the batch as
//! one text ([`inline`]), with the arguments written as literals in place of `$n` (the same
//! literals: SQLite's strings know no backslash escapes either); SQLite parses each statement
//! of it once, which costs less than the hand-offs. The text goes in pieces of about
//! [`SQLITE_PIECE`] bytes: given a string that is not NUL-terminated, SQLite copies all that
//! remains of it before parsing each statement, so one large text costs time quadratic in its
//! size (a rebuild ran at 1,000 events/s in one piece per batch, 13,500 in pieces of 16 to 64
//! statements).

use std::collections::HashSet;
use std::fmt::Write;
use std::hash::{DefaultHasher, Hash, Hasher};

use crate::sql::{SqlValue, Statement};

/// The prepared statements a connection already has, to pass to [`simple_query`].
pub(crate) const PREPARED: &str =
    "select name from pg_prepared_statements where name like 'sb\\_%'";

/// A `PREPARE` for each distinct statement the connection does not have yet (`prepared`), each
/// to be sent on its own before [`simple_query`].
pub(crate) fn preparations(statements: &[Statement], prepared: &HashSet<String>) -> Vec<String> {
    let mut preparing: HashSet<String> = HashSet::new();
    statements
        .iter()
        .filter(|statement| !statement.once)
        .filter_map(|statement| {
            let name = name(statement);
            (!prepared.contains(&name) && preparing.insert(name.clone())).then(|| {
                format!(
                    "prepare {name} ({}) as {}",
                    types(&statement.args),
                    statement.sql
                )
            })
        })
        .collect()
}

/// The statements as one simple-query text of `EXECUTE`s of statements prepared by
/// [`preparations`].
pub(crate) fn simple_query(statements: &[Statement]) -> String {
    let size: usize = statements.iter().map(|s| 24 + 16 * s.args.len()).sum();
    let mut text = String::with_capacity(size + 64);
    text.push_str("set local standard_conforming_strings = on;\n");
    for statement in statements {
        if statement.once {
            write_inline(statement, &mut text);
            continue;
        }
        text.push_str("execute ");
        text.push_str(&name(statement));
        if !statement.args.is_empty() {
            text.push('(');
            for (i, arg) in statement.args.iter().enumerate() {
                if i > 0 {
                    text.push_str(", ");
                }
                literal(Some(arg), &mut text);
            }
            text.push(')');
        }
        text.push_str(";\n");
    }
    text
}

/// About how many bytes of SQL text SQLite is given at once (see the module's comment).
const SQLITE_PIECE: usize = 16 * 1024;

/// The statements as SQL texts of about [`SQLITE_PIECE`] bytes with their arguments written in
/// place of `$1`, `$2`, … (outside quoted strings and identifiers), for SQLite.
pub(crate) fn inline(statements: &[Statement]) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    for statement in statements {
        if text.len() >= SQLITE_PIECE {
            pieces.push(std::mem::take(&mut text));
        }
        write_inline(statement, &mut text);
    }
    if !text.is_empty() {
        pieces.push(text);
    }
    pieces
}

/// Writes the statement with its arguments in place of `$1`, `$2`, … (outside quoted strings
/// and identifiers), and `;\n`.
fn write_inline(statement: &Statement, text: &mut String) {
    crate::sql::replace_placeholders(&statement.sql, text, |n, text| {
        literal(n.checked_sub(1).and_then(|i| statement.args.get(i)), text);
    });
    text.push_str(";\n");
}

/// A statement's prepared name: its SQL text and argument types (as sqlx binds them).
fn name(statement: &Statement) -> String {
    let mut hasher = DefaultHasher::new();
    statement.sql.hash(&mut hasher);
    types(&statement.args).hash(&mut hasher);
    format!("sb_{:016x}", hasher.finish())
}

fn types(args: &[SqlValue]) -> String {
    args.iter()
        .map(|a| match a {
            SqlValue::Text(_) => "text",
            SqlValue::Int(_) => "bigint",
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn literal(value: Option<&SqlValue>, out: &mut String) {
    match value {
        None | Some(SqlValue::Text(None) | SqlValue::Int(None)) => out.push_str("NULL"),
        Some(SqlValue::Int(Some(n))) if *n < 0 => {
            let _ = write!(out, "({n})");
        }
        Some(SqlValue::Int(Some(n))) => {
            let _ = write!(out, "{n}");
        }
        Some(SqlValue::Text(Some(text))) => {
            out.push('\'');
            for c in text.chars() {
                match c {
                    '\'' => out.push_str("''"),
                    '\0' => out.push(crate::nul::VISIBLE_NUL),
                    c => out.push(c),
                }
            }
            out.push('\'');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_statement_is_prepared_once_and_executed_with_literals() {
        let insert = |text: &str, n: i64| {
            Statement::new(
                "insert into t (a, b) values ($1, $2)",
                vec![text.into(), SqlValue::Int(Some(n))],
            )
        };
        let statements = [insert("it's \\ $2", -5), insert("ten\0", 10)];
        let name = name(&statements[0]);
        assert_eq!(
            preparations(&statements, &HashSet::new()),
            [format!(
                "prepare {name} (text, bigint) as insert into t (a, b) values ($1, $2)"
            )]
        );
        assert!(preparations(&statements, &HashSet::from([name.clone()])).is_empty());
        assert_eq!(
            simple_query(&statements),
            format!(
                "set local standard_conforming_strings = on;\n\
                 execute {name}('it''s \\ $2', (-5));\n\
                 execute {name}('ten\u{2400}', 10);\n"
            )
        );
        let null = Statement::new("update t set a = $1", vec![SqlValue::Text(None)]);
        assert!(simple_query(&[null]).contains("(NULL);"));
    }

    #[test]
    fn inlined_statements_take_their_arguments_outside_quotes_only() {
        let statement = Statement::new(
            "update \"t$1\" set a = $1, b = 'cost $2', c = $12 where d = $2",
            (1..=12)
                .map(|n| match n {
                    1 => SqlValue::Text(Some("it's $2\0".into())),
                    12 => SqlValue::Int(Some(-12)),
                    n => SqlValue::Int(Some(n)),
                })
                .collect(),
        );
        assert_eq!(
            inline(&[statement, Statement::new("select $1", vec![SqlValue::Text(None)])]),
            ["update \"t$1\" set a = 'it''s $2\u{2400}', b = 'cost $2', c = (-12) where d = 2;\n\
             select NULL;\n"]
        );
        let long = Statement::new("select $1", vec!["x".repeat(SQLITE_PIECE).into()]);
        let pieces = inline(&[long.clone(), long.clone(), long]);
        assert_eq!(pieces.len(), 3);
        assert!(pieces
            .iter()
            .all(|p| p.starts_with("select 'xx") && p.ends_with("';\n")));
        assert!(inline(&[]).is_empty());
    }
}
