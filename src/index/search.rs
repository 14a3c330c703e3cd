//! The live search indexes (FULLTEXT and HNSW vector indexes) and how they follow the data.
//!
//! The table rows in the KV are the truth; a search index is derived from them and can always be
//! rebuilt. [`SearchIndexes`] keeps one entry per (table, index) and follows every change:
//!
//! 1. It is the store's [`CommitObserver`]: each committed write batch passes through
//!    [`SearchIndexes::committed`] while the commit lock is held. Row keys of indexed tables are
//!    decoded (`t{id}_r{handle}` → the row image, or a deletion) and applied to each of the table's
//!    indexes, which publish them before the commit returns. A statement that starts after a
//!    commit therefore searches an index that already holds it; rolled-back and conflicting
//!    transactions never reach an index.
//! 2. After DDL (and at start-up) [`SearchIndexes::sync`] compares the entries with the catalog:
//!    new indexes are created and built from a table scan on a background thread, dropped tables,
//!    truncated tables (which get a new table id) and dropped indexes lose theirs.
//! 3. A build registers its entry first and then scans a snapshot taken after that, so every row
//!    is either in the snapshot or arrives through `committed`. A row that `committed` touched
//!    during the build is newer than the snapshot's copy and is not overwritten by it.
//!
//! Full-text searches wait for a build in progress (they would otherwise miss rows); vector
//! searches wait only for small builds (milliseconds) and otherwise answer with the exact scan
//! until the graph is ready (`ann`). Progress is visible in `information_schema.TIFLASH_INDEXES`
//! and the log.
//!
//! Every lookup first re-syncs if the observer saw a table definition committed since the last
//! sync, so an index added by any DDL path is found even if that path did not call `sync`.
//!
//! A vector index ([`VectorEntry`]) holds each row's vector in an [`AnnIndex`] keyed by the row
//! handle, and the version of the last commit that changed each row since the index was built
//! (a commit's version is the start version of the transactions that first see it). A search
//! whose snapshot is at least that version may take the row's vector from the graph instead of
//! reading the row (`ann`'s index-only search). Rows without a usable vector stay out of the
//! graph but are remembered, because an exact `ORDER BY VEC_…_DISTANCE(…) LIMIT k` can return
//! them: `nulls` (NULL vector, or all zeros under cosine, whose distance is NULL and sorts first)
//! and `others` (a real distance the graph cannot hold, e.g. the one handle that maps onto
//! usearch's reserved key).
//!
//! Statements find these indexes through their transaction ([`SearchIndexes::of_txn`]): `sync`
//! writes a per-process instance token into the store, and a registry maps the token back to
//! this object. (DataFusion hands a table scan only its transaction, not the engine.)

// The ANN scan that uses these indexes (declared here: this file is the vector index's home,
// and `index/mod.rs` belongs to the DDL side).
#[path = "ann.rs"]
pub mod ann;
// Vector indexes checkpointed while the server runs, and reconciled with the table at start.
#[path = "segments.rs"]
mod segments;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use embedb_ann::{AnnIndex, Metric};
use embedb_fulltext::{FullTextIndex, Parser};
use embedb_storage::{codec, CommitObserver, Datum, Store, Txn};
use parking_lot::{Condvar, Mutex, RwLock};

use crate::error::{Result, SqlError};
use crate::sql::catalog::{Catalog, IndexKind, TableInfo};
use crate::sql::types::SqlType;
use crate::storage::table;

/// Rows per step of a build (committed to the index after each, for progress).
const BUILD_CHUNK: usize = 2048;

/// Queries wait for the build of a vector index over at most this many rows (milliseconds);
/// larger builds are not waited for.
const SMALL_BUILD_ROWS: u64 = 10_000;

/// Vectors inserted per hold of a vector index's build lock. The observer (inside the commit
/// lock) waits for that lock, so small steps keep commits flowing during a build. Not below
/// 512: `AnnIndex::add_batch` gives each thread at least 256 rows, and 256-row steps built on
/// one thread, twice as slowly on two cores. (At 200k clustered 128-d rows that one-thread
/// graph also had lower recall@10 at ef 128, 0.964 against 0.977–0.997 for two-thread builds.)
const VECTOR_BUILD_STEP: usize = 1024;

/// Changed rows a vector index remembers before it first drops those no reader needs.
const PRUNE_CHANGED_FROM: usize = 4096;

/// Filters whose sampled selectivity a vector index keeps (it forgets all when full).
const SELECTIVITY_KEPT: usize = 256;

/// Catalog keys of table definitions (`sql::catalog`).
const TABLE_DEF_PREFIX: &[u8] = b"mTB:";

/// Store key of the instance token that leads a transaction back to its `SearchIndexes`.
const INSTANCE_KEY: &[u8] = b"mSI:instance";

/// Store key of the marker a clean shutdown leaves ([`SearchIndexes::save_all`]): the token the
/// saved vector index files carry. Start-up consumes it before anything can commit, so files are
/// loaded only when nothing changed since they were written; after a crash the indexes rebuild.
const SAVED_KEY: &[u8] = b"mSI:saved";

/// Live `SearchIndexes` by instance token (see [`SearchIndexes::of_txn`]).
static INSTANCES: Mutex<Vec<(u64, Weak<SearchIndexes>)>> = Mutex::new(Vec::new());

/// (index version, query, scores by row) of the last full-text query.
type ScoreCache = (u64, String, Arc<HashMap<u64, f32>>);

/// Decoded committed changes of one table: (handle, new row or None if deleted).
type TableChanges = (Arc<TableSearch>, Vec<(i64, Option<table::Row>)>);

/// Rows changed since a vector index was built, by the version of their last commit (see
/// [`VectorEntry::unchanged_since`]). An entry at or below every live transaction's start (the
/// horizon) tells no reader anything the build's version does not, so it is dropped once the
/// map has doubled since the last pruning.
#[derive(Default)]
struct Changed {
    rows: HashMap<i64, u64>,
    prune_at: usize,
}

impl Changed {
    fn prune(&mut self, horizon: u64, base: u64) {
        if self.rows.len() < self.prune_at.max(PRUNE_CHANGED_FROM) {
            return;
        }
        // Only once the build's own snapshot is visible to all (else a dropped row would be
        // judged by a base version newer than some reader).
        if base <= horizon {
            self.rows.retain(|_, v| *v > horizon);
            self.prune_at = self.rows.len().saturating_mul(2);
        }
    }
}

/// One FULLTEXT index.
pub struct FulltextEntry {
    pub table_id: i64,
    pub index_id: i64,
    pub db: String,
    pub table: String,
    pub index_name: String,
    pub column: String,
    column_pos: usize,
    pub index: FullTextIndex,
    build: Mutex<Build>,
    built: Condvar,
    /// Bumped on every published change: keys the per-query score cache.
    version: AtomicU64,
    scores: Mutex<Option<ScoreCache>>,
    /// When it changed and was saved (`segments`).
    saves: segments::SaveClock,
}

#[derive(Default)]
struct Build {
    running: bool,
    failed: Option<String>,
    /// Rows the observer changed while the build ran: newer than the build's snapshot.
    touched: HashSet<i64>,
    rows_indexed: u64,
    rows_total: u64,
    /// `rows_total` is known.
    counted: bool,
}

/// Progress for `information_schema.TIFLASH_INDEXES`.
pub struct Progress {
    pub rows_indexed: u64,
    pub rows_not_indexed: u64,
    pub error: Option<String>,
}

impl FulltextEntry {
    fn text_of(&self, row: &table::Row) -> Option<String> {
        match row.values.get(self.column_pos)? {
            Datum::Null => None,
            Datum::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
            // FULLTEXT indexes are on string columns only.
            _ => None,
        }
    }

    /// Apply one committed change (under the commit lock); `row` None = deleted.
    fn apply(&self, handle: i64, row: Option<&table::Row>) -> std::result::Result<(), embedb_fulltext::FullTextError> {
        let mut b = self.build.lock();
        if b.running {
            b.touched.insert(handle);
        }
        self.saves.changed();
        self.index.upsert(handle as u64, row.and_then(|r| self.text_of(r)).as_deref())
    }

    /// A build (or reconcile) is running.
    fn building(&self) -> bool {
        self.build.lock().running
    }

    fn publish(&self) {
        if let Err(e) = self.index.commit(0) {
            tracing::error!("full-text index {}.{}.{}: commit failed: {e}", self.db, self.table, self.index_name);
        }
        self.version.fetch_add(1, Ordering::SeqCst);
    }

    /// Wait until a build in progress has finished (searches before that would miss rows).
    pub fn wait_built(&self) -> Result<()> {
        let mut b = self.build.lock();
        while b.running {
            self.built.wait_for(&mut b, Duration::from_millis(200));
        }
        match &b.failed {
            Some(e) => Err(SqlError::other(format!("full-text index '{}' could not be built: {e}", self.index_name))),
            None => Ok(()),
        }
    }

    pub fn progress(&self) -> Progress {
        let b = self.build.lock();
        if b.running {
            Progress { rows_indexed: b.rows_indexed, rows_not_indexed: b.rows_total.saturating_sub(b.rows_indexed), error: b.failed.clone() }
        } else {
            Progress { rows_indexed: self.index.len(), rows_not_indexed: 0, error: b.failed.clone() }
        }
    }

    /// BM25 scores of every row matching `query` (cached per index version and query: a statement
    /// evaluates `FTS_MATCH_WORD` batch by batch).
    pub fn scores(&self, query: &str) -> Result<Arc<HashMap<u64, f32>>> {
        self.wait_built()?;
        let v = self.version.load(Ordering::SeqCst);
        if let Some((cv, cq, s)) = &*self.scores.lock() {
            if *cv == v && cq == query {
                return Ok(s.clone());
            }
        }
        let s = Arc::new(self.index.matching(query).map_err(|e| SqlError::other(e.to_string()))?);
        *self.scores.lock() = Some((v, query.to_string(), s.clone()));
        Ok(s)
    }
}

/// The catalog's metric name (`cosine` | `l2`) as an index metric.
pub fn metric_of(name: &str) -> Metric {
    match name {
        "l2" => Metric::L2,
        "ip" => Metric::InnerProduct,
        _ => Metric::Cosine,
    }
}

/// A row handle as an index key. Flipping the sign bit keeps the order and sends -1 (a common
/// id) away from `u64::MAX`, which usearch reserves; only `i64::MAX` lands there.
pub fn ann_key(handle: i64) -> u64 {
    (handle as u64) ^ (1 << 63)
}

pub fn ann_handle(key: u64) -> i64 {
    (key ^ (1 << 63)) as i64
}

/// Chunks of one row a chunked column's graph holds at most (`embed::chunk`): each chunk is a
/// key of its own, `chunk_key(handle, i)`, so the row's handle keeps 54 bits. A row with more
/// chunks, or a handle beyond ±2^53, stays outside the graph (searched exactly).
pub const MAX_GRAPH_CHUNKS: usize = 1 << CHUNK_BITS;
const CHUNK_BITS: u32 = 10;
const CHUNK_HANDLE_LIMIT: i64 = 1 << 53;

/// The graph key of chunk `i` of row `handle` (order-preserving in the handle, like [`ann_key`]).
pub fn chunk_key(handle: i64, i: usize) -> Option<u64> {
    let fits = (-CHUNK_HANDLE_LIMIT..CHUNK_HANDLE_LIMIT - 1).contains(&handle) && i < MAX_GRAPH_CHUNKS;
    fits.then(|| (((handle + CHUNK_HANDLE_LIMIT) as u64) << CHUNK_BITS) | i as u64)
}

pub fn chunk_handle(key: u64) -> i64 {
    (key >> CHUNK_BITS) as i64 - CHUNK_HANDLE_LIMIT
}

/// Rows of a vector index that are not in the graph (see the module doc).
#[derive(Default)]
pub struct OffGraph {
    /// Distance NULL: a NULL vector, or all zeros under cosine.
    pub nulls: BTreeSet<i64>,
    /// A real distance the graph cannot hold.
    pub others: BTreeSet<i64>,
}

/// Where one row's vector goes.
enum Slot {
    Graph(Vec<f32>),
    Null,
    Other,
}

/// One vector (HNSW) index.
pub struct VectorEntry {
    pub table_id: i64,
    pub index_id: i64,
    pub db: String,
    pub table: String,
    pub index_name: String,
    pub column: String,
    pub metric: Metric,
    column_pos: usize,
    pub index: AnnIndex,
    offgraph: RwLock<OffGraph>,
    build: Mutex<Build>,
    built: Condvar,
    /// Built without error: the graph holds every row.
    ready: AtomicBool,
    /// For each row a commit changed since the build began (or the index was loaded): the
    /// version of the last such commit, while a live transaction might be older than it.
    changed: RwLock<Changed>,
    /// The start version of the build's snapshot (0 for an index loaded from its files): the
    /// version of every graph vector not in `changed`.
    base_version: AtomicU64,
    /// Sampled selectivity of the filters of post-filtered searches, by the filters' text, with
    /// the index size it was sampled at (`ann`). Only sizes the graph read: a stale figure
    /// costs time, never rows.
    selectivity: Mutex<HashMap<String, (f64, usize)>>,
    /// When the graph changed and was checkpointed (`segments`).
    saves: segments::SaveClock,
    /// The column holds one vector per chunk of its text (`embed::chunk`): the graph holds each
    /// chunk under [`chunk_key`], and a search takes each row once, at its best chunk.
    pub chunked: bool,
}

impl VectorEntry {
    fn slot(&self, handle: i64, row: &table::Row) -> Slot {
        // `get`: this runs under the commit lock, where a panic would take the store down.
        let dims = self.index.dims();
        match row.values.get(self.column_pos).unwrap_or(&Datum::Null) {
            Datum::Null => Slot::Null,
            Datum::Vector(v) if self.metric == Metric::Cosine && v.iter().all(|&x| x == 0.0) => Slot::Null,
            Datum::Vector(v) if self.chunked => {
                let whole = !v.is_empty() && v.len() % dims == 0 && chunk_key(handle, v.len() / dims - 1).is_some();
                // A zero chunk has no cosine distance: such a row is searched exactly.
                let zero_chunk = self.metric == Metric::Cosine && v.chunks(dims).any(|c| c.iter().all(|&x| x == 0.0));
                if whole && !zero_chunk { Slot::Graph(v.clone()) } else { Slot::Other }
            }
            Datum::Vector(v) if v.len() == dims && ann_key(handle) != embedb_ann::RESERVED_KEY => Slot::Graph(v.clone()),
            _ => Slot::Other,
        }
    }

    /// The row a graph key stands for.
    pub fn handle_of(&self, key: u64) -> i64 {
        if self.chunked { chunk_handle(key) } else { ann_handle(key) }
    }

    /// The graph keys of a row's vector (one per chunk of a chunked column's value).
    fn keys_for(&self, handle: i64, vector: &[f32]) -> impl Iterator<Item = u64> {
        // (No allocation: this runs for every row of every commit, under the commit lock.)
        let chunks = if self.chunked { vector.len() / self.index.dims() } else { 0 };
        let whole = (!self.chunked).then(|| ann_key(handle));
        whole.into_iter().chain((0..chunks).filter_map(move |i| chunk_key(handle, i)))
    }

    /// Take a row out of the graph: its key, or all its chunks' keys.
    fn remove_row(&self, handle: i64) -> std::result::Result<(), embedb_ann::AnnError> {
        if !self.chunked {
            return self.index.remove(ann_key(handle)).map(|_| ());
        }
        for i in 0..MAX_GRAPH_CHUNKS {
            let Some(k) = chunk_key(handle, i) else { break };
            if !self.index.remove(k)? {
                break; // chunks are numbered from 0 without gaps
            }
        }
        Ok(())
    }

    /// The graph's copy of a row's vector (its chunks' vectors one after another), if it has one.
    pub fn graph_vector(&self, handle: i64) -> Option<Vec<f32>> {
        if !self.chunked {
            return self.index.get(ann_key(handle));
        }
        let mut out = Vec::new();
        for i in 0..MAX_GRAPH_CHUNKS {
            match chunk_key(handle, i).and_then(|k| self.index.get(k)) {
                Some(v) => out.extend(v),
                None => break,
            }
        }
        (!out.is_empty()).then_some(out)
    }

    /// Apply a commit's changes (`commit`: its version, and the horizon before which no live
    /// transaction started; under the commit lock, with the build lock held as `b`), or the
    /// build's snapshot rows (`commit` None); `None` = deleted. Vectors go in with one
    /// `add_batch` (parallel inserts).
    fn apply(&self, changes: &[(i64, Option<&table::Row>)], b: &mut Build, commit: Option<(u64, u64)>) {
        if let Some((version, horizon)) = commit {
            if b.running {
                b.touched.extend(changes.iter().map(|(h, _)| *h));
            }
            self.saves.changed();
            // Before the graph changes: a reader checks versions after reading the graph (see
            // `unchanged_since`).
            let mut changed = self.changed.write();
            for (h, _) in changes {
                changed.rows.insert(*h, version);
            }
            changed.prune(horizon, self.base_version.load(Ordering::SeqCst));
        }
        let mut off = self.offgraph.write();
        let mut keys = Vec::new();
        let mut handles = Vec::new();
        let mut vectors = Vec::new();
        for (h, row) in changes {
            off.nulls.remove(h);
            off.others.remove(h);
            let slot = row.map(|r| self.slot(*h, r));
            // A chunked row may have fewer chunks than before: its old ones all go.
            if self.chunked || !matches!(slot, Some(Slot::Graph(_))) {
                if let Err(e) = self.remove_row(*h) {
                    tracing::error!("vector index {}: cannot remove row {h}: {e}", self.index_name);
                    self.never_index_only(*h);
                }
            }
            match slot {
                None => {}
                Some(Slot::Null) => {
                    off.nulls.insert(*h);
                }
                Some(Slot::Other) => {
                    off.others.insert(*h);
                }
                Some(Slot::Graph(v)) => {
                    for k in self.keys_for(*h, &v) {
                        keys.push(k);
                        handles.push(*h);
                    }
                    vectors.extend_from_slice(&v);
                }
            }
        }
        if keys.is_empty() {
            return;
        }
        let r = if keys.len() == 1 { self.index.add(keys[0], &vectors) } else { self.index.add_batch(&keys, &vectors) };
        if let Err(e) = r {
            // A batch is validated as a whole: retry row by row so one bad vector costs one row.
            tracing::warn!("vector index {}: batch insert failed ({e}); inserting row by row", self.index_name);
            let dims = self.index.dims();
            for (i, (&k, &h)) in keys.iter().zip(&handles).enumerate() {
                if let Err(e) = self.index.add(k, &vectors[i * dims..(i + 1) * dims]) {
                    tracing::error!("vector index {}: row {h} kept out of the graph: {e}", self.index_name);
                    if self.index.remove(k).is_err() {
                        self.never_index_only(h);
                    }
                    off.others.insert(h);
                }
            }
        }
    }

    /// For each of `handles`, whether the graph's vector is the row's vector in a snapshot that
    /// started at `start` (no commit after `start` changed the row), so that the row itself
    /// need not be read. Call after reading the vectors from the graph: a commit records its
    /// version before it changes the graph, so a version at or below `start` seen here means
    /// the vector read before was not yet changed.
    pub fn unchanged_since(&self, handles: &[i64], start: u64) -> Vec<bool> {
        let base = self.base_version.load(Ordering::SeqCst);
        let changed = self.changed.read();
        handles.iter().map(|h| changed.rows.get(h).copied().unwrap_or(base) <= start).collect()
    }

    /// A graph entry that may not match its row (a failed removal): searches read the row.
    fn never_index_only(&self, handle: i64) {
        self.changed.write().rows.insert(handle, u64::MAX);
    }

    /// The selectivity sampled for `filter` while the index had about its present size.
    pub fn selectivity(&self, filter: &str) -> Option<f64> {
        let len = self.index.len();
        let kept = self.selectivity.lock();
        let &(s, at) = kept.get(filter)?;
        (len.abs_diff(at) <= at / 8).then_some(s)
    }

    pub fn remember_selectivity(&self, filter: String, s: f64) {
        let mut kept = self.selectivity.lock();
        if kept.len() >= SELECTIVITY_KEPT {
            kept.clear();
        }
        kept.insert(filter, (s, self.index.len()));
    }

    /// True when the graph holds every row (no build running or failed): searches may use it.
    pub fn ready(&self) -> bool {
        // An atomic, not the build lock: the observer holds that lock while it inserts.
        self.ready.load(Ordering::SeqCst)
    }

    /// Wait until a build in progress has finished.
    pub fn wait_built(&self) -> Result<()> {
        let mut b = self.build.lock();
        while b.running {
            self.built.wait_for(&mut b, Duration::from_millis(200));
        }
        match &b.failed {
            Some(e) => Err(SqlError::other(format!("vector index '{}' could not be built: {e}", self.index_name))),
            None => Ok(()),
        }
    }

    /// Wait at most `limit` for a build in progress over at most `SMALL_BUILD_ROWS` rows (or
    /// one that has not counted its rows yet); true when none is running any more.
    pub fn wait_small_build(&self, limit: Duration) -> bool {
        let deadline = std::time::Instant::now() + limit;
        let mut b = self.build.lock();
        while b.running && (!b.counted || b.rows_total <= SMALL_BUILD_ROWS) {
            if self.built.wait_until(&mut b, deadline).timed_out() {
                break;
            }
        }
        !b.running
    }

    pub fn progress(&self) -> Progress {
        let b = self.build.lock();
        if b.running {
            Progress { rows_indexed: b.rows_indexed, rows_not_indexed: b.rows_total.saturating_sub(b.rows_indexed), error: b.failed.clone() }
        } else {
            let off = self.offgraph.read();
            let rows = self.index.len() + off.nulls.len() + off.others.len();
            Progress { rows_indexed: rows as u64, rows_not_indexed: 0, error: b.failed.clone() }
        }
    }

    /// The rows outside the graph, read under their lock.
    pub fn offgraph(&self) -> parking_lot::RwLockReadGuard<'_, OffGraph> {
        self.offgraph.read()
    }
}

/// A table's search indexes and the table definition their rows are decoded with.
struct TableSearch {
    info: TableInfo,
    fulltext: Vec<Arc<FulltextEntry>>,
    vector: Vec<Arc<VectorEntry>>,
}

/// All live search indexes of a store.
#[derive(Default)]
pub struct SearchIndexes {
    tables: RwLock<HashMap<i64, Arc<TableSearch>>>,
    /// Set once `sync` has run (start-up); searches before that are not served from here.
    synced: AtomicBool,
    /// This instance's token in the store (0 until the first `sync`).
    token: AtomicU64,
    /// The store (from the first `sync`), for re-syncing when a query finds an index of the
    /// catalog missing here. No cycle: the store's observer only holds a `Weak` of this.
    store: Mutex<Option<Store>>,
    /// One `sync` at a time, so an older catalog view never overwrites a newer one.
    sync_lock: Mutex<()>,
    /// A table definition was committed since the last `sync` (seen by the observer): the next
    /// lookup re-syncs first, so an index added by any DDL path is found.
    catalog_changed: AtomicBool,
    /// Counts commits that touched the catalog (`m…` keys other than this registry's own):
    /// cached plans (`sql::plan_cache`) made under another count are stale.
    catalog_version: AtomicU64,
    /// Where vector indexes are saved on a clean shutdown (None: never saved, e.g. in memory).
    dir: Mutex<Option<PathBuf>>,
    /// During the first sync only: the token of a clean shutdown's saved files, if any.
    loadable: Mutex<Option<u64>>,
    /// Until the first sync is done: saved graphs are loaded only then.
    starting: AtomicBool,
    /// Called with the directory after the checkpointer saved something (a cluster's writer
    /// uploads its checkpoints beside the data).
    on_saved: Mutex<Option<Box<dyn Fn(&Path) + Send + Sync>>>,
}

/// The rows outside the graph, saved beside a vector index.
#[derive(serde::Serialize, serde::Deserialize)]
struct SavedOffGraph {
    token: u64,
    nulls: Vec<i64>,
    others: Vec<i64>,
}

/// The manifest path of a saved vector index (usearch's files and the off-graph rows sit beside
/// it, named after it).
fn saved_path(dir: &Path, table_id: i64, index_id: i64) -> PathBuf {
    dir.join(format!("t{table_id}_i{index_id}.ann"))
}

/// The directory of a full-text index's saved copy.
fn fulltext_path(dir: &Path, table_id: i64, index_id: i64) -> PathBuf {
    dir.join(format!("t{table_id}_i{index_id}.fts"))
}

fn offgraph_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".offgraph");
    PathBuf::from(p)
}

/// Write `bytes` to `path` via a fsynced temporary file and a rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// The store's observer: forwards to the `SearchIndexes` while it lives.
struct WeakObserver(Weak<SearchIndexes>);

impl CommitObserver for WeakObserver {
    fn committed(&self, version: u64, horizon: u64, writes: &[(Vec<u8>, Option<Vec<u8>>)]) {
        if let Some(s) = self.0.upgrade() {
            s.committed(version, horizon, writes);
        }
    }
}

impl CommitObserver for SearchIndexes {
    fn committed(&self, version: u64, horizon: u64, writes: &[(Vec<u8>, Option<Vec<u8>>)]) {
        if writes.iter().any(|(k, _)| k.starts_with(TABLE_DEF_PREFIX)) {
            self.catalog_changed.store(true, Ordering::SeqCst);
        }
        if writes.iter().any(|(k, _)| k.starts_with(b"m") && !k.starts_with(b"mSI:")) {
            self.catalog_version.fetch_add(1, Ordering::SeqCst);
        }
        let tables = self.tables.read();
        if tables.is_empty() {
            return;
        }
        // Decoded changes per table, in commit order (keys are unique within a batch).
        let mut changed: HashMap<i64, TableChanges> = HashMap::new();
        for (key, value) in writes {
            let Some((table_id, handle)) = codec::decode_row_key(key) else { continue };
            let Some(t) = tables.get(&table_id) else { continue };
            let row = match value {
                Some(v) => match table::decode(&t.info, handle, v) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        tracing::error!("search index: cannot decode row {handle} of {}.{}: {e}", t.info.db, t.info.name);
                        continue;
                    }
                },
                None => None,
            };
            changed.entry(table_id).or_insert_with(|| (t.clone(), Vec::new())).1.push((handle, row));
        }
        for (t, rows) in changed.values() {
            for f in &t.fulltext {
                for (handle, row) in rows {
                    if let Err(e) = f.apply(*handle, row.as_ref()) {
                        tracing::error!("full-text index {}: {e}", f.index_name);
                    }
                }
                f.publish();
            }
            if !t.vector.is_empty() {
                let refs: Vec<(i64, Option<&table::Row>)> = rows.iter().map(|(h, r)| (*h, r.as_ref())).collect();
                for v in &t.vector {
                    let mut b = v.build.lock();
                    v.apply(&refs, &mut b, Some((version, horizon)));
                }
            }
        }
    }
}

impl SearchIndexes {
    pub fn new() -> Arc<SearchIndexes> {
        let s = SearchIndexes::default();
        s.starting.store(true, Ordering::SeqCst);
        Arc::new(s)
    }

    /// The FULLTEXT index of `table_id` on `column` (lower-case key), if any.
    pub fn fulltext(&self, table_id: i64, column: &str) -> Option<Arc<FulltextEntry>> {
        self.refresh();
        let tables = self.tables.read();
        tables.get(&table_id)?.fulltext.iter().find(|f| f.column == column).cloned()
    }

    /// Every FULLTEXT index, for `information_schema`.
    pub fn all_fulltext(&self) -> Vec<Arc<FulltextEntry>> {
        self.refresh();
        self.tables.read().values().flat_map(|t| t.fulltext.iter().cloned()).collect()
    }

    /// The vector index of `table_id` on `column` (lower-case key) with `metric`, if any.
    pub fn vector(&self, table_id: i64, column: &str, metric: Metric) -> Option<Arc<VectorEntry>> {
        let tables = self.tables.read();
        tables.get(&table_id)?.vector.iter().find(|v| v.column == column && v.metric == metric).cloned()
    }

    /// Every vector index, for `information_schema`.
    pub fn all_vector(&self) -> Vec<Arc<VectorEntry>> {
        self.refresh();
        self.tables.read().values().flat_map(|t| t.vector.iter().cloned()).collect()
    }

    /// The indexes of the store `txn` belongs to: the store holds this process's token of its
    /// `SearchIndexes` (written by the first `sync`). None for a store no engine has synced.
    pub fn of_txn(txn: &Txn) -> Option<Arc<SearchIndexes>> {
        let v = txn.get(INSTANCE_KEY).ok()??;
        let token = u64::from_be_bytes(v.as_slice().try_into().ok()?);
        let mut reg = INSTANCES.lock();
        reg.retain(|(_, w)| w.strong_count() > 0);
        reg.iter().find(|(t, _)| *t == token).and_then(|(_, w)| w.upgrade())
    }

    /// Write this instance's token into the store and register it (once).
    fn register(self: &Arc<Self>, store: &Store) -> Result<()> {
        if self.token.load(Ordering::SeqCst) != 0 {
            return Ok(());
        }
        // Random, so a token an earlier process left in the store names nothing here.
        let token = rand::random::<u64>().max(1);
        let txn = store.begin()?;
        txn.put(INSTANCE_KEY.to_vec(), token.to_be_bytes().to_vec());
        txn.commit()?;
        INSTANCES.lock().push((token, Arc::downgrade(self)));
        self.token.store(token, Ordering::SeqCst);
        if self.dir.lock().is_some() {
            let txn = store.begin()?;
            let marker = txn.get(SAVED_KEY)?;
            txn.rollback();
            if let Some(v) = marker {
                // Consumed before anything else can commit: from here on, a crash rebuilds.
                store.write_outside_txn(vec![(SAVED_KEY.to_vec(), None)])?;
                *self.loadable.lock() = v.as_slice().try_into().ok().map(u64::from_be_bytes);
            }
        }
        // Keep the store for re-syncs; the observer (installed by the engine) becomes a weak
        // forwarder so that the store does not keep us alive and we do not keep it alive.
        *self.store.lock() = Some(store.clone());
        store.set_commit_observer(Arc::new(WeakObserver(Arc::downgrade(self))));
        Ok(())
    }

    /// How many commits have changed the catalog (databases, tables, indexes, global variables).
    pub fn catalog_version(&self) -> u64 {
        self.catalog_version.load(Ordering::SeqCst)
    }

    /// Re-sync if a table definition changed since the last sync; true if it ran.
    fn refresh(&self) -> bool {
        if !self.catalog_changed.load(Ordering::SeqCst) {
            return false;
        }
        let Some(store) = self.store.lock().clone() else { return false };
        match self.sync_catalog(&store) {
            Ok(()) => true,
            Err(e) => {
                tracing::error!("search indexes: re-sync failed: {}", e.message);
                false
            }
        }
    }

    /// The vector index of `info` on `column` with `metric`, for a query. The build of a small
    /// table (just created by DDL, typically) is waited for, up to a few seconds; a large build
    /// is not (the caller scans exactly meanwhile).
    pub fn vector_for(&self, info: &TableInfo, column: &str, metric: Metric) -> Option<Arc<VectorEntry>> {
        self.refresh();
        let e = self.vector(info.id, column, metric)?;
        e.wait_small_build(Duration::from_secs(5));
        Some(e)
    }

    /// Bring the entries in line with the catalog: create and start building new indexes, drop
    /// those whose table or index is gone. Called at start-up and after every DDL statement.
    pub fn sync(self: &Arc<Self>, store: &Store) -> Result<()> {
        self.register(store)?;
        let r = self.sync_catalog(store);
        // Saved files are only good for the first sync after a start.
        *self.loadable.lock() = None;
        self.starting.store(false, Ordering::SeqCst);
        r
    }

    /// Calls `f` with the index directory after each checkpoint that saved something.
    pub fn set_on_saved(&self, f: Box<dyn Fn(&Path) + Send + Sync>) {
        *self.on_saved.lock() = Some(f);
    }

    /// Save vector indexes under `dir` on a clean shutdown, and load them at the next start
    /// instead of rebuilding. Call before the first `sync`.
    pub fn set_dir(&self, dir: PathBuf) {
        *self.dir.lock() = Some(dir);
    }

    /// Clean shutdown: save every built vector index with a fresh token, then record the token
    /// in the store, all under the commit lock; commits after that are refused, so the saved
    /// files are exactly the committed state. Returns how many indexes were saved.
    pub fn save_all(&self) -> Result<usize> {
        let (Some(dir), Some(store)) = (self.dir.lock().clone(), self.store.lock().clone()) else { return Ok(0) };
        let io = |e: std::io::Error| SqlError::other(format!("saving vector indexes in {}: {e}", dir.display()));
        store.close_commits(|| -> Result<usize> {
            std::fs::create_dir_all(&dir).map_err(io)?;
            let token = rand::random::<u64>().max(1);
            let entries: Vec<Arc<VectorEntry>> = self.tables.read().values().flat_map(|t| t.vector.iter().cloned()).collect();
            let mut kept: Vec<String> = Vec::new();
            for e in entries.iter().filter(|e| e.ready()) {
                let path = saved_path(&dir, e.table_id, e.index_id);
                let started = std::time::Instant::now();
                let off = {
                    let o = e.offgraph.read();
                    SavedOffGraph { token, nulls: o.nulls.iter().copied().collect(), others: o.others.iter().copied().collect() }
                };
                let json = serde_json::to_vec(&off).map_err(|x| SqlError::other(x.to_string()))?;
                // The off-graph rows first; the index's manifest, renamed last, commits the save.
                write_atomic(&offgraph_path(&path), &json).map_err(io)?;
                e.index.save(&path, token).map_err(|x| SqlError::other(format!("saving vector index {}: {x}", e.index_name)))?;
                tracing::info!("vector index {}.{}.{} saved: {} rows in {:?}", e.db, e.table, e.index_name, e.index.len(), started.elapsed());
                kept.push(path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
            }
            // Files of indexes that are gone (or were not built) would only mislead a reader.
            for f in std::fs::read_dir(&dir).map_err(io)?.flatten() {
                let name = f.file_name().to_string_lossy().into_owned();
                if !kept.iter().any(|k| name.starts_with(k.as_str())) {
                    let _ = std::fs::remove_file(f.path());
                }
            }
            // Full-text copies are always reconciled at start; saved now, that is quick.
            let fulltext: Vec<Arc<FulltextEntry>> = self.tables.read().values().flat_map(|t| t.fulltext.iter().cloned()).collect();
            for e in fulltext.iter().filter(|e| !e.building()) {
                if let Err(x) = e.index.save_copy(fulltext_path(&dir, e.table_id, e.index_id)) {
                    tracing::warn!("full-text index {}.{}.{}: save failed: {x}", e.db, e.table, e.index_name);
                }
            }
            store.write_outside_txn(vec![(SAVED_KEY.to_vec(), Some(token.to_be_bytes().to_vec()))])?;
            Ok(kept.len())
        })
    }

    /// The saved graph of an index (at start only), if one was saved with `params`' structure:
    /// with its off-graph rows and `true` if a clean shutdown saved it (it is exact), else a
    /// checkpoint to reconcile with the table (`segments`).
    fn load_saved(&self, info: &TableInfo, index_id: i64, params: &embedb_ann::AnnParams) -> Option<(AnnIndex, OffGraph, bool)> {
        if !self.starting.load(Ordering::SeqCst) {
            return None;
        }
        let token = *self.loadable.lock();
        let path = saved_path(self.dir.lock().as_ref()?, info.id, index_id);
        let started = std::time::Instant::now();
        let (index, manifest) = match AnnIndex::load(&path, params) {
            Ok(x) => x,
            Err(e) => {
                tracing::info!("vector index {}.{}: no saved graph used ({e}); building", info.db, info.name);
                return None;
            }
        };
        let exact = token.filter(|t| *t == manifest.watermark).and_then(|t| {
            let off: SavedOffGraph = std::fs::read(offgraph_path(&path)).ok().and_then(|b| serde_json::from_slice(&b).ok())?;
            (off.token == t).then(|| OffGraph { nulls: off.nulls.into_iter().collect(), others: off.others.into_iter().collect() })
        });
        tracing::info!(
            "vector index {}.{} (id {index_id}) loaded from {}: {} rows in {:?}{}",
            info.db,
            info.name,
            path.display(),
            index.len(),
            started.elapsed(),
            if exact.is_some() { "" } else { " (a checkpoint: reconciling with the table)" }
        );
        Some(match exact {
            Some(off) => (index, off, true),
            None => (index, OffGraph::default(), false),
        })
    }

    /// The copy of a full-text index the last run saved (at start only), to reconcile.
    fn load_saved_fulltext(&self, info: &TableInfo, index_id: i64, parser: Parser) -> Option<FullTextIndex> {
        if !self.starting.load(Ordering::SeqCst) {
            return None;
        }
        let path = fulltext_path(self.dir.lock().as_ref()?, info.id, index_id);
        if !path.exists() {
            return None;
        }
        let started = std::time::Instant::now();
        match FullTextIndex::load_copy(&path, parser) {
            Ok(index) => {
                tracing::info!("full-text index {}.{} (id {index_id}) loaded from {}: {} rows in {:?}; reconciling with the table", info.db, info.name, path.display(), index.len(), started.elapsed());
                Some(index)
            }
            Err(e) => {
                tracing::info!("full-text index {}.{}: saved copy not used ({e}); building", info.db, info.name);
                None
            }
        }
    }

    fn sync_catalog(&self, store: &Store) -> Result<()> {
        let _one = self.sync_lock.lock();
        // Changes from here on are not in the catalog read below: they set the flag again.
        self.catalog_changed.store(false, Ordering::SeqCst);
        let txn = store.begin()?;
        let cat = Catalog::new(&txn);
        let mut wanted: Vec<TableInfo> = cat.every_table()?;
        wanted.retain(|t| t.indexes.iter().any(|i| matches!(i.kind, IndexKind::Fulltext { .. } | IndexKind::Vector { .. })));
        txn.rollback();
        // Builds and reconciles of the new entries, each run on a thread of its own below.
        let mut jobs: Vec<Box<dyn FnOnce() + Send>> = Vec::new();
        {
            let mut tables = self.tables.write();
            let ids: HashSet<i64> = wanted.iter().map(|t| t.id).collect();
            tables.retain(|id, _| ids.contains(id));
            for info in wanted {
                let old = tables.get(&info.id).cloned();
                let mut fulltext = Vec::new();
                let mut vector = Vec::new();
                for ix in &info.indexes {
                    if let IndexKind::Vector { metric } = &ix.kind {
                        let column = ix.columns[0].clone();
                        let Some(pos) = info.columns.iter().position(|c| c.key() == column) else { continue };
                        // Reused only while the column keeps its place: rows are decoded with
                        // the new definition (a dropped column before it shifts it: rebuild).
                        // (A model change may give the column another dimension or chunking.)
                        let SqlType::Vector(Some(dims)) = info.columns[pos].ty else { continue };
                        let chunked = info.columns[pos].is_chunked();
                        if let Some(e) = old.as_ref().and_then(|o| {
                            o.vector.iter().find(|v| {
                                v.index_id == ix.id && v.column == column && v.column_pos == pos && v.index.dims() == dims as usize && v.chunked == chunked
                            })
                        }) {
                            vector.push(e.clone());
                            continue;
                        }
                        let metric = metric_of(metric);
                        let params = super::ann_params(metric, dims as usize, &ix.comment)?;
                        // `loaded`: exact, ready now; `stale`: a checkpoint, reconciled below.
                        let (index, offgraph, loaded, stale) = match self.load_saved(&info, ix.id, &params) {
                            Some((index, off, true)) => (index, off, true, false),
                            Some((index, off, false)) => (index, off, false, true),
                            None => (AnnIndex::new(params).map_err(|e| SqlError::other(e.to_string()))?, OffGraph::default(), false, false),
                        };
                        let e = Arc::new(VectorEntry {
                            table_id: info.id,
                            index_id: ix.id,
                            db: info.db.clone(),
                            table: info.name.clone(),
                            index_name: ix.name.clone(),
                            column,
                            metric,
                            column_pos: pos,
                            index,
                            offgraph: RwLock::new(offgraph),
                            build: Mutex::new(Build { running: !loaded, ..Default::default() }),
                            built: Condvar::new(),
                            ready: AtomicBool::new(loaded),
                            changed: RwLock::new(Changed::default()),
                            base_version: AtomicU64::new(0),
                            selectivity: Mutex::new(HashMap::new()),
                            saves: segments::SaveClock::new(),
                            chunked,
                        });
                        let (e2, info2, store2) = (e.clone(), info.clone(), store.clone());
                        if stale {
                            jobs.push(Box::new(move || segments::reconcile_vector(&e2, &info2, &store2)));
                        } else if !loaded {
                            jobs.push(Box::new(move || build_vector(&e2, &info2, &store2)));
                        }
                        vector.push(e);
                        continue;
                    }
                    let IndexKind::Fulltext { parser } = &ix.kind else { continue };
                    let column = ix.columns[0].clone();
                    let Some(pos) = info.columns.iter().position(|c| c.key() == column) else { continue };
                    if let Some(e) = old.as_ref().and_then(|o| {
                        o.fulltext.iter().find(|f| f.index_id == ix.id && f.column == column && f.column_pos == pos)
                    }) {
                        fulltext.push(e.clone());
                        continue;
                    }
                    let parser = Parser::parse(parser).unwrap_or(Parser::Standard);
                    // At start, the copy saved by the last run (reconciled with the table below).
                    let saved = self.load_saved_fulltext(&info, ix.id, parser);
                    let stale = saved.is_some();
                    let index = match saved {
                        Some(index) => index,
                        None => FullTextIndex::in_ram(parser).map_err(|e| SqlError::other(e.to_string()))?,
                    };
                    let e = Arc::new(FulltextEntry {
                        table_id: info.id,
                        index_id: ix.id,
                        db: info.db.clone(),
                        table: info.name.clone(),
                        index_name: ix.name.clone(),
                        column,
                        column_pos: pos,
                        index,
                        build: Mutex::new(Build { running: true, ..Default::default() }),
                        built: Condvar::new(),
                        version: AtomicU64::new(0),
                        scores: Mutex::new(None),
                        saves: segments::SaveClock::new(),
                    });
                    let (e2, info2, store2) = (e.clone(), info.clone(), store.clone());
                    if stale {
                        jobs.push(Box::new(move || segments::reconcile_fulltext(&e2, &info2, &store2)));
                    } else {
                        jobs.push(Box::new(move || build_fulltext(&e2, &info2, &store2)));
                    }
                    fulltext.push(e);
                }
                tables.insert(info.id, Arc::new(TableSearch { info, fulltext, vector }));
            }
        }
        self.synced.store(true, Ordering::SeqCst);
        // Registered above; the snapshot each build scans is taken after that.
        for job in jobs {
            std::thread::Builder::new()
                .name("embedb-index-build".into())
                .spawn(job)
                .map_err(|e| SqlError::other(format!("cannot start an index build: {e}")))?;
        }
        Ok(())
    }
}

/// Visit a table's rows as `txn` sees them, [`BUILD_CHUNK`] at a time in key order (both builds
/// scan twice: once to count for the progress figures, once to index).
fn scan_chunks(
    txn: &embedb_storage::Txn,
    table_id: i64,
    mut f: impl FnMut(&[(Vec<u8>, Vec<u8>)]) -> Result<()>,
) -> Result<()> {
    let prefix = codec::record_prefix(table_id);
    let end = codec::prefix_end(&prefix);
    let mut start = prefix;
    loop {
        let chunk = txn.scan(&start, &end, BUILD_CHUNK, false)?;
        f(&chunk)?;
        match chunk.last() {
            Some((k, _)) if chunk.len() == BUILD_CHUNK => start = [k.as_slice(), &[0]].concat(),
            _ => return Ok(()),
        }
    }
}

fn build_fulltext(e: &FulltextEntry, info: &TableInfo, store: &Store) {
    let started = std::time::Instant::now();
    let result = (|| -> Result<u64> {
        let txn = store.begin()?;
        e.build.lock().rows_total = crate::storage::table::estimated_rows(&txn, info.id)?;
        let mut done = 0u64;
        scan_chunks(&txn, info.id, |chunk| {
            let mut b = e.build.lock();
            for (k, v) in chunk {
                let handle = codec::decode_row_key_handle(k)?;
                if b.touched.contains(&handle) {
                    continue;
                }
                let row = table::decode(info, handle, v)?;
                e.index.upsert(handle as u64, e.text_of(&row).as_deref()).map_err(|x| SqlError::other(x.to_string()))?;
            }
            done += chunk.len() as u64;
            b.rows_indexed = done;
            drop(b);
            e.publish();
            Ok(())
        })?;
        txn.rollback();
        Ok(done)
    })();
    let name = format!("full-text index {}.{}.{}", e.db, e.table, e.index_name);
    end_build(&e.build, &e.built, &name, result.map(|n| {
        // Saved once writes pause, so that a crash does not mean this build again.
        e.saves.differs();
        format!("built: {n} rows in {:?}", started.elapsed())
    }).map_err(|err| ("build failed", err.message)));
}

/// The rows of a chunk of `scan_chunks`.
fn decode_rows(info: &TableInfo, chunk: &[(Vec<u8>, Vec<u8>)]) -> Result<Vec<table::Row>> {
    chunk.iter().map(|(k, v)| table::decode(info, codec::decode_row_key_handle(k)?, v)).collect()
}

impl VectorEntry {
    /// The snapshot a build or reconcile scans: its version is the graph's base from here on,
    /// and the row count is the progress figures' total.
    fn start_pass(&self, info: &TableInfo, store: &Store) -> Result<Txn> {
        let txn = store.begin()?;
        self.base_version.store(txn.start_version(), Ordering::SeqCst);
        let total = crate::storage::table::estimated_rows(&txn, info.id)?;
        {
            let mut b = self.build.lock();
            b.rows_total = total;
            b.counted = true;
        }
        self.built.notify_all();
        Ok(txn)
    }
}

/// Fill a new vector index from a snapshot scan. Rows the observer touched meanwhile are newer
/// than the snapshot and are skipped.
fn build_vector(e: &VectorEntry, info: &TableInfo, store: &Store) {
    let started = std::time::Instant::now();
    let result = (|| -> Result<u64> {
        let txn = e.start_pass(info, store)?;
        let mut done = 0u64;
        scan_chunks(&txn, info.id, |chunk| {
            // Decode outside the build lock; only the inserts need it.
            let rows = decode_rows(info, chunk)?;
            for step in rows.chunks(VECTOR_BUILD_STEP) {
                let mut b = e.build.lock();
                let fresh: Vec<(i64, Option<&table::Row>)> =
                    step.iter().filter(|r| !b.touched.contains(&r.handle)).map(|r| (r.handle, Some(r))).collect();
                e.apply(&fresh, &mut b, None);
                done += step.len() as u64;
                b.rows_indexed = done;
            }
            Ok(())
        })?;
        txn.rollback();
        Ok(done)
    })();
    let name = format!("vector index {}.{}.{}", e.db, e.table, e.index_name);
    end_build(&e.build, &e.built, &name, result.map(|n| {
        e.ready.store(true, Ordering::SeqCst);
        // Checkpointed once writes pause, so that a crash does not mean this build again.
        e.saves.differs();
        format!("built: {n} rows ({} in the graph) in {:?}", e.index.len(), started.elapsed())
    }).map_err(|err| ("build failed", err.message)));
}

/// The end of a build or reconcile of index `name` (its outcome's message, or what failed and
/// why): a failure is kept for the searches that wait on the index; either way they wake.
fn end_build(build: &Mutex<Build>, built: &Condvar, name: &str, outcome: std::result::Result<String, (&str, String)>) {
    let mut b = build.lock();
    b.running = false;
    b.touched.clear();
    match outcome {
        Ok(done) => tracing::info!("{name} {done}"),
        Err((what, why)) => {
            tracing::error!("{name}: {what}: {why}");
            b.failed = Some(why);
        }
    }
    drop(b);
    built.notify_all();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Versions at or below the horizon go once the map is large (and doubled since the last
    /// pruning); newer ones, and rows never to be served from the graph, stay.
    #[test]
    fn changed_rows_are_pruned_below_the_horizon() {
        let mut c = Changed::default();
        for h in 1..=5000 {
            c.rows.insert(h, h as u64);
        }
        c.rows.insert(-1, u64::MAX);
        // The build's snapshot is newer than the horizon: nothing may go yet.
        c.prune(3000, 3500);
        assert_eq!(c.rows.len(), 5001);
        c.prune(3000, 10);
        assert_eq!(c.rows.len(), 2001);
        assert!(c.rows.keys().all(|&h| h > 3000 || h == -1));
        // Not doubled since: the next commits do not scan the map again.
        assert_eq!(c.prune_at, 4002);
        c.prune(5000, 10);
        assert_eq!(c.rows.len(), 2001);
        for h in 5001..=9000 {
            c.rows.insert(h, h as u64);
        }
        c.prune(8000, 10);
        assert_eq!(c.rows.len(), 1001);
    }
}
