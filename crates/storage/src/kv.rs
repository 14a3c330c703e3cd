//! The key-value seam under transactions.
//!
//! Everything above this module sees storage as one ordered map from byte
//! keys to byte values with just two operations:
//!
//! - [`Kv::snapshot`] freezes a consistent point-in-time view. Reads inside a
//!   transaction all go through one snapshot, which is what makes them
//!   repeatable.
//! - [`Kv::write`] applies a batch of puts (`Some(value)`) and deletes
//!   (`None`) atomically and durably. A transaction commit is exactly one
//!   such batch.
//!
//! Conflict detection and write buffering live in [`crate::txn`], not here,
//! so the contract stays small enough that a distributed KV such as TiKV
//! could implement it later. [`MemKv`] is the in-memory implementation used
//! by tests and `Store::in_memory`; [`crate::RedbKv`] is the on-disk one.
//!
//! Range convention used by every `scan` in this crate: the range is
//! `[start, end)` in byte order, and an **empty `end` means "no upper
//! bound"** (so `codec::prefix_end` can return an empty key for a prefix of
//! all `0xff` bytes).

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::Result;

/// An ordered, atomically-writable key-value store.
pub trait Kv: Send + Sync + 'static {
    /// A consistent point-in-time read view.
    fn snapshot(&self) -> Result<Box<dyn Snapshot>>;
    /// Atomically and durably apply a batch (all or nothing; fsync'd before returning Ok).
    fn write(&self, batch: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<()>;
    /// Whether a write waits on the network (a durable object write), not just the local disk:
    /// callers on an async worker then hand the wait to a blocking section.
    fn writes_wait_on_network(&self) -> bool {
        false
    }
    /// Let go of the underlying files or objects (their locks included) once the snapshots
    /// still open end; later calls fail. The store can then be opened again, in this process
    /// or another.
    fn close(&self) -> Result<()> {
        Ok(())
    }
}

/// A frozen view of a [`Kv`]; later writes are never visible through it.
pub trait Snapshot: Send + Sync {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Ordered scan of [start, end), at most `limit` pairs; `reverse` scans from the end.
    /// An empty `end` means the range is unbounded above.
    fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;

    /// Forward scan of [start, end) handing each pair to `visit` as borrowed bytes, until it
    /// returns `false`: a long scan allocates nothing per entry. The default copies through
    /// [`Snapshot::scan`] in chunks; stores that can lend their bytes override it.
    fn scan_visit(&self, start: &[u8], end: &[u8], visit: &mut dyn FnMut(&[u8], &[u8]) -> bool) -> Result<()> {
        let mut from = start.to_vec();
        loop {
            let chunk = self.scan(&from, end, 1024, false)?;
            let Some((last, _)) = chunk.last() else { return Ok(()) };
            let mut next = last.clone();
            next.push(0);
            let full = chunk.len() == 1024;
            for (k, v) in &chunk {
                if !visit(k, v) {
                    return Ok(());
                }
            }
            if !full {
                return Ok(());
            }
            from = next;
        }
    }
}

/// A scan's result with newer versions laid over it: `base` and `overlay` hold the same range in
/// the scan's order (reversed when `reverse`); an overlay key replaces an equal base key (`None`:
/// deleted). At most `limit` pairs. `base` must hold `limit` plus the overlay's length pairs (or
/// all there are), since each overlay key hides at most one of them.
pub(crate) fn merge_overlaid(base: Vec<(Vec<u8>, Vec<u8>)>, overlay: Vec<(&[u8], Option<&[u8]>)>, limit: usize, reverse: bool) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::with_capacity(limit.min(base.len() + overlay.len()));
    let (mut b, mut o) = (base.into_iter().peekable(), overlay.into_iter().peekable());
    while out.len() < limit {
        let from_overlay = match (b.peek(), o.peek()) {
            (None, None) => break,
            (Some(_), None) => false,
            (None, Some(_)) => true,
            (Some((bk, _)), Some((ok, _))) => {
                let order = if reverse { ok.cmp(&bk.as_slice()) } else { bk.as_slice().cmp(ok) };
                match order {
                    std::cmp::Ordering::Less => false,
                    std::cmp::Ordering::Greater => true,
                    std::cmp::Ordering::Equal => {
                        b.next(); // replaced by the overlay's version
                        true
                    }
                }
            }
        };
        if from_overlay {
            let (k, v) = o.next().expect("peeked");
            if let Some(v) = v {
                out.push((k.to_vec(), v.to_vec()));
            }
        } else {
            out.push(b.next().expect("peeked"));
        }
    }
    out
}

/// A lending forward scan with newer versions laid over it: `base` lends its pairs to the visitor
/// it is given; `overlay` holds newer versions of keys in the same range, in key order (`None`: a
/// delete). Each overlay key comes before the base's keys after it and replaces an equal one.
/// Used for a transaction's own writes over its snapshot and for memtables over redb.
pub(crate) fn visit_overlaid<'a>(
    overlay: impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)>,
    base: impl FnOnce(&mut dyn FnMut(&[u8], &[u8]) -> bool) -> Result<()>,
    visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
) -> Result<()> {
    let mut pending = overlay.peekable();
    let mut go = true;
    base(&mut |k, v| {
        while let Some(&(ok, ov)) = pending.peek() {
            if ok > k {
                break;
            }
            pending.next();
            if let Some(ov) = ov {
                if !visit(ok, ov) {
                    go = false;
                    return false;
                }
            }
            if ok == k {
                return true;
            }
        }
        go = visit(k, v);
        go
    })?;
    if go {
        for (ok, ov) in pending {
            if let Some(ov) = ov {
                if !visit(ok, ov) {
                    break;
                }
            }
        }
    }
    Ok(())
}

/// Bounds of a key range, as taken by `BTreeMap::range` and redb.
pub(crate) type KeyBounds<'a> = (Bound<&'a [u8]>, Bound<&'a [u8]>);

/// Turns `[start, end)` (empty `end` = unbounded) into range bounds, or `None`
/// when the range is empty. Callers must check for `None`: `BTreeMap::range`
/// panics on inverted bounds.
pub(crate) fn scan_bounds<'a>(start: &'a [u8], end: &'a [u8]) -> Option<KeyBounds<'a>> {
    if end.is_empty() {
        Some((Bound::Included(start), Bound::Unbounded))
    } else if start < end {
        Some((Bound::Included(start), Bound::Excluded(end)))
    } else {
        None
    }
}

type Map = BTreeMap<Vec<u8>, Vec<u8>>;

/// An in-memory [`Kv`]: a `BTreeMap` behind a lock.
///
/// Snapshots share the current map through an `Arc`; a write copies the map
/// only if a snapshot still holds the old version (`Arc::make_mut`), so
/// snapshots are O(1) and stay immutable. Good enough for tests and small
/// ephemeral databases; nothing is durable.
#[derive(Default)]
pub struct MemKv {
    map: RwLock<Arc<Map>>,
}

impl MemKv {
    pub fn new() -> MemKv {
        MemKv::default()
    }
}

impl Kv for MemKv {
    fn snapshot(&self) -> Result<Box<dyn Snapshot>> {
        Ok(Box::new(MemSnapshot(self.map.read().clone())))
    }

    fn write(&self, batch: &[(Vec<u8>, Option<Vec<u8>>)]) -> Result<()> {
        // Holding the write lock for the whole batch makes it atomic for readers.
        let mut guard = self.map.write();
        let map = Arc::make_mut(&mut guard);
        for (key, value) in batch {
            match value {
                Some(value) => map.insert(key.clone(), value.clone()),
                None => map.remove(key),
            };
        }
        Ok(())
    }
}

struct MemSnapshot(Arc<Map>);

impl Snapshot for MemSnapshot {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.0.get(key).cloned())
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
        let range = self.0.range::<[u8], _>(bounds);
        let clone = |(k, v): (&Vec<u8>, &Vec<u8>)| (k.clone(), v.clone());
        Ok(if reverse {
            range.rev().take(limit).map(clone).collect()
        } else {
            range.take(limit).map(clone).collect()
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn mem_kv_meets_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        crate::conformance::check_all(&|_| Ok(Arc::new(MemKv::new()) as Arc<dyn Kv>), dir.path(), false);
    }

    use super::*;

    fn kv_with(keys: &[&str]) -> MemKv {
        let kv = MemKv::new();
        let batch: Vec<_> = keys
            .iter()
            .map(|k| (k.as_bytes().to_vec(), Some(k.as_bytes().to_vec())))
            .collect();
        kv.write(&batch).unwrap();
        kv
    }

    fn keys(pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Vec<String> {
        pairs
            .into_iter()
            .map(|(k, _)| String::from_utf8(k).unwrap())
            .collect()
    }

    #[test]
    fn snapshot_is_frozen() {
        let kv = kv_with(&["a"]);
        let snap = kv.snapshot().unwrap();
        kv.write(&[
            (b"a".to_vec(), None),
            (b"b".to_vec(), Some(b"x".to_vec())),
        ])
        .unwrap();
        assert_eq!(snap.get(b"a").unwrap(), Some(b"a".to_vec()));
        assert_eq!(snap.get(b"b").unwrap(), None);
        let now = kv.snapshot().unwrap();
        assert_eq!(now.get(b"a").unwrap(), None);
        assert_eq!(now.get(b"b").unwrap(), Some(b"x".to_vec()));
    }

    #[test]
    fn scan_ranges_limits_and_reverse() {
        let kv = kv_with(&["a", "b", "c", "d"]);
        let s = kv.snapshot().unwrap();
        assert_eq!(keys(s.scan(b"b", b"d", 10, false).unwrap()), ["b", "c"]);
        assert_eq!(keys(s.scan(b"b", b"", 10, false).unwrap()), ["b", "c", "d"]);
        assert_eq!(keys(s.scan(b"", b"", 2, true).unwrap()), ["d", "c"]);
        assert_eq!(keys(s.scan(b"a", b"d", 1, true).unwrap()), ["c"]);
        assert!(s.scan(b"d", b"b", 10, false).unwrap().is_empty());
        assert!(s.scan(b"b", b"b", 10, false).unwrap().is_empty());
    }
}
