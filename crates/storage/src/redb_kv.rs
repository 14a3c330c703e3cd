//! The on-disk [`Kv`]: one redb file holding one table of `bytes -> bytes`.
//!
//! A transaction commit reaches this module as one batch. [`RedbKv::write`]
//! logs it in the active write-ahead log (`crate::wal`: one append, one sync),
//! then adds it to the active memtable (`crate::memtable`) under the next
//! sequence number. Every few MB of log the pair rotates: commits go on into
//! the other log and a new memtable, while a background checkpoint writes the
//! frozen memtable to redb in one durable commit and then resets its log. `Ok`
//! means the batch is on disk (in a log). Opening the store replays both logs'
//! records into redb, the older epoch first. A [`RedbKv::snapshot`] is a redb
//! read transaction with the memtables as they were laid over it; later
//! commits never show through it.
//!
//! Why redb:
//! - **Single file**, nothing else to manage or back up.
//! - **ACID copy-on-write B-tree**: a commit writes new pages and then flips
//!   a checksummed commit slot in the header. After a crash, recovery finds
//!   either the old or the new root, never a mix. (Its durable commit syncs
//!   several pages, which is why single-row commits go through our log first.)
//! - **MVCC readers**: a read transaction pins the root it started with and
//!   readers never block the writer, which is exactly the snapshot read our
//!   transaction layer needs.
//! - **Pure Rust**: no C/C++ toolchain (unlike RocksDB), small build.
//!
//! redb allows one writer at a time; the transaction layer already serializes
//! commits, so that costs nothing extra.
//!
//! Faults heal: after a write fails with an I/O error (disk full, say), redb
//! refuses every later write until the database is closed and opened again.
//! So the failed write starts a healer thread. It checks that the file system
//! has room, waits for a moment when no snapshot reads the file (backing off
//! while one does: an open transaction holds its snapshot), closes the file and
//! opens it again — redb's recovery finds the last durable state, and the log's
//! records are applied to it — and ends.
//! No restart; reads go on meanwhile, and writes fail at once with a clear
//! error until the healer has reopened the file.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use redb::{Database, Durability, ReadOnlyTable, ReadableDatabase, TableDefinition};

use crate::kv::{scan_bounds, Kv, Snapshot};
use crate::memtable::{Memtable, Overlay};
use crate::wal::{self, Wal};
use crate::{Error, Result};

/// The only table. Keys and values are opaque bytes; redb orders `&[u8]`
/// keys lexicographically, which is the order the codecs rely on.
const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");

/// How long a reopen waits for a moment without snapshots; then the old handle
/// serves on and the healer tries again later.
const REOPEN_WAIT: Duration = Duration::from_secs(3);

/// Why a reopen did not happen (yet).
enum NotReopened {
    /// The file system is still (nearly) full.
    NoRoom,
    /// Snapshots kept reading the old file for all of [`REOPEN_WAIT`].
    StillRead,
    /// Opening the file failed.
    Open,
}

/// Free bytes the file system must have before a reopen is tried: recovery writes.
const REOPEN_MIN_FREE: u64 = 1 << 20;

/// A [`Kv`] stored in a single redb database file.
pub struct RedbKv {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// None only between closing and reopening the file; snapshots hold a clone,
    /// so a reopen can tell when the old file is no longer read.
    db: RwLock<Option<Arc<Database>>>,
    /// A write failed with an I/O error and the healer has not reopened yet.
    poisoned: AtomicBool,
    /// `Kv::close` ran: nothing reopens the file again.
    closed: AtomicBool,
    /// That I/O error's text (the cause later writes are refused for).
    fault: parking_lot::Mutex<String>,
    /// The two write-ahead logs: commits append to `logs[active]`; the other one is empty, or
    /// holds what the running checkpoint is writing to redb.
    logs: [parking_lot::Mutex<Wal>; 2],
    /// Which log takes appends. Held for the whole of a write, so the logs' order is the
    /// memtables'.
    active: parking_lot::Mutex<usize>,
    mem: RwLock<MemState>,
    /// The background checkpoint, while one runs.
    inflight: parking_lot::Mutex<Option<std::thread::JoinHandle<std::result::Result<(), redb::Error>>>>,
}

/// The active log's writes (`active`), the frozen log's while its checkpoint runs (`frozen`),
/// and the sequence number of the last write.
struct MemState {
    active: Arc<Memtable>,
    frozen: Option<Arc<Memtable>>,
    seq: u64,
}

impl MemState {
    fn empty(seq: u64) -> MemState {
        MemState { active: Arc::new(Memtable::default()), frozen: None, seq }
    }
}

/// Opens the database and its two logs, and applies the logs' records (the older epoch's first)
/// in one durable commit; both logs then start over.
fn open_database(path: &Path) -> Result<(Database, [Wal; 2])> {
    let db = Database::create(path).map_err(redb_err)?;
    let (a, mut first) = Wal::open(&path.with_extension("wal"))?;
    let (b, mut second) = Wal::open(&path.with_extension("wal2"))?;
    if b.epoch() < a.epoch() {
        std::mem::swap(&mut first, &mut second);
    }
    // Creating the table up front lets read transactions always open it.
    let mut txn = db.begin_write().map_err(redb_err)?;
    txn.set_durability(Durability::Immediate).map_err(redb_err)?;
    {
        let mut table = txn.open_table(TABLE).map_err(redb_err)?;
        for batch in first.iter().chain(&second) {
            apply(&mut table, batch).map_err(redb_err)?;
        }
    }
    txn.commit().map_err(redb_err)?;
    let n = first.len() + second.len();
    if n > 0 {
        tracing::info!("applied {n} committed batches from the write-ahead logs");
    }
    let mut logs = [a, b];
    let top = logs[0].epoch().max(logs[1].epoch());
    logs[1].reset_after(top)?;
    let top = logs[1].epoch();
    logs[0].reset_after(top)?;
    Ok((db, logs))
}

fn apply(table: &mut redb::Table<&[u8], &[u8]>, batch: &[(Vec<u8>, Option<Vec<u8>>)]) -> std::result::Result<(), redb::StorageError> {
    for (key, value) in batch {
        match value {
            Some(value) => table.insert(key.as_slice(), value.as_slice()).map(|_| ()),
            None => table.remove(key.as_slice()).map(|_| ()),
        }?;
    }
    Ok(())
}

impl Drop for RedbKv {
    /// A checkpoint still writing holds the file: it ends before the store does.
    fn drop(&mut self) {
        let _ = self.inner.finish_checkpoint(None);
    }
}

impl RedbKv {
    /// Opens the database file at `path`, creating it if missing.
    pub fn open(path: &Path) -> Result<RedbKv> {
        let (db, [a, b]) = open_database(path)?;
        let inner = Inner {
            path: path.to_path_buf(),
            db: RwLock::new(Some(Arc::new(db))),
            poisoned: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            fault: parking_lot::Mutex::new(String::new()),
            logs: [parking_lot::Mutex::new(a), parking_lot::Mutex::new(b)],
            active: parking_lot::Mutex::new(0),
            mem: RwLock::new(MemState::empty(0)),
            inflight: parking_lot::Mutex::new(None),
        };
        Ok(RedbKv { inner: Arc::new(inner) })
    }

    /// Start the healer (once per fault); it ends when the file is open again or the store is gone.
    fn start_healer(&self) {
        if self.inner.poisoned.swap(true, Ordering::SeqCst) {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        let spawned = std::thread::Builder::new().name("redb-heal".into()).spawn(move || {
            // Quick while the disk is full (a cheap check); backing off while a snapshot that
            // lives long (an idle open transaction) keeps the old file in use.
            let mut pause = Duration::from_millis(200);
            loop {
                std::thread::sleep(pause);
                let Some(inner) = weak.upgrade() else { return };
                match inner.reopen() {
                    Ok(()) => return,
                    Err(NotReopened::StillRead) => pause = (pause * 2).min(Duration::from_secs(30)),
                    Err(NotReopened::NoRoom | NotReopened::Open) => {}
                }
            }
        });
        if spawned.is_err() {
            self.inner.poisoned.store(false, Ordering::SeqCst);
        }
    }
}

impl Inner {
    /// Waits for the running checkpoint, if any; its error if it failed. A failed checkpoint
    /// leaves its memtable frozen and its log (`frozen_log`) as they are: with `Some(frozen_log)`
    /// it is tried again here, before that log may be reused.
    fn finish_checkpoint(&self, frozen_log: Option<usize>) -> std::result::Result<(), redb::Error> {
        if let Some(h) = self.inflight.lock().take() {
            h.join().unwrap_or_else(|_| Err(redb::Error::Io(std::io::Error::other("the checkpoint thread panicked"))))?;
        }
        let Some(log) = frozen_log else { return Ok(()) };
        let Some(frozen) = self.mem.read().frozen.clone() else { return Ok(()) };
        let db = self.current().map_err(io_error)?;
        self.write_frozen(&db, &frozen, log)
    }

    /// The checkpoint itself: the frozen memtable's writes in one durable redb commit; then
    /// snapshots no longer need it, and its log starts over.
    fn write_frozen(&self, db: &Database, frozen: &Memtable, log: usize) -> std::result::Result<(), redb::Error> {
        write_batch(db, &frozen.latest())?;
        self.mem.write().frozen = None;
        reset_log(&mut self.logs[log].lock());
        Ok(())
    }

    /// Commits go on in the other log and a new memtable; a background checkpoint writes the
    /// frozen memtable to redb durably, then resets the frozen log.
    fn rotate(self: &Arc<Self>, db: &Arc<Database>, active: &mut usize) -> std::result::Result<(), redb::Error> {
        // The previous checkpoint must be done: its log is the one that takes over.
        self.finish_checkpoint(Some(1 - *active))?;
        let (old, new) = (*active, 1 - *active);
        let epoch = self.logs[old].lock().epoch();
        self.logs[new].lock().reset_after(epoch).map_err(io_error)?;
        let frozen = {
            let mut st = self.mem.write();
            let frozen = std::mem::replace(&mut st.active, Arc::new(Memtable::default()));
            st.frozen = Some(frozen.clone());
            frozen
        };
        *active = new;
        let (inner, db) = (Arc::clone(self), Arc::clone(db));
        let handle = std::thread::Builder::new()
            .name("redb-checkpoint".into())
            .spawn(move || inner.write_frozen(&db, &frozen, old))
            .map_err(redb::Error::Io)?;
        *self.inflight.lock() = Some(handle);
        Ok(())
    }

    /// Log `batch` and add it to the memtable; the pair rotates when the log has grown. A batch
    /// too big for a log goes to redb with the memtable in one durable commit instead.
    /// `Ok(Some(e))`: the batch is written, but the rotation after it failed with `e`.
    fn logged_write(self: &Arc<Self>, db: &Arc<Database>, batch: &[(Vec<u8>, Option<Vec<u8>>)]) -> std::result::Result<Option<redb::Error>, redb::Error> {
        let mut active = self.active.lock();
        if !Wal::ever_fits(batch) {
            self.finish_checkpoint(Some(1 - *active))?;
            let mem = self.mem.read().active.clone();
            let mut writes = mem.latest();
            writes.extend_from_slice(batch);
            write_batch(db, &writes)?;
            {
                let mut st = self.mem.write();
                let seq = st.seq + 1;
                *st = MemState::empty(seq);
            }
            reset_log(&mut self.logs[*active].lock());
            return Ok(None);
        }
        if !self.logs[*active].lock().fits(batch) {
            self.rotate(db, &mut active)?;
        }
        let used = {
            let mut log = self.logs[*active].lock();
            log.append(batch).map_err(io_error)?;
            log.used()
        };
        {
            let mut st = self.mem.write();
            let seq = st.seq + 1;
            st.active.insert(seq, batch);
            st.seq = seq;
        }
        if used >= wal::CHECKPOINT_BYTES {
            // The batch is durable in the log already, so a failed rotation fails nothing (the
            // next one, or the healer's reopen, catches up).
            if let Err(e) = self.rotate(db, &mut active) {
                return Ok(Some(e));
            }
        }
        Ok(None)
    }

    fn current(&self) -> Result<Arc<Database>> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::Storage("the store is closed".into()));
        }
        self.db.read().clone().ok_or_else(|| Error::Storage("the data file is being reopened after an I/O error; try again".into()))
    }

    /// Close the file and open it again (see the module doc).
    /// Waits (at most `REOPEN_WAIT`) for a moment when no snapshot reads the file, and returns
    /// the file's slot then, with whether that moment came. The lock is held only to look, so
    /// that a statement opening a second snapshot while it holds one never waits on us.
    fn wait_unread(&self) -> (parking_lot::RwLockWriteGuard<'_, Option<Arc<Database>>>, bool) {
        let deadline = Instant::now() + REOPEN_WAIT;
        loop {
            let slot = self.db.write();
            if slot.as_ref().is_none_or(|old| Arc::strong_count(old) == 1) {
                return (slot, true);
            }
            if Instant::now() > deadline {
                return (slot, false);
            }
            drop(slot);
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn reopen(&self) -> std::result::Result<(), NotReopened> {
        if free_bytes(&self.path).is_some_and(|free| free < REOPEN_MIN_FREE) {
            return Err(NotReopened::NoRoom);
        }
        let (mut slot, unread) = self.wait_unread();
        if !unread {
            return Err(NotReopened::StillRead);
        }
        // Checked with the slot held: a `close` after this waits for the reopen to end.
        if self.closed.load(Ordering::SeqCst) {
            return Err(NotReopened::Open);
        }
        // The file lock is released with the last handle, before the file is opened again.
        *slot = None;
        let mut active = self.active.lock();
        // A checkpoint that ran (it held the file, so it has ended) is superseded by the replay.
        if let Some(h) = self.inflight.lock().take() {
            let _ = h.join();
        }
        let (db, [a, b]) = open_database(&self.path).map_err(|_| NotReopened::Open)?;
        *self.logs[0].lock() = a;
        *self.logs[1].lock() = b;
        *active = 0;
        // The logs' records are in redb now: the memtables start over with the logs.
        let seq = self.mem.read().seq;
        *self.mem.write() = MemState::empty(seq);
        *slot = Some(Arc::new(db));
        self.poisoned.store(false, Ordering::SeqCst);
        Ok(())
    }
}

/// Free bytes on the file system of `path`'s directory (None where unknown).
fn free_bytes(path: &Path) -> Option<u64> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `st` a valid out-parameter.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}

/// Whether a failed write left redb needing a reopen.
fn is_io(e: &redb::Error) -> bool {
    matches!(e, redb::Error::Io(_) | redb::Error::PreviousIo)
}

/// `batch` in one durable redb commit (checkpoints, and batches too big for a log).
fn write_batch(db: &Database, batch: &[(Vec<u8>, Option<Vec<u8>>)]) -> std::result::Result<(), redb::Error> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    {
        let mut table = txn.open_table(TABLE)?;
        apply(&mut table, batch)?;
    }
    // On any error above, dropping `txn` aborts it: nothing is applied.
    txn.commit()?;
    Ok(())
}

/// Our error (a log's, or the file being reopened) as the I/O error it is to the write path.
fn io_error(e: Error) -> redb::Error {
    redb::Error::Io(std::io::Error::other(e.to_string()))
}

fn reset_log(log: &mut Wal) {
    // Everything logged is durable in redb now; should the reset fail, replaying the old
    // records again later is harmless.
    if let Err(e) = log.reset() {
        tracing::warn!("write-ahead log reset failed: {e}");
    }
}

/// Maps any redb error to ours, keeping corruption distinguishable.
fn redb_err(e: impl Into<redb::Error>) -> Error {
    match e.into() {
        redb::Error::Corrupted(msg) => Error::Corrupt(msg),
        other => Error::Storage(other.to_string()),
    }
}

impl Kv for RedbKv {
    fn snapshot(&self) -> Result<Box<dyn Snapshot>> {
        let db = self.inner.current()?;
        // The memtable and the redb root are taken together: a checkpoint writes redb and then
        // starts a new memtable, all under the log's lock, so no commit lands between the two.
        let st = self.inner.mem.read();
        let layers: Vec<Arc<Memtable>> = std::iter::once(&st.active).chain(st.frozen.as_ref()).filter(|m| !m.is_empty()).cloned().collect();
        let seq = st.seq;
        let txn = db.begin_read().map_err(redb_err)?;
        drop(st);
        // The table handle keeps the read transaction (and its MVCC root) alive.
        let table = txn.open_table(TABLE).map_err(redb_err)?;
        let base = Box::new(RedbSnapshot { table, _db: db });
        // Later commits get later numbers: an empty memtable stays empty for this snapshot.
        if layers.is_empty() {
            return Ok(base);
        }
        Ok(Box::new(Overlay { base, layers, seq }))
    }

    fn close(&self) -> Result<()> {
        let _ = self.inner.finish_checkpoint(None);
        {
            // Under the log lock, so no write is between its log append and its memtable.
            let _active = self.inner.active.lock();
            self.inner.closed.store(true, Ordering::SeqCst);
        }
        // The file lock goes with the last handle: snapshots still open keep theirs a moment.
        *self.inner.wait_unread().0 = None;
        Ok(())
    }

    fn write(&self, batch: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<()> {
        if self.inner.poisoned.load(Ordering::SeqCst) {
            // Fail at once: the healer may be waiting for this writer's own snapshot to end.
            return Err(Error::Storage(format!(
                "an earlier write failed with an I/O error ({}); nothing of this write was applied, and writes resume once the fault is gone",
                self.inner.fault.lock()
            )));
        }
        let db = self.inner.current()?;
        let r = self.inner.logged_write(&db, batch);
        drop(db);
        match r {
            Ok(None) => Ok(()),
            Ok(Some(checkpoint)) => {
                tracing::warn!("checkpoint failed: {checkpoint}; the write-ahead log keeps the writes");
                if is_io(&checkpoint) {
                    *self.inner.fault.lock() = checkpoint.to_string();
                    self.start_healer();
                }
                Ok(())
            }
            Err(e) if is_io(&e) => {
                let e = if matches!(e, redb::Error::PreviousIo) {
                    format!("an earlier write failed with an I/O error ({})", self.inner.fault.lock())
                } else {
                    *self.inner.fault.lock() = e.to_string();
                    e.to_string()
                };
                self.start_healer();
                Err(Error::Storage(format!("{e}; nothing of this write was applied, and writes resume once the fault is gone")))
            }
            Err(e) => Err(redb_err(e)),
        }
    }
}

struct RedbSnapshot {
    table: ReadOnlyTable<&'static [u8], &'static [u8]>,
    /// Keeps count of the readers of this file (`RedbKv::reopen` waits for them).
    _db: Arc<Database>,
}

impl Snapshot for RedbSnapshot {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let value = self.table.get(key).map_err(redb_err)?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let Some(bounds) = scan_bounds(start, end) else {
            return Ok(Vec::new());
        };
        let range = self.table.range::<&[u8]>(bounds).map_err(redb_err)?;
        let iter: Box<dyn Iterator<Item = _>> = if reverse {
            Box::new(range.rev())
        } else {
            Box::new(range)
        };
        let mut out = Vec::new();
        for entry in iter.take(limit) {
            let (k, v) = entry.map_err(redb_err)?;
            out.push((k.value().to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }

    fn scan_visit(&self, start: &[u8], end: &[u8], visit: &mut dyn FnMut(&[u8], &[u8]) -> bool) -> Result<()> {
        let Some(bounds) = scan_bounds(start, end) else {
            return Ok(());
        };
        for entry in self.table.range::<&[u8]>(bounds).map_err(redb_err)? {
            let (k, v) = entry.map_err(redb_err)?;
            if !visit(k.value(), v.value()) {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redb_kv_meets_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        let open = |d: &Path| RedbKv::open(&d.join("data.redb")).map(|kv| Arc::new(kv) as Arc<dyn Kv>);
        crate::conformance::check_all(&open, dir.path(), true);
    }

    use super::*;

    #[test]
    fn write_snapshot_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.redb");
        {
            let kv = RedbKv::open(&path).unwrap();
            let before = kv.snapshot().unwrap();
            kv.write(&[
                (b"a".to_vec(), Some(b"1".to_vec())),
                (b"b".to_vec(), Some(b"2".to_vec())),
                (b"c".to_vec(), Some(b"3".to_vec())),
            ])
            .unwrap();
            kv.write(&[(b"b".to_vec(), None)]).unwrap();
            // MVCC: the older snapshot still sees the empty table.
            assert_eq!(before.get(b"a").unwrap(), None);
            let s = kv.snapshot().unwrap();
            let all = s.scan(b"", b"", usize::MAX, true).unwrap();
            assert_eq!(
                all,
                vec![
                    (b"c".to_vec(), b"3".to_vec()),
                    (b"a".to_vec(), b"1".to_vec())
                ]
            );
            assert!(s.scan(b"c", b"a", 10, false).unwrap().is_empty());
        }
        let kv = RedbKv::open(&path).unwrap();
        let s = kv.snapshot().unwrap();
        assert_eq!(s.get(b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(s.get(b"b").unwrap(), None);
        assert_eq!(s.scan(b"b", b"d", 10, false).unwrap().len(), 1);
    }

    /// Random batches over few keys, big enough that checkpoints happen: every snapshot, old or
    /// new, reads (get, scans both ways with limits, the lending scan) exactly the model's state
    /// at its time; and a reopen reads the last state.
    #[test]
    fn memtable_overlay_matches_a_model() {
        use std::collections::BTreeMap;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.redb");
        let mut seed = 0x2545F4914F6CDD1Du64;
        let mut rnd = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let kv = RedbKv::open(&path).unwrap();
        let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let mut kept: Vec<(Box<dyn Snapshot>, BTreeMap<Vec<u8>, Vec<u8>>)> = Vec::new();
        let mut checkpoints = 0;
        for round in 0..400 {
            let mut batch = Vec::new();
            for _ in 0..rnd(8) + 1 {
                let k = vec![b'a' + rnd(5) as u8, b'a' + rnd(5) as u8];
                if rnd(3) == 0 {
                    batch.push((k, None));
                } else {
                    // Big values now and then, so the log fills and checkpoints run.
                    let len = if rnd(4) == 0 { 60_000 } else { 8 };
                    batch.push((k, Some(vec![b'0' + (round % 10) as u8; len])));
                }
            }
            let active_before = *kv.inner.active.lock();
            kv.write(&batch).unwrap();
            if *kv.inner.active.lock() != active_before {
                checkpoints += 1;
            }
            for (k, v) in &batch {
                match v {
                    Some(v) => model.insert(k.clone(), v.clone()),
                    None => model.remove(k),
                };
            }
            if rnd(5) == 0 {
                kept.push((kv.snapshot().unwrap(), model.clone()));
            }
            if kept.len() > 6 {
                kept.remove(rnd(kept.len() as u64) as usize);
            }
            let now = (kv.snapshot().unwrap(), model.clone());
            for (snap, want) in kept.iter().chain(std::iter::once(&now)) {
                let key = vec![b'a' + rnd(5) as u8, b'a' + rnd(5) as u8];
                assert_eq!(snap.get(&key).unwrap().as_ref(), want.get(&key), "round {round} get {key:?}");
                let (mut lo, mut hi) = (vec![b'a' + rnd(6) as u8], vec![b'a' + rnd(6) as u8, b'c']);
                if lo > hi {
                    std::mem::swap(&mut lo, &mut hi);
                }
                if rnd(4) == 0 {
                    hi.clear();
                }
                let limit = rnd(30) as usize;
                let reverse = rnd(2) == 0;
                let in_range = want.iter().filter(|(k, _)| **k >= lo && (hi.is_empty() || **k < hi)).map(|(k, v)| (k.clone(), v.clone()));
                let expect: Vec<_> = if reverse { in_range.rev().take(limit).collect() } else { in_range.take(limit).collect() };
                assert_eq!(snap.scan(&lo, &hi, limit, reverse).unwrap(), expect, "round {round} scan {lo:?}..{hi:?} {limit} {reverse}");
                let mut lent = Vec::new();
                snap.scan_visit(&lo, &hi, &mut |k, v| {
                    lent.push((k.to_vec(), v.to_vec()));
                    true
                })
                .unwrap();
                let all: Vec<_> = want.iter().filter(|(k, _)| **k >= lo && (hi.is_empty() || **k < hi)).map(|(k, v)| (k.clone(), v.clone())).collect();
                assert_eq!(lent, all, "round {round} scan_visit {lo:?}..{hi:?}");
            }
        }
        assert!(checkpoints >= 3, "only {checkpoints} checkpoints ran");
        drop(kept);
        drop(kv);
        let kv = RedbKv::open(&path).unwrap();
        let s = kv.snapshot().unwrap();
        let all: BTreeMap<Vec<u8>, Vec<u8>> = s.scan(b"", b"", usize::MAX, false).unwrap().into_iter().collect();
        assert_eq!(all, model);
    }
}
