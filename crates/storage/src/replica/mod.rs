//! A node's copy of a cluster's database: the [`Kv`] of `embedb serve --cluster`.
//!
//! A cluster keeps its data in one SlateDB database on object storage, written by one node at a
//! time (the writer, which holds the lease). Every node, writer or reader, also keeps a full copy
//! in a local redb file and answers every read from it: a statement needs a snapshot that does
//! not move under it, which SlateDB's reader handle does not offer, and local reads cost what
//! they cost on a single node.
//!
//! The copies follow the shared database through a commit log kept inside it:
//!
//! 1. The writer's [`Kv::write`] turns a commit's batch into one SlateDB write batch holding the
//!    rows themselves, a log entry `mCL:e{seq}` (the commit time, the log's running checksum,
//!    then the batch as the WAL encodes it) and the head `mCL:head` (`seq`, the commit time and
//!    the checksum). It returns only once that batch is durable in the bucket, then applies the
//!    batch to its own copy with the applied mark `mCL:applied` (`seq` and the checksum).
//!    A write that fails, or outlives the node's writer role, leaves its outcome unknown: the
//!    node stops writing at once, so no later commit can reuse its `seq`, and it learns the
//!    outcome from the log like any reader.
//! 2. A reader opens the same database with SlateDB's `DbReader`, which follows the writer's
//!    WAL. [`ReplicaKv::follow`] reads the entries after its applied mark, in order, and hands
//!    each to [`Store::apply_replicated`], which applies it to the copy and passes it to the
//!    commit observer (search indexes) exactly like a local commit.
//! 3. A copy that is empty, or behind the oldest entry kept, is first filled by copying the
//!    whole shared database ([`ReplicaKv::open`]); the entries after the head seen before the
//!    copy are then replayed, so keys the copy caught newer than that head end where they belong.
//!
//! Roles change at run time: [`ReplicaKv::become_writer`] opens the database as its writer, which
//! fences the previous writer in SlateDB (its later writes fail), then replays what it has not
//! applied; [`ReplicaKv::become_reader`] goes back to following. A writer also refuses to commit
//! once its lease deadline ([`ReplicaKv::set_lease_deadline`]) has passed, so a writer that was
//! stopped and resumes commits nothing even before SlateDB fences it.
//!
//! The running checksum chains every entry to the one before it. A copy that ever applied
//! something the log does not hold finds out at the next entry it reads: it stops serving,
//! and when the node starts again it copies the whole database instead of replaying.
//!
//! Keys under `mSI:` and `mCL:` belong to the node (its search-index instance token, its applied
//! mark): they are written to the copy only, never shipped, and never copied from the shared
//! database.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use slatedb::config::{DbReaderOptions, WriteOptions};
use slatedb::object_store::ObjectStore;
use slatedb::{Db, DbReader, DbReaderMode, WriteBatch};

use crate::kv::{Kv, Snapshot};
use crate::slate_kv::{err, open_writer_db, run, Runtime};
use crate::wal::{self, Batch};
use crate::{Error, RedbKv, Result, Store};

mod backup;
pub use backup::{restore_clone, Copied};

/// Prefix of log entries: `mCL:e` + seq (8 bytes, big-endian).
const LOG_PREFIX: &[u8] = b"mCL:e";
/// The newest entry's seq and commit time (ms since the epoch), both 8 bytes big-endian.
const HEAD_KEY: &[u8] = b"mCL:head";
/// In a node's copy: the seq of the last entry applied to it, and the log's checksum after it.
const APPLIED_KEY: &[u8] = b"mCL:applied";
/// In a node's copy: set when the copy was found to differ from the log; the next start copies
/// the whole database.
const RECOPY_KEY: &[u8] = b"mCL:recopy";
/// How often the writer flushes its memtable (see `ReplicaKv::flush_memtable_now_and_then`).
/// (Every second cost commits a few ms of latency on SeaweedFS; every 5 s bounds the replay to
/// about a second of failover time under a full write load.)
const MEMTABLE_FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(5);
/// Keys that belong to one node and are never shipped.
const NODE_LOCAL: [&[u8]; 2] = [b"mSI:", b"mCL:"];

/// Entries kept in the shared log; a reader further behind copies the whole database again.
const LOG_KEPT: u64 = 200_000;
/// How often a writer trims the log (every this many commits, the same number of old entries).
const TRIM_EVERY: u64 = 1024;
/// How often a reader's SlateDB handle looks for new WAL objects.
const READER_POLL: Duration = Duration::from_millis(20);
/// Entries applied per step of [`ReplicaKv::follow`].
const FOLLOW_STEP: usize = 512;


fn log_key(seq: u64) -> Vec<u8> {
    let mut k = LOG_PREFIX.to_vec();
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// Keys that belong to one node (its search-index token, its place in the log): never shipped,
/// copied or backed up.
pub fn is_node_local(key: &[u8]) -> bool {
    NODE_LOCAL.iter().any(|p| key.starts_with(p))
}

/// The log's running checksum after entry `seq` holding `encoded` (a WAL-encoded batch), when
/// it was `prev` before it.
fn chain_after(prev: u64, seq: u64, encoded: &[u8]) -> u64 {
    let half = |init: u32| {
        let mut h = crc32fast::Hasher::new_with_initial(init);
        h.update(&prev.to_be_bytes());
        h.update(&seq.to_be_bytes());
        h.update(encoded);
        h.finalize() as u64
    };
    (half(0) << 32) | half(0x9e37_79b9)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn be_u64(bytes: &[u8]) -> u64 {
    bytes.get(..8).map_or(0, |b| u64::from_be_bytes(b.try_into().expect("8 bytes")))
}

/// Which handle on the shared database this node holds.
enum Role {
    /// Following the writer (SlateDB's reader handle).
    Reader(Arc<DbReader>),
    /// The writer: SlateDB's writer handle; `next` is the seq the next commit gets.
    Writer(Arc<Db>),
    /// Fenced or closed: neither reads new entries nor writes.
    Idle,
}

/// The writer's or a reader's handle, for the reads both can do.
#[derive(Clone)]
enum Shared {
    Reader(Arc<DbReader>),
    Writer(Arc<Db>),
}

impl Shared {
    async fn get(&self, key: &[u8]) -> std::result::Result<Option<Vec<u8>>, slatedb::Error> {
        let v = match self {
            Shared::Reader(r) => r.get(key).await?,
            Shared::Writer(w) => w.get(key).await?,
        };
        Ok(v.map(|b| b.to_vec()))
    }

    /// Up to `limit` pairs of [from, to).
    async fn scan(&self, from: Vec<u8>, to: Vec<u8>, limit: usize) -> std::result::Result<Vec<(Vec<u8>, Vec<u8>)>, slatedb::Error> {
        let mut it = match self {
            Shared::Reader(r) => r.scan(from..to).await?,
            Shared::Writer(w) => w.scan(from..to).await?,
        };
        let mut out = Vec::new();
        while out.len() < limit {
            match it.next().await? {
                Some(kv) => out.push((kv.key.to_vec(), kv.value.to_vec())),
                None => break,
            }
        }
        Ok(out)
    }
}

/// Where this node's copy stands against the shared log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// The last entry applied to this node's copy.
    pub applied: u64,
    /// The log's running checksum after that entry.
    pub checksum: u64,
    /// The newest entry this node has seen in the shared log.
    pub head: u64,
    /// Milliseconds since the oldest entry not yet applied was committed (0 when caught up).
    pub lag_ms: u64,
}

/// The [`Kv`] of a cluster node (see the module docs).
pub struct ReplicaKv {
    local: RedbKv,
    runtime: Arc<Runtime>,
    objects: Arc<dyn ObjectStore>,
    path: String,
    role: RwLock<Role>,
    /// One shipped commit at a time (the store's commit lock covers transactions; this also
    /// covers writes made outside them).
    writing: Mutex<()>,
    /// One applier at a time: the follow thread, or a promotion's catch-up.
    following: Mutex<()>,
    applied: AtomicU64,
    /// The log's running checksum after `applied` (changed together with it).
    chain: AtomicU64,
    /// The copy was found to differ from the log: the next start copies the database.
    recopy: AtomicBool,
    /// The newest head seen, and the commit time of the first entry not yet applied.
    head: AtomicU64,
    behind_since_ms: AtomicU64,
    /// The writer's lease deadline, in ms since `epoch`; 0 = no lease checks (tests).
    lease_deadline: AtomicU64,
    epoch: Instant,
    /// When the writer last flushed its memtable (ms since the epoch).
    memtable_flushed_ms: AtomicU64,
    /// Entries the writer keeps in the shared log ([`LOG_KEPT`]; small in tests).
    log_kept: AtomicU64,
    /// Why this node must not serve or write until it starts again: a shipped commit could not
    /// be applied to the copy, or the copy differs from the log.
    broken: Mutex<Option<String>>,
}

fn not_writer(why: &str) -> Error {
    Error::NotWriter(format!("this node is not the cluster's writer ({why}); the statement changed nothing"))
}

impl ReplicaKv {
    /// Opens this node's copy at `local_path`, for the shared database at `path` in `objects`.
    /// The node then opens the shared database as a reader ([`ReplicaKv::start_reading`] and
    /// [`ReplicaKv::bootstrap`]) or as its writer ([`ReplicaKv::become_writer`]).
    pub fn open(local_path: &std::path::Path, objects: Arc<dyn ObjectStore>, path: &str) -> Result<Arc<ReplicaKv>> {
        let runtime = Runtime::start("embedb-replica")?;
        let local = RedbKv::open(local_path)?;
        let snap = local.snapshot()?;
        let mark = snap.get(APPLIED_KEY)?.unwrap_or_default();
        let (applied, chain) = (be_u64(&mark), be_u64(mark.get(8..).unwrap_or(&[])));
        let recopy = snap.get(RECOPY_KEY)?.is_some();
        drop(snap);
        let kv = Arc::new(ReplicaKv {
            local,
            runtime: Arc::new(runtime),
            objects,
            path: path.to_string(),
            role: RwLock::new(Role::Idle),
            writing: Mutex::new(()),
            following: Mutex::new(()),
            applied: AtomicU64::new(applied),
            chain: AtomicU64::new(chain),
            recopy: AtomicBool::new(recopy),
            head: AtomicU64::new(applied),
            behind_since_ms: AtomicU64::new(0),
            lease_deadline: AtomicU64::new(0),
            epoch: Instant::now(),
            memtable_flushed_ms: AtomicU64::new(now_ms()),
            log_kept: AtomicU64::new(LOG_KEPT),
            broken: Mutex::new(None),
        });
        Ok(kv)
    }

    /// Opens the shared database as a reader, waiting up to `wait` for a writer to create it.
    pub fn start_reading(&self, wait: Duration) -> Result<()> {
        let until = Instant::now() + wait;
        loop {
            match self.open_reader() {
                Ok(r) => {
                    *self.role.write() = Role::Reader(r);
                    return Ok(());
                }
                Err(e) if Instant::now() < until => {
                    tracing::debug!("waiting for the shared database: {e}");
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn open_reader(&self) -> Result<Arc<DbReader>> {
        let (objects, path) = (self.objects.clone(), self.path.clone());
        let options = DbReaderOptions { manifest_poll_interval: READER_POLL, ..DbReaderOptions::default() };
        let r = run(&self.runtime, async move { DbReader::open(path, objects, DbReaderMode::ManagedCheckpoint, options).await }).map_err(err)?;
        Ok(Arc::new(r))
    }

    fn open_writer(&self) -> Result<Arc<Db>> {
        Ok(Arc::new(open_writer_db(&self.runtime, self.objects.clone(), &self.path)?))
    }

    fn shared(&self) -> Option<Shared> {
        match &*self.role.read() {
            Role::Reader(r) => Some(Shared::Reader(r.clone())),
            Role::Writer(w) => Some(Shared::Writer(w.clone())),
            Role::Idle => None,
        }
    }

    /// Whether this node holds neither handle (fenced or stepped down, not yet following).
    pub fn is_idle(&self) -> bool {
        matches!(&*self.role.read(), Role::Idle)
    }

    /// Whether this node holds the writer's handle.
    pub fn is_writer(&self) -> bool {
        matches!(&*self.role.read(), Role::Writer(_))
    }

    /// Where the copy stands.
    pub fn progress(&self) -> Progress {
        let (applied, head) = (self.applied.load(Ordering::SeqCst), self.head.load(Ordering::SeqCst));
        let since = self.behind_since_ms.load(Ordering::SeqCst);
        let lag_ms = if applied >= head || since == 0 { 0 } else { now_ms().saturating_sub(since) };
        Progress { applied, checksum: self.chain.load(Ordering::SeqCst), head: head.max(applied), lag_ms }
    }

    /// Commits are refused from `deadline` on (the writer's lease); None = never.
    pub fn set_lease_deadline(&self, deadline: Option<Instant>) {
        // Stored plus one, so that 0 can mean "none".
        let ms = deadline.map_or(0, |d| d.saturating_duration_since(self.epoch).as_millis() as u64 + 1);
        self.lease_deadline.store(ms, Ordering::SeqCst);
    }

    /// Whether the lease deadline has passed (never, without one).
    pub fn lease_expired(&self) -> bool {
        let d = self.lease_deadline.load(Ordering::SeqCst);
        d != 0 && self.epoch.elapsed().as_millis() as u64 + 1 >= d
    }

    /// Fills an empty copy (or one behind the oldest kept entry) from the shared database, before
    /// anything reads it: afterwards only log entries are needed. Returns whether it copied.
    pub fn bootstrap(&self) -> Result<bool> {
        let shared = self.shared().ok_or_else(|| Error::Storage("no shared database open".into()))?;
        self.catch_up(&shared)
    }

    /// [`ReplicaKv::bootstrap`] against `shared`. Nothing observes what it applies.
    fn catch_up(&self, shared: &Shared) -> Result<bool> {
        let shared = shared.clone();
        let applied = self.applied.load(Ordering::SeqCst);
        let (head, _, head_chain) = self.read_head(&shared)?;
        let recopy = self.recopy.load(Ordering::SeqCst);
        if !recopy {
            if applied == head && self.chain.load(Ordering::SeqCst) == head_chain {
                return Ok(false);
            }
            if applied > head {
                return Err(Error::Corrupt(format!(
                    "this node's copy is at commit {applied}, ahead of the shared database ({head}): it belongs to another database; use an empty data dir"
                )));
            }
            if applied < head && self.get_shared(&shared, &log_key(applied + 1))?.is_some() {
                while self.follow_with(&shared, None)? > 0 {}
                return Ok(false);
            }
        }
        tracing::info!(applied, head, recopy, "copying the whole database into this node's copy");
        // Clear what the copy holds (except the node's own keys), then copy every shared key.
        let snap = self.local.snapshot()?;
        let mut from = Vec::new();
        loop {
            let chunk = snap.scan(&from, b"", 4096, false)?;
            let Some((last, _)) = chunk.last() else { break };
            from = last.clone();
            from.push(0);
            let deletes: Batch = chunk.into_iter().filter(|(k, _)| !is_node_local(k)).map(|(k, _)| (k, None)).collect();
            self.local.write(&deletes)?;
        }
        drop(snap);
        let mut from = Vec::new();
        let mut copied = 0u64;
        loop {
            let (s, f) = (shared.clone(), from.clone());
            let chunk = run(&self.runtime, async move { s.scan(f, vec![0xff; 16], 4096).await }).map_err(err)?;
            let Some((last, _)) = chunk.last() else { break };
            from = last.clone();
            from.push(0);
            let puts: Batch = chunk.into_iter().filter(|(k, _)| !is_node_local(k)).map(|(k, v)| (k, Some(v))).collect();
            copied += puts.len() as u64;
            self.local.write(&puts)?;
        }
        let mut mark = head.to_be_bytes().to_vec();
        mark.extend_from_slice(&head_chain.to_be_bytes());
        self.local.write(&[(APPLIED_KEY.to_vec(), Some(mark)), (RECOPY_KEY.to_vec(), None)])?;
        self.applied.store(head, Ordering::SeqCst);
        self.chain.store(head_chain, Ordering::SeqCst);
        self.recopy.store(false, Ordering::SeqCst);
        tracing::info!(keys = copied, at = head, "copied; replaying the commits made meanwhile");
        // Entries committed during the copy: applied without a store (nothing observes yet).
        while self.follow_with(&shared, None)? > 0 {}
        Ok(true)
    }

    fn get_shared(&self, shared: &Shared, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let (s, k) = (shared.clone(), key.to_vec());
        run(&self.runtime, async move { s.get(&k).await }).map_err(err)
    }

    /// (seq, commit time, checksum) of the shared log's newest entry.
    fn read_head(&self, shared: &Shared) -> Result<(u64, u64, u64)> {
        let head = self.get_shared(shared, HEAD_KEY)?.unwrap_or_default();
        let (seq, at, chain) = (be_u64(&head), be_u64(head.get(8..).unwrap_or(&[])), be_u64(head.get(16..).unwrap_or(&[])));
        self.head.fetch_max(seq, Ordering::SeqCst);
        Ok((seq, at, chain))
    }

    /// Why this node may not serve, if it may not.
    fn broken(&self) -> Option<Error> {
        self.broken.lock().as_ref().map(|why| Error::Storage(why.clone()))
    }

    /// The copy holds something the log does not (found at entry `seq`): stop serving, and
    /// copy the whole database at the next start.
    fn diverged(&self, seq: u64) -> Error {
        let why = format!(
            "this node's copy differs from the cluster's commit log at commit {seq}; the node stops serving: restart it and it copies the database again"
        );
        tracing::error!("{why}");
        self.recopy.store(true, Ordering::SeqCst);
        let _ = self.local.write(&[(RECOPY_KEY.to_vec(), Some(vec![1]))]);
        *self.broken.lock() = Some(why.clone());
        self.stop_writing();
        Error::Corrupt(why)
    }

    /// Applies the shared log's entries after the applied mark, through `store` (so its commit
    /// observer sees them). Returns how many were applied; 0 when caught up.
    /// `seen` is shown each applied batch (the engine reloads what it caches from it).
    pub fn follow(&self, store: &Store, seen: &mut dyn FnMut(&[(Vec<u8>, Option<Vec<u8>>)])) -> Result<usize> {
        let _one = self.following.lock();
        let Some(shared) = self.shared() else { return Ok(0) };
        self.follow_with(&shared, Some((store, seen)))
    }

    fn follow_with(&self, shared: &Shared, mut store: Option<(&Store, &mut dyn FnMut(&[(Vec<u8>, Option<Vec<u8>>)]))>) -> Result<usize> {
        if let Some(e) = self.broken() {
            return Err(e);
        }
        let applied = self.applied.load(Ordering::SeqCst);
        // The head first: the handle's view only moves forward, so entries up to this head are
        // in the scan below unless they were trimmed.
        let (head, _, _) = self.read_head(shared)?;
        if head <= applied {
            self.behind_since_ms.store(0, Ordering::SeqCst);
            return Ok(0);
        }
        let (s, from) = (shared.clone(), log_key(applied + 1));
        let entries = run(&self.runtime, async move { s.scan(from, log_key(u64::MAX), FOLLOW_STEP).await }).map_err(err)?;
        if entries.first().is_none_or(|(k, _)| be_u64(&k[LOG_PREFIX.len()..]) != applied + 1) {
            return Err(Error::Storage(format!(
                "this node's copy (commit {applied}) is behind the oldest commit the shared log keeps; restart the node to copy the database again"
            )));
        }
        let mut n = 0;
        for (key, value) in entries {
            let seq = be_u64(&key[LOG_PREFIX.len()..]);
            let expected = self.applied.load(Ordering::SeqCst) + 1;
            if seq != expected {
                return Err(Error::Storage(format!("the shared log skips from commit {} to {seq}", expected - 1)));
            }
            let committed_at = be_u64(&value);
            let encoded = value.get(16..).unwrap_or(&[]);
            let chain = chain_after(self.chain.load(Ordering::SeqCst), seq, encoded);
            if be_u64(value.get(8..).unwrap_or(&[])) != chain {
                return Err(self.diverged(seq));
            }
            let batch = wal::decode(encoded).ok_or_else(|| Error::Corrupt(format!("commit log entry {seq} is truncated")))?;
            self.head.fetch_max(seq, Ordering::SeqCst);
            if self.behind_since_ms.load(Ordering::SeqCst) == 0 {
                self.behind_since_ms.store(committed_at.max(1), Ordering::SeqCst);
            }
            match &mut store {
                Some((store, seen)) => {
                    store.apply_replicated(&batch, || self.write_local(seq, chain, &batch))?;
                    seen(&batch);
                }
                None => self.write_local(seq, chain, &batch)?,
            }
            // Published only now: whoever waits for this commit (a forwarded write's session)
            // finds it applied and already seen by the observer (search indexes, catalog).
            self.chain.store(chain, Ordering::SeqCst);
            self.applied.store(seq, Ordering::SeqCst);
            n += 1;
        }
        // The next entry's commit time is unknown until read: measure from now.
        self.behind_since_ms.store(if self.applied.load(Ordering::SeqCst) < self.head.load(Ordering::SeqCst) { now_ms() } else { 0 }, Ordering::SeqCst);
        Ok(n)
    }

    /// Writes commit `seq` into the copy, with the applied mark (not yet published).
    fn write_local(&self, seq: u64, chain: u64, batch: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<()> {
        // (A shipped batch holds no node-local keys; a writer's own batch keeps its own.)
        let mut local: Batch = batch.to_vec();
        let mut mark = seq.to_be_bytes().to_vec();
        mark.extend_from_slice(&chain.to_be_bytes());
        local.push((APPLIED_KEY.to_vec(), Some(mark)));
        self.local.write(&local)
    }

    /// Opens the shared database as its writer (fencing the previous one), applies the entries
    /// this copy lacks through `store`, and from then on ships commits. `at_start`: nothing
    /// observes the store yet, so a copy too far behind may be filled by copying.
    pub fn become_writer(&self, store: &Store, at_start: bool) -> Result<()> {
        let _one = self.following.lock();
        let db = self.open_writer()?;
        let shared = Shared::Writer(db.clone());
        let old = std::mem::replace(&mut *self.role.write(), Role::Idle);
        self.close_role(old);
        if at_start {
            self.catch_up(&shared)?;
        }
        while self.follow_with(&shared, Some((store, &mut |_: &[(Vec<u8>, Option<Vec<u8>>)]| {})))? > 0 {}
        let (head, _, head_chain) = self.read_head(&shared)?;
        if head != self.applied.load(Ordering::SeqCst) {
            return Err(Error::Storage(format!("after catching up, the copy is at {} but the log's head is {head}", self.applied.load(Ordering::SeqCst))));
        }
        if head_chain != self.chain.load(Ordering::SeqCst) {
            let _ = run(&self.runtime, async move { db.close().await });
            return Err(self.diverged(head));
        }
        *self.role.write() = Role::Writer(db);
        Ok(())
    }

    /// Gives up the writer's handle (lease lost, or fenced) and follows the new writer.
    pub fn become_reader(&self) -> Result<()> {
        let old = std::mem::replace(&mut *self.role.write(), Role::Idle);
        self.close_role(old);
        let r = self.open_reader()?;
        *self.role.write() = Role::Reader(r);
        Ok(())
    }

    /// Stops shipping at once (the lease is gone); the handle is closed in the background.
    pub fn stop_writing(&self) {
        let old = {
            let mut role = self.role.write();
            if !matches!(&*role, Role::Writer(_)) {
                return;
            }
            std::mem::replace(&mut *role, Role::Idle)
        };
        self.close_role(old);
    }

    fn close_role(&self, role: Role) {
        match role {
            Role::Writer(db) => {
                let _ = run(&self.runtime, async move { db.close().await });
            }
            Role::Reader(r) => {
                let _ = run(&self.runtime, async move { r.close().await });
            }
            Role::Idle => {}
        }
    }

    /// Ships one commit (see the module docs).
    fn ship(&self, db: &Arc<Db>, batch: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<()> {
        let _one = self.writing.lock();
        if self.lease_expired() {
            return Err(not_writer("its lease has expired"));
        }
        let seq = self.applied.load(Ordering::SeqCst) + 1;
        let shipped: Batch = batch.iter().filter(|(k, _)| !is_node_local(k)).cloned().collect();
        let mut wb = WriteBatch::new();
        for (k, v) in &shipped {
            match v {
                Some(v) => wb.put(k, v),
                None => wb.delete(k),
            }
        }
        let mut encoded = Vec::with_capacity(wal::encoded_len(&shipped));
        wal::encode(&shipped, &mut encoded);
        let chain = chain_after(self.chain.load(Ordering::SeqCst), seq, &encoded);
        let at = now_ms();
        let mut entry = Vec::with_capacity(16 + encoded.len());
        entry.extend_from_slice(&at.to_be_bytes());
        entry.extend_from_slice(&chain.to_be_bytes());
        entry.extend_from_slice(&encoded);
        wb.put(log_key(seq), entry);
        let mut head = seq.to_be_bytes().to_vec();
        head.extend_from_slice(&at.to_be_bytes());
        head.extend_from_slice(&chain.to_be_bytes());
        wb.put(HEAD_KEY, head);
        let (kept, every) = (self.log_kept.load(Ordering::Relaxed), TRIM_EVERY.min(self.log_kept.load(Ordering::Relaxed)));
        if seq % every == 0 && seq > kept {
            for old in (seq - kept).saturating_sub(every)..seq - kept {
                wb.delete(log_key(old));
            }
        }
        let handle = db.clone();
        let shipped_ok = run(&self.runtime, async move {
            let written = handle.write_with_options(wb, &WriteOptions::default()).await?;
            written.await_durable().await
        });
        // The copy takes the commit only while this node still holds the same writer's handle;
        // holding the role lock keeps a step-down (and the follower it starts) out meanwhile.
        let role = self.role.read();
        let still_writer = matches!(&*role, Role::Writer(d) if Arc::ptr_eq(d, db));
        if let Err(e) = shipped_ok {
            drop(role);
            self.stop_writing();
            return Err(match err(e) {
                // Fenced: a newer writer opened the database before this write; it is not there.
                fenced @ Error::NotWriter(_) => fenced,
                // The write may still have reached the bucket (or may yet): whether it did is
                // learned from the log, never guessed, so this node writes nothing more until it
                // has followed the log as a reader.
                other => undetermined(seq, &other.to_string()),
            });
        }
        if !still_writer {
            // Durable, but this node stepped down meanwhile: following the log applies it.
            return Err(undetermined(seq, "this node lost the writer role while the commit was written"));
        }
        self.head.fetch_max(seq, Ordering::SeqCst);
        if let Err(e) = self.write_local(seq, chain, batch) {
            // Durable in the shared database but not in the copy: this node must start again
            // (its copy then catches up from the log).
            let why = format!("commit {seq} is durable but this node's copy could not take it ({e}); the node stops serving: restart it");
            *self.broken.lock() = Some(why.clone());
            drop(role);
            self.stop_writing();
            return Err(Error::Storage(why));
        }
        self.chain.store(chain, Ordering::SeqCst);
        self.applied.store(seq, Ordering::SeqCst);
        self.flush_memtable_now_and_then(db);
        Ok(())
    }

    /// A writer that opens the database replays every WAL object written since the last
    /// memtable flush, and SlateDB flushes the memtable only once it is large (64 MiB): with
    /// small commits that is every WAL object since the database was made, and failover grew
    /// slower with every commit. Flushing it every [`MEMTABLE_FLUSH_EVERY`] (in the background;
    /// the compactor merges the small tables) bounds the replay to that much WAL.
    fn flush_memtable_now_and_then(&self, db: &Arc<Db>) {
        let now = now_ms();
        let last = self.memtable_flushed_ms.load(Ordering::SeqCst);
        if now.saturating_sub(last) < MEMTABLE_FLUSH_EVERY.as_millis() as u64
            || self.memtable_flushed_ms.compare_exchange(last, now, Ordering::SeqCst, Ordering::SeqCst).is_err()
        {
            return;
        }
        let db = db.clone();
        self.runtime.spawn(async move {
            let options = slatedb::config::FlushOptions { flush_type: slatedb::config::FlushType::MemTable };
            if let Err(e) = db.flush_with_options(options).await {
                tracing::debug!("flushing the memtable: {e}");
            }
        });
    }
}

fn undetermined(seq: u64, why: &str) -> Error {
    Error::Undetermined(format!(
        "the outcome of commit {seq} is unknown ({why}): it either took effect as a whole or not at all; check before retrying"
    ))
}

/// Index checkpoints beside the data in the bucket: `{path}/indexes/{file}`.
impl ReplicaKv {
    fn index_object(&self, rel: &str) -> slatedb::object_store::path::Path {
        slatedb::object_store::path::Path::from(format!("{}/indexes/{rel}", self.path))
    }

    /// Uploads the files under `dir` (a node's saved search indexes) that changed since the last
    /// upload, manifests last (a reader never finds a manifest naming files not there yet), and
    /// deletes objects of files no longer there. `sent` remembers (size, modified) per file.
    pub fn upload_index_files(&self, dir: &std::path::Path, sent: &mut std::collections::HashMap<String, (u64, std::time::SystemTime)>) -> Result<usize> {
        use slatedb::object_store::ObjectStoreExt;
        let mut files = Vec::new();
        collect_files(dir, dir, &mut files).map_err(|e| Error::Storage(format!("reading {}: {e}", dir.display())))?;
        // Data files first; manifests (`*.ann`) and tantivy's `meta.json` last.
        files.sort_by_key(|(rel, _)| rel.ends_with(".ann") || rel.ends_with("meta.json"));
        let mut uploaded = 0;
        for (rel, path) in &files {
            let meta = std::fs::metadata(path).map_err(|e| Error::Storage(e.to_string()))?;
            let stamp = (meta.len(), meta.modified().unwrap_or(std::time::UNIX_EPOCH));
            if sent.get(rel) == Some(&stamp) {
                continue;
            }
            let bytes = std::fs::read(path).map_err(|e| Error::Storage(format!("reading {}: {e}", path.display())))?;
            let (objects, at) = (self.objects.clone(), self.index_object(rel));
            run(&self.runtime, async move { objects.put(&at, bytes.into()).await }).map_err(|e| Error::Storage(format!("uploading an index checkpoint: {e}")))?;
            sent.insert(rel.clone(), stamp);
            uploaded += 1;
        }
        let gone: Vec<String> = sent.keys().filter(|k| !files.iter().any(|(rel, _)| rel == *k)).cloned().collect();
        for rel in gone {
            let (objects, at) = (self.objects.clone(), self.index_object(&rel));
            let _ = run(&self.runtime, async move { objects.delete(&at).await });
            sent.remove(&rel);
        }
        Ok(uploaded)
    }

    /// Downloads the index checkpoints in the bucket into `dir` (a node that joins with none).
    pub fn download_index_files(&self, dir: &std::path::Path) -> Result<usize> {
        use futures::TryStreamExt;
        use slatedb::object_store::ObjectStoreExt;
        let (objects, prefix) = (self.objects.clone(), self.index_object(""));
        let listed = run(&self.runtime, async move {
            let metas: Vec<_> = objects.list(Some(&prefix)).try_collect().await?;
            let mut out = Vec::new();
            for m in metas {
                let bytes = objects.get(&m.location).await?.bytes().await?;
                out.push((m.location.to_string(), bytes));
            }
            Ok::<_, slatedb::object_store::Error>(out)
        })
        .map_err(|e| Error::Storage(format!("downloading index checkpoints: {e}")))?;
        let base = format!("{}/indexes/", self.path.trim_matches('/'));
        let mut n = 0;
        for (location, bytes) in listed {
            let Some(rel) = location.strip_prefix(&base) else { continue };
            if rel.split('/').any(|part| part.is_empty() || part == "..") {
                continue;
            }
            let to = dir.join(rel);
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent).map_err(|e| Error::Storage(e.to_string()))?;
            }
            std::fs::write(&to, &bytes).map_err(|e| Error::Storage(format!("writing {}: {e}", to.display())))?;
            n += 1;
        }
        Ok(n)
    }
}

/// Every file under `dir` as (path relative to `base` with `/`, path), skipping temporaries.
fn collect_files(base: &std::path::Path, dir: &std::path::Path, out: &mut Vec<(String, std::path::PathBuf)>) -> std::io::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".tmp") || name.ends_with(".old") || name.ends_with(".lock") {
            continue;
        }
        if entry.file_type()?.is_dir() {
            collect_files(base, &path, out)?;
        } else if let Ok(rel) = path.strip_prefix(base) {
            out.push((rel.to_string_lossy().replace('\\', "/"), path));
        }
    }
    Ok(())
}

impl Kv for ReplicaKv {
    fn writes_wait_on_network(&self) -> bool {
        true
    }

    fn snapshot(&self) -> Result<Box<dyn Snapshot>> {
        if let Some(e) = self.broken() {
            return Err(e);
        }
        self.local.snapshot()
    }

    fn write(&self, batch: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<()> {
        if batch.iter().all(|(k, _)| is_node_local(k)) {
            return self.local.write(batch);
        }
        let db = match &*self.role.read() {
            Role::Writer(db) => db.clone(),
            Role::Reader(_) => return Err(not_writer("it is a reader")),
            Role::Idle => return Err(not_writer("it lost the writer lease")),
        };
        self.ship(&db, batch)
    }

    fn close(&self) -> Result<()> {
        let old = std::mem::replace(&mut *self.role.write(), Role::Idle);
        self.close_role(old);
        self.local.close()
    }
}

impl Drop for ReplicaKv {
    fn drop(&mut self) {
        let old = std::mem::replace(&mut *self.role.write(), Role::Idle);
        self.close_role(old);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(k: &str, v: &str) -> (Vec<u8>, Option<Vec<u8>>) {
        (k.as_bytes().to_vec(), Some(v.as_bytes().to_vec()))
    }

    /// Lets `node` follow the log until it has applied entry `seq` (10 s at most).
    fn follow_until(node: &ReplicaKv, store: &Store, seq: u64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while node.progress().applied < seq {
            node.follow(store, &mut |_| {}).unwrap();
            assert!(Instant::now() < deadline, "the node never applied entry {seq}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A writer on an in-memory bucket, its copy in a temporary dir.
    fn a_writer() -> (tempfile::TempDir, Arc<dyn ObjectStore>, Arc<ReplicaKv>, Store) {
        let dir = tempfile::tempdir().unwrap();
        let objects: Arc<dyn ObjectStore> = Arc::new(slatedb::object_store::memory::InMemory::new());
        let w = ReplicaKv::open(&dir.path().join("w.redb"), objects.clone(), "db").unwrap();
        let wstore = Store::new(w.clone());
        w.become_writer(&wstore, true).unwrap();
        (dir, objects, w, wstore)
    }

    #[test]
    fn a_reader_follows_the_writer_and_takes_over() {
        let (dir, objects, w, wstore) = a_writer();
        w.write(&[put("k1", "a"), put("mSI:x", "writer's own")]).unwrap();
        w.write(&[put("k2", "b")]).unwrap();

        // While the log holds every entry, a new copy replays them.
        let early = ReplicaKv::open(&dir.path().join("early.redb"), objects.clone(), "db").unwrap();
        early.start_reading(Duration::from_secs(5)).unwrap();
        assert!(!early.bootstrap().unwrap(), "replayed, not copied");
        assert_eq!(early.snapshot().unwrap().get(b"k2").unwrap(), Some(b"b".to_vec()));
        assert_eq!(early.progress().applied, 2);

        // Once the first entries are trimmed, a new copy is filled by copying.
        w.log_kept.store(1, Ordering::SeqCst);
        w.write(&[put("k0", "z")]).unwrap();
        w.write(&[(b"k0".to_vec(), None)]).unwrap();
        let r = ReplicaKv::open(&dir.path().join("r.redb"), objects.clone(), "db").unwrap();
        r.start_reading(Duration::from_secs(5)).unwrap();
        assert!(r.bootstrap().unwrap(), "an empty copy is filled by copying");
        assert_eq!(r.progress().applied, 4);
        assert_eq!(r.snapshot().unwrap().get(b"k0").unwrap(), None);
        assert!(r.snapshot().unwrap().scan(b"mCL:e", b"mCL:f", 10, false).unwrap().is_empty(), "log entries are not copied");
        let rstore = Store::new(r.clone());
        let snap = r.snapshot().unwrap();
        assert_eq!(snap.get(b"k2").unwrap(), Some(b"b".to_vec()));
        assert_eq!(snap.get(b"mSI:x").unwrap(), None, "node-local keys are not shipped");
        let e = r.write(&[put("k3", "c")]).unwrap_err();
        assert!(matches!(e, Error::NotWriter(_)), "{e}");

        w.write(&[put("k3", "c"), (b"k1".to_vec(), None)]).unwrap();
        follow_until(&r, &rstore, 5);
        let snap = r.snapshot().unwrap();
        assert_eq!(snap.get(b"k1").unwrap(), None);
        assert_eq!(snap.get(b"k3").unwrap(), Some(b"c".to_vec()));

        // Failover: the reader becomes the writer; the old one is fenced.
        r.become_writer(&rstore, false).unwrap();
        let e = w.write(&[put("k4", "lost")]).unwrap_err();
        assert!(matches!(e, Error::NotWriter(_)), "{e}");
        r.write(&[put("k5", "e")]).unwrap();
        w.become_reader().unwrap();
        follow_until(&w, &wstore, 6);
        let snap = w.snapshot().unwrap();
        assert_eq!(snap.get(b"k5").unwrap(), Some(b"e".to_vec()));
        assert_eq!(snap.get(b"k4").unwrap(), None, "the fenced write is nowhere");
        assert_eq!(snap.get(b"mSI:x").unwrap(), Some(b"writer's own".to_vec()), "its own keys stay");
    }

    #[test]
    fn a_copy_that_differs_from_the_log_stops_and_copies_again() {
        let (dir, objects, w, _wstore) = a_writer();
        w.write(&[put("a", "1")]).unwrap();
        w.write(&[put("lost", "x")]).unwrap();

        let r_path = dir.path().join("r.redb");
        let r = ReplicaKv::open(&r_path, objects.clone(), "db").unwrap();
        r.start_reading(Duration::from_secs(5)).unwrap();
        r.bootstrap().unwrap();
        assert_eq!(r.snapshot().unwrap().get(b"lost").unwrap(), Some(b"x".to_vec()));

        // Commit 2 is written a second time with other rows (what reusing a seq would do):
        // the reader applied the first one.
        w.applied.store(1, Ordering::SeqCst);
        let first = w.get_shared(&w.shared().unwrap(), &log_key(1)).unwrap().unwrap();
        w.chain.store(be_u64(&first[8..]), Ordering::SeqCst);
        w.write(&[put("b", "2")]).unwrap();
        w.write(&[put("c", "3")]).unwrap();
        let rstore = Store::new(r.clone());
        let deadline = Instant::now() + Duration::from_secs(10);
        let e = loop {
            match r.follow(&rstore, &mut |_| {}) {
                Err(e) => break e,
                Ok(_) => assert!(Instant::now() < deadline, "the reader never noticed"),
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(matches!(e, Error::Corrupt(_)), "{e}");
        assert!(r.snapshot().is_err(), "a copy that differs serves nothing");
        r.close().unwrap();
        drop((rstore, r));

        // Started again, it copies the whole database and matches the log.
        let r = ReplicaKv::open(&r_path, objects.clone(), "db").unwrap();
        r.start_reading(Duration::from_secs(5)).unwrap();
        assert!(r.bootstrap().unwrap(), "copied, not replayed");
        let snap = r.snapshot().unwrap();
        assert_eq!(snap.get(b"lost").unwrap(), Some(b"x".to_vec()), "the shared database holds both versions' rows");
        assert_eq!(snap.get(b"c").unwrap(), Some(b"3".to_vec()));
        assert_eq!(r.progress().checksum, w.progress().checksum);
    }

    #[test]
    fn an_expired_lease_refuses_commits() {
        let dir = tempfile::tempdir().unwrap();
        let objects: Arc<dyn ObjectStore> = Arc::new(slatedb::object_store::memory::InMemory::new());
        let w = ReplicaKv::open(&dir.path().join("w.redb"), objects, "db").unwrap();
        let store = Store::new(w.clone());
        w.become_writer(&store, true).unwrap();
        w.set_lease_deadline(Some(Instant::now()));
        assert!(matches!(w.write(&[put("a", "1")]).unwrap_err(), Error::NotWriter(_)));
        w.set_lease_deadline(None);
        w.write(&[put("a", "1")]).unwrap();
    }
}
