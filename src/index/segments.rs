//! Search indexes on disk while the server runs, so that a restart after a crash (`kill -9`, a
//! failover, a node joining a cluster) loads them instead of rebuilding them. Vector graphs are
//! described first; full-text indexes work the same way (the end of this tour).
//!
//! A clean shutdown saves every graph exactly (`SearchIndexes::save_all`) and the next start
//! uses it as is. Between shutdowns, a background checkpointer saves each graph that changed,
//! once its writes pause for [`IDLE`] (or at least every [`MAX_AGE`] while they go on): the file
//! is a graph as of some moment, not of a known commit. So a start that finds such a file
//! *reconciles* it with the table ([`reconcile_vector`]) instead of trusting it:
//!
//! 1. The graph is loaded (reading a file: seconds at a million rows) and the index starts out
//!    not ready, so searches are exact scans meanwhile, as during any build.
//! 2. One pass over a snapshot of the table compares each row's vector with the graph's copy
//!    (`AnnIndex::get`). Equal rows cost a comparison; changed, new, NULL and odd rows go
//!    through the same `apply` as a build. Rows a commit touched during the pass are the
//!    commit's business, as in a build.
//! 3. Keys in the graph that no row of the snapshot has (rows deleted after the checkpoint) are
//!    removed. The index is then exactly the snapshot plus the commits since, and ready.
//!
//! The pass reads the table once and inserts only what changed, where a rebuild inserts every
//! row into the graph: that insertion is what makes a rebuild slow (see docs/benchmarks.md).
//!
//! A save stops the index's writers while it writes (commits that touch the index wait), which
//! is why saves wait for a pause in the writes.
//!
//! Full-text indexes live in memory (tantivy's RAM directory); the checkpointer writes a copy of
//! their files to `t{table}_i{index}.fts/` ([`FullTextIndex::save_copy`]), and a start reads it
//! back into memory and reconciles it with the table by a hash of each row's text kept in the
//! index ([`reconcile_fulltext`]).
//!
//! [`FullTextIndex::save_copy`]: embedb_fulltext::FullTextIndex::save_copy

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use embedb_storage::{codec, Store};

use super::{decode_rows, end_build, fulltext_path, saved_path, scan_chunks, FulltextEntry, SearchIndexes, Slot, VectorEntry, VECTOR_BUILD_STEP};
use crate::error::Result;
use crate::sql::catalog::TableInfo;
use crate::storage::table;

/// How often the checkpointer looks at the indexes.
const CHECK_EVERY: Duration = Duration::from_secs(2);
/// A changed graph is saved once no commit has touched it for this long…
const IDLE: Duration = Duration::from_secs(3);
/// …or, while commits keep coming, once its last save is this old.
const MAX_AGE: Duration = Duration::from_secs(600);

/// Milliseconds on a clock private to this process (the checkpointer's idle and age checks).
pub(super) fn now_ms() -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

/// When an index changed and was saved: what decides that a checkpoint is due.
pub(super) struct SaveClock {
    /// Changes since the last save (0 = nothing to save).
    dirty: AtomicU64,
    last_change_ms: AtomicU64,
    last_save_ms: AtomicU64,
}

impl SaveClock {
    pub(super) fn new() -> SaveClock {
        SaveClock { dirty: AtomicU64::new(0), last_change_ms: AtomicU64::new(0), last_save_ms: AtomicU64::new(now_ms()) }
    }

    /// A commit changed the index.
    pub(super) fn changed(&self) {
        self.dirty.fetch_add(1, Ordering::SeqCst);
        self.last_change_ms.store(now_ms(), Ordering::SeqCst);
    }

    /// The index differs from its saved copy (a build or a reconcile filled it).
    pub(super) fn differs(&self) {
        self.dirty.fetch_add(1, Ordering::SeqCst);
    }

    /// Changed, and its writes paused for [`IDLE`] or its last save is [`MAX_AGE`] old.
    fn due(&self) -> bool {
        let now = now_ms();
        self.dirty.load(Ordering::SeqCst) > 0
            && (now.saturating_sub(self.last_change_ms.load(Ordering::SeqCst)) >= IDLE.as_millis() as u64
                || now.saturating_sub(self.last_save_ms.load(Ordering::SeqCst)) >= MAX_AGE.as_millis() as u64)
    }

    /// Runs `save` (the index `name`'s, giving its row count) and books the outcome, logged as
    /// `done` or `failed`; true if saved.
    fn save(&self, name: &str, (done, failed): (&str, &str), save: impl FnOnce() -> std::result::Result<u64, String>) -> bool {
        // Reset first: a change during the save makes the next one due again.
        self.dirty.store(0, Ordering::SeqCst);
        let started = Instant::now();
        match save() {
            Ok(rows) => {
                self.last_save_ms.store(now_ms(), Ordering::SeqCst);
                tracing::info!("{name} {done}: {rows} rows in {:?}", started.elapsed());
                true
            }
            Err(err) => {
                self.dirty.fetch_add(1, Ordering::SeqCst);
                tracing::warn!("{name}: {failed}: {err}");
                false
            }
        }
    }
}

impl SearchIndexes {
    /// Starts the background checkpointer (see the module docs); it ends with the indexes.
    pub fn start_checkpoints(self: &Arc<Self>) {
        let weak: Weak<SearchIndexes> = Arc::downgrade(self);
        let _ = std::thread::Builder::new().name("embedb-index-checkpoint".into()).spawn(move || loop {
            std::thread::sleep(CHECK_EVERY);
            let Some(me) = weak.upgrade() else { return };
            me.checkpoint_due();
        });
    }

    /// Saves each changed, built index whose writes paused (or whose last save is old).
    fn checkpoint_due(&self) {
        let Some(dir) = self.dir.lock().clone() else { return };
        let (fulltext, vector): (Vec<Arc<FulltextEntry>>, Vec<Arc<VectorEntry>>) = {
            let tables = self.tables.read();
            (
                tables.values().flat_map(|t| t.fulltext.iter()).filter(|e| !e.building() && e.saves.due()).cloned().collect(),
                tables.values().flat_map(|t| t.vector.iter()).filter(|e| e.ready() && e.saves.due()).cloned().collect(),
            )
        };
        if fulltext.is_empty() && vector.is_empty() {
            return;
        }
        if let Err(err) = std::fs::create_dir_all(&dir) {
            tracing::warn!("index checkpoints: {}: {err}", dir.display());
            return;
        }
        let mut saved = 0;
        for e in &fulltext {
            let name = format!("full-text index {}.{}.{}", e.db, e.table, e.index_name);
            saved += e.saves.save(&name, ("saved", "save failed"), || {
                e.index.save_copy(fulltext_path(&dir, e.table_id, e.index_id)).map(|()| e.index.len()).map_err(|x| x.to_string())
            }) as usize;
        }
        for e in &vector {
            let name = format!("vector index {}.{}.{}", e.db, e.table, e.index_name);
            // Watermark 0: a checkpoint describes no known commit; a start reconciles it.
            saved += e.saves.save(&name, ("checkpointed", "checkpoint failed"), || {
                e.index.save(saved_path(&dir, e.table_id, e.index_id), 0).map(|_| e.index.len() as u64).map_err(|x| x.to_string())
            }) as usize;
        }
        if saved > 0 {
            if let Some(f) = self.on_saved.lock().as_ref() {
                f(&dir);
            }
        }
    }
}

/// Brings a graph loaded from a checkpoint in line with the table (module docs, steps 2–3).
pub(super) fn reconcile_vector(e: &VectorEntry, info: &TableInfo, store: &Store) {
    let started = Instant::now();
    let loaded = e.index.len();
    let result = (|| -> Result<(u64, u64)> {
        let txn = e.start_pass(info, store)?;
        let mut seen: HashSet<u64> = HashSet::with_capacity(loaded);
        let (mut done, mut fixed) = (0u64, 0u64);
        scan_chunks(&txn, info.id, |chunk| {
            let rows = decode_rows(info, chunk)?;
            for step in rows.chunks(VECTOR_BUILD_STEP) {
                let mut b = e.build.lock();
                let mut changes = Vec::new();
                for r in step {
                    if b.touched.contains(&r.handle) {
                        continue;
                    }
                    if let Slot::Graph(v) = e.slot(r.handle, r) {
                        seen.extend(e.keys_for(r.handle, &v));
                        if e.graph_vector(r.handle).as_deref() == Some(v.as_slice()) {
                            continue;
                        }
                    }
                    changes.push((r.handle, Some(r)));
                }
                fixed += changes.len() as u64;
                e.apply(&changes, &mut b, None);
                done += step.len() as u64;
                b.rows_indexed = done;
            }
            Ok(())
        })?;
        // Rows deleted since the checkpoint.
        let mut b = e.build.lock();
        let mut gone: Vec<i64> = e.index.keys().into_iter().filter(|k| !seen.contains(k)).map(|k| e.handle_of(k)).filter(|h| !b.touched.contains(h)).collect();
        gone.sort_unstable();
        gone.dedup();
        fixed += gone.len() as u64;
        let gone: Vec<(i64, Option<&table::Row>)> = gone.into_iter().map(|h| (h, None)).collect();
        e.apply(&gone, &mut b, None);
        drop(b);
        txn.rollback();
        Ok((done, fixed))
    })();
    let name = format!("vector index {}.{}.{}", e.db, e.table, e.index_name);
    end_build(&e.build, &e.built, &name, result.map(|(n, fixed)| {
        e.ready.store(true, Ordering::SeqCst);
        if fixed > 0 {
            e.saves.differs();
        }
        format!("ready from its checkpoint: {n} rows checked, {fixed} brought up to date ({loaded} in the file) in {:?}", started.elapsed())
    }).map_err(|err| ("reconciling its checkpoint failed", err.message)));
}

/// Brings a full-text index loaded from its saved copy in line with the table: one pass compares
/// each row's text hash with the copy's, re-indexes what differs, and drops rows gone since.
pub(super) fn reconcile_fulltext(e: &FulltextEntry, info: &TableInfo, store: &Store) {
    let started = Instant::now();
    let result = (|| -> Result<(u64, u64)> {
        let mut saved = e.index.key_hashes().map_err(|x| crate::error::SqlError::other(x.to_string()))?;
        let loaded = saved.len();
        let txn = store.begin()?;
        e.build.lock().rows_total = table::estimated_rows(&txn, info.id)?;
        let (mut done, mut fixed) = (0u64, 0u64);
        scan_chunks(&txn, info.id, |chunk| {
            let mut b = e.build.lock();
            for (k, v) in chunk {
                let handle = codec::decode_row_key_handle(k)?;
                let key = handle as u64;
                let had = saved.remove(&key);
                if b.touched.contains(&handle) {
                    continue;
                }
                let row = table::decode(info, handle, v)?;
                let text = e.text_of(&row);
                if had.is_some() && had == text.as_deref().map(embedb_fulltext::text_hash) {
                    continue;
                }
                if had.is_none() && text.is_none() {
                    continue;
                }
                e.index.upsert(key, text.as_deref()).map_err(|x| crate::error::SqlError::other(x.to_string()))?;
                fixed += 1;
            }
            done += chunk.len() as u64;
            b.rows_indexed = done;
            Ok(())
        })?;
        // Rows deleted since the copy was saved.
        let b = e.build.lock();
        for key in saved.into_keys() {
            if !b.touched.contains(&(key as i64)) {
                e.index.delete(key).map_err(|x| crate::error::SqlError::other(x.to_string()))?;
                fixed += 1;
            }
        }
        drop(b);
        txn.rollback();
        tracing::debug!(loaded, "full-text copy reconciled");
        Ok((done, fixed))
    })();
    e.publish();
    let name = format!("full-text index {}.{}.{}", e.db, e.table, e.index_name);
    end_build(&e.build, &e.built, &name, result.map(|(n, fixed)| {
        if fixed > 0 {
            e.saves.differs();
        }
        format!("ready from its saved copy: {n} rows checked, {fixed} brought up to date in {:?}", started.elapsed())
    }).map_err(|err| ("reconciling its saved copy failed", err.message)));
}
