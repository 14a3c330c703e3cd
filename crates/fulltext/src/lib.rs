//! embedb-fulltext: the BM25 index behind `FULLTEXT INDEX … WITH PARSER …` and `FTS_MATCH_WORD`.
//!
//! How a row's text travels:
//! 1. DDL: the text after `WITH PARSER` becomes a [`Parser`] ([`Parser::parse`]; its `Display` form
//!    is what the catalog stores). The SQL layer opens one [`FullTextIndex`] per index, on disk with
//!    [`FullTextIndex::open_or_create`] or in memory with [`FullTextIndex::in_ram`].
//! 2. DML: for every row a statement writes, the SQL layer calls [`FullTextIndex::upsert`]
//!    (`None` text = NULL = not indexed) or [`FullTextIndex::delete`], keyed by the row id; the
//!    text goes through [`analyze`] into terms inside tantivy's writer. At the KV commit it calls
//!    [`FullTextIndex::commit`] with a watermark (e.g. the KV commit sequence); on start-up it
//!    compares [`FullTextIndex::watermark`] with the KV to decide whether to replay or rebuild.
//! 3. Queries: `FTS_MATCH_WORD('q', col)` analyses `'q'` with the same parser
//!    ([`analyze::query_terms`]), ORs the terms and scores rows with BM25:
//!    - `ORDER BY FTS_MATCH_WORD(…) DESC LIMIT k` → [`FullTextIndex::search`] (top-k keys + scores);
//!    - `WHERE FTS_MATCH_WORD(…)` / `> 0` → [`FullTextIndex::matching`] (every matching key);
//!    - the score of rows already chosen by another access path → [`FullTextIndex::score_keys`].
//!
//! Query text is never handed to tantivy's query language, so quotes, colons, `AND`, parentheses
//! and the like are just text.

pub mod analyze;
mod index;
mod parser;

pub use analyze::{document_terms, query_terms, MAX_TERM_CHARS};
pub use index::{text_hash, FullTextError, FullTextIndex, Result, WriterOptions};
pub use parser::{Parser, ParserError, NGRAM_DEFAULT_SIZE, NGRAM_MAX_SIZE, NGRAM_MIN_SIZE};

#[cfg(test)]
mod send_sync {
    fn assert_send_sync<T: Send + Sync>() {}
    #[test]
    fn full_text_index_is_send_and_sync() {
        assert_send_sync::<super::FullTextIndex>();
    }
}
