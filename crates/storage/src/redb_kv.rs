//! The on-disk [`Kv`]: one redb file holding one table of `bytes -> bytes`.
//!
//! A transaction commit reaches this module as one batch. [`RedbKv::write`]
//! opens a redb write transaction, applies every put and delete to the table,
//! and commits with [`Durability::Immediate`], so `Ok` means the batch is on
//! disk. A [`RedbKv::snapshot`] is a redb read transaction; later commits never
//! show through it.
//!
//! Why redb:
//! - **Single file**, nothing else to manage or back up.
//! - **ACID copy-on-write B-tree**: a commit writes new pages and then flips
//!   a checksummed commit slot in the header. After a crash, recovery finds
//!   either the old or the new root, never a mix, so a batch is all or nothing
//!   with no write-ahead log of our own.
//! - **MVCC readers**: a read transaction pins the root it started with and
//!   readers never block the writer, which is exactly the snapshot read our
//!   transaction layer needs.
//! - **Pure Rust**: no C/C++ toolchain (unlike RocksDB), small build.
//!
//! redb allows one writer at a time; the transaction layer already serializes
//! commits, so that costs nothing extra.

use std::path::Path;

use redb::{Database, Durability, ReadOnlyTable, ReadableDatabase, TableDefinition};

use crate::kv::{scan_bounds, Kv, Snapshot};
use crate::{Error, Result};

/// The only table. Keys and values are opaque bytes; redb orders `&[u8]`
/// keys lexicographically, which is the order the codecs rely on.
const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");

/// A [`Kv`] stored in a single redb database file.
pub struct RedbKv {
    db: Database,
}

impl RedbKv {
    /// Opens the database file at `path`, creating it if missing.
    pub fn open(path: &Path) -> Result<RedbKv> {
        let db = Database::create(path).map_err(redb_err)?;
        // Create the table up front so read transactions can always open it.
        let txn = db.begin_write().map_err(redb_err)?;
        txn.open_table(TABLE).map_err(redb_err)?;
        txn.commit().map_err(redb_err)?;
        Ok(RedbKv { db })
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
        let txn = self.db.begin_read().map_err(redb_err)?;
        // The table handle keeps the read transaction (and its MVCC root) alive.
        let table = txn.open_table(TABLE).map_err(redb_err)?;
        Ok(Box::new(RedbSnapshot { table }))
    }

    fn write(&self, batch: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<()> {
        let mut txn = self.db.begin_write().map_err(redb_err)?;
        txn.set_durability(Durability::Immediate)
            .map_err(redb_err)?;
        {
            let mut table = txn.open_table(TABLE).map_err(redb_err)?;
            for (key, value) in &batch {
                match value {
                    Some(value) => table.insert(key.as_slice(), value.as_slice()),
                    None => table.remove(key.as_slice()),
                }
                .map_err(redb_err)?;
            }
        }
        // On any error above, dropping `txn` aborts it: nothing is applied.
        txn.commit().map_err(redb_err)
    }
}

struct RedbSnapshot {
    table: ReadOnlyTable<&'static [u8], &'static [u8]>,
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
            kv.write(vec![
                (b"a".to_vec(), Some(b"1".to_vec())),
                (b"b".to_vec(), Some(b"2".to_vec())),
                (b"c".to_vec(), Some(b"3".to_vec())),
            ])
            .unwrap();
            kv.write(vec![(b"b".to_vec(), None)]).unwrap();
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
