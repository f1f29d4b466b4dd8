//! A batch's statements folded into multi-row statements, with the same effect.
//!
//! Projections write one statement per event and table; a batch of thousands of events sent
//! one statement at a time spends its time parsing, planning and executing statements of a
//! row each. [`coalesce`] reorders a batch's statements where that cannot change the result
//! and folds each run of the same statement into one: a multi-row `INSERT … VALUES (…), (…)`,
//! or an `UPDATE … FROM (VALUES (…), (…)) AS v`. The projections stay one pure function per
//! event, and the same folding runs live, in a rebuild and in a verification.
//!
//! What may move is read from the SQL itself, conservatively. A statement is
//! - **keyed** when it touches only the rows of one table whose columns equal given values:
//!   `INSERT … VALUES (…) ON CONFLICT (key) …`, `UPDATE t SET … WHERE a = $1 AND b = $2`,
//!   `DELETE FROM t WHERE a = $1`, with no subquery. Two keyed statements on one table commute
//!   when they name the same key columns with different values (disjoint rows); with other key
//!   columns they might meet the same row, so they keep their order.
//! - **table-wide** when it touches rows of one table it does not name by key (a plain
//!   `INSERT`, a range `UPDATE`): it keeps its order with everything on that table, except that
//!   a run of the same plain `INSERT` stays together, in order.
//! - a **barrier** otherwise (a subquery may read any table, unknown syntax, SQLite-only
//!   maintenance): everything before it runs before it, everything after it after it.
//!
//! Each statement is given the first *layer* after every earlier statement it does not commute
//! with; a layer's statements commute with each other, so each layer is written as one
//! multi-row statement per distinct statement (and argument types), in first-seen order.
//! No SQL parser crate is used: the grammar accepted here is this crate's own statement dialect
//! (see [`crate::sql`]), and anything outside it is simply left where it was.

use std::collections::HashMap;

mod scan;

use scan::{
    contains_word, identifier, normalized, outside_quotes, parenthesized, placeholders, split_and,
    split_top, split_word,
};

use crate::sql::{SqlValue, Statement, SQLITE_ONLY};

/// At most this many statements are folded into one.
const MAX_ROWS: usize = 500;
/// A folded statement stops growing once its arguments hold about this many bytes.
const MAX_BYTES: usize = 256 * 1024;

/// The statements, reordered where that cannot change the result and folded into multi-row
/// statements (see the module's comment).
pub fn coalesce(statements: Vec<Statement>) -> Vec<Statement> {
    let mut shapes: HashMap<String, Shape> = HashMap::new();
    let mut layers = Layers::default();
    let mut placed: Vec<(usize, Statement)> = Vec::with_capacity(statements.len());
    for statement in statements {
        if !shapes.contains_key(&*statement.sql) {
            shapes.insert(statement.sql.to_string(), Shape::of(&statement.sql));
        }
        let layer = layers.place(&shapes[&*statement.sql], &statement);
        placed.push((layer, statement));
    }
    let mut by_layer: Vec<Vec<Statement>> = vec![Vec::new(); layers.count];
    for (layer, statement) in placed {
        by_layer[layer].push(statement);
    }
    let mut out = Vec::new();
    for layer in by_layer {
        let mut groups: Vec<(GroupKey, Vec<Statement>)> = Vec::new();
        let mut index: HashMap<GroupKey, usize> = HashMap::new();
        for statement in layer {
            // Most SQL texts are constants: the key then borrows them.
            let key = (statement.sql.clone(), types(&statement.args));
            match index.get(&key) {
                Some(&i) => groups[i].1.push(statement),
                None => {
                    index.insert(key.clone(), groups.len());
                    groups.push((key, vec![statement]));
                }
            }
        }
        for ((sql, _), group) in groups {
            fold(&shapes[&*sql], group, &mut out);
        }
    }
    out
}

/// Statements fold together when they have the same SQL and the same argument types.
type GroupKey = (std::borrow::Cow<'static, str>, Vec<bool>);

/// Whether each argument is an integer (a folded statement's rows must agree).
fn types(args: &[SqlValue]) -> Vec<bool> {
    args.iter().map(|a| matches!(a, SqlValue::Int(_))).collect()
}

/// Folds `group` (statements of one SQL text, commuting with each other) into as few
/// statements as its shape allows.
fn fold(shape: &Shape, group: Vec<Statement>, out: &mut Vec<Statement>) {
    let Some(form) = shape.foldable() else {
        out.extend(group);
        return;
    };
    let mut chunk: Vec<Statement> = Vec::new();
    let mut bytes = 0;
    for statement in group {
        bytes += statement.args.iter().map(size).sum::<usize>();
        chunk.push(statement);
        if chunk.len() >= MAX_ROWS || bytes >= MAX_BYTES {
            out.push(form.fold(std::mem::take(&mut chunk)));
            bytes = 0;
        }
    }
    if !chunk.is_empty() {
        out.push(form.fold(chunk));
    }
}

fn size(value: &SqlValue) -> usize {
    match value {
        SqlValue::Text(Some(text)) => text.len() + 4,
        _ => 8,
    }
}

/// What a statement touches, as far as reordering is concerned.
#[derive(Debug, Clone, PartialEq)]
enum Shape {
    /// Rows of `table` whose `columns` equal `key` (arguments or constants).
    Keyed {
        table: String,
        columns: String,
        key: Vec<KeyPart>,
        form: Option<Form>,
    },
    /// Rows of `table` it does not name by key.
    Table { table: String, form: Option<Form> },
    /// Anything: runs after everything before it and before everything after it.
    Barrier,
}

/// A key column's value: the statement's argument `$n` or a constant.
#[derive(Debug, Clone, PartialEq)]
enum KeyPart {
    Arg(usize),
    Constant(String),
}

/// How statements of one shape fold into one.
#[derive(Debug, Clone, PartialEq)]
enum Form {
    /// `insert into {head} values ({tuple}) {tail}`.
    Insert {
        head: String,
        tuple: String,
        tail: String,
    },
    /// `update {table} set {set} where {condition}`.
    Update {
        table: String,
        set: String,
        condition: String,
    },
}

impl Shape {
    fn foldable(&self) -> Option<&Form> {
        match self {
            Self::Keyed { form, .. } | Self::Table { form, .. } => form.as_ref(),
            Self::Barrier => None,
        }
    }

    /// Reads a statement's shape from its SQL text.
    fn of(sql: &str) -> Self {
        if sql.starts_with(SQLITE_ONLY) {
            return Self::Barrier;
        }
        let sql = normalized(sql);
        let words = outside_quotes(&sql.to_ascii_lowercase());
        if ["select", "returning", "with", "using"]
            .iter()
            .any(|w| contains_word(&words, w))
        {
            return Self::Barrier;
        }
        if words.starts_with("insert into ") {
            Self::insert(&sql).unwrap_or(Self::Barrier)
        } else if words.starts_with("update ") {
            Self::update(&sql).unwrap_or(Self::Barrier)
        } else if words.starts_with("delete from ") {
            Self::delete(&sql).unwrap_or(Self::Barrier)
        } else {
            Self::Barrier
        }
    }

    fn insert(sql: &str) -> Option<Self> {
        let rest = &sql["insert into ".len()..];
        let table = identifier(rest)?;
        let rest = rest[table.len()..].trim_start();
        let (columns, rest) = parenthesized(rest)?;
        let rest = rest.trim_start();
        if !rest.to_ascii_lowercase().starts_with("values") {
            return None;
        }
        let (tuple, tail) = parenthesized(rest["values".len()..].trim_start())?;
        let tail = tail.trim();
        // A tail that reads an argument (`do update set a = $3`) differs per row: not foldable.
        let per_row = placeholders(tail, |_| "\u{0}".into()).contains('\u{0}');
        let form = |tail: &str| {
            (!per_row).then(|| Form::Insert {
                head: format!("{table} ({columns})"),
                tuple: tuple.to_owned(),
                tail: tail.to_owned(),
            })
        };
        let lower = tail.to_ascii_lowercase();
        if tail.is_empty() || lower == "on conflict do nothing" {
            return Some(Self::Table {
                table: table.to_owned(),
                form: form(tail),
            });
        }
        let (targets, action) = parenthesized(lower.strip_prefix("on conflict ")?)?;
        let action = action.trim_start();
        if !(action.starts_with("do nothing") || action.starts_with("do update set ")) {
            return None;
        }
        let names: Vec<&str> = split_top(columns, ',').into_iter().map(str::trim).collect();
        let values = split_top(tuple, ',');
        let mut key = Vec::new();
        for target in split_top(targets, ',') {
            let at = names
                .iter()
                .position(|n| n.eq_ignore_ascii_case(target.trim()))?;
            match values.get(at).and_then(|v| key_part(v.trim())) {
                Some(part) => key.push(part),
                None => {
                    return Some(Self::Table {
                        table: table.to_owned(),
                        form: None,
                    })
                }
            }
        }
        Some(Self::Keyed {
            table: table.to_owned(),
            columns: targets.trim().to_owned(),
            key,
            form: form(tail),
        })
    }

    fn update(sql: &str) -> Option<Self> {
        let rest = &sql["update ".len()..];
        let table = identifier(rest)?;
        let rest = rest[table.len()..].trim_start();
        if contains_word(&outside_quotes(&rest.to_ascii_lowercase()), "from") {
            return None;
        }
        let set_and_condition = rest
            .get(..4)
            .filter(|s| s.eq_ignore_ascii_case("set "))
            .map(|_| &rest[4..])?;
        let Some((set, condition)) = split_word(set_and_condition, "where") else {
            return Some(Self::Table {
                table: table.to_owned(),
                form: None,
            });
        };
        let form = Form::Update {
            table: table.to_owned(),
            set: set.trim().to_owned(),
            condition: condition.trim().to_owned(),
        };
        Some(Self::keyed_by(table, condition, Some(form)))
    }

    fn delete(sql: &str) -> Option<Self> {
        let rest = &sql["delete from ".len()..];
        let table = identifier(rest)?;
        let rest = rest[table.len()..].trim_start();
        if rest.is_empty() {
            return Some(Self::Table {
                table: table.to_owned(),
                form: None,
            });
        }
        rest.get(..6)
            .filter(|w| w.eq_ignore_ascii_case("where "))
            .map(|_| Self::keyed_by(table, &rest[6..], None))
    }

    /// Keyed when `condition` is `a = $1 and b = 'x' …`; table-wide otherwise.
    fn keyed_by(table: &str, condition: &str, form: Option<Form>) -> Self {
        let mut columns = Vec::new();
        let mut key = Vec::new();
        for term in split_and(condition) {
            let parsed = term.split_once('=').and_then(|(column, value)| {
                let column = column.trim();
                let plain = !column.is_empty()
                    && column
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_');
                plain
                    .then(|| key_part(value.trim()))
                    .flatten()
                    .map(|part| (column.to_ascii_lowercase(), part))
            });
            match parsed {
                Some((column, part)) => {
                    columns.push(column);
                    key.push(part);
                }
                None => {
                    // Not a key: the fold is still exact (each row is joined on its own
                    // condition) only when the condition is a key, so none.
                    return Self::Table {
                        table: table.to_owned(),
                        form: None,
                    };
                }
            }
        }
        Self::Keyed {
            table: table.to_owned(),
            columns: columns.join(","),
            key,
            form,
        }
    }
}

impl Form {
    /// One statement doing what `rows` (statements of this form) do one after the other.
    fn fold(&self, rows: Vec<Statement>) -> Statement {
        if rows.len() == 1 {
            return rows.into_iter().next().expect("one row");
        }
        let width = rows[0].args.len();
        let mut args = Vec::with_capacity(width * rows.len());
        let mut tuples = Vec::with_capacity(rows.len());
        for (r, row) in rows.into_iter().enumerate() {
            let offset = r * width;
            tuples.push(match self {
                Self::Insert { tuple, .. } => {
                    format!("({})", placeholders(tuple, |n| format!("${}", n + offset)))
                }
                // The first row names each column's type, so that a column of NULLs is not
                // taken for text on PostgreSQL.
                Self::Update { .. } => {
                    let values: Vec<String> = row
                        .args
                        .iter()
                        .enumerate()
                        .map(|(i, arg)| match (r, arg) {
                            (0, SqlValue::Int(_)) => format!("cast(${} as bigint)", i + 1),
                            (0, SqlValue::Text(_)) => format!("cast(${} as text)", i + 1),
                            _ => format!("${}", offset + i + 1),
                        })
                        .collect();
                    format!("({})", values.join(", "))
                }
            });
            args.extend(row.args);
        }
        let sql = match self {
            Self::Insert { head, tail, .. } => {
                format!("insert into {head} values {} {tail}", tuples.join(", "))
            }
            Self::Update {
                table,
                set,
                condition,
            } => {
                let column = |n: usize| format!("v.column{n}");
                format!(
                    "update {table} set {} from (values {}) as v where {}",
                    placeholders(set, column),
                    tuples.join(", "),
                    placeholders(condition, column)
                )
            }
        };
        let mut statement = Statement::owned(sql, args);
        statement.once = true;
        statement
    }
}

/// Where each statement goes: the first layer after everything it must follow.
#[derive(Default)]
struct Layers {
    /// Layers in use.
    count: usize,
    /// The first layer still open to every statement (after the last barrier).
    floor: usize,
    tables: HashMap<String, TableLayers>,
}

/// The layers already used on one table.
#[derive(Default)]
struct TableLayers {
    /// The last layer of any statement on the table.
    any: Option<usize>,
    /// The last layer of a table-wide statement.
    wide: Option<usize>,
    /// The last statement on the table, when it was a foldable table-wide one: its SQL and layer.
    last_wide: Option<(String, usize)>,
    /// The last layer of keyed statements, per key columns.
    by_columns: HashMap<String, usize>,
    /// The last layer of each key (columns and values).
    rows: HashMap<String, usize>,
}

impl Layers {
    fn place(&mut self, shape: &Shape, statement: &Statement) -> usize {
        let after = |layer: Option<usize>| layer.map_or(0, |l| l + 1);
        let layer = match shape {
            Shape::Barrier => {
                let layer = self.count.max(self.floor);
                self.floor = layer + 1;
                self.count = layer + 1;
                return layer;
            }
            Shape::Table { table, form } => {
                let on = self.tables.entry(table.clone()).or_default();
                let layer = match &on.last_wide {
                    Some((sql, layer)) if form.is_some() && *sql == *statement.sql => *layer,
                    _ => after(on.any),
                }
                .max(self.floor);
                on.wide = Some(layer);
                on.last_wide = form.as_ref().map(|_| (statement.sql.to_string(), layer));
                on.any = on.any.max(Some(layer));
                layer
            }
            Shape::Keyed {
                table,
                columns,
                key,
                ..
            } => {
                let row = row_key(columns, key, &statement.args);
                let on = self.tables.entry(table.clone()).or_default();
                let other_columns = on
                    .by_columns
                    .iter()
                    .filter(|(c, _)| *c != columns)
                    .map(|(_, l)| *l)
                    .max();
                let layer = after(on.wide)
                    .max(after(other_columns))
                    .max(after(on.rows.get(&row).copied()))
                    .max(self.floor);
                on.rows.insert(row, layer);
                let last = on.by_columns.entry(columns.clone()).or_insert(layer);
                *last = (*last).max(layer);
                on.any = on.any.max(Some(layer));
                on.last_wide = None;
                layer
            }
        };
        self.count = self.count.max(layer + 1);
        layer
    }
}

/// The key columns and their values, as one map key.
fn row_key(columns: &str, key: &[KeyPart], args: &[SqlValue]) -> String {
    let mut out = String::from(columns);
    for part in key {
        out.push('\u{1}');
        match part {
            KeyPart::Constant(text) => out.push_str(text),
            KeyPart::Arg(n) => match args.get(n - 1) {
                Some(SqlValue::Text(Some(text))) => {
                    out.push('\'');
                    out.push_str(text);
                }
                Some(SqlValue::Int(Some(n))) => out.push_str(&n.to_string()),
                _ => out.push_str("null"),
            },
        }
    }
    out
}

/// `$n`, or a constant (a quoted string or a number).
fn key_part(value: &str) -> Option<KeyPart> {
    if let Some(n) = value.strip_prefix('$') {
        return n.parse().ok().filter(|n| *n > 0).map(KeyPart::Arg);
    }
    let quoted = value.len() >= 2
        && value.starts_with('\'')
        && value.ends_with('\'')
        && !value[1..value.len() - 1].contains('\'');
    let number = !value.is_empty() && value.chars().all(|c| c.is_ascii_digit());
    (quoted || number).then(|| KeyPart::Constant(value.to_owned()))
}

#[cfg(test)]
mod tests;
