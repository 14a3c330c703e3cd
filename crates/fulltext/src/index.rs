//! [`FullTextIndex`]: one FULLTEXT index (one column of one table) on tantivy.
//!
//! Writes: the SQL layer calls [`FullTextIndex::upsert`] / [`FullTextIndex::delete`] /
//! [`FullTextIndex::clear`] for the rows a statement changed → they are staged in tantivy's
//! writer (an upsert is "delete every document with this key, then add the new one", so repeating
//! it is harmless) → [`FullTextIndex::commit`] publishes them together with a caller-chosen
//! watermark (for example the KV commit sequence that made those rows durable), stored in
//! tantivy's commit payload → the reader is reloaded before `commit` returns, so the next search
//! sees the rows.
//!
//! Reads: [`FullTextIndex::search`] (top-k, for `ORDER BY FTS_MATCH_WORD(…) DESC LIMIT k`) and
//! [`FullTextIndex::matching`] / [`FullTextIndex::score_keys`] (the predicate and the score column)
//! turn the query into terms with [`crate::query_terms`] — never tantivy's query language, so any
//! user text is safe — and OR them as BM25 term queries. Readers only ever see committed state.
//!
//! Recovery: after a crash the index opens at its last commit and [`FullTextIndex::watermark`]
//! says how far it got; the caller replays rows changed after that watermark (upserts and deletes
//! are idempotent) or rebuilds with [`FullTextIndex::clear`].
//!
//! Scores are tantivy's BM25 (k1 = 1.2, b = 0.75), with document frequencies taken over the
//! committed segments. Deleted or replaced rows keep counting in those frequencies until their
//! segment is merged; [`FullTextIndex::compact`] merges everything when exact statistics matter.

use std::collections::{BinaryHeap, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tantivy::collector::{Collector, SegmentCollector, TopDocs};
use tantivy::directory::{Directory, MmapDirectory, RamDirectory};
use tantivy::indexer::IndexWriterOptions;
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST, INDEXED,
};
use tantivy::{
    DocAddress, DocId, Index, IndexReader, IndexSettings, IndexWriter, ReloadPolicy, Score,
    Searcher, SegmentOrdinal, SegmentReader, TantivyDocument, Term,
};

use crate::analyze::{query_terms, EmbedbTokenizer};
use crate::Parser;

const KEY_FIELD: &str = "key";
const TEXT_FIELD: &str = "text";
/// A hash of each row's text ([`text_hash`]): a saved copy is checked against the table by it.
const HASH_FIELD: &str = "text_hash";

/// FNV-1a of a row's text: stable across versions and builds, so a copy saved by one build is
/// checked correctly by the next.
pub fn text_hash(text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.as_bytes() {
        h = (h ^ *b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}
/// Commit payloads start with this, so that a payload written by something else is recognised.
const PAYLOAD_PREFIX: &str = "embedb-fulltext/1 watermark=";

/// Errors from a full-text index. Tantivy's own errors (I/O, corruption, lock held by another
/// writer) pass through.
#[derive(Debug, thiserror::Error)]
pub enum FullTextError {
    #[error("full-text index error: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("full-text index I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("the full-text index at {path} was built WITH PARSER {stored}, not {requested}")]
    ParserMismatch {
        path: String,
        stored: Parser,
        requested: Parser,
    },
    #[error("{path} does not hold an embedb full-text index: {why}")]
    NotOurIndex { path: String, why: String },
    #[error("the full-text index writer lock was poisoned by a panic")]
    Poisoned,
}

pub type Result<T> = std::result::Result<T, FullTextError>;

/// Resources for an index's writer. The writer is created on the first change, so an index that
/// is only read costs no threads and no buffer.
#[derive(Debug, Clone, Copy)]
pub struct WriterOptions {
    /// Indexing threads (each builds its own segment).
    pub threads: usize,
    /// Buffer per indexing thread before a segment is flushed; tantivy's floor is 15 MB. It is
    /// an upper bound, allocated as needed.
    pub memory_per_thread: usize,
    /// Background segment-merge threads.
    pub merge_threads: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        // One of each: a database holds many indexes, and row-at-a-time SQL writes are small.
        WriterOptions {
            threads: 1,
            memory_per_thread: 32 << 20,
            merge_threads: 1,
        }
    }
}

/// A BM25 full-text index over (row key → text). `Send + Sync`: one writer at a time (changes are
/// serialised on an internal lock), any number of concurrent readers.
pub struct FullTextIndex {
    index: Index,
    reader: IndexReader,
    writer: Mutex<Option<IndexWriter<TantivyDocument>>>,
    writer_options: WriterOptions,
    parser: Parser,
    key: Field,
    text: Field,
    hash: Field,
    /// The watermark of the last commit, cached so that `watermark()` does not read meta.json.
    watermark: AtomicU64,
    /// The files of an index held in memory ([`FullTextIndex::save_copy`] writes them out).
    ram: Option<RamDirectory>,
}

/// `path` with `suffix` appended to its last component.
fn suffixed(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    s.into()
}

fn schema_for(parser: Parser) -> (Schema, Field, Field) {
    let mut builder = Schema::builder();
    // Indexed so that deletes by key work; fast so that collectors read keys without a doc store.
    let key = builder.add_u64_field(KEY_FIELD, INDEXED | FAST);
    // Frequencies and field norms are all BM25 needs; FTS_MATCH_WORD has no phrase search, so no
    // positions. Nothing is stored: the row itself lives in the KV.
    let indexing = TextFieldIndexing::default()
        .set_tokenizer(&parser.tokenizer_name())
        .set_index_option(IndexRecordOption::WithFreqs)
        .set_fieldnorms(true);
    let text = builder.add_text_field(
        TEXT_FIELD,
        TextOptions::default().set_indexing_options(indexing),
    );
    builder.add_u64_field(HASH_FIELD, FAST);
    (builder.build(), key, text)
}

fn parse_payload(payload: Option<&str>, path: &str) -> Result<u64> {
    match payload {
        None => Ok(0),
        Some(p) => p
            .strip_prefix(PAYLOAD_PREFIX)
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| FullTextError::NotOurIndex {
                path: path.to_string(),
                why: format!("unexpected commit payload {p:?}"),
            }),
    }
}

/// The parser recorded in an index's schema, if the schema is ours.
fn stored_parser_of(index: &Index, path: &str) -> Result<Parser> {
    let not_ours = |why: &str| FullTextError::NotOurIndex {
        path: path.to_string(),
        why: why.to_string(),
    };
    let schema = index.schema();
    let key = schema
        .get_field(KEY_FIELD)
        .map_err(|_| not_ours("no key field"))?;
    let text = schema
        .get_field(TEXT_FIELD)
        .map_err(|_| not_ours("no text field"))?;
    let tokenizer = match schema.get_field_entry(text).field_type() {
        tantivy::schema::FieldType::Str(options) => options
            .get_indexing_options()
            .map(|i| i.tokenizer().to_string())
            .ok_or_else(|| not_ours("text field is not indexed"))?,
        _ => return Err(not_ours("text field is not a text field")),
    };
    let parser = Parser::from_tokenizer_name(&tokenizer)
        .ok_or_else(|| not_ours(&format!("unknown tokenizer {tokenizer:?}")))?;
    // Beyond the tokenizer, the schema must be exactly the one we would build today.
    let (expected, _, _) = schema_for(parser);
    if schema != expected || key != expected.get_field(KEY_FIELD).expect("key field") {
        return Err(not_ours("schema differs from this version's"));
    }
    Ok(parser)
}

impl FullTextIndex {
    /// A fresh index held in memory only (tests, temporary tables). It starts empty at watermark 0.
    pub fn in_ram(parser: Parser) -> Result<FullTextIndex> {
        let (schema, _, _) = schema_for(parser);
        let ram = RamDirectory::create();
        let index = Index::create(ram.clone(), schema, IndexSettings::default())?;
        let mut me = Self::from_index(index, parser, WriterOptions::default(), "<in memory>")?;
        me.ram = Some(ram);
        Ok(me)
    }

    /// Writes the committed state of an index held in memory to `dir` (replacing what is there,
    /// atomically: a crash leaves the old copy or the new one). Changes wait meanwhile.
    pub fn save_copy(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        let Some(ram) = &self.ram else { return Ok(()) };
        let (tmp, old) = (suffixed(dir, ".tmp"), suffixed(dir, ".old"));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp)?;
        {
            // The writer lock keeps merges and commits from changing the files under the copy.
            let _w = self.writer.lock().map_err(|_| FullTextError::Poisoned)?;
            let out = MmapDirectory::open(&tmp).map_err(tantivy::TantivyError::from)?;
            ram.persist(&out)?;
        }
        for f in std::fs::read_dir(&tmp)?.flatten() {
            std::fs::File::open(f.path())?.sync_all()?;
        }
        std::fs::File::open(&tmp)?.sync_all()?;
        let _ = std::fs::remove_dir_all(&old);
        if dir.exists() {
            std::fs::rename(dir, &old)?;
        }
        std::fs::rename(&tmp, dir)?;
        let _ = std::fs::remove_dir_all(&old);
        if let Some(parent) = dir.parent() {
            std::fs::File::open(parent)?.sync_all()?;
        }
        Ok(())
    }

    /// Reads a copy written by [`FullTextIndex::save_copy`] into memory (`dir`, or the previous
    /// copy if a save was cut short). Errors when there is none or it is not of `parser`.
    pub fn load_copy(dir: impl AsRef<Path>, parser: Parser) -> Result<FullTextIndex> {
        let dir = dir.as_ref();
        let src = if dir.exists() { dir.to_path_buf() } else { suffixed(dir, ".old") };
        let ram = RamDirectory::create();
        for f in std::fs::read_dir(&src)?.flatten() {
            let name = f.file_name();
            let name = name.to_string_lossy();
            // Lock files belong to the process that wrote the copy.
            if name.ends_with(".lock") {
                continue;
            }
            ram.atomic_write(Path::new(name.as_ref()), &std::fs::read(f.path())?)?;
        }
        let index = Index::open(ram.clone())?;
        let shown = src.display().to_string();
        let stored = stored_parser_of(&index, &shown)?;
        if stored != parser {
            return Err(FullTextError::ParserMismatch { path: shown, stored, requested: parser });
        }
        let mut me = Self::from_index(index, parser, WriterOptions::default(), &shown)?;
        me.ram = Some(ram);
        Ok(me)
    }

    /// Every committed row's key and [`text_hash`].
    pub fn key_hashes(&self) -> Result<HashMap<u64, u64>> {
        let searcher = self.reader.searcher();
        let mut out = HashMap::with_capacity(searcher.num_docs() as usize);
        for segment in searcher.segment_readers() {
            let keys = segment.fast_fields().u64(KEY_FIELD)?;
            let hashes = segment.fast_fields().u64(HASH_FIELD)?;
            let alive = segment.alive_bitset();
            for doc in 0..segment.max_doc() {
                if alive.is_some_and(|a| !a.is_alive(doc)) {
                    continue;
                }
                if let (Some(k), Some(h)) = (keys.first(doc), hashes.first(doc)) {
                    out.insert(k, h);
                }
            }
        }
        Ok(out)
    }

    /// Opens the index in `dir`, or creates an empty one (watermark 0) if `dir` holds none; the
    /// directory is created if missing. An existing index built with another parser is an error
    /// ([`FullTextError::ParserMismatch`]): the caller rebuilds it.
    pub fn open_or_create(dir: impl AsRef<Path>, parser: Parser) -> Result<FullTextIndex> {
        Self::open_or_create_with(dir, parser, WriterOptions::default())
    }

    /// [`FullTextIndex::open_or_create`] with explicit writer resources.
    pub fn open_or_create_with(
        dir: impl AsRef<Path>,
        parser: Parser,
        options: WriterOptions,
    ) -> Result<FullTextIndex> {
        let path = dir.as_ref();
        let shown = path.display().to_string();
        std::fs::create_dir_all(path)?;
        let directory = MmapDirectory::open(path).map_err(tantivy::TantivyError::from)?;
        let index = if Index::exists(&directory).map_err(tantivy::TantivyError::from)? {
            let index = Index::open(directory)?;
            let stored = stored_parser_of(&index, &shown)?;
            if stored != parser {
                return Err(FullTextError::ParserMismatch {
                    path: shown,
                    stored,
                    requested: parser,
                });
            }
            index
        } else {
            let (schema, _, _) = schema_for(parser);
            Index::create(directory, schema, IndexSettings::default())?
        };
        Self::from_index(index, parser, options, &shown)
    }

    /// Opens an existing index with whatever parser built it.
    pub fn open(dir: impl AsRef<Path>) -> Result<FullTextIndex> {
        let path = dir.as_ref();
        let shown = path.display().to_string();
        let index = Index::open_in_dir(path)?;
        let parser = stored_parser_of(&index, &shown)?;
        Self::from_index(index, parser, WriterOptions::default(), &shown)
    }

    fn from_index(
        mut index: Index,
        parser: Parser,
        options: WriterOptions,
        path: &str,
    ) -> Result<FullTextIndex> {
        index
            .tokenizers()
            .register(&parser.tokenizer_name(), EmbedbTokenizer::new(parser));
        // Searches run on the caller's thread; parallelism comes from concurrent queries.
        index.set_executor(tantivy::Executor::single_thread());
        let schema = index.schema();
        let key = schema.get_field(KEY_FIELD)?;
        let text = schema.get_field(TEXT_FIELD)?;
        let hash = schema.get_field(HASH_FIELD)?;
        let watermark = parse_payload(index.load_metas()?.payload.as_deref(), path)?;
        // Manual: the reader moves only when `commit` reloads it, so a search never sees a
        // half-published state and always sees the commit that just returned.
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(FullTextIndex {
            index,
            reader,
            writer: Mutex::new(None),
            writer_options: options,
            parser,
            key,
            text,
            hash,
            watermark: AtomicU64::new(watermark),
            ram: None,
        })
    }

    /// The parser this index analyses text with.
    pub fn parser(&self) -> Parser {
        self.parser
    }

    /// The writer, created on first use. Takes the caller's lock guard so that every writer
    /// operation runs under the one lock.
    fn writer_in<'g>(
        &self,
        slot: &'g mut Option<IndexWriter<TantivyDocument>>,
    ) -> Result<&'g mut IndexWriter<TantivyDocument>> {
        if slot.is_none() {
            let o = self.writer_options;
            let options = IndexWriterOptions::builder()
                .num_worker_threads(o.threads.max(1))
                .memory_budget_per_thread(o.memory_per_thread.max(15_000_000))
                .num_merge_threads(o.merge_threads.max(1))
                .build();
            *slot = Some(self.index.writer_with_options(options)?);
        }
        Ok(slot.as_mut().expect("writer just created"))
    }

    /// Runs `f` with the writer under the writer lock.
    fn with_writer<T>(
        &self,
        f: impl FnOnce(&mut IndexWriter<TantivyDocument>) -> Result<T>,
    ) -> Result<T> {
        let mut guard = self.writer.lock().map_err(|_| FullTextError::Poisoned)?;
        f(self.writer_in(&mut guard)?)
    }

    /// Stages "row `key` now has `text`": replaces whatever the row had; `None` (SQL NULL) removes
    /// it. Visible after [`FullTextIndex::commit`].
    pub fn upsert(&self, key: u64, text: Option<&str>) -> Result<()> {
        self.with_writer(|w| {
            w.delete_term(Term::from_field_u64(self.key, key));
            if let Some(text) = text {
                let mut doc = TantivyDocument::default();
                doc.add_u64(self.key, key);
                doc.add_text(self.text, text);
                doc.add_u64(self.hash, text_hash(text));
                w.add_document(doc)?;
            }
            Ok(())
        })
    }

    /// Stages the removal of row `key` (a no-op if it is absent).
    pub fn delete(&self, key: u64) -> Result<()> {
        self.with_writer(|w| {
            w.delete_term(Term::from_field_u64(self.key, key));
            Ok(())
        })
    }

    /// Stages the removal of every row, including rows staged before this call (TRUNCATE, or the
    /// start of a rebuild). Rows upserted after it are kept.
    pub fn clear(&self) -> Result<()> {
        self.with_writer(|w| {
            w.delete_query(Box::new(AllQuery))?;
            Ok(())
        })
    }

    /// Drops every change staged since the last commit.
    pub fn rollback(&self) -> Result<()> {
        let mut guard = self.writer.lock().map_err(|_| FullTextError::Poisoned)?;
        if let Some(writer) = guard.as_mut() {
            if let Err(e) = writer.rollback() {
                *guard = None;
                return Err(e.into());
            }
        }
        Ok(())
    }

    /// Publishes the staged changes durably with `watermark` and makes them visible to searches
    /// before returning. If it fails, the staged changes are gone and [`FullTextIndex::watermark`]
    /// still reports the previous commit, so the caller replays from there.
    pub fn commit(&self, watermark: u64) -> Result<()> {
        let mut guard = self.writer.lock().map_err(|_| FullTextError::Poisoned)?;
        let writer = self.writer_in(&mut guard)?;
        let result = writer.prepare_commit().and_then(|mut prepared| {
            prepared.set_payload(&format!("{PAYLOAD_PREFIX}{watermark}"));
            prepared.commit()
        });
        if let Err(e) = result {
            // A writer whose commit failed is in an unknown state; a fresh one starts clean from
            // the last good commit.
            *guard = None;
            return Err(e.into());
        }
        self.watermark.store(watermark, Ordering::SeqCst);
        // Reload while still holding the writer lock, so that commits and reloads cannot reorder.
        self.reader.reload()?;
        Ok(())
    }

    /// The watermark passed to the last successful [`FullTextIndex::commit`] (0 for a new index).
    pub fn watermark(&self) -> u64 {
        self.watermark.load(Ordering::SeqCst)
    }

    /// Committed rows.
    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Whether no rows are committed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Merges all committed segments into one, dropping deleted rows and making BM25 statistics
    /// exact. Costly on big indexes; a maintenance operation, not part of a statement.
    pub fn compact(&self) -> Result<()> {
        let mut guard = self.writer.lock().map_err(|_| FullTextError::Poisoned)?;
        let ids = self.index.searchable_segment_ids()?;
        if ids.len() <= 1
            && self
                .reader
                .searcher()
                .segment_readers()
                .iter()
                .all(|s| !s.has_deletes())
        {
            return Ok(());
        }
        let writer = self.writer_in(&mut guard)?;
        writer.merge(&ids).wait()?;
        self.reader.reload()?;
        Ok(())
    }

    /// The query as an OR of BM25 term queries and its number of terms, or `None` when it has no
    /// terms (then nothing matches, like `FTS_MATCH_WORD('', col)`).
    fn build_query(&self, query: &str) -> Option<(Box<dyn Query>, usize)> {
        let terms = query_terms(self.parser, query);
        if terms.is_empty() {
            return None;
        }
        let clauses = terms
            .iter()
            .map(|t| {
                let q: Box<dyn Query> = Box::new(TermQuery::new(
                    Term::from_field_text(self.text, t),
                    IndexRecordOption::WithFreqs,
                ));
                (Occur::Should, q)
            })
            .collect();
        Some((Box::new(BooleanQuery::new(clauses)), terms.len()))
    }

    /// The `k` rows with the highest BM25 score for `query` (only rows that match at least one
    /// term), best first; equal scores are ordered by key.
    pub fn search(&self, query: &str, k: usize) -> Result<Vec<(u64, f32)>> {
        let Some((q, terms)) = self.build_query(query) else {
            return Ok(Vec::new());
        };
        if k == 0 {
            return Ok(Vec::new());
        }
        let searcher = self.reader.searcher();
        if terms > PRUNED_TOP_K_MAX_TERMS {
            // Many-term queries (n-grams, long CJK text) make block-max WAND juggle so many posting
            // lists that visiting every match with a bounded heap is faster.
            return Ok(searcher.search(&*q, &TopKCollector { k })?);
        }
        // Few terms: tantivy's top-k skips blocks that cannot reach the current k-th score.
        let hits = searcher.search(&*q, &TopDocs::with_limit(k).order_by_score())?;
        let mut out = Vec::with_capacity(hits.len());
        // Keys come from the fast column of each hit's segment; open each segment's column once.
        let mut columns: HashMap<SegmentOrdinal, tantivy::columnar::Column<u64>> = HashMap::new();
        for (
            score,
            DocAddress {
                segment_ord,
                doc_id,
            },
        ) in hits
        {
            let column = match columns.entry(segment_ord) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => v.insert(
                    searcher
                        .segment_reader(segment_ord)
                        .fast_fields()
                        .u64(KEY_FIELD)?,
                ),
            };
            if let Some(key) = column.first(doc_id) {
                out.push((key, score));
            }
        }
        out.sort_by(|a, b| better_first(*a, *b));
        Ok(out)
    }

    /// Every row matching `query`, with its BM25 score (> 0). Rows absent from the map do not match
    /// (`FTS_MATCH_WORD` is 0 for them).
    pub fn matching(&self, query: &str) -> Result<HashMap<u64, f32>> {
        let Some((q, _)) = self.build_query(query) else {
            return Ok(HashMap::new());
        };
        let searcher = self.reader.searcher();
        let pairs = searcher.search(&*q, &KeyScoreCollector { key_filter: None })?;
        Ok(pairs.into_iter().collect())
    }

    /// The BM25 score of each of `keys` for `query`, in the same order; 0.0 for rows that do not
    /// match or are not in the index.
    pub fn score_keys(&self, query: &str, keys: &[u64]) -> Result<Vec<f32>> {
        let Some((q, _)) = self.build_query(query) else {
            return Ok(vec![0.0; keys.len()]);
        };
        let searcher = self.reader.searcher();
        let wanted: HashSet<u64> = keys.iter().copied().collect();
        let pairs = searcher.search(
            &*q,
            &KeyScoreCollector {
                key_filter: Some(Arc::new(wanted)),
            },
        )?;
        let scores: HashMap<u64, f32> = pairs.into_iter().collect();
        Ok(keys
            .iter()
            .map(|k| scores.get(k).copied().unwrap_or(0.0))
            .collect())
    }

    /// A searcher pinned to the current commit, for callers that need several calls to agree.
    pub fn searcher(&self) -> Searcher {
        self.reader.searcher()
    }
}

/// Above this many distinct query terms, top-k visits every match instead of using block-max
/// WAND (measured on SciFact with NGRAM(3): top-10 ran at ~170 q/s with WAND, ~1,300 q/s without).
const PRUNED_TOP_K_MAX_TERMS: usize = 16;

/// Result order: higher score first, then lower key.
fn better_first(a: (u64, f32), b: (u64, f32)) -> std::cmp::Ordering {
    b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
}

/// A (key, score) ordered so that the heap's maximum is the *worst* kept hit.
#[derive(Clone, Copy)]
struct Ranked(u64, f32);

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        better_first((self.0, self.1), (other.0, other.1))
    }
}

/// Exhaustive top-k: every match is scored, a k-sized heap keeps the best.
struct TopKCollector {
    k: usize,
}

struct TopKSegmentCollector {
    keys: tantivy::columnar::Column<u64>,
    k: usize,
    heap: BinaryHeap<Ranked>,
}

impl Collector for TopKCollector {
    type Fruit = Vec<(u64, f32)>;
    type Child = TopKSegmentCollector;

    fn for_segment(
        &self,
        _ord: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<Self::Child> {
        Ok(TopKSegmentCollector {
            keys: segment.fast_fields().u64(KEY_FIELD)?,
            k: self.k,
            heap: BinaryHeap::with_capacity(self.k + 1),
        })
    }

    fn requires_scoring(&self) -> bool {
        true
    }

    fn merge_fruits(&self, fruits: Vec<Vec<(u64, f32)>>) -> tantivy::Result<Self::Fruit> {
        let mut all: Vec<(u64, f32)> = fruits.into_iter().flatten().collect();
        all.sort_by(|a, b| better_first(*a, *b));
        all.truncate(self.k);
        Ok(all)
    }
}

impl SegmentCollector for TopKSegmentCollector {
    type Fruit = Vec<(u64, f32)>;

    fn collect(&mut self, doc: DocId, score: Score) {
        let Some(key) = self.keys.first(doc) else {
            return;
        };
        let hit = Ranked(key, score);
        if self.heap.len() < self.k {
            self.heap.push(hit);
        } else if let Some(mut worst) = self.heap.peek_mut() {
            if hit < *worst {
                *worst = hit;
            }
        }
    }

    fn harvest(self) -> Self::Fruit {
        self.heap.into_iter().map(|Ranked(k, s)| (k, s)).collect()
    }
}

/// Collects (key, score) for every matching live row, optionally only for some keys.
struct KeyScoreCollector {
    key_filter: Option<Arc<HashSet<u64>>>,
}

struct KeyScoreSegmentCollector {
    keys: tantivy::columnar::Column<u64>,
    filter: Option<Arc<HashSet<u64>>>,
    out: Vec<(u64, f32)>,
}

impl Collector for KeyScoreCollector {
    type Fruit = Vec<(u64, f32)>;
    type Child = KeyScoreSegmentCollector;

    fn for_segment(
        &self,
        _ord: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<Self::Child> {
        Ok(KeyScoreSegmentCollector {
            keys: segment.fast_fields().u64(KEY_FIELD)?,
            // Segment collectors must be 'static; the filter is shared, not copied per segment.
            filter: self.key_filter.clone(),
            out: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        true
    }

    fn merge_fruits(&self, fruits: Vec<Vec<(u64, f32)>>) -> tantivy::Result<Self::Fruit> {
        Ok(fruits.into_iter().flatten().collect())
    }
}

impl SegmentCollector for KeyScoreSegmentCollector {
    type Fruit = Vec<(u64, f32)>;

    fn collect(&mut self, doc: DocId, score: Score) {
        if let Some(key) = self.keys.first(doc) {
            if self.filter.as_ref().is_none_or(|f| f.contains(&key)) {
                self.out.push((key, score));
            }
        }
    }

    fn harvest(self) -> Self::Fruit {
        self.out
    }
}

#[cfg(test)]
mod saved_copies {
    use super::*;

    #[test]
    fn a_saved_copy_loads_back_with_its_text_hashes() {
        let ix = FullTextIndex::in_ram(Parser::Standard).unwrap();
        ix.upsert(1, Some("red fox")).unwrap();
        ix.upsert(2, Some("blue whale")).unwrap();
        ix.commit(0).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t1_i1.fts");
        ix.save_copy(&path).unwrap();
        // A second save replaces the first; uncommitted changes are not in it.
        ix.upsert(3, Some("grey fox")).unwrap();
        ix.delete(2).unwrap();
        ix.commit(0).unwrap();
        ix.upsert(4, Some("staged only")).unwrap();
        ix.save_copy(&path).unwrap();
        let back = FullTextIndex::load_copy(&path, Parser::Standard).unwrap();
        assert_eq!(back.len(), 2);
        let hashes = back.key_hashes().unwrap();
        assert_eq!(hashes.len(), 2);
        assert_eq!(hashes.get(&3), Some(&text_hash("grey fox")));
        assert!(!hashes.contains_key(&2));
        let keys: HashSet<u64> = back.search("fox", 5).unwrap().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, HashSet::from([1, 3]));
        // It goes on taking changes in memory.
        back.upsert(5, Some("fox cub")).unwrap();
        back.commit(0).unwrap();
        assert_eq!(back.search("cub", 5).unwrap().len(), 1);
        assert!(FullTextIndex::load_copy(&path, Parser::Multilingual).is_err());
        assert!(FullTextIndex::load_copy(dir.path().join("none.fts"), Parser::Standard).is_err());
    }
}
