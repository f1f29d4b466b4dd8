//! A batch of statements in one round trip on PostgreSQL.
//!
//! sqlx runs each statement as its own exchange with the server and waits for its answer, so a
//! projection batch of a few hundred events paid a few hundred round trips inside its
//! transaction (and held PostgreSQL's oldest running transaction that long). PostgreSQL's
//! simple-query protocol takes many statements in one message and runs them in order, with the
//! same semantics as one by one; sqlx sends one through [`sqlx::raw_sql`]. Such statements
//! carry no bind parameters, so arguments are written as literals here. No crate writes
//! PostgreSQL literals for sqlx, and our arguments are only ever text and 64-bit integers:
//! integers as numbers (negative ones in parentheses, so `x-$1` cannot become a comment), NULL
//! as `NULL`, text as a standard-conforming string literal (quotes doubled; the batch sets
//! `standard_conforming_strings` for its transaction, so a backslash is just a backslash; U+0000,
//! which PostgreSQL text cannot hold, shown as U+2400 like the bound path does).

use std::fmt::Write;

use crate::sql::{SqlValue, Statement};

/// The statements as one simple-query text, arguments inlined.
pub(crate) fn simple_query(statements: &[Statement]) -> String {
    let size: usize = statements
        .iter()
        .map(|s| s.sql.len() + 16 * s.args.len())
        .sum();
    let mut text = String::with_capacity(size + 64);
    text.push_str("set local standard_conforming_strings = on;\n");
    for statement in statements {
        inline(&statement.sql, &statement.args, &mut text);
        text.push_str(";\n");
    }
    text
}

/// Writes `sql` with `$n` replaced by the literal of `args[n - 1]` (outside quoted literals).
fn inline(sql: &str, args: &[SqlValue], out: &mut String) {
    let bytes = sql.as_bytes();
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' => {
                // Skip a literal in the SQL text itself ('' is a quote inside it).
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == b'\'' {
                        if bytes.get(i + 1) == Some(&b'\'') {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'$' if bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let start = i + 1;
                let mut end = start;
                while end < bytes.len() && bytes[end].is_ascii_digit() {
                    end += 1;
                }
                let index: usize = sql[start..end].parse().unwrap_or(0);
                out.push_str(&sql[copied..i]);
                literal(index.checked_sub(1).and_then(|n| args.get(n)), out);
                i = end;
                copied = end;
            }
            _ => i += 1,
        }
    }
    out.push_str(&sql[copied..]);
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
                    '\0' => out.push('\u{2400}'),
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
    fn arguments_become_literals_outside_quoted_text() {
        let statement = Statement::new(
            "update t set a = $1, b = $2, c = 'x$1''y', d = $10 - $3 where e = $4",
            vec![
                "it's \\ $2".into(),
                SqlValue::Int(Some(-5)),
                SqlValue::Int(Some(7)),
                SqlValue::Text(None),
                SqlValue::Int(None),
                SqlValue::Int(None),
                SqlValue::Int(None),
                SqlValue::Int(None),
                SqlValue::Int(None),
                "ten\0".into(),
            ],
        );
        let text = simple_query(&[statement]);
        assert_eq!(
            text,
            "set local standard_conforming_strings = on;\n\
             update t set a = 'it''s \\ $2', b = (-5), c = 'x$1''y', d = 'ten\u{2400}' - 7 where e = NULL;\n"
        );
    }
}
