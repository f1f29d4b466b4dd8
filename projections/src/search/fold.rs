//! Search words: text folded to lowercase without accents and split into words, the same way
//! for what is indexed and for what is asked, on both backends.
//!
//! Folding happens here rather than in the database so that PostgreSQL needs no `unaccent`
//! extension (creating one takes a superuser) and both backends index exactly the same words:
//! the index holds the folded words joined by single spaces, which PostgreSQL's `simple`
//! configuration and SQLite's `unicode61` tokenizer both split back into those words.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// The most words a query keeps.
pub const MAX_QUERY_WORDS: usize = 12;
/// The longest word kept, in characters (longer ones are cut).
const MAX_WORD_CHARS: usize = 64;

/// One word folded: canonical decomposition without combining marks, lowercase.
pub fn fold_word(word: &str) -> String {
    word.nfd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .take(MAX_WORD_CHARS)
        .collect()
}

/// The words of `text` with their byte offsets (a word: a run of letters, digits and the
/// combining marks that decorate them).
pub fn words(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split(|c: char| !(c.is_alphanumeric() || is_combining_mark(c)))
        .filter(|w| !w.is_empty())
        .map(move |w| (w.as_ptr() as usize - text.as_ptr() as usize, w))
}

/// What the index holds for `text`: its folded words joined by single spaces.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (_, word) in words(text) {
        let folded = fold_word(word);
        // A combining mark alone folds to nothing.
        if folded.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&folded);
    }
    out
}

/// The folded words of a query (at most [`MAX_QUERY_WORDS`]). A query that is a phone number
/// (digits with `+`, spaces, dashes, dots or parentheses) is one word of its digits, as numbers
/// are indexed.
pub fn query_terms(query: &str) -> Vec<String> {
    let phone_like = query
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().".contains(c));
    let digits: String = query.chars().filter(char::is_ascii_digit).collect();
    if phone_like && digits.len() >= 5 {
        return vec![digits];
    }
    fold(query)
        .split(' ')
        .filter(|w| !w.is_empty())
        .take(MAX_QUERY_WORDS)
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accents_and_case_fold_away() {
        assert_eq!(
            fold("Cancelación del PEDIDO, ¿ya?"),
            "cancelacion del pedido ya"
        );
        assert_eq!(fold("Ação São Paulo"), "acao sao paulo");
        assert_eq!(fold("e\u{301}te"), "ete");
    }

    #[test]
    fn a_phone_number_is_one_word() {
        assert_eq!(query_terms("+55 (11) 99999-0001"), vec!["5511999990001"]);
        assert_eq!(query_terms("pedido 123"), vec!["pedido", "123"]);
        assert!(query_terms("  ¿? ").is_empty());
    }

    #[test]
    fn word_ranges_point_into_the_text() {
        let text = "¡Hola, señor!";
        let found: Vec<(usize, &str)> = words(text).collect();
        assert_eq!(found, vec![(2, "Hola"), (8, "señor")]);
    }
}
