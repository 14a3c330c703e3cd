//! The live search indexes (full-text today, HNSW next) and how they follow the data.
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
//! Searches wait for a build in progress (they would otherwise miss rows); progress is visible
//! in `information_schema.TIFLASH_INDEXES` and the log.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use embedb_fulltext::{FullTextIndex, Parser};
use embedb_storage::{codec, CommitObserver, Datum, Store};
use parking_lot::{Condvar, Mutex, RwLock};

use crate::error::{Result, SqlError};
use crate::sql::catalog::{Catalog, IndexKind, TableInfo};
use crate::storage::table;

/// Rows per step of a build (committed to the index after each, for progress).
const BUILD_CHUNK: usize = 2048;

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
    scores: Mutex<Option<(u64, String, Arc<HashMap<u64, f32>>)>>,
}

#[derive(Default)]
struct Build {
    running: bool,
    failed: Option<String>,
    /// Rows the observer changed while the build ran: newer than the build's snapshot.
    touched: HashSet<i64>,
    rows_indexed: u64,
    rows_total: u64,
}

/// Progress for `information_schema.TIFLASH_INDEXES`.
pub struct Progress {
    pub rows_indexed: u64,
    pub rows_not_indexed: u64,
    pub error: Option<String>,
}

impl FulltextEntry {
    fn text_of(&self, row: &table::Row) -> Option<String> {
        match &row.values[self.column_pos] {
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
        self.index.upsert(handle as u64, row.and_then(|r| self.text_of(r)).as_deref())
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

    /// The `k` best rows for `query`: (handle, score), best first.
    pub fn top_k(&self, query: &str, k: usize) -> Result<Vec<(i64, f32)>> {
        self.wait_built()?;
        let hits = self.index.search(query, k).map_err(|e| SqlError::other(e.to_string()))?;
        Ok(hits.into_iter().map(|(h, s)| (h as i64, s)).collect())
    }
}

/// A table's search indexes and the table definition their rows are decoded with.
struct TableSearch {
    info: TableInfo,
    fulltext: Vec<Arc<FulltextEntry>>,
}

/// All live search indexes of a store.
#[derive(Default)]
pub struct SearchIndexes {
    tables: RwLock<HashMap<i64, Arc<TableSearch>>>,
    /// Set once `sync` has run (start-up); searches before that are not served from here.
    synced: AtomicBool,
}

impl CommitObserver for SearchIndexes {
    fn committed(&self, writes: &[(Vec<u8>, Option<Vec<u8>>)]) {
        let tables = self.tables.read();
        if tables.is_empty() {
            return;
        }
        let mut touched: HashMap<i64, Arc<TableSearch>> = HashMap::new();
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
            for f in &t.fulltext {
                if let Err(e) = f.apply(handle, row.as_ref()) {
                    tracing::error!("full-text index {}: {e}", f.index_name);
                }
            }
            touched.entry(table_id).or_insert_with(|| t.clone());
        }
        for t in touched.values() {
            for f in &t.fulltext {
                f.publish();
            }
        }
    }
}

impl SearchIndexes {
    pub fn new() -> Arc<SearchIndexes> {
        Arc::new(SearchIndexes::default())
    }

    /// The FULLTEXT index of `table_id` on `column` (lower-case key), if any.
    pub fn fulltext(&self, table_id: i64, column: &str) -> Option<Arc<FulltextEntry>> {
        let tables = self.tables.read();
        tables.get(&table_id)?.fulltext.iter().find(|f| f.column == column).cloned()
    }

    /// Every FULLTEXT index, for `information_schema`.
    pub fn all_fulltext(&self) -> Vec<Arc<FulltextEntry>> {
        self.tables.read().values().flat_map(|t| t.fulltext.iter().cloned()).collect()
    }

    /// Bring the entries in line with the catalog: create and start building new indexes, drop
    /// those whose table or index is gone. Called at start-up and after every DDL statement.
    pub fn sync(self: &Arc<Self>, store: &Store) -> Result<()> {
        let txn = store.begin()?;
        let cat = Catalog::new(&txn);
        let mut wanted: Vec<TableInfo> = Vec::new();
        for db in cat.databases()? {
            for t in cat.tables(&db.name)? {
                if t.indexes.iter().any(|i| matches!(i.kind, IndexKind::Fulltext { .. })) {
                    wanted.push(t);
                }
            }
        }
        txn.rollback();
        let mut builds: Vec<(Arc<FulltextEntry>, TableInfo)> = Vec::new();
        {
            let mut tables = self.tables.write();
            let ids: HashSet<i64> = wanted.iter().map(|t| t.id).collect();
            tables.retain(|id, _| ids.contains(id));
            for info in wanted {
                let old = tables.get(&info.id).cloned();
                let mut fulltext = Vec::new();
                for ix in &info.indexes {
                    let IndexKind::Fulltext { parser } = &ix.kind else { continue };
                    let column = ix.columns[0].clone();
                    if let Some(e) = old.as_ref().and_then(|o| o.fulltext.iter().find(|f| f.index_id == ix.id && f.column == column)) {
                        fulltext.push(e.clone());
                        continue;
                    }
                    let Some(pos) = info.columns.iter().position(|c| c.key() == column) else { continue };
                    let parser = Parser::parse(parser).unwrap_or(Parser::Standard);
                    let index = FullTextIndex::in_ram(parser).map_err(|e| SqlError::other(e.to_string()))?;
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
                    });
                    builds.push((e.clone(), info.clone()));
                    fulltext.push(e);
                }
                tables.insert(info.id, Arc::new(TableSearch { info, fulltext }));
            }
        }
        self.synced.store(true, Ordering::SeqCst);
        // Registered above; the snapshot each build scans is taken after that.
        for (e, info) in builds {
            let store = store.clone();
            std::thread::Builder::new()
                .name("embedb-index-build".into())
                .spawn(move || build_fulltext(&e, &info, &store))
                .map_err(|e| SqlError::other(format!("cannot start an index build: {e}")))?;
        }
        Ok(())
    }
}

fn build_fulltext(e: &FulltextEntry, info: &TableInfo, store: &Store) {
    let started = std::time::Instant::now();
    let result = (|| -> Result<u64> {
        let txn = store.begin()?;
        let prefix = codec::record_prefix(info.id);
        let end = codec::prefix_end(&prefix);
        // An estimate for the progress figures: the row count at the snapshot.
        let mut start = prefix.clone();
        let mut total = 0u64;
        loop {
            let chunk = txn.scan(&start, &end, BUILD_CHUNK, false)?;
            total += chunk.len() as u64;
            match chunk.last() {
                Some((k, _)) if chunk.len() == BUILD_CHUNK => start = [k.as_slice(), &[0]].concat(),
                _ => break,
            }
        }
        e.build.lock().rows_total = total;
        let mut start = prefix;
        let mut done = 0u64;
        loop {
            let chunk = txn.scan(&start, &end, BUILD_CHUNK, false)?;
            {
                let mut b = e.build.lock();
                for (k, v) in &chunk {
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
            }
            match chunk.last() {
                Some((k, _)) if chunk.len() == BUILD_CHUNK => start = [k.as_slice(), &[0]].concat(),
                _ => break,
            }
        }
        txn.rollback();
        Ok(done)
    })();
    let mut b = e.build.lock();
    b.running = false;
    b.touched.clear();
    match result {
        Ok(n) => tracing::info!(
            "full-text index {}.{}.{} built: {n} rows in {:?}",
            e.db,
            e.table,
            e.index_name,
            started.elapsed()
        ),
        Err(err) => {
            tracing::error!("full-text index {}.{}.{}: build failed: {}", e.db, e.table, e.index_name, err.message);
            b.failed = Some(err.message);
        }
    }
    drop(b);
    e.built.notify_all();
}
