//! Transactions: optimistic snapshot isolation over a [`Kv`].
//!
//! The life of a transaction, like TiDB's optimistic transactions:
//!
//! 1. [`Store::begin`] takes a [`Snapshot`] of the KV and notes the current
//!    *commit version* (an in-memory counter bumped by every commit). Both
//!    happen under the commit lock, so the snapshot contains exactly the
//!    commits with version <= the start version.
//! 2. Reads ([`Txn::get`], [`Txn::scan`]) consult the transaction's own write
//!    buffer first and fall back to the snapshot, so a transaction sees its own
//!    writes and nobody else's later commits.
//! 3. Writes ([`Txn::put`], [`Txn::delete`]) only touch the in-memory buffer;
//!    nothing is visible to others until commit. [`Txn::savepoint`] and
//!    [`Txn::rollback_to`] use a small undo log over the buffer so a failed
//!    statement can be undone without aborting the whole transaction.
//! 4. [`Txn::commit`] takes the commit lock, checks whether any key it wrote
//!    was written by a commit newer than its start version (a write-write
//!    conflict → [`Error::WriteConflict`], and nothing is applied), and
//!    otherwise applies the whole buffer as one atomic [`Kv::write`] batch and
//!    bumps the commit version. Commits are serialized by that lock, so commit
//!    order == version order == the order in which snapshots see them.
//!
//! Commits are grouped: a committing transaction queues its buffer, then takes the commit
//! lock. Whoever gets the lock and finds its own entry still queued leads a group of every
//! queued entry: it checks each in queue order (against earlier commits and the group's
//! earlier entries), writes the accepted ones as one [`Kv::write`], then gives each its own
//! version and observer call, in order. The others find their outcome set when they get the
//! lock. A KV write that costs a round trip (cluster mode: a durable object write) is then
//! paid once per group, not once per commit; a lone commit pays what it always did. Whoever
//! waits for the lock, or leads a group, on a tokio worker in that mode does so in a blocking
//! section, so the worker's other sessions go on and their commits fill the next group: every
//! commit site gets this, not only the session's.
//!
//! To detect conflicts the store remembers, for recently written keys, the
//! version of the last commit that wrote them. An entry can be forgotten once
//! every live transaction started at or after that version: no one can
//! conflict with it any more. Live transactions are tracked by start version
//! and unregistered on commit, rollback or drop.
//!
//! Named id counters ([`Store::alloc_ids`]) live beside the data under
//! [`COUNTER_PREFIX`]; they are written outside transactions and never rolled
//! back, like TiDB's auto-id allocator.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::kv::{scan_bounds, Kv, MemKv, Snapshot};
use crate::redb_kv::RedbKv;
use crate::{Error, Result};

/// Key prefix reserved for [`Store::alloc_ids`] counters. Keys of SQL data
/// (`t...`) never start with it.
pub const COUNTER_PREFIX: &[u8] = b"x_counter/";

/// File name of the database inside the directory given to [`Store::open`].
pub const DB_FILE_NAME: &str = "embedb.redb";

/// Handle to a transactional store; cheap to clone and share between threads.
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
}

/// Sees every committed write batch, in commit order, while the commit lock is held: derived
/// structures (search indexes) stay exactly in step with the data, and a transaction that begins
/// after a commit also sees its effect on them. It must be quick and must not open transactions.
pub trait CommitObserver: Send + Sync {
    /// `writes` were committed as the commit of `version` (a transaction that started at
    /// `version` or later sees them). Every live transaction, and every later one, started at
    /// `horizon` or later. Called with the commit lock held.
    fn committed(&self, version: u64, horizon: u64, writes: &[(Vec<u8>, Option<Vec<u8>>)]);
}

struct Shared {
    kv: Arc<dyn Kv>,
    observer: parking_lot::RwLock<Option<Arc<dyn CommitObserver>>>,
    /// The commit lock and everything conflict detection needs.
    commits: Mutex<CommitState>,
    /// Commits waiting for the next group (see the module docs).
    queued: Mutex<Vec<Queued>>,
    /// Serializes read-modify-write of id counters.
    counters: Mutex<()>,
    /// Set by [`Store::close_commits`]: every later commit fails.
    closed: std::sync::atomic::AtomicBool,
    /// Row counts of the tables counted since the store was opened, kept current by the row
    /// deltas of each commit: what `TABLE_ROWS` and the planner's estimates read.
    row_counts: Mutex<HashMap<i64, i64>>,
}

impl Shared {
    /// The commit lock. In cluster mode a group's commit holds it across a network write, so a
    /// caller on a tokio worker that must wait waits in a blocking section: the worker's other
    /// tasks go on, and their commits join the next group instead of queueing behind this one.
    fn lock_commits(&self) -> parking_lot::MutexGuard<'_, CommitState> {
        match self.commits.try_lock() {
            Some(free) => free,
            None => self.may_block(|| self.commits.lock()),
        }
    }

    /// Runs `f`, which may wait on the network (a group's write, in cluster mode), in a blocking
    /// section when called on a tokio worker; directly otherwise (a local commit is quick).
    fn may_block<T>(&self, f: impl FnOnce() -> T) -> T {
        match tokio::runtime::Handle::try_current() {
            Ok(h) if self.kv.writes_wait_on_network() && h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
            _ => f(),
        }
    }

    /// A commit's row deltas, applied to the counts that are known.
    fn apply_row_deltas(&self, rows: RowDeltas) {
        let mut counts = self.row_counts.lock();
        for (table, delta) in rows.0 {
            match delta {
                None => {
                    counts.remove(&table);
                }
                Some(d) => {
                    if let Some(n) = counts.get_mut(&table) {
                        *n += d;
                    }
                }
            }
        }
    }

    /// The next id counter `key` would hand out (1 if never used).
    fn read_counter(&self, key: &[u8]) -> Result<u64> {
        match self.kv.snapshot()?.get(key)? {
            None => Ok(1),
            Some(bytes) => {
                let bytes: [u8; 8] = bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| Error::Corrupt("id counter is not 8 bytes".into()))?;
                Ok(u64::from_be_bytes(bytes))
            }
        }
    }
}

/// One transaction's commit, waiting to be written with the next group.
struct Queued {
    start: u64,
    batch: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// Keys read, not written, that no newer commit may have written ([`Txn::guard`]).
    guards: Vec<Vec<u8>>,
    rows: RowDeltas,
    outcome: Arc<std::sync::OnceLock<Result<()>>>,
}

/// At most this many commits, and about this many bytes, go into one group's write.
const GROUP_MAX_COMMITS: usize = 256;
const GROUP_MAX_BYTES: usize = 8 << 20;

impl Shared {
    /// Writes the queued commits as one group (the commit lock is held; see the module docs).
    fn commit_group(&self, commits: &mut CommitState) {
        let mut group = {
            let mut queued = self.queued.lock();
            let (mut n, mut bytes) = (0, 0);
            while n < queued.len() && n < GROUP_MAX_COMMITS && (n == 0 || bytes < GROUP_MAX_BYTES) {
                bytes += queued[n].batch.iter().map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len)).sum::<usize>();
                n += 1;
            }
            queued.drain(..n).collect::<Vec<_>>()
        };
        let closed = self.closed.load(std::sync::atomic::Ordering::SeqCst);
        // Check each in order; the group's accepted writes count as newer commits for the
        // later ones (they all started before any of the group committed).
        let mut taken: std::collections::HashSet<&[u8]> = std::collections::HashSet::new();
        let mut verdicts: Vec<Option<Error>> = Vec::with_capacity(group.len());
        for q in &group {
            let verdict = if closed {
                Some(Error::Storage("the server is shutting down: commit refused".into()))
            } else if commits.conflicts(q.start, q.batch.iter().map(|(k, _)| k).chain(&q.guards))
                || q.batch.iter().map(|(k, _)| k).chain(&q.guards).any(|k| taken.contains(k.as_slice()))
            {
                Some(Error::WriteConflict)
            } else {
                taken.extend(q.batch.iter().map(|(k, _)| k.as_slice()));
                None
            };
            verdicts.push(verdict);
        }
        drop(taken);
        // The accepted batches, moved (not copied) into one write; each keeps its span of it.
        let mut merged: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
        let spans: Vec<std::result::Result<std::ops::Range<usize>, Error>> = group
            .iter_mut()
            .zip(verdicts)
            .map(|(q, verdict)| match verdict {
                Some(e) => Err(e),
                None => {
                    let from = merged.len();
                    merged.append(&mut q.batch);
                    Ok(from..merged.len())
                }
            })
            .collect();
        let result = if merged.is_empty() { Ok(()) } else { self.kv.write(&merged) };
        let observer = if result.is_ok() { self.observer.read().clone() } else { None };
        for (q, span) in group.iter_mut().zip(spans) {
            let outcome = match span {
                Err(e) => {
                    commits.unregister(q.start);
                    Err(e)
                }
                Ok(span) => {
                    let batch = &merged[span];
                    if let Some(o) = &observer {
                        // `record` below gives this commit the next version.
                        o.committed(commits.version + 1, commits.horizon(), batch);
                    }
                    if result.is_ok() {
                        self.apply_row_deltas(std::mem::take(&mut q.rows));
                    }
                    commits.unregister(q.start);
                    // Even a failed write may have reached the disk; recording it keeps
                    // conflict detection conservative.
                    commits.record(batch.iter().map(|(k, _)| k.clone()).collect());
                    result.clone()
                }
            };
            let _ = q.outcome.set(outcome);
        }
    }
}

/// Bookkeeping for conflict detection, guarded by the commit lock.
#[derive(Default)]
struct CommitState {
    /// Version of the latest commit (0 = none since the store was opened).
    version: u64,
    /// Start versions of live transactions, with multiplicity.
    live: BTreeMap<u64, usize>,
    /// Recent commits in version order, with the keys each wrote; used to
    /// prune `last_write` in order.
    recent: VecDeque<(u64, Vec<Vec<u8>>)>,
    /// For each recently written key, the version of its latest commit.
    last_write: HashMap<Vec<u8>, u64>,
}

impl CommitState {
    fn register(&mut self) -> u64 {
        *self.live.entry(self.version).or_default() += 1;
        self.version
    }

    fn unregister(&mut self, start: u64) {
        if let Some(count) = self.live.get_mut(&start) {
            *count -= 1;
            if *count == 0 {
                self.live.remove(&start);
            }
        }
        self.prune();
    }

    /// The oldest start version of a live transaction (the present version if none is live).
    fn horizon(&self) -> u64 {
        self.live.keys().next().copied().unwrap_or(self.version)
    }

    /// Did a commit newer than `start` write any of `keys`?
    fn conflicts<'a>(&self, start: u64, mut keys: impl Iterator<Item = &'a Vec<u8>>) -> bool {
        keys.any(|k| self.last_write.get(k).is_some_and(|&v| v > start))
    }

    /// Records a commit (call after unregistering the committing transaction): with no live
    /// transaction left, none can conflict with it, and its keys need not be kept.
    fn record(&mut self, keys: Vec<Vec<u8>>) {
        self.version += 1;
        if self.live.is_empty() {
            return;
        }
        for key in &keys {
            self.last_write.insert(key.clone(), self.version);
        }
        self.recent.push_back((self.version, keys));
    }

    /// Forgets commits no live transaction can conflict with: those at or
    /// below the oldest live start version (or all of them if none is live).
    fn prune(&mut self) {
        let horizon = self.horizon();
        while self.recent.front().is_some_and(|(v, _)| *v <= horizon) {
            let (version, keys) = self.recent.pop_front().expect("checked non-empty");
            for key in keys {
                // A later commit may own the entry now; leave that one alone.
                if self.last_write.get(&key) == Some(&version) {
                    self.last_write.remove(&key);
                }
            }
        }
    }
}

impl Store {
    /// A store over any [`Kv`].
    pub fn new(kv: Arc<dyn Kv>) -> Store {
        Store {
            shared: Arc::new(Shared {
                kv,
                observer: Default::default(),
                commits: Mutex::new(CommitState::default()),
                queued: Default::default(),
                counters: Mutex::new(()),
                closed: Default::default(),
                row_counts: Default::default(),
            }),
        }
    }

    /// Install the store's [`CommitObserver`] (replacing any earlier one).
    pub fn set_commit_observer(&self, observer: Arc<dyn CommitObserver>) {
        *self.shared.observer.write() = Some(observer);
    }

    /// Run `f` while no commit can happen (the commit lock is held): a consistent moment to
    /// start a derived structure's build and register with the observer.
    pub fn while_no_commits<T>(&self, f: impl FnOnce() -> T) -> T {
        let _g = self.shared.lock_commits();
        f()
    }

    /// Run `f` with the commit lock held, then refuse every later commit (shutdown): what `f`
    /// saw of the committed state stays the last committed state of this process. Derived
    /// structures are saved this way so that their snapshot is exact. `f` must not call
    /// [`Store::begin`] (it takes the same lock).
    pub fn close_commits<T>(&self, f: impl FnOnce() -> T) -> T {
        let _g = self.shared.lock_commits();
        let out = f();
        self.shared.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        out
    }

    /// Closes the store (`Kv::close`): commits are refused and the files let go, so the data
    /// can be opened again.
    pub fn close(&self) -> Result<()> {
        self.close_commits(|| ());
        self.shared.kv.close()
    }

    /// Write bookkeeping keys straight to the KV, durably, outside any transaction: no conflict
    /// detection, no observer. Only for keys no transaction writes (e.g. a derived structure's
    /// "saved cleanly" marker), and usable while the commit lock is held.
    pub fn write_outside_txn(&self, batch: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<()> {
        self.shared.kv.write(&batch)
    }

    /// Applies a batch that another node committed (a cluster node following the writer's log):
    /// `write` puts it into the KV, then the commit observer and the row counts see it exactly
    /// as they see a local commit. No conflict check: the writer already made it.
    pub fn apply_replicated(&self, batch: &[(Vec<u8>, Option<Vec<u8>>)], write: impl FnOnce() -> Result<()>) -> Result<()> {
        let mut commits = self.shared.lock_commits();
        // Closed (shutdown): what derived structures saved stays the last state applied.
        if self.shared.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(Error::Storage("the store is closed".into()));
        }
        let mut deltas: HashMap<i64, Option<i64>> = HashMap::new();
        {
            let snap = self.shared.kv.snapshot()?;
            for (key, value) in batch {
                if let Some((table, _)) = crate::codec::decode_row_key(key) {
                    let delta = value.is_some() as i64 - snap.get(key)?.is_some() as i64;
                    if delta != 0 {
                        *deltas.entry(table).or_insert(Some(0)).get_or_insert(0) += delta;
                    }
                }
            }
        }
        write()?;
        if let Some(o) = self.shared.observer.read().clone() {
            o.committed(commits.version + 1, commits.horizon(), batch);
        }
        self.shared.apply_row_deltas(RowDeltas(deltas));
        commits.record(batch.iter().map(|(k, _)| k.clone()).collect());
        Ok(())
    }

    /// Opens (creating if needed) the durable store in `dir`, i.e. the redb
    /// file `dir/embedb.redb`.
    pub fn open(dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Storage(format!("creating {}: {e}", dir.display())))?;
        let kv = RedbKv::open(&dir.join(DB_FILE_NAME))?;
        Ok(Store::new(Arc::new(kv)))
    }

    /// A non-durable store backed by [`MemKv`].
    pub fn in_memory() -> Store {
        Store::new(Arc::new(MemKv::new()))
    }

    /// Starts a transaction: a snapshot plus an empty write buffer.
    pub fn begin(&self) -> Result<Txn> {
        // Snapshot and start version are taken under the commit lock so that
        // the snapshot holds exactly the commits up to `start`.
        let mut commits = self.shared.lock_commits();
        let snapshot = self.shared.kv.snapshot()?;
        let start = commits.register();
        drop(commits);
        Ok(Txn {
            shared: self.shared.clone(),
            snapshot: parking_lot::RwLock::new(snapshot),
            start: std::sync::atomic::AtomicU64::new(start),
            state: Mutex::new(TxnState::default()),
        })
    }

    /// Allocate `n` consecutive ids from a named persistent counter outside any transaction
    /// (committed immediately, never rolled back — like TiDB's auto-id allocator). Returns the first id.
    /// Counters start at 1.
    pub fn alloc_ids(&self, name: &[u8], n: u64) -> Result<u64> {
        let _guard = self.shared.counters.lock();
        let key = counter_key(name);
        let first = self.shared.read_counter(&key)?;
        let next = first
            .checked_add(n)
            .ok_or_else(|| Error::Storage("id counter overflow".into()))?;
        if n > 0 {
            self.shared
                .kv
                .write(&[(key, Some(next.to_be_bytes().to_vec()))])?;
        }
        Ok(first)
    }

    /// Makes the next id allocated from counter `name` greater than
    /// `at_least` (e.g. after an explicit insert of id `at_least`). Never
    /// moves a counter backwards.
    pub fn counter_rebase(&self, name: &[u8], at_least: u64) -> Result<()> {
        let _guard = self.shared.counters.lock();
        let key = counter_key(name);
        let target = at_least.saturating_add(1);
        if self.shared.read_counter(&key)? < target {
            self.shared
                .kv
                .write(&[(key, Some(target.to_be_bytes().to_vec()))])?;
        }
        Ok(())
    }

    #[cfg(test)]
    fn tracked_commits(&self) -> (usize, usize) {
        let c = self.shared.lock_commits();
        (c.live.values().sum(), c.recent.len())
    }
}

fn counter_key(name: &[u8]) -> Vec<u8> {
    [COUNTER_PREFIX, name].concat()
}

/// A position in a transaction's write history, for [`Txn::rollback_to`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Savepoint(usize);

/// A transaction's net rows added per table id; `None` once the table was emptied (its count
/// is then unknown again and recounted on demand).
#[derive(Default, Clone)]
struct RowDeltas(HashMap<i64, Option<i64>>);

/// A transaction. `Send + Sync` (state behind a mutex), so the SQL layer can
/// share an `Arc<Txn>` between a statement and the scans it runs.
///
/// Dropping an unfinished transaction rolls it back.
pub struct Txn {
    shared: Arc<Shared>,
    /// Replaced (with `start`) only by [`Txn::refresh`].
    snapshot: parking_lot::RwLock<Box<dyn Snapshot>>,
    start: std::sync::atomic::AtomicU64,
    state: Mutex<TxnState>,
}

/// Previous buffer entry of a key: `None` if the key was not buffered.
type UndoEntry = (Vec<u8>, Option<Option<Vec<u8>>>);

#[derive(Default)]
struct TxnState {
    /// Buffered writes: `Some` = put, `None` = delete.
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Undo log, kept only once a savepoint exists (autocommit statements
    /// never pay for it).
    undo: Vec<UndoEntry>,
    savepoints: bool,
    finished: bool,
    rows: RowDeltas,
    /// See [`Txn::guard`].
    guards: std::collections::BTreeSet<Vec<u8>>,
    /// `rows` as each savepoint found it, by the undo log's length then.
    row_marks: Vec<(usize, RowDeltas)>,
}

impl TxnState {
    fn write(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        if self.savepoints {
            let prev = self.writes.insert(key.clone(), value);
            self.undo.push((key, prev));
        } else {
            self.writes.insert(key, value);
        }
    }
}

impl Txn {
    /// Reads `key`, seeing this transaction's own uncommitted writes first.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(buffered) = self.state.lock().writes.get(key) {
            return Ok(buffered.clone());
        }
        self.snapshot.read().get(key)
    }

    /// Ordered scan of `[start, end)` (empty `end` = unbounded) returning at
    /// most `limit` pairs, with buffered puts overlaid on the snapshot and
    /// buffered deletes hidden. `reverse` scans from the end.
    pub fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let Some(bounds) = scan_bounds(start, end) else {
            return Ok(Vec::new());
        };
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut buffered: Vec<(Vec<u8>, Option<Vec<u8>>)> = {
            let state = self.state.lock();
            let range = state.writes.range::<[u8], _>(bounds);
            range.map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        if reverse {
            buffered.reverse();
        }
        // Each buffered key can shadow at most one snapshot entry, so fetching
        // `limit + buffered` snapshot entries is enough to fill `limit`.
        let fetch = limit.saturating_add(buffered.len());
        let snap = self.snapshot.read().scan(start, end, fetch, reverse)?;

        let overlay = buffered.iter().map(|(k, v)| (k.as_slice(), v.as_deref())).collect();
        Ok(crate::kv::merge_overlaid(snap, overlay, limit, reverse))
    }

    /// Forward scan of `[start, end)` as [`Txn::scan`] sees it (buffered writes over the
    /// snapshot), each pair lent to `visit` until it returns `false`: nothing is copied per entry
    /// but this transaction's own buffered writes in the range.
    pub fn scan_visit(&self, start: &[u8], end: &[u8], visit: &mut dyn FnMut(&[u8], &[u8]) -> bool) -> Result<()> {
        let Some(bounds) = scan_bounds(start, end) else {
            return Ok(());
        };
        let buffered: Vec<(Vec<u8>, Option<Vec<u8>>)> = {
            let state = self.state.lock();
            state.writes.range::<[u8], _>(bounds).map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        let overlay = buffered.iter().map(|(k, v)| (k.as_slice(), v.as_deref()));
        crate::kv::visit_overlaid(overlay, |lend| self.snapshot.read().scan_visit(start, end, lend), visit)
    }

    /// Buffers a write of `value` to `key`.
    /// Commit only if no commit newer than this transaction's snapshot wrote `key`, which this
    /// transaction read but does not write (a write conflict otherwise): what its writes were
    /// made from — a table's definition, for its rows — must not have changed under it.
    pub fn guard(&self, key: &[u8]) {
        let mut state = self.state.lock();
        if !state.guards.contains(key) {
            state.guards.insert(key.to_vec());
        }
    }

    pub fn put(&self, key: Vec<u8>, value: Vec<u8>) {
        self.state.lock().write(key, Some(value));
    }

    /// Buffers a deletion of `key`.
    pub fn delete(&self, key: Vec<u8>) {
        self.state.lock().write(key, None);
    }

    /// Statement atomicity inside a multi-statement transaction: a failed statement rolls back to here.
    pub fn savepoint(&self) -> Savepoint {
        let mut state = self.state.lock();
        state.savepoints = true;
        let at = state.undo.len();
        // Row counts change only with writes: one mark per undo position is enough.
        if state.row_marks.last().map(|m| m.0) != Some(at) {
            let rows = state.rows.clone();
            state.row_marks.push((at, rows));
        }
        Savepoint(at)
    }

    /// Undoes every write made after `sp` was taken; earlier writes stay.
    pub fn rollback_to(&self, sp: Savepoint) {
        let mut state = self.state.lock();
        while state.row_marks.last().is_some_and(|m| m.0 > sp.0) {
            state.row_marks.pop();
        }
        if let Some((at, rows)) = state.row_marks.last() {
            if *at == sp.0 {
                state.rows = rows.clone();
            }
        }
        while state.undo.len() > sp.0 {
            let (key, prev) = state.undo.pop().expect("non-empty");
            match prev {
                Some(prev) => state.writes.insert(key, prev),
                None => state.writes.remove(&key),
            };
        }
    }

    /// The next id counter `name` would hand out (1 if never used), as last committed.
    pub fn peek_counter(&self, name: &[u8]) -> Result<u64> {
        self.shared.read_counter(&counter_key(name))
    }

    /// Counts `delta` rows added to (negative: removed from) table `table_id` when this
    /// transaction commits. The SQL layer calls it where rows are inserted and deleted.
    pub fn count_rows(&self, table_id: i64, delta: i64) {
        if let Some(n) = self.state.lock().rows.0.entry(table_id).or_insert(Some(0)) {
            *n += delta;
        }
    }

    /// Marks table `table_id` emptied (TRUNCATE, DROP): its count is forgotten at commit.
    pub fn forget_row_count(&self, table_id: i64) {
        self.state.lock().rows.0.insert(table_id, None);
    }

    /// The row count of table `table_id` as the latest commit left it, if known; otherwise
    /// `count` (a scan the caller does) becomes the known count. An estimate: rows committed
    /// while `count` runs may be missed.
    pub fn estimated_rows(&self, table_id: i64, count: impl FnOnce() -> Result<u64>) -> Result<u64> {
        if let Some(&n) = self.shared.row_counts.lock().get(&table_id) {
            return Ok(n.max(0) as u64);
        }
        let n = count()?;
        self.shared.row_counts.lock().entry(table_id).or_insert(n as i64);
        Ok(n)
    }

    /// True if no writes are buffered.
    pub fn is_empty(&self) -> bool {
        self.state.lock().writes.is_empty()
    }

    /// Write-write conflict check against commits made after this txn's snapshot → Err(Error::WriteConflict)
    /// (the SQL layer reports TiDB's error 9007); otherwise apply the buffer with Kv::write.
    ///
    /// The transaction is finished afterwards whatever the outcome; on error
    /// none of its writes are applied.
    pub fn commit(&self) -> Result<()> {
        let (writes, rows, guards) = {
            let mut state = self.state.lock();
            if state.finished {
                return Err(Error::Storage("transaction already finished".into()));
            }
            state.finished = true;
            state.undo = Vec::new();
            (std::mem::take(&mut state.writes), std::mem::take(&mut state.rows), std::mem::take(&mut state.guards))
        };
        if writes.is_empty() {
            self.shared.lock_commits().unregister(self.start());
            return Ok(());
        }
        let outcome = Arc::new(std::sync::OnceLock::new());
        self.shared.queued.lock().push(Queued {
            start: self.start(),
            guards: guards.into_iter().collect(),
            batch: writes.into_iter().collect(),
            rows,
            outcome: outcome.clone(),
        });
        // The group's write is a network write in cluster mode: the worker's other tasks go on.
        self.shared.may_block(|| {
            let mut commits = self.shared.commits.lock();
            // A leader that held the lock meanwhile may have written this commit with its group.
            while outcome.get().is_none() {
                self.shared.commit_group(&mut commits);
            }
        });
        outcome.get().cloned().expect("the loop above ran until it was set")
    }

    fn start(&self) -> u64 {
        self.start.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Keys written since `sp` (a statement's writes: what a pessimistic transaction locks).
    pub fn written_since(&self, sp: &Savepoint) -> Vec<Vec<u8>> {
        let state = self.state.lock();
        let mut keys: Vec<Vec<u8>> = state.undo[sp.0.min(state.undo.len())..].iter().map(|(k, _)| k.clone()).collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// Every key this transaction has written, in key order.
    pub fn written_keys(&self) -> Vec<Vec<u8>> {
        self.state.lock().writes.keys().cloned().collect()
    }

    /// Whether a commit newer than this transaction's snapshot wrote any of `keys`.
    pub fn conflicts_on(&self, keys: &[Vec<u8>]) -> bool {
        self.shared.lock_commits().conflicts(self.start(), keys.iter())
    }

    /// Whether commits were made after this transaction's snapshot.
    pub fn is_stale(&self) -> bool {
        self.shared.lock_commits().version > self.start()
    }

    /// Move the snapshot to now, keeping the buffered writes (a pessimistic transaction's
    /// statements read what is committed when they start, TiDB's `for_update_ts`). Fails with
    /// [`Error::WriteConflict`] if a newer commit wrote a key this transaction wrote: its locks
    /// should have prevented that, and moving on would lose that commit's write.
    pub fn refresh(&self) -> Result<()> {
        let state = self.state.lock();
        if state.finished {
            return Err(Error::Storage("transaction already finished".into()));
        }
        let mut commits = self.shared.lock_commits();
        let old = self.start();
        if commits.conflicts(old, state.writes.keys().chain(&state.guards)) {
            return Err(Error::WriteConflict);
        }
        let snapshot = self.shared.kv.snapshot()?;
        let start = commits.register();
        commits.unregister(old);
        *self.snapshot.write() = snapshot;
        self.start.store(start, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    /// The version this transaction's snapshot was taken at: it sees exactly the commits of
    /// versions up to this one.
    pub fn start_version(&self) -> u64 {
        self.start()
    }

    /// Discards all buffered writes and finishes the transaction. Idempotent.
    pub fn rollback(&self) {
        let mut state = self.state.lock();
        if state.finished {
            return;
        }
        state.finished = true;
        state.writes = BTreeMap::new();
        state.undo = Vec::new();
        drop(state);
        self.shared.lock_commits().unregister(self.start());
    }
}

impl Drop for Txn {
    fn drop(&mut self) {
        self.rollback();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TestRng;

    /// Runs `f` against an in-memory store and a redb-backed one.
    fn each_store(f: impl Fn(&Store)) {
        f(&Store::in_memory());
        let dir = tempfile::tempdir().unwrap();
        f(&Store::open(dir.path()).unwrap());
    }

    fn b(s: &str) -> Vec<u8> {
        s.as_bytes().to_vec()
    }

    #[test]
    fn row_counts_follow_commits_savepoints_and_emptying() {
        each_store(|store| {
            let scans = std::cell::Cell::new(0);
            let count = |n: u64| {
                scans.set(scans.get() + 1);
                Ok(n)
            };
            // Unknown until counted once; then every commit's deltas keep it current.
            assert_eq!(store.begin().unwrap().estimated_rows(7, || count(10)).unwrap(), 10);
            let t = store.begin().unwrap();
            t.count_rows(7, 3);
            t.put(b("k1"), b("v"));
            let sp = t.savepoint();
            t.count_rows(7, 5);
            t.put(b("k2"), b("v"));
            t.rollback_to(sp);
            t.count_rows(7, -1);
            t.put(b("k3"), b("v"));
            t.commit().unwrap();
            assert_eq!(store.begin().unwrap().estimated_rows(7, || count(99)).unwrap(), 12);
            // A rolled-back transaction counts nothing.
            let t = store.begin().unwrap();
            t.count_rows(7, 100);
            t.put(b("k4"), b("v"));
            t.rollback();
            assert_eq!(store.begin().unwrap().estimated_rows(7, || count(99)).unwrap(), 12);
            assert_eq!(scans.get(), 1);
            // Emptied: forgotten at commit, counted again on the next ask.
            let t = store.begin().unwrap();
            t.forget_row_count(7);
            t.put(b("k5"), b("v"));
            t.commit().unwrap();
            assert_eq!(store.begin().unwrap().estimated_rows(7, || count(0)).unwrap(), 0);
            assert_eq!(scans.get(), 2);
        });
    }

    #[test]
    fn closed_store_refuses_commits_but_keeps_outside_writes() {
        each_store(|store| {
            let t = store.begin().unwrap();
            t.put(b("a"), b("1"));
            t.commit().unwrap();
            let late = store.begin().unwrap();
            late.put(b("b"), b("2"));
            // (`begin` takes the commit lock too: the closure must not start transactions.)
            store.close_commits(|| store.write_outside_txn(vec![(b("marker"), Some(b("x")))]).unwrap());
            assert!(matches!(late.commit(), Err(Error::Storage(_))), "a commit after close is refused");
            let r = store.begin().unwrap();
            assert_eq!(r.get(b"a").unwrap(), Some(b("1")));
            assert_eq!(r.get(b"b").unwrap(), None);
            assert_eq!(r.get(b"marker").unwrap(), Some(b("x")));
            // Read-only transactions still finish.
            r.commit().unwrap();
        });
    }

    fn commit_puts(store: &Store, pairs: &[(&str, &str)]) {
        let txn = store.begin().unwrap();
        for (k, v) in pairs {
            txn.put(b(k), b(v));
        }
        txn.commit().unwrap();
    }

    fn scan_str(
        txn: &Txn,
        start: &str,
        end: &str,
        limit: usize,
        reverse: bool,
    ) -> Vec<(String, String)> {
        txn.scan(start.as_bytes(), end.as_bytes(), limit, reverse)
            .unwrap()
            .into_iter()
            .map(|(k, v)| (String::from_utf8(k).unwrap(), String::from_utf8(v).unwrap()))
            .collect()
    }

    #[test]
    fn own_writes_are_visible() {
        each_store(|store| {
            commit_puts(store, &[("a", "old"), ("b", "old")]);
            let txn = store.begin().unwrap();
            assert!(txn.is_empty());
            txn.put(b("a"), b("new"));
            txn.delete(b("b"));
            txn.put(b("c"), b("new"));
            assert!(!txn.is_empty());
            assert_eq!(txn.get(b"a").unwrap(), Some(b("new")));
            assert_eq!(txn.get(b"b").unwrap(), None);
            assert_eq!(txn.get(b"c").unwrap(), Some(b("new")));
            txn.commit().unwrap();
            let after = store.begin().unwrap();
            assert_eq!(after.get(b"a").unwrap(), Some(b("new")));
            assert_eq!(after.get(b"b").unwrap(), None);
            assert_eq!(after.get(b"c").unwrap(), Some(b("new")));
        });
    }

    #[test]
    fn uncommitted_writes_are_invisible_to_others() {
        each_store(|store| {
            let writer = store.begin().unwrap();
            writer.put(b("k"), b("v"));
            let reader = store.begin().unwrap();
            assert_eq!(reader.get(b"k").unwrap(), None);
            assert!(reader.scan(b"", b"", 10, false).unwrap().is_empty());
            writer.rollback();
            assert_eq!(store.begin().unwrap().get(b"k").unwrap(), None);
        });
    }

    #[test]
    fn snapshot_isolation_keeps_old_values() {
        each_store(|store| {
            commit_puts(store, &[("k", "v1")]);
            let old = store.begin().unwrap();
            commit_puts(store, &[("k", "v2"), ("k2", "x")]);
            assert_eq!(old.get(b"k").unwrap(), Some(b("v1")));
            assert_eq!(old.get(b"k2").unwrap(), None);
            assert_eq!(
                scan_str(&old, "", "", 10, false),
                [("k".into(), "v1".into())]
            );
            assert_eq!(store.begin().unwrap().get(b"k").unwrap(), Some(b("v2")));
        });
    }

    #[test]
    fn write_write_conflict_aborts_the_later_committer() {
        each_store(|store| {
            commit_puts(store, &[("k", "0")]);
            let t1 = store.begin().unwrap();
            let t2 = store.begin().unwrap();
            t1.put(b("k"), b("t1"));
            t2.put(b("k"), b("t2"));
            t2.put(b("other"), b("t2"));
            t1.commit().unwrap();
            assert_eq!(t2.commit(), Err(Error::WriteConflict));
            let check = store.begin().unwrap();
            assert_eq!(check.get(b"k").unwrap(), Some(b("t1")));
            // None of the loser's writes were applied, not even the non-conflicting one.
            assert_eq!(check.get(b"other").unwrap(), None);
            // A delete conflicts as well.
            let t3 = store.begin().unwrap();
            let t4 = store.begin().unwrap();
            t3.delete(b("k"));
            t4.put(b("k"), b("t4"));
            t3.commit().unwrap();
            assert_eq!(t4.commit(), Err(Error::WriteConflict));
            assert_eq!(store.begin().unwrap().get(b"k").unwrap(), None);
        });
    }

    #[test]
    fn a_guarded_key_written_meanwhile_aborts_the_commit() {
        each_store(|store| {
            commit_puts(store, &[("def", "v1")]);
            // A row made from the definition it read; the definition changes before its commit.
            let writer = store.begin().unwrap();
            writer.guard(b"def");
            writer.put(b("row"), b("made for v1"));
            let ddl = store.begin().unwrap();
            ddl.put(b("def"), b("v2"));
            ddl.commit().unwrap();
            assert_eq!(writer.commit(), Err(Error::WriteConflict));
            assert_eq!(store.begin().unwrap().get(b"row").unwrap(), None);
            // Unchanged, the guarded key costs nothing; guards alone (no writes) commit nothing.
            let writer = store.begin().unwrap();
            writer.guard(b"def");
            writer.put(b("row"), b("made for v2"));
            writer.commit().unwrap();
            let reader = store.begin().unwrap();
            reader.guard(b"def");
            reader.commit().unwrap();
            // Two writers guarding the same key do not conflict with each other.
            let (a, c) = (store.begin().unwrap(), store.begin().unwrap());
            a.guard(b"def");
            c.guard(b"def");
            a.put(b("ra"), b("a"));
            c.put(b("rc"), b("c"));
            a.commit().unwrap();
            c.commit().unwrap();
        });
    }

    #[test]
    fn no_false_conflicts() {
        each_store(|store| {
            let t1 = store.begin().unwrap();
            let t2 = store.begin().unwrap();
            t1.put(b("a"), b("1"));
            t2.put(b("b"), b("2"));
            t1.commit().unwrap();
            t2.commit().unwrap();
            // A transaction begun after a commit does not conflict with it.
            let t3 = store.begin().unwrap();
            t3.put(b("a"), b("3"));
            t3.commit().unwrap();
            // Reading a key someone else changed is fine (write-write only).
            let t4 = store.begin().unwrap();
            let _ = t4.get(b"a").unwrap();
            commit_puts(store, &[("a", "4")]);
            t4.put(b("c"), b("4"));
            t4.commit().unwrap();
        });
    }

    #[test]
    fn finished_transactions_cannot_commit_again() {
        let store = Store::in_memory();
        let txn = store.begin().unwrap();
        txn.commit().unwrap(); // read-only commit is fine
        assert!(matches!(txn.commit(), Err(Error::Storage(_))));
        let txn = store.begin().unwrap();
        txn.put(b("k"), b("v"));
        txn.rollback();
        assert!(txn.commit().is_err());
        assert_eq!(store.begin().unwrap().get(b"k").unwrap(), None);
    }

    #[test]
    fn savepoint_rollback_undoes_only_later_writes() {
        each_store(|store| {
            commit_puts(store, &[("base", "0")]);
            let txn = store.begin().unwrap();
            txn.put(b("a"), b("1"));
            let sp1 = txn.savepoint();
            txn.put(b("a"), b("2"));
            txn.put(b("b"), b("2"));
            txn.delete(b("base"));
            let sp2 = txn.savepoint();
            txn.put(b("c"), b("3"));
            txn.rollback_to(sp2);
            assert_eq!(txn.get(b"c").unwrap(), None);
            assert_eq!(txn.get(b"b").unwrap(), Some(b("2")));
            txn.rollback_to(sp1);
            assert_eq!(txn.get(b"a").unwrap(), Some(b("1")));
            assert_eq!(txn.get(b"b").unwrap(), None);
            assert_eq!(txn.get(b"base").unwrap(), Some(b("0")));
            // Writes after a rollback_to are kept and committed.
            txn.put(b("d"), b("4"));
            txn.commit().unwrap();
            let check = store.begin().unwrap();
            assert_eq!(
                scan_str(&check, "", "", 10, false),
                [("a", "1"), ("base", "0"), ("d", "4")]
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            );
        });
    }

    #[test]
    fn savepoint_rollback_to_empty_buffer() {
        let store = Store::in_memory();
        let txn = store.begin().unwrap();
        let sp = txn.savepoint();
        txn.put(b("a"), b("1"));
        txn.rollback_to(sp);
        assert!(txn.is_empty());
    }

    #[test]
    fn scan_merges_buffer_over_snapshot() {
        each_store(|store| {
            commit_puts(
                store,
                &[("a", "s"), ("b", "s"), ("c", "s"), ("d", "s"), ("e", "s")],
            );
            let txn = store.begin().unwrap();
            txn.delete(b("b"));
            txn.put(b("c"), b("t"));
            txn.put(b("bb"), b("t"));
            txn.delete(b("zz")); // deleting a missing key is harmless
            txn.put(b("f"), b("t"));
            let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
                v.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            };
            assert_eq!(
                scan_str(&txn, "", "", 100, false),
                pairs(&[
                    ("a", "s"),
                    ("bb", "t"),
                    ("c", "t"),
                    ("d", "s"),
                    ("e", "s"),
                    ("f", "t")
                ])
            );
            assert_eq!(
                scan_str(&txn, "", "", 100, true),
                pairs(&[
                    ("f", "t"),
                    ("e", "s"),
                    ("d", "s"),
                    ("c", "t"),
                    ("bb", "t"),
                    ("a", "s")
                ])
            );
            assert_eq!(
                scan_str(&txn, "b", "d", 100, false),
                pairs(&[("bb", "t"), ("c", "t")])
            );
            assert_eq!(
                scan_str(&txn, "a", "e", 2, true),
                pairs(&[("d", "s"), ("c", "t")])
            );
            assert_eq!(
                scan_str(&txn, "a", "", 3, false),
                pairs(&[("a", "s"), ("bb", "t"), ("c", "t")])
            );
            assert!(scan_str(&txn, "a", "e", 0, false).is_empty());
            assert!(scan_str(&txn, "e", "a", 10, false).is_empty());
        });
    }

    #[test]
    fn scan_limit_is_filled_past_buffered_deletes() {
        each_store(|store| {
            let keys: Vec<(String, String)> = (0..20)
                .map(|i| (format!("k{i:02}"), "v".to_string()))
                .collect();
            let refs: Vec<(&str, &str)> =
                keys.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            commit_puts(store, &refs);
            let txn = store.begin().unwrap();
            for i in 0..10 {
                txn.delete(format!("k{i:02}").into_bytes());
            }
            let got = scan_str(&txn, "k", "l", 3, false);
            assert_eq!(
                got.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
                ["k10", "k11", "k12"]
            );
            for i in 17..20 {
                txn.delete(format!("k{i:02}").into_bytes());
            }
            let got = scan_str(&txn, "k", "l", 2, true);
            assert_eq!(
                got.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
                ["k16", "k15"]
            );
        });
    }

    /// Random puts/deletes/scans checked against a plain BTreeMap model.
    #[test]
    fn scan_matches_model_randomized() {
        let store = Store::in_memory();
        let mut rng = TestRng::new(7);
        let key = |rng: &mut TestRng| vec![b'a' + rng.below(4) as u8, b'a' + rng.below(4) as u8];
        for round in 0..200 {
            let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
            let base = store.begin().unwrap();
            for (k, v) in base.scan(b"", b"", usize::MAX, false).unwrap() {
                model.insert(k, v);
            }
            let txn = store.begin().unwrap();
            for i in 0..rng.below(12) {
                let k = key(&mut rng);
                if rng.below(3) == 0 {
                    txn.delete(k.clone());
                    model.remove(&k);
                } else {
                    let v = format!("{round}.{i}").into_bytes();
                    txn.put(k.clone(), v.clone());
                    model.insert(k, v);
                }
            }
            for _ in 0..5 {
                let (mut s, mut e) = (key(&mut rng), key(&mut rng));
                if s > e {
                    std::mem::swap(&mut s, &mut e);
                }
                if rng.below(4) == 0 {
                    e.clear(); // unbounded
                }
                let limit = rng.below(6) as usize;
                let reverse = rng.below(2) == 0;
                let got = txn.scan(&s, &e, limit, reverse).unwrap();
                let in_range = model
                    .iter()
                    .filter(|(k, _)| **k >= s && (e.is_empty() || **k < e))
                    .map(|(k, v)| (k.clone(), v.clone()));
                let want: Vec<_> = if reverse {
                    in_range.rev().take(limit).collect()
                } else {
                    in_range.take(limit).collect()
                };
                assert_eq!(
                    got, want,
                    "round {round} scan {s:?}..{e:?} limit {limit} rev {reverse}"
                );
                // The lending scan sees the same pairs, and stops when told.
                let mut lent = Vec::new();
                txn.scan_visit(&s, &e, &mut |k, v| {
                    if lent.len() < limit {
                        lent.push((k.to_vec(), v.to_vec()));
                    }
                    lent.len() < limit
                })
                .unwrap();
                if !reverse {
                    assert_eq!(lent, got, "round {round} scan_visit {s:?}..{e:?} limit {limit}");
                }
            }
            txn.commit().unwrap();
        }
    }

    /// A KV whose writes take a while (like a durable object write) and are counted.
    struct SlowKv {
        inner: MemKv,
        writes: std::sync::atomic::AtomicUsize,
        fail: std::sync::atomic::AtomicBool,
    }

    impl Kv for SlowKv {
        fn snapshot(&self) -> Result<Box<dyn Snapshot>> {
            self.inner.snapshot()
        }
        fn write(&self, batch: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<()> {
            std::thread::sleep(std::time::Duration::from_millis(5));
            self.writes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(Error::Storage("injected".into()));
            }
            self.inner.write(batch)
        }
    }

    /// Records each observed commit: (version, horizon, writes).
    #[derive(Default)]
    struct Seen(Mutex<Vec<(u64, u64, Vec<(Vec<u8>, Option<Vec<u8>>)>)>>);

    impl CommitObserver for Seen {
        fn committed(&self, version: u64, horizon: u64, writes: &[(Vec<u8>, Option<Vec<u8>>)]) {
            self.0.lock().push((version, horizon, writes.to_vec()));
        }
    }

    /// Concurrent commits share KV writes, yet each keeps its own version, observer call and
    /// conflict check: two commits of one group writing the same key cannot both succeed.
    #[test]
    fn concurrent_commits_are_grouped_into_fewer_writes() {
        let kv = Arc::new(SlowKv { inner: MemKv::new(), writes: Default::default(), fail: Default::default() });
        let store = Store::new(kv.clone());
        let seen = Arc::new(Seen::default());
        store.set_commit_observer(seen.clone());
        let (threads, per_thread) = (8, 20);
        let shared_wins = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for t in 0..threads {
                let (store, shared_wins) = (&store, &shared_wins);
                s.spawn(move || {
                    for i in 0..per_thread {
                        let txn = store.begin().unwrap();
                        txn.put(format!("k{t}-{i}").into_bytes(), b("v"));
                        txn.commit().unwrap();
                        // Every thread also races for one key from one snapshot each round.
                        let txn = store.begin().unwrap();
                        let n: u64 = txn.get(b"hot").unwrap().map_or(0, |v| String::from_utf8(v).unwrap().parse().unwrap());
                        txn.put(b("hot"), (n + 1).to_string().into_bytes());
                        match txn.commit() {
                            Ok(()) => {
                                shared_wins.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            }
                            Err(Error::WriteConflict) => {}
                            Err(e) => panic!("{e}"),
                        }
                    }
                });
            }
        });
        let wins = shared_wins.load(std::sync::atomic::Ordering::SeqCst);
        let commits = threads * per_thread + wins;
        let writes = kv.writes.load(std::sync::atomic::Ordering::SeqCst);
        assert!(writes < commits, "{writes} KV writes for {commits} commits: nothing was grouped");
        let txn = store.begin().unwrap();
        for t in 0..threads {
            for i in 0..per_thread {
                assert!(txn.get(format!("k{t}-{i}").as_bytes()).unwrap().is_some());
            }
        }
        // No lost update on the hot key: its value counts the commits that succeeded.
        assert_eq!(String::from_utf8(txn.get(b"hot").unwrap().unwrap()).unwrap(), wins.to_string());
        // One observer call per commit, versions 1, 2, 3, … in order.
        let seen = seen.0.lock();
        assert_eq!(seen.len(), commits);
        assert!(seen.iter().enumerate().all(|(i, (v, _, _))| *v == i as u64 + 1));
        drop(txn);
        // A failed group write fails every commit of the group and applies none of them.
        kv.fail.store(true, std::sync::atomic::Ordering::SeqCst);
        std::thread::scope(|s| {
            for t in 0..4 {
                let store = &store;
                s.spawn(move || {
                    let txn = store.begin().unwrap();
                    txn.put(format!("lost{t}").into_bytes(), b("v"));
                    assert!(matches!(txn.commit(), Err(Error::Storage(_))));
                });
            }
        });
        kv.fail.store(false, std::sync::atomic::Ordering::SeqCst);
        let txn = store.begin().unwrap();
        assert!((0..4).all(|t| txn.get(format!("lost{t}").as_bytes()).unwrap().is_none()));
    }

    /// Many threads doing read-modify-write increments with retry on
    /// conflict: if conflict detection missed anything, updates would be lost.
    #[test]
    fn concurrent_increments_lose_no_updates() {
        let dir = tempfile::tempdir().unwrap();
        for store in [Store::in_memory(), Store::open(dir.path()).unwrap()] {
            let threads = 4;
            let per_thread = 25;
            let conflicts = std::sync::atomic::AtomicUsize::new(0);
            std::thread::scope(|s| {
                for _ in 0..threads {
                    s.spawn(|| {
                        for _ in 0..per_thread {
                            loop {
                                let txn = store.begin().unwrap();
                                let n: u64 = txn
                                    .get(b"counter")
                                    .unwrap()
                                    .map(|v| String::from_utf8(v).unwrap().parse().unwrap())
                                    .unwrap_or(0);
                                std::thread::yield_now();
                                txn.put(b("counter"), (n + 1).to_string().into_bytes());
                                match txn.commit() {
                                    Ok(()) => break,
                                    Err(Error::WriteConflict) => {
                                        conflicts
                                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                    }
                                    Err(e) => panic!("{e}"),
                                }
                            }
                        }
                    });
                }
            });
            let total = store.begin().unwrap().get(b"counter").unwrap().unwrap();
            assert_eq!(
                String::from_utf8(total).unwrap(),
                (threads * per_thread).to_string()
            );
            assert_eq!(
                store.tracked_commits(),
                (0, 0),
                "bookkeeping pruned after all txns end"
            );
        }
    }

    #[test]
    fn commit_log_is_pruned_to_live_transactions() {
        let store = Store::in_memory();
        let old = store.begin().unwrap();
        commit_puts(&store, &[("a", "1")]);
        commit_puts(&store, &[("b", "1")]);
        // `old` could still conflict with both commits, so they are kept.
        assert_eq!(store.tracked_commits(), (1, 2));
        let mid = store.begin().unwrap();
        drop(old); // dropping unregisters, like rollback
        assert_eq!(store.tracked_commits(), (1, 0));
        commit_puts(&store, &[("a", "2")]);
        assert_eq!(store.tracked_commits(), (1, 1));
        mid.put(b("a"), b("3"));
        assert_eq!(mid.commit(), Err(Error::WriteConflict));
        assert_eq!(store.tracked_commits(), (0, 0));
    }

    #[test]
    fn store_data_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            commit_puts(&store, &[("a", "1"), ("b", "2")]);
            let txn = store.begin().unwrap();
            txn.delete(b("a"));
            txn.commit().unwrap();
            let uncommitted = store.begin().unwrap();
            uncommitted.put(b("c"), b("3"));
        }
        let store = Store::open(dir.path()).unwrap();
        let txn = store.begin().unwrap();
        assert_eq!(
            scan_str(&txn, "", "", 10, false),
            [("b".to_string(), "2".to_string())]
        );
    }

    #[test]
    fn alloc_ids_is_monotonic_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            assert_eq!(store.alloc_ids(b"t1", 1).unwrap(), 1);
            assert_eq!(store.alloc_ids(b"t1", 10).unwrap(), 2);
            assert_eq!(store.alloc_ids(b"t1", 1).unwrap(), 12);
            assert_eq!(
                store.alloc_ids(b"t2", 5).unwrap(),
                1,
                "counters are independent"
            );
            // Ids are not rolled back with a transaction.
            let txn = store.begin().unwrap();
            assert_eq!(store.alloc_ids(b"t1", 1).unwrap(), 13);
            txn.rollback();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.alloc_ids(b"t1", 1).unwrap(), 14);
        store.counter_rebase(b"t1", 100).unwrap();
        assert_eq!(store.alloc_ids(b"t1", 1).unwrap(), 101);
        store.counter_rebase(b"t1", 50).unwrap(); // never goes backwards
        assert_eq!(store.alloc_ids(b"t1", 2).unwrap(), 102);
        store.counter_rebase(b"t3", 7).unwrap();
        assert_eq!(store.alloc_ids(b"t3", 1).unwrap(), 8);
        assert_eq!(store.alloc_ids(b"t2", 0).unwrap(), 6);
        assert!(store.alloc_ids(b"t2", u64::MAX).is_err());
    }

    #[test]
    fn alloc_ids_concurrently_never_overlap() {
        let store = Store::in_memory();
        let mut all: Vec<u64> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        (0..50)
                            .map(|_| store.alloc_ids(b"c", 3).unwrap())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        all.sort();
        assert_eq!(all, (0..200).map(|i| 1 + 3 * i).collect::<Vec<_>>());
    }

    #[test]
    fn txn_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Txn>();
        assert_send_sync::<Store>();
    }

    #[test]
    fn the_observer_sees_exactly_the_committed_batches() {
        each_store(|store| {
            let seen = Arc::new(Seen::default());
            store.set_commit_observer(seen.clone());
            let a = store.begin().unwrap();
            let b = store.begin().unwrap();
            a.put(b"k".to_vec(), b"1".to_vec());
            let sp = a.savepoint();
            a.put(b"gone".to_vec(), b"x".to_vec());
            a.rollback_to(sp);
            a.delete(b"old".to_vec());
            a.commit().unwrap();
            b.put(b"k".to_vec(), b"2".to_vec());
            assert!(b.commit().is_err(), "write conflict");
            let c = store.begin().unwrap();
            c.put(b"never".to_vec(), b"x".to_vec());
            c.rollback();
            let d = store.begin().unwrap();
            d.put(b"later".to_vec(), b"y".to_vec());
            d.commit().unwrap();
            let e = store.begin().unwrap();
            let seen = seen.0.lock();
            assert_eq!(seen.len(), 2, "conflicted and rolled-back transactions are not seen");
            assert_eq!(seen[0].2, vec![(b"k".to_vec(), Some(b"1".to_vec())), (b"old".to_vec(), None)]);
            // Each commit's version is the start version of the transactions that first see it.
            assert_eq!(seen[1].2, vec![(b"later".to_vec(), Some(b"y".to_vec()))]);
            assert!(a.start_version() < seen[0].0 && seen[0].0 < seen[1].0);
            assert_eq!(e.start_version(), seen[1].0);
            // The horizon is the oldest live start: `b` (started with `a`) was live at the first
            // commit; at the second only `d` itself, which started after the first.
            assert_eq!(seen[0].1, a.start_version());
            assert_eq!(seen[1].1, d.start_version());
        });
    }
}
