//! Text → terms, for documents and for queries.
//!
//! A document's text walks through here once per upsert: [`fold`] maps full-width ASCII to ASCII →
//! characters are classed as word characters, CJK characters or separators ([`class_of`]) → runs of
//! one class become terms according to the [`Parser`] → tantivy receives them through
//! [`EmbedbTokenizer`] (registered under [`Parser::tokenizer_name`]) and writes postings.
//!
//! A query walks through [`query_terms`], which produces the same terms as the document side except
//! for one MULTILINGUAL detail: documents index every CJK character on its own *and* every
//! overlapping pair, while a query of two or more CJK characters asks only for the pairs. Pairs are
//! what keeps `东京` from matching a text that merely contains `东` and `京` apart; the single
//! characters in the index are there so that a one-character query (`猫`) still finds something.
//!
//! Nothing here ever fails: arbitrary user text (quotes, colons, parentheses, emoji, control
//! characters) only ever yields zero or more terms, and terms longer than [`MAX_TERM_CHARS`] are
//! dropped on both sides, so they can neither match nor overflow tantivy's term size limit.

use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

use crate::Parser;

/// Words longer than this (in characters) are not indexed and not searched. 84 is the default of
/// MySQL's `innodb_ft_max_token_size`, which TiDB also uses for its STANDARD parser; longer "words"
/// are hashes, base64 or run-together junk.
pub const MAX_TERM_CHARS: usize = 84;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// A letter, digit or combining mark of a space-separated script.
    Word,
    /// Han, kana or Hangul: written without spaces between words.
    Cjk,
    /// Whitespace, punctuation, symbols.
    Separator,
}

/// Full-width ASCII (`Ａ`, `１`, `！`) and the ideographic space are mapped to plain ASCII, so that
/// text typed with a CJK input method matches text typed without one.
fn fold(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        '\u{3000}' => ' ',
        _ => c,
    }
}

fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{3005}'..='\u{3007}'          // 々 〆 〇
        | '\u{3040}'..='\u{309F}'        // Hiragana
        | '\u{30A0}'..='\u{30FF}'        // Katakana (with ー)
        | '\u{31F0}'..='\u{31FF}'        // Katakana phonetic extensions
        | '\u{3400}'..='\u{4DBF}'        // CJK extension A
        | '\u{4E00}'..='\u{9FFF}'        // CJK unified ideographs
        | '\u{F900}'..='\u{FAFF}'        // CJK compatibility ideographs
        | '\u{FF66}'..='\u{FF9F}'        // half-width katakana
        | '\u{1100}'..='\u{11FF}'        // Hangul jamo
        | '\u{3130}'..='\u{318F}'        // Hangul compatibility jamo
        | '\u{A960}'..='\u{A97F}'        // Hangul jamo extended A
        | '\u{AC00}'..='\u{D7AF}'        // Hangul syllables
        | '\u{D7B0}'..='\u{D7FF}'        // Hangul jamo extended B
        | '\u{20000}'..='\u{2FA1F}'      // CJK extensions B–F and compatibility supplement
        | '\u{30000}'..='\u{3134F}' // CJK extension G
    )
}

/// Combining marks belong to the word they modify (decomposed accents, Indic vowel signs that are
/// not already Alphabetic).
fn is_combining_mark(c: char) -> bool {
    matches!(c,
        '\u{0300}'..='\u{036F}'
        | '\u{1AB0}'..='\u{1AFF}'
        | '\u{1DC0}'..='\u{1DFF}'
        | '\u{20D0}'..='\u{20FF}'
        | '\u{FE20}'..='\u{FE2F}'
    )
}

fn class_of(c: char, split_cjk: bool) -> Class {
    if split_cjk && is_cjk(c) {
        Class::Cjk
    } else if c.is_alphanumeric() || is_combining_mark(c) {
        Class::Word
    } else {
        Class::Separator
    }
}

/// One run of same-class characters, already folded and lower-cased, with its byte span in the
/// original text (for tantivy's token offsets).
struct Run {
    class: Class,
    /// (char, byte offset of the char in the original text, byte length there)
    chars: Vec<(char, usize, usize)>,
}

/// Splits `text` into runs of word characters and (when `split_cjk`) CJK characters; separators
/// only delimit.
fn runs(text: &str, split_cjk: bool, mut emit: impl FnMut(&Run)) {
    let mut run = Run {
        class: Class::Separator,
        chars: Vec::new(),
    };
    for (offset, original) in text.char_indices() {
        let c = fold(original);
        let class = class_of(c, split_cjk);
        if class != run.class && !run.chars.is_empty() {
            emit(&run);
            run.chars.clear();
        }
        run.class = class;
        if class == Class::Separator {
            continue;
        }
        // Lower-casing may expand one char into several (e.g. 'İ'); they share the source span.
        for lower in c.to_lowercase() {
            run.chars.push((lower, offset, original.len_utf8()));
        }
    }
    if !run.chars.is_empty() && run.class != Class::Separator {
        emit(&run);
    }
}

/// Calls `sink(term, byte_from, byte_to)` for `run.chars[start..end]`, unless it is too long.
fn emit_span(run: &Run, start: usize, end: usize, sink: &mut impl FnMut(&str, usize, usize)) {
    if end - start > MAX_TERM_CHARS {
        return;
    }
    let term: String = run.chars[start..end].iter().map(|&(c, _, _)| c).collect();
    let (_, from, _) = run.chars[start];
    let (_, last, len) = run.chars[end - 1];
    sink(&term, from, last + len);
}

fn emit_ngrams(run: &Run, min: usize, max: usize, sink: &mut impl FnMut(&str, usize, usize)) {
    let len = run.chars.len();
    if len < min {
        // A word shorter than the smallest gram is kept whole, so that it stays findable
        // (MySQL's ngram parser drops it; keeping it costs nothing and loses nothing).
        emit_span(run, 0, len, sink);
        return;
    }
    for start in 0..len {
        for n in min..=max.min(len - start) {
            emit_span(run, start, start + n, sink);
        }
    }
}

/// Which side of the index the terms are for; only MULTILINGUAL's CJK runs differ between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Document,
    Query,
}

fn analyze(parser: Parser, side: Side, text: &str, sink: &mut impl FnMut(&str, usize, usize)) {
    match parser {
        Parser::Standard => runs(text, false, |run| emit_span(run, 0, run.chars.len(), sink)),
        Parser::Ngram { min, max } => runs(text, false, |run| emit_ngrams(run, min, max, sink)),
        Parser::Multilingual => runs(text, true, |run| {
            let len = run.chars.len();
            match run.class {
                Class::Cjk if len == 1 => emit_span(run, 0, 1, sink),
                Class::Cjk => {
                    for start in 0..len {
                        if side == Side::Document {
                            emit_span(run, start, start + 1, sink);
                        }
                        if start + 1 < len {
                            emit_span(run, start, start + 2, sink);
                        }
                    }
                }
                _ => emit_span(run, 0, len, sink),
            }
        }),
    }
}

/// The terms a document's text is indexed under, in text order, with repeats (term frequency
/// counts them).
pub fn document_terms(parser: Parser, text: &str) -> Vec<String> {
    let mut out = Vec::new();
    analyze(parser, Side::Document, text, &mut |t, _, _| {
        out.push(t.to_string())
    });
    out
}

/// The distinct terms of a query, in first-seen order. `FTS_MATCH_WORD` ORs them.
pub fn query_terms(parser: Parser, text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    analyze(parser, Side::Query, text, &mut |t, _, _| {
        if !out.iter().any(|seen| seen == t) {
            out.push(t.to_string());
        }
    });
    out
}

/// The document-side analyzer as a tantivy tokenizer.
#[derive(Clone)]
pub(crate) struct EmbedbTokenizer {
    parser: Parser,
}

impl EmbedbTokenizer {
    pub(crate) fn new(parser: Parser) -> Self {
        EmbedbTokenizer { parser }
    }
}

/// Tokens computed up front; documents are short enough that one Vec per document is cheaper than
/// a resumable state machine is complicated.
pub(crate) struct VecTokenStream {
    tokens: Vec<Token>,
    /// Index of the current token plus one (0 = before the first `advance`).
    cursor: usize,
}

impl Tokenizer for EmbedbTokenizer {
    type TokenStream<'a> = VecTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> VecTokenStream {
        let mut tokens = Vec::new();
        analyze(self.parser, Side::Document, text, &mut |t, from, to| {
            tokens.push(Token {
                offset_from: from,
                offset_to: to,
                position: tokens.len(),
                text: t.to_string(),
                position_length: 1,
            });
        });
        VecTokenStream { tokens, cursor: 0 }
    }
}

impl TokenStream for VecTokenStream {
    fn advance(&mut self) -> bool {
        if self.cursor < self.tokens.len() {
            self.cursor += 1;
            true
        } else {
            false
        }
    }

    fn token(&self) -> &Token {
        &self.tokens[self.cursor - 1]
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.cursor - 1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(p: Parser, t: &str) -> Vec<String> {
        document_terms(p, t)
    }
    fn query(p: Parser, t: &str) -> Vec<String> {
        query_terms(p, t)
    }

    #[test]
    fn standard_lowercases_and_splits_on_punctuation() {
        assert_eq!(
            doc(
                Parser::Standard,
                "Hello, World! TiDB's 3.14 e-mail snake_case"
            ),
            ["hello", "world", "tidb", "s", "3", "14", "e", "mail", "snake", "case"]
        );
        assert_eq!(
            doc(Parser::Standard, "Ünïcödé ÉCOLE straße"),
            ["ünïcödé", "école", "straße"]
        );
        assert_eq!(doc(Parser::Standard, "ＴｉＤＢ　１２３"), ["tidb", "123"]);
        assert!(doc(Parser::Standard, "  ...!?()\"':; \n\t ").is_empty());
        assert_eq!(query(Parser::Standard, "the cat THE Cat"), ["the", "cat"]);
    }

    #[test]
    fn overlong_words_are_dropped() {
        let long = "x".repeat(MAX_TERM_CHARS + 1);
        let ok = "y".repeat(MAX_TERM_CHARS);
        assert_eq!(
            doc(Parser::Standard, &format!("a {long} {ok}")),
            ["a".to_string(), ok]
        );
    }

    #[test]
    fn multilingual_bigrams_cjk_and_words_latin() {
        assert_eq!(
            doc(Parser::Multilingual, "我爱北京 TiDB 数据库"),
            [
                "我", "我爱", "爱", "爱北", "北", "北京", "京", "tidb", "数", "数据", "据", "据库",
                "库"
            ]
        );
        assert_eq!(
            query(Parser::Multilingual, "我爱北京"),
            ["我爱", "爱北", "北京"]
        );
        // An isolated CJK character is a term on both sides.
        assert_eq!(query(Parser::Multilingual, "猫"), ["猫"]);
        assert_eq!(
            doc(Parser::Multilingual, "用Python写"),
            ["用", "python", "写"]
        );
        // Kana and Hangul bigram too; CJK punctuation separates.
        assert_eq!(
            query(Parser::Multilingual, "イヤホン。東京"),
            ["イヤ", "ヤホ", "ホン", "東京"]
        );
        assert_eq!(
            query(Parser::Multilingual, "한국어 공부"),
            ["한국", "국어", "공부"]
        );
        // STANDARD keeps a CJK run as one word.
        assert_eq!(doc(Parser::Standard, "我爱北京"), ["我爱北京"]);
    }

    #[test]
    fn ngram_grams_inside_words() {
        let p = Parser::Ngram { min: 2, max: 3 };
        assert_eq!(doc(p, "Abcd"), ["ab", "abc", "bc", "bcd", "cd"]);
        assert_eq!(doc(p, "a bc"), ["a", "bc"]);
        let p2 = Parser::Ngram { min: 2, max: 2 };
        assert_eq!(doc(p2, "abc def"), ["ab", "bc", "de", "ef"]);
        assert_eq!(doc(p2, "数据库"), ["数据", "据库"]);
    }

    #[test]
    fn tantivy_stream_reports_offsets_and_positions() {
        let mut tok = EmbedbTokenizer::new(Parser::Multilingual);
        let text = "Hé 北京";
        let mut stream = tok.token_stream(text);
        let mut seen = Vec::new();
        while let Some(t) = stream.next() {
            seen.push((
                t.text.clone(),
                &text[t.offset_from..t.offset_to],
                t.position,
            ));
        }
        assert_eq!(
            seen,
            [
                ("hé".to_string(), "Hé", 0),
                ("北".to_string(), "北", 1),
                ("北京".to_string(), "北京", 2),
                ("京".to_string(), "京", 3)
            ]
        );
    }
}
