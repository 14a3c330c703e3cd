//! Writes that are durable in the write-ahead log but not yet in redb, and the read view that lays
//! them over a redb snapshot.
//!
//! A commit of `INSERT INTO t VALUES (7, 'x')` reaches `RedbKv::write` as one batch: it is
//! appended to the log and synced, then inserted here under the next sequence number — no redb
//! transaction per commit. A snapshot taken after that holds this [`Memtable`] and that number;
//! its `get(k)` asks the memtable for the newest version of `k` at or below its number, and only
//! when the memtable has none, redb. Scans merge the two in key order, the memtable's version
//! winning (a delete hides redb's entry). Every few MB of log a checkpoint writes the newest
//! version of every key to redb in one durable commit and starts an empty memtable; snapshots
//! taken before keep the old one (and the redb root they began with), so what they read never
//! changes.
//!
//! Why: redb's copy-on-write B-tree rewrites every page a commit touches, the path to the root
//! included. A thousand single-row commits touching one leaf wrote it a thousand times; one
//! checkpoint writes it once. The log already made each commit durable.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::kv::{scan_bounds, Snapshot};
use crate::Result;

/// Versions of one key, oldest first: (sequence number, value or `None` for a delete).
type Versions = Vec<(u64, Option<Vec<u8>>)>;

#[derive(Default)]
pub(crate) struct Memtable {
    map: RwLock<BTreeMap<Vec<u8>, Versions>>,
}

impl Memtable {
    /// Adds a committed batch as sequence number `seq` (greater than every earlier one).
    pub(crate) fn insert(&self, seq: u64, batch: &[(Vec<u8>, Option<Vec<u8>>)]) {
        let mut map = self.map.write();
        for (k, v) in batch {
            map.entry(k.clone()).or_default().push((seq, v.clone()));
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.map.read_recursive().is_empty()
    }

    /// The newest version of every key, in key order: what a checkpoint writes to redb.
    pub(crate) fn latest(&self) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        let map = self.map.read_recursive();
        map.iter().filter_map(|(k, vs)| vs.last().map(|(_, v)| (k.clone(), v.clone()))).collect()
    }
}

/// The version of a key visible at `seq`: `None` when the memtable has none (ask redb),
/// `Some(None)` for a delete.
fn visible(vs: &Versions, seq: u64) -> Option<Option<&[u8]>> {
    vs.iter().rev().find(|(s, _)| *s <= seq).map(|(_, v)| v.as_deref())
}

/// One memtable's visible entries of a range, in key order (or reverse).
type LayerIter<'a> = std::iter::Peekable<Box<dyn Iterator<Item = (&'a [u8], Option<&'a [u8]>)> + 'a>>;

fn layer_iter<'a>(map: &'a BTreeMap<Vec<u8>, Versions>, bounds: crate::kv::KeyBounds<'a>, seq: u64, reverse: bool) -> LayerIter<'a> {
    let range = map.range::<[u8], _>(bounds);
    let visible_entries = move |(k, vs): (&'a Vec<u8>, &'a Versions)| visible(vs, seq).map(|v| (k.as_slice(), v));
    let it: Box<dyn Iterator<Item = _> + 'a> = if reverse { Box::new(range.rev().filter_map(visible_entries)) } else { Box::new(range.filter_map(visible_entries)) };
    it.peekable()
}

/// The memtables' entries merged in key order: where two hold a key, the newer one's version.
struct Merged<'a> {
    layers: Vec<LayerIter<'a>>,
    reverse: bool,
}

impl<'a> Iterator for Merged<'a> {
    type Item = (&'a [u8], Option<&'a [u8]>);

    fn next(&mut self) -> Option<Self::Item> {
        // The first key in scan order; layers are newest first, so the first holder wins.
        let mut best: Option<(usize, &'a [u8])> = None;
        for (i, l) in self.layers.iter_mut().enumerate() {
            if let Some(&(k, _)) = l.peek() {
                let better = match best {
                    None => true,
                    Some((_, b)) => if self.reverse { k > b } else { k < b },
                };
                if better {
                    best = Some((i, k));
                }
            }
        }
        let (i, key) = best?;
        for (j, l) in self.layers.iter_mut().enumerate() {
            if j != i && l.peek().is_some_and(|&(k, _)| k == key) {
                l.next(); // shadowed by a newer layer
            }
        }
        self.layers[i].next()
    }
}

/// A redb snapshot with memtables' versions up to `seq` laid over it: the active memtable and,
/// while a checkpoint writes it to redb, the one before (`layers`, newest first).
pub(crate) struct Overlay {
    pub(crate) base: Box<dyn Snapshot>,
    pub(crate) layers: Vec<Arc<Memtable>>,
    pub(crate) seq: u64,
}

impl Overlay {
    fn guards(&self) -> Vec<parking_lot::RwLockReadGuard<'_, BTreeMap<Vec<u8>, Versions>>> {
        self.layers.iter().map(|m| m.map.read_recursive()).collect()
    }
}

fn merged<'a>(guards: &'a [parking_lot::RwLockReadGuard<'_, BTreeMap<Vec<u8>, Versions>>], bounds: crate::kv::KeyBounds<'a>, seq: u64, reverse: bool) -> std::iter::Peekable<Merged<'a>> {
    Merged { layers: guards.iter().map(|g| layer_iter(g, bounds, seq, reverse)).collect(), reverse }.peekable()
}

impl Snapshot for Overlay {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        for m in &self.layers {
            if let Some(v) = m.map.read_recursive().get(key).and_then(|vs| visible(vs, self.seq)) {
                return Ok(v.map(<[u8]>::to_vec));
            }
        }
        self.base.get(key)
    }

    fn scan(&self, start: &[u8], end: &[u8], limit: usize, reverse: bool) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let Some(bounds) = scan_bounds(start, end) else { return Ok(Vec::new()) };
        let guards = self.guards();
        let mem: Vec<(&[u8], Option<&[u8]>)> = merged(&guards, bounds, self.seq, reverse).collect();
        if mem.is_empty() {
            drop(guards);
            return self.base.scan(start, end, limit, reverse);
        }
        // Each memtable entry shadows at most one of redb's, so this many of redb's fill `limit`.
        let base = self.base.scan(start, end, limit.saturating_add(mem.len()), reverse)?;
        Ok(crate::kv::merge_overlaid(base, mem, limit, reverse))
    }

    fn scan_visit(&self, start: &[u8], end: &[u8], visit: &mut dyn FnMut(&[u8], &[u8]) -> bool) -> Result<()> {
        let Some(bounds) = scan_bounds(start, end) else { return Ok(()) };
        // Held for the whole visit (scans read a batch at a time): a commit waits for it.
        let guards = self.guards();
        let mut mem = merged(&guards, bounds, self.seq, false);
        if mem.peek().is_none() {
            drop(mem);
            drop(guards);
            return self.base.scan_visit(start, end, visit);
        }
        crate::kv::visit_overlaid(mem, |lend| self.base.scan_visit(start, end, lend), visit)
    }
}
