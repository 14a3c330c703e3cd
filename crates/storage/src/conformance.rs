//! The [`Kv`] contract as a test suite that every engine runs: the same checks for [`MemKv`],
//! [`RedbKv`] and the object-storage engine of cluster mode, so the layers above can rely on
//! one behaviour whichever engine is underneath.
//!
//! An engine hands the suite an `open` function (a fresh or reopened store in a directory) and
//! says whether it is durable; [`check_all`] then runs:
//!
//! - **order**: scans return keys in byte order, forwards and backwards, within `[start, end)`
//!   (an empty `end` is unbounded), cut at `limit`; `scan_visit` agrees with `scan`;
//! - **snapshots**: a snapshot never sees a later write or delete;
//! - **atomic batches**: readers racing a writer see every batch whole or not at all;
//! - **concurrent commits**: batches from several threads all land;
//! - **a model**: random batches and scans against a `BTreeMap`, with old snapshots kept;
//! - **durability** (durable engines): everything acknowledged is there after a reopen.
//!
//! [`MemKv`]: crate::MemKv
//! [`RedbKv`]: crate::RedbKv

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::kv::Kv;
use crate::Result;

/// Opens the engine under test in a directory (creating it, or reopening what is there).
pub type Open<'a> = &'a dyn Fn(&Path) -> Result<Arc<dyn Kv>>;

type Batch = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// Runs every check; panics with the check's name on the first failure.
pub fn check_all(open: Open, dir: &Path, durable: bool) {
    let fresh = |name: &str| {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).expect("test dir");
        (open(&d).unwrap_or_else(|e| panic!("open for {name}: {e}")), d)
    };
    order(&*fresh("order").0);
    snapshots(&*fresh("snapshots").0);
    atomic_batches(fresh("atomic").0);
    concurrent_commits(fresh("concurrent").0);
    let (kv, d) = fresh("model");
    let model = against_a_model(&*kv, 0xE3BE_DB);
    if durable {
        drop(kv);
        let reopened = open(&d).expect("reopen");
        let all = reopened.snapshot().expect("snapshot").scan(b"", b"", usize::MAX, false).expect("scan");
        let want: Vec<(Vec<u8>, Vec<u8>)> = model.into_iter().collect();
        assert!(all == want, "durability: after a reopen the store holds {} pairs, the model {}", all.len(), want.len());
    }
}

fn key(i: u64) -> Vec<u8> {
    // Varying lengths and a shared prefix, so byte order differs from numeric order.
    format!("k{}", i * 7919 % 1000).into_bytes()
}

fn order(kv: &dyn Kv) {
    let batch: Batch = (0..300).map(|i| (key(i), Some(format!("v{i}").into_bytes()))).collect();
    kv.write(&batch).expect("write");
    let mut want: Vec<Vec<u8>> = batch.iter().map(|(k, _)| k.clone()).collect();
    want.sort();
    want.dedup();
    let snap = kv.snapshot().expect("snapshot");
    let keys = |start: &[u8], end: &[u8], limit: usize, reverse: bool| -> Vec<Vec<u8>> {
        snap.scan(start, end, limit, reverse).expect("scan").into_iter().map(|(k, _)| k).collect()
    };
    assert_eq!(keys(b"", b"", usize::MAX, false), want, "order: a full scan is in byte order");
    let mut rev = want.clone();
    rev.reverse();
    assert_eq!(keys(b"", b"", usize::MAX, true), rev, "order: a reverse scan is in reverse byte order");
    let (lo, hi) = (b"k2".as_slice(), b"k5".as_slice());
    let inside: Vec<Vec<u8>> = want.iter().filter(|k| k.as_slice() >= lo && k.as_slice() < hi).cloned().collect();
    assert_eq!(keys(lo, hi, usize::MAX, false), inside, "order: [start, end)");
    assert_eq!(keys(lo, hi, 5, false), inside[..5].to_vec(), "order: limit");
    assert_eq!(keys(lo, hi, 5, true), inside.iter().rev().take(5).cloned().collect::<Vec<_>>(), "order: limit, reverse");
    assert_eq!(keys(b"k9", b"", usize::MAX, false), want.iter().filter(|k| k.as_slice() >= b"k9".as_slice()).cloned().collect::<Vec<_>>(), "order: empty end is unbounded");
    assert!(keys(b"k5", b"k2", usize::MAX, false).is_empty(), "order: an empty range");
    let mut visited = Vec::new();
    snap.scan_visit(lo, hi, &mut |k, _| {
        visited.push(k.to_vec());
        visited.len() < 7
    })
    .expect("scan_visit");
    assert_eq!(visited, inside[..7].to_vec(), "order: scan_visit agrees with scan and stops when asked");
    assert_eq!(snap.get(&key(3)).expect("get"), Some(b"v3".to_vec()), "order: get");
    assert_eq!(snap.get(b"absent").expect("get"), None, "order: get of an absent key");
}

fn snapshots(kv: &dyn Kv) {
    kv.write(&[(b"a".to_vec(), Some(b"1".to_vec())), (b"b".to_vec(), Some(b"1".to_vec()))]).expect("write");
    let before = kv.snapshot().expect("snapshot");
    kv.write(&[(b"a".to_vec(), Some(b"2".to_vec())), (b"b".to_vec(), None), (b"c".to_vec(), Some(b"2".to_vec()))]).expect("write");
    let after = kv.snapshot().expect("snapshot");
    assert_eq!(before.get(b"a").expect("get"), Some(b"1".to_vec()), "snapshots: an overwrite is not seen");
    assert_eq!(before.get(b"b").expect("get"), Some(b"1".to_vec()), "snapshots: a delete is not seen");
    assert_eq!(before.get(b"c").expect("get"), None, "snapshots: an insert is not seen");
    assert_eq!(before.scan(b"", b"", 10, false).expect("scan").len(), 2, "snapshots: scans see the old pairs");
    assert_eq!(after.scan(b"", b"", 10, false).expect("scan"), vec![(b"a".to_vec(), b"2".to_vec()), (b"c".to_vec(), b"2".to_vec())], "snapshots: a new one sees the writes");
}

fn atomic_batches(kv: Arc<dyn Kv>) {
    // Each batch sets all of k0..k15 to its round number: a snapshot must see one round.
    let keys: Vec<Vec<u8>> = (0..16).map(|i| format!("atom{i:02}").into_bytes()).collect();
    let write = |round: u32| -> Batch { keys.iter().map(|k| (k.clone(), Some(round.to_be_bytes().to_vec()))).collect() };
    kv.write(&write(0)).expect("write");
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (kv, done) = (kv.clone(), done.clone());
            std::thread::spawn(move || {
                let mut seen = 0;
                while !done.load(std::sync::atomic::Ordering::Relaxed) || seen == 0 {
                    let pairs = kv.snapshot().expect("snapshot").scan(b"atom", b"aton", usize::MAX, false).expect("scan");
                    assert_eq!(pairs.len(), 16, "atomic batches: every key is there");
                    assert!(pairs.windows(2).all(|w| w[0].1 == w[1].1), "atomic batches: a snapshot saw part of a batch");
                    seen += 1;
                }
                seen
            })
        })
        .collect();
    for round in 1..200 {
        kv.write(&write(round)).expect("write");
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        assert!(r.join().expect("reader") > 0);
    }
}

fn concurrent_commits(kv: Arc<dyn Kv>) {
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let kv = kv.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    kv.write(&[(format!("c{t}-{i:03}").into_bytes(), Some(vec![t as u8]))]).expect("write");
                }
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer");
    }
    let pairs = kv.snapshot().expect("snapshot").scan(b"c", b"d", usize::MAX, false).expect("scan");
    assert_eq!(pairs.len(), 200, "concurrent commits: every batch landed");
}

/// Random batches, point reads and scans, each compared with a `BTreeMap`; a few old snapshots
/// are kept and checked against the model as it was. Returns the final model.
fn against_a_model(kv: &dyn Kv, seed: u64) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut rng = crate::TestRng::new(seed);
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut kept: Vec<(Box<dyn crate::Snapshot>, BTreeMap<Vec<u8>, Vec<u8>>)> = Vec::new();
    let k = |n: u64| format!("m{:03}", n).into_bytes();
    for step in 0..400 {
        let batch: Batch = (0..1 + rng.below(8))
            .map(|_| {
                let key = k(rng.below(200));
                if rng.below(4) == 0 {
                    (key, None)
                } else {
                    (key, Some(rng.next_u64().to_be_bytes()[..1 + rng.below(8) as usize].to_vec()))
                }
            })
            .collect();
        kv.write(&batch).expect("write");
        for (key, v) in batch {
            match v {
                Some(v) => model.insert(key, v),
                None => model.remove(&key),
            };
        }
        if step % 50 == 0 {
            kept.push((kv.snapshot().expect("snapshot"), model.clone()));
        }
        let (lo, hi) = (k(rng.below(200)), k(rng.below(200)));
        let (limit, reverse) = (1 + rng.below(30) as usize, rng.below(2) == 0);
        let got = kv.snapshot().expect("snapshot").scan(&lo, &hi, limit, reverse).expect("scan");
        let range = model.range(lo.clone()..).take_while(|(key, _)| **key < hi).map(|(a, b)| (a.clone(), b.clone()));
        let want: Vec<_> = if reverse { range.collect::<Vec<_>>().into_iter().rev().take(limit).collect() } else { range.take(limit).collect() };
        assert_eq!(got, want, "model: step {step}, scan [{lo:?}, {hi:?}) limit {limit} reverse {reverse}");
    }
    for (snap, then) in &kept {
        let all = snap.scan(b"", b"", usize::MAX, false).expect("scan");
        assert!(all == then.iter().map(|(a, b)| (a.clone(), b.clone())).collect::<Vec<_>>(), "model: an old snapshot changed");
    }
    model
}
