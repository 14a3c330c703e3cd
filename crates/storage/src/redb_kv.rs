//! The on-disk [`Kv`]: one redb file holding one table of `bytes -> bytes`.
//!
//! A transaction commit reaches this module as one batch. [`RedbKv::write`]
//! logs it in the write-ahead log (`crate::wal`: one append, one sync), then
//! applies every put and delete to the table in a redb commit with
//! [`Durability::None`]; every few MB of log a durable redb commit (a
//! checkpoint) makes the file itself current and the log starts over. `Ok`
//! means the batch is on disk (in the log). Opening the store replays the
//! log's records into redb. A [`RedbKv::snapshot`] is a redb read transaction;
//! later commits never show through it.
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
    /// That I/O error's text (the cause later writes are refused for).
    fault: parking_lot::Mutex<String>,
    /// The write-ahead log. Held for the whole of a write, so the log's order is redb's.
    wal: parking_lot::Mutex<Wal>,
}

/// Opens the database and its log, and applies the log's records in one durable commit (the
/// log then starts over).
fn open_database(path: &Path) -> Result<(Database, Wal)> {
    let db = Database::create(path).map_err(redb_err)?;
    let (mut log, batches) = Wal::open(&path.with_extension("wal"))?;
    // Creating the table up front lets read transactions always open it.
    let mut txn = db.begin_write().map_err(redb_err)?;
    txn.set_durability(Durability::Immediate).map_err(redb_err)?;
    {
        let mut table = txn.open_table(TABLE).map_err(redb_err)?;
        for batch in &batches {
            apply(&mut table, batch).map_err(redb_err)?;
        }
    }
    txn.commit().map_err(redb_err)?;
    if !batches.is_empty() {
        tracing::info!("applied {} committed batches from the write-ahead log", batches.len());
    }
    log.reset()?;
    Ok((db, log))
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

impl RedbKv {
    /// Opens the database file at `path`, creating it if missing.
    pub fn open(path: &Path) -> Result<RedbKv> {
        let (db, log) = open_database(path)?;
        let inner = Inner {
            path: path.to_path_buf(),
            db: RwLock::new(Some(Arc::new(db))),
            poisoned: AtomicBool::new(false),
            fault: parking_lot::Mutex::new(String::new()),
            wal: parking_lot::Mutex::new(log),
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
    fn current(&self) -> Result<Arc<Database>> {
        self.db.read().clone().ok_or_else(|| Error::Storage("the data file is being reopened after an I/O error; try again".into()))
    }

    /// Close the file and open it again (see the module doc).
    fn reopen(&self) -> std::result::Result<(), NotReopened> {
        if free_bytes(&self.path).is_some_and(|free| free < REOPEN_MIN_FREE) {
            return Err(NotReopened::NoRoom);
        }
        // Wait for a moment when nothing reads the old file. The lock is held only to look, so
        // that a statement opening a second snapshot while it holds one never waits on us.
        let deadline = Instant::now() + REOPEN_WAIT;
        let mut slot = loop {
            let slot = self.db.write();
            if slot.as_ref().is_none_or(|old| Arc::strong_count(old) == 1) {
                break slot;
            }
            drop(slot);
            if Instant::now() > deadline {
                return Err(NotReopened::StillRead);
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        // The file lock is released with the last handle, before the file is opened again.
        *slot = None;
        let mut log = self.wal.lock();
        let (db, fresh) = open_database(&self.path).map_err(|_| NotReopened::Open)?;
        *log = fresh;
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

fn write_batch(db: &Database, batch: &[(Vec<u8>, Option<Vec<u8>>)], durability: Durability) -> std::result::Result<(), redb::Error> {
    let mut txn = db.begin_write()?;
    txn.set_durability(durability)?;
    {
        let mut table = txn.open_table(TABLE)?;
        apply(&mut table, batch)?;
    }
    // On any error above, dropping `txn` aborts it: nothing is applied.
    txn.commit()?;
    Ok(())
}

/// Log `batch`, then apply it without a sync; a checkpoint when the log has grown. A batch too
/// big for the log is committed durably instead (which also makes everything before it durable).
/// `Ok(Some(e))`: the batch is written, but the checkpoint after it failed with `e`.
fn logged_write(db: &Database, log: &mut Wal, batch: &[(Vec<u8>, Option<Vec<u8>>)]) -> std::result::Result<Option<redb::Error>, redb::Error> {
    if !log.fits(batch) {
        write_batch(db, batch, Durability::Immediate)?;
        reset_log(log);
        return Ok(None);
    }
    if let Err(e) = log.append(batch) {
        return Err(redb::Error::Io(std::io::Error::other(e.to_string())));
    }
    if let Err(e) = write_batch(db, batch, Durability::None) {
        // Told it failed, so it must not come back at recovery.
        if let Err(r) = log.revoke_last(batch) {
            tracing::error!("a failed write could not be removed from the write-ahead log ({r}): a restart may apply it");
        }
        return Err(e);
    }
    if log.used() >= wal::CHECKPOINT_BYTES {
        // The batch is durable in the log already, so a failed checkpoint fails nothing (the
        // next one, or the healer's reopen, catches up).
        match write_batch(db, &[], Durability::Immediate) {
            Ok(()) => reset_log(log),
            Err(e) => return Ok(Some(e)),
        }
    }
    Ok(None)
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
        let txn = db.begin_read().map_err(redb_err)?;
        // The table handle keeps the read transaction (and its MVCC root) alive.
        let table = txn.open_table(TABLE).map_err(redb_err)?;
        Ok(Box::new(RedbSnapshot { table, _db: db }))
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
        let r = logged_write(&db, &mut self.inner.wal.lock(), batch);
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
}
