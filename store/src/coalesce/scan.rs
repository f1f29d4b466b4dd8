//! Reading this crate's statement dialect: quotes, parentheses, keywords and `$n`
//! placeholders (see the parent module for why no SQL parser crate).

/// The SQL with every run of whitespace outside quotes made one space, trimmed.
pub(super) fn normalized(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quote: Option<char> = None;
    for c in sql.trim().chars() {
        match quote {
            Some(open) => {
                if c == open {
                    quote = None;
                }
                out.push(c);
            }
            None if c.is_whitespace() => {
                if !out.ends_with(' ') {
                    out.push(' ');
                }
            }
            None => {
                if c == '\'' || c == '"' {
                    quote = Some(c);
                }
                out.push(c);
            }
        }
    }
    out
}

/// The text with quoted strings blanked out (same length), to look for keywords.
pub(super) fn outside_quotes(text: &str) -> String {
    let mut quote: Option<char> = None;
    text.chars()
        .map(|c| match quote {
            Some(open) => {
                if c == open {
                    quote = None;
                }
                ' '
            }
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                ' '
            }
            None => c,
        })
        .collect()
}

pub(super) fn contains_word(text: &str, word: &str) -> bool {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(word).any(|(at, _)| {
        !text[..at].chars().next_back().is_some_and(is_ident)
            && !text[at + word.len()..]
                .chars()
                .next()
                .is_some_and(|c| is_ident(c) && word.chars().last().is_some_and(is_ident))
    })
}

pub(super) fn identifier(text: &str) -> Option<&str> {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    (end > 0).then(|| &text[..end])
}

/// The characters outside quoted strings (the quotes excluded), each with its byte offset and
/// the parenthesis depth after it.
fn unquoted(text: &str) -> impl Iterator<Item = (usize, char, i32)> + '_ {
    let mut depth = 0;
    let mut quote: Option<char> = None;
    text.char_indices().filter_map(move |(i, c)| {
        match (quote, c) {
            (Some(open), c) if c == open => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, c) => {
                depth += match c {
                    '(' => 1,
                    ')' => -1,
                    _ => 0,
                };
                return Some((i, c, depth));
            }
        }
        None
    })
}

/// `(inside) rest` → `(inside, rest)`, parentheses balanced outside quotes.
pub(super) fn parenthesized(text: &str) -> Option<(&str, &str)> {
    if !text.starts_with('(') {
        return None;
    }
    unquoted(text)
        .find(|&(_, c, depth)| c == ')' && depth == 0)
        .map(|(i, _, _)| (&text[1..i], &text[i + 1..]))
}

/// Splits at `separator` outside quotes and parentheses.
pub(super) fn split_top(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    for (i, _, _) in unquoted(text).filter(|&(_, c, depth)| c == separator && depth == 0) {
        parts.push(&text[start..i]);
        start = i + 1;
    }
    parts.push(&text[start..]);
    parts
}

/// Splits at the only top-level occurrence of the keyword `word` (surrounded by spaces).
pub(super) fn split_word<'a>(text: &'a str, word: &str) -> Option<(&'a str, &'a str)> {
    let blanked = top_level(text);
    let needle = format!(" {word} ");
    let mut found = blanked.match_indices(&needle);
    let (at, _) = found.next()?;
    if found.next().is_some() {
        return None;
    }
    Some((&text[..at], &text[at + needle.len()..]))
}

/// A condition's `and`-separated terms (top level); one term when there is no `and`.
pub(super) fn split_and(condition: &str) -> Vec<&str> {
    let blanked = top_level(condition);
    let mut terms = Vec::new();
    let mut start = 0;
    for (at, _) in blanked.match_indices(" and ") {
        terms.push(&condition[start..at]);
        start = at + " and ".len();
    }
    terms.push(&condition[start..]);
    terms
}

/// The text lower-cased, with quoted strings and parenthesized parts blanked (same byte length).
fn top_level(text: &str) -> String {
    let mut depth = 0;
    let mut quote: Option<char> = None;
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let keep = match (quote, c) {
            (Some(open), c) if c == open => {
                quote = None;
                false
            }
            (Some(_), _) => false,
            (None, '\'' | '"') => {
                quote = Some(c);
                false
            }
            (None, '(') => {
                depth += 1;
                false
            }
            (None, ')') => {
                depth -= 1;
                false
            }
            _ => depth == 0,
        };
        let shown = if keep { c.to_ascii_lowercase() } else { '#' };
        // Keep byte offsets: one byte per byte of the original.
        for _ in 0..c.len_utf8() {
            out.push(shown);
        }
    }
    out
}

/// The text with each `$n` outside quotes replaced by `with(n)`.
pub(super) fn placeholders(text: &str, with: impl Fn(usize) -> String) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    crate::sql::replace_placeholders(text, &mut out, |n, out| out.push_str(&with(n)));
    out
}
