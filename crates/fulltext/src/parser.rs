//! The `WITH PARSER …` clause of a FULLTEXT index, as a value.
//!
//! SQL text such as `MULTILINGUAL` or `ngram(2, 3)` arrives from the DDL → [`Parser::parse`] checks
//! it and turns it into a [`Parser`] → the catalog keeps [`Parser`]'s `Display` form (canonical,
//! upper case, and parsed back to the same value) → the index builds its analyzer from it
//! ([`crate::analyze`]).
//!
//! Accepted forms (case-insensitive, spaces allowed):
//! - `STANDARD` — words split at anything that is not a letter or digit, lower-cased. TiDB documents it
//!   as the fast parser for English that "splits words by spaces and punctuation"; it names no
//!   stemming or stop words, so there are none.
//! - `MULTILINGUAL` — Latin (and other space-separated) words as STANDARD, CJK text (Han, kana,
//!   Hangul) as overlapping character bigrams.
//! - `NGRAM` — character n-grams of size 2 (the default of TiDB's and MySQL's `ngram_token_size`);
//!   `NGRAM(n)` — size n; `NGRAM(min, max)` — every size from min to max. Sizes are 1..=10, the range
//!   MySQL allows for `ngram_token_size`.

use std::fmt;

/// The smallest n-gram size accepted.
pub const NGRAM_MIN_SIZE: usize = 1;
/// The largest n-gram size accepted (MySQL's bound for `ngram_token_size`).
pub const NGRAM_MAX_SIZE: usize = 10;
/// The n-gram size of a bare `NGRAM`.
pub const NGRAM_DEFAULT_SIZE: usize = 2;

/// How a FULLTEXT index splits text into terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Parser {
    /// Lower-cased words split at non-alphanumerics.
    Standard,
    /// STANDARD for space-separated scripts, overlapping bigrams for CJK.
    Multilingual,
    /// Lower-cased character n-grams of every size in `min..=max` inside each word.
    Ngram { min: usize, max: usize },
}

/// Why a `WITH PARSER` clause was rejected. The texts are meant for the SQL error the user sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParserError {
    #[error("unsupported full-text parser '{0}', expected STANDARD, MULTILINGUAL or NGRAM")]
    Unknown(String),
    #[error("full-text parser {0} takes no arguments")]
    UnexpectedArguments(String),
    #[error("invalid NGRAM arguments '{0}', expected NGRAM, NGRAM(n) or NGRAM(min, max)")]
    BadNgramArguments(String),
    #[error("NGRAM size must be between {NGRAM_MIN_SIZE} and {NGRAM_MAX_SIZE}, got {0}")]
    NgramSizeOutOfRange(String),
    #[error("NGRAM minimum size {min} is larger than its maximum size {max}")]
    NgramMinAboveMax { min: usize, max: usize },
}

impl Default for Parser {
    /// `FULLTEXT INDEX (col)` without `WITH PARSER` is STANDARD in TiDB.
    fn default() -> Self {
        Parser::Standard
    }
}

impl Parser {
    /// Parses the text after `WITH PARSER`: `STANDARD`, `MULTILINGUAL`, `NGRAM`, `NGRAM(n)` or
    /// `NGRAM(min, max)`.
    pub fn parse(text: &str) -> Result<Parser, ParserError> {
        let text = text.trim();
        // The name runs up to an opening parenthesis (if any); whatever is inside is the argument list.
        let (name, args) = match text.find('(') {
            Some(open) => {
                let rest = text[open + 1..].trim_end();
                let inner = rest
                    .strip_suffix(')')
                    .ok_or_else(|| ParserError::BadNgramArguments(text.to_string()))?;
                (text[..open].trim(), Some(inner))
            }
            None => (text, None),
        };
        let upper = name.to_ascii_uppercase();
        match upper.as_str() {
            "STANDARD" | "MULTILINGUAL" => {
                if args.is_some() {
                    return Err(ParserError::UnexpectedArguments(upper));
                }
                Ok(if upper == "STANDARD" {
                    Parser::Standard
                } else {
                    Parser::Multilingual
                })
            }
            "NGRAM" => match args {
                None => Ok(Parser::Ngram {
                    min: NGRAM_DEFAULT_SIZE,
                    max: NGRAM_DEFAULT_SIZE,
                }),
                Some(inner) => parse_ngram_args(inner),
            },
            _ => Err(ParserError::Unknown(name.to_string())),
        }
    }

    /// A name safe to use as a tantivy tokenizer name; it encodes the whole parser so that an index
    /// on disk records which parser built it.
    pub(crate) fn tokenizer_name(&self) -> String {
        match self {
            Parser::Standard => "embedb_standard".to_string(),
            Parser::Multilingual => "embedb_multilingual".to_string(),
            Parser::Ngram { min, max } => format!("embedb_ngram_{min}_{max}"),
        }
    }

    /// The inverse of [`Parser::tokenizer_name`].
    pub(crate) fn from_tokenizer_name(name: &str) -> Option<Parser> {
        match name {
            "embedb_standard" => Some(Parser::Standard),
            "embedb_multilingual" => Some(Parser::Multilingual),
            _ => {
                let rest = name.strip_prefix("embedb_ngram_")?;
                let (min, max) = rest.split_once('_')?;
                let parser = Parser::Ngram {
                    min: min.parse().ok()?,
                    max: max.parse().ok()?,
                };
                // Re-validate: a hand-edited schema must not smuggle in sizes we never build.
                Parser::parse(&parser.to_string()).ok()
            }
        }
    }
}

fn parse_ngram_args(inner: &str) -> Result<Parser, ParserError> {
    let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
    let size = |s: &str| -> Result<usize, ParserError> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParserError::BadNgramArguments(format!("({inner})")));
        }
        match s.parse::<usize>() {
            Ok(n) if (NGRAM_MIN_SIZE..=NGRAM_MAX_SIZE).contains(&n) => Ok(n),
            _ => Err(ParserError::NgramSizeOutOfRange(s.to_string())),
        }
    };
    let (min, max) = match parts.as_slice() {
        [n] => {
            let n = size(n)?;
            (n, n)
        }
        [a, b] => (size(a)?, size(b)?),
        _ => return Err(ParserError::BadNgramArguments(format!("({inner})"))),
    };
    if min > max {
        return Err(ParserError::NgramMinAboveMax { min, max });
    }
    Ok(Parser::Ngram { min, max })
}

impl fmt::Display for Parser {
    /// The canonical SQL form; `Parser::parse` reads it back to the same value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Parser::Standard => f.write_str("STANDARD"),
            Parser::Multilingual => f.write_str("MULTILINGUAL"),
            Parser::Ngram { min, max } if min == max => write!(f, "NGRAM({min})"),
            Parser::Ngram { min, max } => write!(f, "NGRAM({min}, {max})"),
        }
    }
}

impl std::str::FromStr for Parser {
    type Err = ParserError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Parser::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_forms() {
        assert_eq!(Parser::parse("STANDARD"), Ok(Parser::Standard));
        assert_eq!(Parser::parse("  standard "), Ok(Parser::Standard));
        assert_eq!(Parser::parse("Multilingual"), Ok(Parser::Multilingual));
        assert_eq!(Parser::parse("NGRAM"), Ok(Parser::Ngram { min: 2, max: 2 }));
        assert_eq!(
            Parser::parse("ngram(3)"),
            Ok(Parser::Ngram { min: 3, max: 3 })
        );
        assert_eq!(
            Parser::parse("NGRAM ( 2 , 4 )"),
            Ok(Parser::Ngram { min: 2, max: 4 })
        );
        assert_eq!(
            Parser::parse("NGRAM(1,10)"),
            Ok(Parser::Ngram { min: 1, max: 10 })
        );
    }

    #[test]
    fn rejected_forms_say_why() {
        assert_eq!(
            Parser::parse("JIEBA"),
            Err(ParserError::Unknown("JIEBA".into()))
        );
        assert_eq!(Parser::parse(""), Err(ParserError::Unknown("".into())));
        assert_eq!(
            Parser::parse("STANDARD(2)"),
            Err(ParserError::UnexpectedArguments("STANDARD".into()))
        );
        assert!(matches!(
            Parser::parse("NGRAM(2"),
            Err(ParserError::BadNgramArguments(_))
        ));
        assert!(matches!(
            Parser::parse("NGRAM()"),
            Err(ParserError::BadNgramArguments(_))
        ));
        assert!(matches!(
            Parser::parse("NGRAM(a)"),
            Err(ParserError::BadNgramArguments(_))
        ));
        assert!(matches!(
            Parser::parse("NGRAM(-1)"),
            Err(ParserError::BadNgramArguments(_))
        ));
        assert!(matches!(
            Parser::parse("NGRAM(1,2,3)"),
            Err(ParserError::BadNgramArguments(_))
        ));
        assert_eq!(
            Parser::parse("NGRAM(0)"),
            Err(ParserError::NgramSizeOutOfRange("0".into()))
        );
        assert_eq!(
            Parser::parse("NGRAM(2, 11)"),
            Err(ParserError::NgramSizeOutOfRange("11".into()))
        );
        assert_eq!(
            Parser::parse("NGRAM(99999999999999999999999)"),
            Err(ParserError::NgramSizeOutOfRange(
                "99999999999999999999999".into()
            ))
        );
        assert_eq!(
            Parser::parse("NGRAM(4,2)"),
            Err(ParserError::NgramMinAboveMax { min: 4, max: 2 })
        );
        assert_eq!(
            Parser::parse("NGRAM(0)").unwrap_err().to_string(),
            "NGRAM size must be between 1 and 10, got 0"
        );
    }

    #[test]
    fn display_round_trips() {
        for p in [
            Parser::Standard,
            Parser::Multilingual,
            Parser::Ngram { min: 2, max: 2 },
            Parser::Ngram { min: 1, max: 3 },
        ] {
            assert_eq!(Parser::parse(&p.to_string()), Ok(p));
            assert_eq!(Parser::from_tokenizer_name(&p.tokenizer_name()), Some(p));
        }
        assert_eq!(Parser::Ngram { min: 2, max: 3 }.to_string(), "NGRAM(2, 3)");
        assert_eq!(Parser::from_tokenizer_name("embedb_ngram_0_3"), None);
        assert_eq!(Parser::from_tokenizer_name("default"), None);
    }
}
