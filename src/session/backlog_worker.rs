//! The backlog worker: embeds the rows that async `EMBED_TEXT` columns queued (`embed::backlog`).
//!
//! One thread per server (the writer's, in a cluster). Each round it scans the pending list in
//! key order and takes up to a round's worth of entries of the first column it can serve (its
//! provider not backing off, the entries not waiting out a retry delay), embeds their texts
//! through the `Embedder` — one call per provider request's worth of texts, `embed_concurrency`
//! calls at once, so the cache answers texts seen before and a request that succeeds is kept
//! when another fails ([`embed_in_requests`]) — and writes the vectors that came back in one
//! transaction ([`store_vectors`]): each row only if its entry still
//! holds the text that was embedded, under the row's lock so a pessimistic transaction is not
//! overtaken. The commit observer then puts the rows in the vector index like any write.
//!
//! Failures are of two kinds, told apart by the provider's last HTTP status. The service failing
//! (5xx, 429, 401, a timeout, no connection) backs the provider off — 0.5 s doubling to 10 s,
//! cleared by a success — and counts against no row, however long the outage. The provider
//! refusing the input (another 4xx) shrinks the column's round to a quarter of the failed one
//! (it grows back by doubling), so a refused text ends up alone; a refusal of a lone text counts
//! against it (and delays it, 1 s doubling), and at three it moves to the failed list with its
//! error.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use embedb_storage::codec::{self, prefix_end, Datum};

use crate::embed::backlog::{self, Entry, FAILED, PENDING};
use crate::error::{Result, SqlError};
use crate::session::Engine;
use crate::sql::catalog::{Catalog, TableInfo};
use crate::sql::types::SqlType;
use crate::storage::table;

/// The most texts one round embeds (one `Embedder::embed` call, one commit).
const ROUND: usize = 512;
/// Counted failures after which a row is moved to the failed list.
const MAX_ATTEMPTS: u32 = 3;
/// The longest a provider that failed is left alone before the next try.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How often changed usage counters are stored (a crash loses at most this much counting; each
/// save is a commit, a network write in a cluster).
const USAGE_SAVE_INTERVAL: Duration = Duration::from_secs(2);
/// How often an idle worker looks for model changes whose new vectors are all made (a round
/// that embedded something looks at once).
const SWITCH_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// The per-row retry delays kept in memory are pruned above this many, of those whose delay
/// ended this long ago.
const FORGET_DELAYS_ABOVE: usize = 4096;
const FORGET_DELAYS_AFTER: Duration = Duration::from_secs(600);
/// How long an idle worker sleeps before looking again (queuing wakes it sooner).
const IDLE: Duration = Duration::from_millis(200);

pub fn start(engine: &Arc<Engine>) {
    let weak = Arc::downgrade(engine);
    let progress = engine.embedder.backlog.clone();
    let spawned = std::thread::Builder::new().name("embed-backlog".into()).spawn(move || {
        let mut state = State::default();
        let mut last_usage_save = std::time::Instant::now();
        let mut last_switch_check = std::time::Instant::now();
        while !progress.stopped() {
            let Some(engine) = weak.upgrade() else { return };
            let writer = engine.cluster.as_ref().is_none_or(|c| c.is_writer());
            let worked = writer
                && state.round(&engine).unwrap_or_else(|e| {
                    tracing::warn!("embedding backlog: {}", e.message);
                    false
                });
            if writer && (worked || last_switch_check.elapsed() >= SWITCH_CHECK_INTERVAL) {
                switch_model_changes(&engine);
                last_switch_check = std::time::Instant::now();
            }
            if writer && last_usage_save.elapsed() >= USAGE_SAVE_INTERVAL {
                engine.embedder.save_usage();
                last_usage_save = std::time::Instant::now();
            }
            drop(engine);
            if !worked {
                progress.wait(IDLE);
            }
        }
    });
    if let Err(e) = spawned {
        tracing::error!("embedding backlog worker not started: {e}");
    }
}

#[derive(Default)]
struct State {
    providers: HashMap<String, ProviderState>,
    /// Per entry key: failures so far (in this process) and when it may be tried again.
    entries: HashMap<Vec<u8>, (u32, Instant)>,
    /// Per (table, column): texts per round.
    rounds: HashMap<(i64, u32), usize>,
}

#[derive(Default)]
struct ProviderState {
    /// No calls before this (after a failure).
    blocked_until: Option<Instant>,
    backoff: Duration,
}

/// One round's work: a column and its entries.
struct Work {
    table: TableInfo,
    /// The column's place in the row; None for a model change's shadow, whose vectors wait in
    /// the backlog for the switch (`embed::model_change`).
    position: Option<usize>,
    /// The column the vectors are for (a shadow's: the column as it will be).
    column: crate::sql::catalog::ColumnInfo,
    column_id: u32,
    /// `provider/model` as the column names it, and the provider (whose backoff applies).
    spec: String,
    provider: String,
    options: serde_json::Map<String, serde_json::Value>,
    long_text: crate::embed::LongText,
    entries: Vec<(Vec<u8>, i64, Entry)>,
}

impl State {
    /// Take and run one round. Returns whether there was work.
    fn round(&mut self, engine: &Engine) -> Result<bool> {
        let started = Instant::now();
        // Retry delays of rows long past theirs (most were stored, deleted or changed since).
        if self.entries.len() > FORGET_DELAYS_ABOVE {
            self.entries.retain(|_, (_, at)| started.saturating_duration_since(*at) < FORGET_DELAYS_AFTER);
        }
        let Some(work) = self.next_work(engine)? else { return Ok(false) };
        let picked = started.elapsed();
        let results = embed_in_requests(engine, &work);
        let embedded = started.elapsed();
        let progress = &engine.embedder.backlog;
        let col = (work.table.id, work.column_id);
        let mut done: Vec<(usize, Vec<f32>)> = Vec::new();
        let mut refused: Option<(Vec<usize>, SqlError)> = None;
        let mut outage: Option<SqlError> = None;
        for (idx, result) in results {
            match result {
                Ok(vectors) => done.extend(idx.into_iter().zip(vectors).filter_map(|(i, v)| Some((i, v?)))),
                Err(e) if e.state == crate::embed::provider::INPUT_REFUSED_STATE => refused = Some((idx, e)),
                Err(e) => outage = Some(e),
            }
        }
        for &(i, _) in &done {
            self.entries.remove(&work.entries[i].0);
        }
        // Texts whose vector came back are stored whatever happened to the others.
        let stored = store_vectors(engine, &work, &done)?;
        progress.embedded(col.0, col.1, stored);
        tracing::debug!(
            "backlog round of {}.{}: {} texts, {} stored; picked in {picked:?}, embedded by {embedded:?}, stored by {:?}",
            work.table.name,
            work.column.name,
            work.entries.len(),
            stored,
            started.elapsed()
        );
        let now = Instant::now();
        let p = self.providers.entry(work.provider.clone()).or_default();
        let service_failed = outage.is_some();
        if let Some(e) = outage {
            // The service failed (down, overloaded, timing out, refusing the key): back the
            // provider off; nothing counts against the rows.
            progress.error(col.0, col.1, &e.message);
            p.backoff = if p.backoff.is_zero() { Duration::from_millis(500) } else { (p.backoff * 2).min(MAX_BACKOFF) };
            p.blocked_until = Some(now + p.backoff);
            tracing::warn!("embedding backlog of {}.{}: {} (provider retried in {:?})", work.table.name, work.column.name, e.message, p.backoff);
        } else {
            *p = ProviderState::default();
        }
        match refused {
            Some((idx, e)) => {
                // A text of a request was refused: rounds shrink until it is alone, and a refusal
                // of a lone text counts against it.
                progress.error(col.0, col.1, &e.message);
                self.rounds.insert(col, (idx.len() / 4).max(1));
                if let [i] = idx.as_slice() {
                    let k = &work.entries[*i].0;
                    let fails = self.entries.get(k).map_or(0, |f| f.0) + 1;
                    self.entries.insert(k.clone(), (fails, now + Duration::from_millis(500u64 << fails.min(6))));
                    count_failure(engine, &work, *i, &e.message)?;
                }
            }
            None if !service_failed => {
                let size = self.rounds.entry(col).or_insert(ROUND);
                *size = (*size * 2).min(ROUND);
            }
            None => {}
        }
        Ok(true)
    }

    /// The first column with entries that may be tried now, and up to its round size of them.
    /// Entries of tables or columns that are gone (or no longer async) are removed on the way.
    fn next_work(&mut self, engine: &Engine) -> Result<Option<Work>> {
        let txn = engine.store.begin()?;
        let end = prefix_end(PENDING);
        let mut start = PENDING.to_vec();
        let mut tables: Option<HashMap<i64, TableInfo>> = None;
        let mut orphans = Vec::new();
        let now = Instant::now();
        let mut work: Option<Work> = None;
        'scan: loop {
            let page = txn.scan(&start, &end, 1024, false)?;
            let Some((last, _)) = page.last() else { break };
            start = last.clone();
            start.push(0);
            for (k, v) in page {
                let Some((tid, cid, handle)) = backlog::decode_key(&k) else {
                    orphans.push(k);
                    continue;
                };
                if let Some(w) = &work {
                    if (w.table.id, w.column_id) != (tid, cid) {
                        if !w.entries.is_empty() {
                            break 'scan;
                        }
                        work = None; // every entry of that column waits out a retry delay
                    } else if w.entries.len() >= self.rounds.get(&(tid, cid)).copied().unwrap_or(ROUND) {
                        break 'scan;
                    }
                }
                if work.is_none() {
                    let tables = match &mut tables {
                        Some(t) => t,
                        None => tables.insert(all_tables(&txn)?),
                    };
                    match column_work(tables.get(&tid), cid) {
                        None => {
                            orphans.push(k);
                            continue;
                        }
                        Some(w) => {
                            let blocked = self.providers.get(&w.provider).and_then(|p| p.blocked_until).is_some_and(|t| t > now);
                            if blocked {
                                // Skip the rest of this column.
                                start = prefix_end(&backlog::column_prefix(PENDING, tid, cid));
                                continue 'scan;
                            }
                            work = Some(w);
                        }
                    }
                }
                if self.entries.get(&k).is_some_and(|(_, at)| *at > now) {
                    continue;
                }
                let w = work.as_mut().expect("set above");
                w.entries.push((k, handle, Entry::decode(&v)?));
            }
        }
        txn.rollback();
        if !orphans.is_empty() {
            let txn = engine.store.begin()?;
            for k in orphans {
                txn.delete(k);
            }
            txn.commit()?;
        }
        Ok(work.filter(|w| !w.entries.is_empty()))
    }
}

/// Switch every model change whose shadow has nothing pending or failed (`embed::model_change`).
fn switch_model_changes(engine: &Engine) {
    let result = (|| -> Result<()> {
        let txn = engine.store.begin()?;
        let changing: Vec<(String, String)> = Catalog::new(&txn).every_table()?.into_iter().filter(|t| t.model_change.is_some()).map(|t| (t.db, t.name)).collect();
        txn.rollback();
        use crate::embed::model_change as mc;
        for (db, name) in changing {
            // Ready (as far as this snapshot sees)? Then stop row writes, and switch.
            let txn = engine.store.begin()?;
            let ready = match Catalog::new(&txn).table(&db, &name)? {
                Some(t) => t.model_change.as_ref().is_some_and(|m| m.switching) || mc::all_made(&txn, &t)?,
                None => false,
            };
            txn.rollback();
            if !ready {
                continue;
            }
            let txn = engine.store.begin()?;
            if !mc::set_switching(&txn, &db, &name, true)? {
                continue;
            }
            txn.commit()?;
            let txn = engine.store.begin()?;
            let switched = match mc::switch(&txn, &db, &name) {
                Ok(true) => txn.commit().map(|_| true).map_err(SqlError::from),
                Ok(false) => {
                    txn.rollback();
                    Ok(false)
                }
                Err(e) => {
                    txn.rollback();
                    Err(e)
                }
            };
            if !matches!(switched, Ok(true)) {
                // Rows came in before writes stopped (or the switch failed): writes resume.
                let txn = engine.store.begin()?;
                mc::set_switching(&txn, &db, &name, false)?;
                txn.commit()?;
                switched?;
                continue;
            }
            engine.search.sync(&engine.store)?;
            tracing::info!("model change of {db}.{name}: switched to the new vectors");
        }
        Ok(())
    })();
    if let Err(e) = result {
        tracing::warn!("model change switch: {}", e.message);
    }
}

fn all_tables(txn: &embedb_storage::Txn) -> Result<HashMap<i64, TableInfo>> {
    Ok(Catalog::new(txn).every_table()?.into_iter().map(|t| (t.id, t)).collect())
}

/// What a round needs to know of an entry's column; None when the table or column is gone or
/// the column is no longer async.
fn column_work(table: Option<&TableInfo>, column_id: u32) -> Option<Work> {
    let table = table?;
    let (position, column) = match table.model_change.as_ref().filter(|m| m.shadow_id == column_id) {
        Some(m) => (None, m.column.clone()),
        None => {
            let (position, _) = table.async_embed_columns().into_iter().find(|(_, id)| *id == column_id)?;
            (Some(position), table.columns[position].clone())
        }
    };
    let expr = &column.generated.as_ref()?.expr;
    let (spec, options) = crate::sql::ddl::embed_text_call(expr)?;
    let (provider, _) = crate::embed::parse_model(&spec).ok()?;
    let all = crate::embed::parse_options(options.as_deref()).ok()?;
    let long_text = crate::embed::own_options(&all).ok()?.long_text;
    let options = crate::embed::options_for_storage(&all);
    Some(Work { table: table.clone(), position, column, column_id, spec, provider, options, long_text, entries: Vec::new() })
}

/// Embed a round's texts one provider request's worth per call (so that a request that
/// succeeds is kept when another fails), `embed_concurrency` calls at once. Returns, per call,
/// the entries' positions in `work.entries` and the outcome.
#[allow(clippy::type_complexity)]
fn embed_in_requests(engine: &Engine, work: &Work) -> Vec<(Vec<usize>, Result<Vec<Option<Vec<f32>>>>)> {
    let per_call = engine.embedder.batch_size(&work.spec).clamp(1, ROUND);
    let calls: Vec<Vec<usize>> = (0..work.entries.len()).collect::<Vec<_>>().chunks(per_call).map(<[usize]>::to_vec).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let out = parking_lot::Mutex::new(Vec::with_capacity(calls.len()));
    let threads = engine.config.embed_concurrency.clamp(1, calls.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let interrupt = crate::interrupt::Interrupt::new();
                loop {
                    let c = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(idx) = calls.get(c) else { return };
                    let texts: Vec<Option<&str>> = idx.iter().map(|&i| Some(work.entries[i].2.text.as_str())).collect();
                    let r = engine.embedder.embed_long(&work.spec, &texts, &work.options, &interrupt, work.long_text, None);
                    out.lock().push((idx.clone(), r));
                }
            });
        }
    });
    out.into_inner()
}

/// Write vectors (`(position in work.entries, vector)`): each row whose entry still holds the
/// embedded text, in one transaction (retried on a write conflict). Returns how many rows got
/// their vector.
fn store_vectors(engine: &Engine, work: &Work, done: &[(usize, Vec<f32>)]) -> Result<u64> {
    if done.is_empty() {
        return Ok(0);
    }
    let column = &work.column;
    let mut last = None;
    for _ in 0..5 {
        let txn = engine.store.begin()?;
        // The table as this transaction sees it: a DDL since the round was picked (a new
        // column, a model switch) must not be written over with the old definition.
        let Some(fresh) = Catalog::new(&txn).table(&work.table.db, &work.table.name)?.filter(|t| t.id == work.table.id) else { return Ok(0) };
        let same_column = match work.position {
            Some(p) => fresh.columns.get(p).is_some_and(|c| c.id == work.column_id && c.generated == column.generated && c.ty == column.ty),
            None => fresh.model_change.as_ref().is_some_and(|m| m.shadow_id == work.column_id && m.column.generated == column.generated),
        };
        if !same_column {
            return Ok(0); // the next round reads the column again
        }
        let owner = engine.locks.new_owner();
        let mut stored = 0u64;
        for (i, v) in done {
            let (k, handle, entry) = &work.entries[*i];
            let Some(current) = txn.get(k)? else { continue };
            if Entry::decode(&current)?.text != entry.text {
                continue; // a newer text: the next round embeds it
            }
            // A shadow's vector waits beside the row, which stays as it is: no lock needed.
            if work.position.is_some() && !engine.locks.try_lock(owner, &codec::row_key(work.table.id, *handle)) {
                continue; // a pessimistic transaction holds the row: a later round
            }
            let Some(mut row) = table::get_row(&txn, &fresh, *handle)? else {
                txn.delete(k.clone());
                continue;
            };
            if let SqlType::Vector(Some(d)) = column.ty {
                let checked = match work.long_text.is_chunk() {
                    true => crate::sql::types::check_chunks(v, d as usize).map_err(|e| e.message),
                    false => embedb_vector::check_dimension(v, d as usize).map_err(|e| e.to_string()),
                };
                if let Err(e) = checked {
                    fail_entry(&txn, k, entry.clone(), &e);
                    engine.embedder.backlog.error(work.table.id, work.column_id, &e);
                    continue;
                }
            }
            match work.position {
                Some(position) => {
                    row.values[position] = Datum::Vector(v.clone());
                    table::put_row(&txn, &fresh, &row)?;
                    txn.delete(k.clone());
                }
                None => backlog::store_ready(&txn, work.table.id, work.column_id, *handle, v),
            }
            stored += 1;
        }
        let committed = txn.commit();
        engine.locks.release_all(owner);
        match committed {
            Ok(()) => return Ok(stored),
            Err(e) => last = Some(SqlError::from(e)),
        }
    }
    Err(last.unwrap_or_else(|| SqlError::other("embedding backlog: the vectors could not be stored")))
}

/// A failure that counts against a lone entry: record it, and move the entry to the failed list
/// at `MAX_ATTEMPTS`.
fn count_failure(engine: &Engine, work: &Work, position: usize, message: &str) -> Result<()> {
    let (k, _, entry) = &work.entries[position];
    let txn = engine.store.begin()?;
    let Some(current) = txn.get(k)? else { return Ok(()) };
    let mut e = Entry::decode(&current)?;
    if e.text != entry.text {
        return Ok(());
    }
    e.attempts += 1;
    e.error = Some(message.to_string());
    if e.attempts >= MAX_ATTEMPTS {
        fail_entry(&txn, k, e, message);
    } else {
        txn.put(k.clone(), e.encode());
    }
    txn.commit()?;
    Ok(())
}

fn fail_entry(txn: &embedb_storage::Txn, key: &[u8], mut e: Entry, message: &str) {
    let Some((t, c, h)) = backlog::decode_key(key) else { return };
    e.error = Some(message.to_string());
    txn.delete(key.to_vec());
    txn.put(backlog::key(FAILED, t, c, h), e.encode());
}
