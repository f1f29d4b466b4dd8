//! The part of a document a hit shows.

use super::fold::{fold_word, words};

/// Words shown before the first match.
const CONTEXT_BEFORE: usize = 8;
/// Words a snippet shows at most.
const SNIPPET_WORDS: usize = 32;

/// The part of `body` around the first word matching a term (as a prefix, folded), HTML-escaped,
/// with every matching word in `<mark>…</mark>` and `…` where it was cut.
pub(super) fn snippet(body: &str, terms: &[String]) -> String {
    let found: Vec<(usize, &str, bool)> = words(body)
        .map(|(at, word)| {
            let folded = fold_word(word);
            (
                at,
                word,
                terms.iter().any(|t| folded.starts_with(t.as_str())),
            )
        })
        .collect();
    let first = found.iter().position(|(_, _, hit)| *hit).unwrap_or(0);
    let from = first.saturating_sub(CONTEXT_BEFORE);
    let to = (from + SNIPPET_WORDS).min(found.len());
    let start = if from == 0 { 0 } else { found[from].0 };
    let end = if to == found.len() {
        body.len()
    } else {
        found[to - 1].0 + found[to - 1].1.len()
    };
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    let mut at = start;
    for (word_at, word, hit) in &found[from..to] {
        escape_into(&mut out, &body[at..*word_at]);
        if *hit {
            out.push_str("<mark>");
            escape_into(&mut out, word);
            out.push_str("</mark>");
        } else {
            escape_into(&mut out, word);
        }
        at = word_at + word.len();
    }
    escape_into(&mut out, &body[at..end]);
    if end < body.len() {
        out.push('…');
    }
    out
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::snippet;

    #[test]
    fn snippets_mark_folded_matches_and_escape_the_rest() {
        let terms = vec!["cancelacion".to_owned()];
        assert_eq!(
            snippet("Quiero la <b>cancelación</b> ya", &terms),
            "Quiero la &lt;b&gt;<mark>cancelación</mark>&lt;/b&gt; ya"
        );
        let long = format!("{} pedido final", "palabra ".repeat(40));
        let cut = snippet(&long, &["pedido".to_owned()]);
        assert!(cut.starts_with('…') && cut.contains("<mark>pedido</mark> final"));
    }
}
