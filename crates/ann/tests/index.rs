//! Behaviour of `AnnIndex` beyond recall: upserts, removals, input validation, distances,
//! concurrency, rebuilds, and save/load (round trip, watermark, crash leftovers, corruption).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use embedb_ann::distance::exact;
use embedb_ann::eval::{Clustered, Vectors};
use embedb_ann::{AnnError, AnnIndex, AnnParams, FilterStrategy, Metric, Quantization, RESERVED_KEY};

const K: usize = 10;

fn data(n: usize, dims: usize, seed: u64) -> (Vectors, Vectors) {
    Clustered::new(dims, seed).generate(n, 50)
}

fn filled(metric: Metric, base: &Vectors) -> AnnIndex {
    let index = AnnIndex::new(AnnParams::new(metric, base.dims)).unwrap();
    let keys: Vec<u64> = (0..base.len() as u64).collect();
    index.add_batch(&keys, &base.data).unwrap();
    index
}

fn keys_of(hits: &[(u64, f64)]) -> Vec<u64> {
    hits.iter().map(|h| h.0).collect()
}

#[test]
fn tidb_distances_on_small_vectors() {
    // The spec's examples, through the index.
    let l2 = AnnIndex::new(AnnParams::new(Metric::L2, 2)).unwrap();
    l2.add(1, &[4.0, 0.0]).unwrap();
    assert_eq!(l2.search(&[0.0, 3.0], 1, None).unwrap(), vec![(1, 5.0)]);

    let cos = AnnIndex::new(AnnParams::new(Metric::Cosine, 2)).unwrap();
    cos.add(7, &[-1.0, -1.0]).unwrap();
    cos.add(8, &[2.0, 2.0]).unwrap();
    assert_eq!(cos.search(&[1.0, 1.0], 2, None).unwrap(), vec![(8, 0.0), (7, 2.0)]);

    let ip = AnnIndex::new(AnnParams::new(Metric::InnerProduct, 2)).unwrap();
    ip.add(3, &[3.0, 4.0]).unwrap();
    ip.add(4, &[0.5, 0.5]).unwrap();
    assert_eq!(ip.search(&[1.0, 2.0], 2, None).unwrap(), vec![(3, -11.0), (4, -1.5)]);
}

#[test]
fn rejects_bad_input() {
    let index = AnnIndex::new(AnnParams::new(Metric::Cosine, 3)).unwrap();
    assert!(matches!(index.add(1, &[1.0, 2.0]), Err(AnnError::Dimension { expected: 3, got: 2 })));
    assert!(matches!(index.add(1, &[1.0, f32::NAN, 0.0]), Err(AnnError::NonFinite)));
    assert!(matches!(index.add(1, &[0.0, 0.0, 0.0]), Err(AnnError::ZeroVector)));
    assert!(matches!(index.add(RESERVED_KEY, &[1.0, 0.0, 0.0]), Err(AnnError::ReservedKey(_))));
    assert!(matches!(index.search(&[0.0, 0.0, 0.0], 1, None), Err(AnnError::ZeroVector)));
    // A bad row anywhere rejects the whole batch before anything changes.
    let err = index.add_batch(&[1, 2], &[1.0, 0.0, 0.0, f32::INFINITY, 0.0, 0.0]);
    assert!(matches!(err, Err(AnnError::NonFinite)));
    assert!(index.is_empty());
    assert!(matches!(index.add_batch(&[1, 2], &[1.0, 0.0, 0.0]), Err(AnnError::Dimension { .. })));
    // L2 accepts the zero vector (its distance is defined).
    let l2 = AnnIndex::new(AnnParams::new(Metric::L2, 3)).unwrap();
    l2.add(1, &[0.0, 0.0, 0.0]).unwrap();
    assert!(matches!(
        AnnIndex::new(AnnParams::new(Metric::L2, 3).with_quantization(Quantization::I8)),
        Err(AnnError::InvalidParams(_))
    ));
    assert!(index.search(&[1.0, 0.0, 0.0], 0, None).unwrap().is_empty());
    assert!(index.search(&[1.0, 0.0, 0.0], 5, None).unwrap().is_empty());
}

#[test]
fn upsert_replaces_the_vector() {
    let (base, _) = data(3_000, 32, 1);
    let index = filled(Metric::L2, &base);
    let old = base.row(5).to_vec();
    let new = base.row(2_000).iter().map(|x| x + 0.001).collect::<Vec<_>>();
    index.add(5, &new).unwrap();
    assert_eq!(index.len(), base.len());
    assert_eq!(index.get(5).unwrap(), new);
    // A wide beam on 3k rows makes the approximate answer certain in practice.
    let hits = index.search(&new, 2, Some(512)).unwrap();
    assert_eq!(hits[0], (5, 0.0));
    assert_eq!(hits[1].0, 2_000);
    assert_eq!(index.search_exact(&new, 2, |_| true).unwrap(), hits);
    // The old position no longer finds key 5.
    let hits = index.search(&old, K, None).unwrap();
    assert!(hits.iter().all(|&(k, d)| k != 5 || d > 0.0), "{hits:?}");
    // Duplicates inside one batch: the last one wins.
    index.add_batch(&[9, 9], &[old.clone(), new.clone()].concat()).unwrap();
    assert_eq!(index.get(9).unwrap(), new);
    assert_eq!(index.len(), base.len());
}

#[test]
fn removed_keys_never_come_back() {
    let (base, queries) = data(5_000, 48, 2);
    let index = filled(Metric::Cosine, &base);
    let removed = |k: u64| k.is_multiple_of(3);
    for k in (0..base.len() as u64).filter(|&k| removed(k)) {
        assert!(index.remove(k).unwrap());
    }
    assert!(!index.remove(0).unwrap(), "second removal finds nothing");
    assert!(!index.remove(999_999).unwrap());
    let live = base.len() - base.len().div_ceil(3);
    assert_eq!(index.len(), live);
    assert_eq!(index.tombstones(), base.len().div_ceil(3));
    assert!(!index.contains(3) && index.contains(4));
    assert!(index.get(3).is_none());

    // Query with the removed vectors themselves, and with fresh queries.
    let probes: Vec<&[f32]> = (0..base.len())
        .step_by(3)
        .take(300)
        .map(|i| base.row(i))
        .chain((0..queries.len()).map(|q| queries.row(q)))
        .collect();
    for q in probes {
        for hits in [
            index.search(q, K, None).unwrap(),
            index.search(q, K, Some(1)).unwrap(),
            index.search_filtered_with(q, K, None, FilterStrategy::Graph, |k| k % 2 == 0).unwrap(),
            index.search_exact(q, K, |_| true).unwrap(),
        ] {
            assert_eq!(hits.len(), K);
            assert!(hits.iter().all(|&(k, _)| !removed(k)), "removed key returned: {hits:?}");
        }
    }

    // Re-adding reuses tombstoned slots.
    let cap = index.capacity();
    for k in (0..300u64).filter(|&k| removed(k)) {
        index.add(k, base.row(k as usize)).unwrap();
    }
    assert_eq!(index.capacity(), cap);
    assert_eq!(index.tombstones(), base.len().div_ceil(3) - 100);
    assert_eq!(index.search_exact(base.row(3), 1, |_| true).unwrap(), vec![(3, 0.0)]);
    assert_eq!(index.search(base.row(3), 1, Some(256)).unwrap(), vec![(3, 0.0)]);
}

#[test]
fn returns_k_after_heavy_deletion_and_rebuild_drops_tombstones() {
    let (base, queries) = data(4_000, 32, 3);
    let index = filled(Metric::L2, &base);
    for k in 0..base.len() as u64 {
        if k % 20 != 0 {
            index.remove(k).unwrap();
        }
    }
    assert_eq!(index.len(), 200);
    let check = |index: &AnnIndex| {
        for q in 0..queries.len() {
            let hits = index.search(queries.row(q), K, None).unwrap();
            assert_eq!(hits.len(), K);
            assert!(hits.iter().all(|&(k, _)| k % 20 == 0));
            let exact = index.search_exact(queries.row(q), K, |_| true).unwrap();
            // Distances of the approximate hits are real distances, never better than exact.
            assert!(hits[0].1 >= exact[0].1);
        }
    };
    check(&index);
    index.rebuild().unwrap();
    assert_eq!(index.tombstones(), 0);
    assert_eq!(index.len(), 200);
    check(&index);
    index.add(1, base.row(1)).unwrap();
    assert_eq!(index.search(base.row(1), 1, None).unwrap(), vec![(1, 0.0)]);
}

#[test]
fn ef_override_and_small_k() {
    let (base, queries) = data(5_000, 32, 4);
    let index = filled(Metric::L2, &base);
    for ef in [1, 8, 500] {
        for k in [1, 10, 100] {
            let hits = index.search(queries.row(0), k, Some(ef)).unwrap();
            assert_eq!(hits.len(), k, "ef {ef} k {k}");
            for w in hits.windows(2) {
                assert!(w[0].1 <= w[1].1);
            }
        }
    }
    // k larger than the index returns everything.
    let small = AnnIndex::new(AnnParams::new(Metric::L2, 2)).unwrap();
    small.add_batch(&[1, 2, 3], &[0.0, 0.0, 1.0, 0.0, 2.0, 0.0]).unwrap();
    assert_eq!(keys_of(&small.search(&[0.1, 0.0], 10, None).unwrap()), vec![1, 2, 3]);
}

#[test]
fn filter_panic_propagates_and_index_stays_usable() {
    let (base, queries) = data(2_000, 16, 5);
    let index = filled(Metric::L2, &base);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        index.search_filtered_with(queries.row(0), K, None, FilterStrategy::Graph, |k| {
            if k % 7 == 3 {
                panic!("filter failed on {k}");
            }
            true
        })
    }));
    assert!(result.is_err());
    assert_eq!(index.search(queries.row(0), K, None).unwrap().len(), K);
    index.add(100_000, queries.row(1)).unwrap();
}

#[test]
fn concurrent_searches_with_a_writer_across_growth() {
    let (base, queries) = data(6_000, 32, 6);
    // Starts at 1024 slots, so the writer grows the index several times mid-search.
    let index = Arc::new(AnnIndex::new(AnnParams::new(Metric::Cosine, base.dims)).unwrap());
    index.add_batch(&(0..500).collect::<Vec<u64>>(), &base.data[..500 * base.dims]).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..6)
        .map(|r| {
            let (index, done, queries) = (index.clone(), done.clone(), queries.clone());
            std::thread::spawn(move || {
                let mut n = 0usize;
                while !done.load(Ordering::Relaxed) {
                    let q = queries.row((n + r) % queries.len());
                    let hits = if n.is_multiple_of(2) {
                        index.search(q, K, None).unwrap()
                    } else {
                        index.search_filtered(q, K, None, |k| k % 2 == 1).unwrap()
                    };
                    assert_eq!(hits.len(), K);
                    for w in hits.windows(2) {
                        assert!(w[0].1 <= w[1].1);
                    }
                    n += 1;
                }
                n
            })
        })
        .collect();
    let writer = {
        let (index, base) = (index.clone(), base.clone());
        std::thread::spawn(move || {
            for i in 500..base.len() {
                index.add(i as u64, base.row(i)).unwrap();
                if i % 10 == 0 {
                    index.remove((i - 250) as u64).unwrap();
                    index.add((i - 250) as u64, base.row(i - 250)).unwrap();
                }
            }
        })
    };
    writer.join().unwrap();
    done.store(true, Ordering::Relaxed);
    let searches: usize = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert!(searches > 0);
    assert_eq!(index.len(), base.len());
    assert!(index.capacity() >= base.len());
    // Every row is stored intact; the graph built under contention still finds rows by their
    // own vector (approximate search, so a rate rather than every single one).
    let mut found = 0;
    for i in 0..base.len() {
        assert_eq!(index.get(i as u64).unwrap(), base.row(i), "row {i}");
        if i % 7 == 0 {
            found += (index.search(base.row(i), 1, None).unwrap()[0] == (i as u64, 0.0)) as usize;
        }
    }
    let probed = base.len().div_ceil(7);
    assert!(found as f64 >= 0.98 * probed as f64, "self-recall@1 {found}/{probed}");
}

#[test]
fn save_load_round_trip_is_identical() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("docs_embedding.ann");
    let (base, queries) = data(4_000, 64, 8);
    let index = filled(Metric::Cosine, &base);
    for k in (0..400).step_by(4) {
        index.remove(k).unwrap();
    }
    assert!(AnnIndex::read_manifest(&path).unwrap().is_none());
    let m = index.save(&path, 1234).unwrap();
    assert_eq!((m.generation, m.watermark, m.len, m.tombstones), (1, 1234, 3_900, 100));

    let params = AnnParams::new(Metric::Cosine, 64);
    let (loaded, manifest) = AnnIndex::load(&path, &params).unwrap();
    assert_eq!(manifest, m);
    assert_eq!(loaded.len(), index.len());
    assert_eq!(loaded.tombstones(), 100);
    for q in 0..queries.len() {
        let a = index.search(queries.row(q), K, None).unwrap();
        let b = loaded.search(queries.row(q), K, None).unwrap();
        assert_eq!(a, b);
        let f = |k: u64| k % 5 == 1;
        assert_eq!(
            index.search_filtered_with(queries.row(q), K, None, FilterStrategy::Graph, f).unwrap(),
            loaded.search_filtered_with(queries.row(q), K, None, FilterStrategy::Graph, f).unwrap()
        );
    }
    assert!(!loaded.contains(0) && loaded.contains(1));

    // The loaded index accepts writes (capacity and thread contexts were re-reserved), and the
    // next save is a new generation that replaces the old files.
    loaded.add(0, base.row(0)).unwrap();
    for i in 0..3_000u64 {
        loaded.add(10_000 + i, base.row(i as usize)).unwrap();
    }
    let m2 = loaded.save(&path, 1300).unwrap();
    assert_eq!(m2.generation, 2);
    let mut files: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    files.sort();
    assert_eq!(files, vec!["docs_embedding.ann", "docs_embedding.ann.2.keys", "docs_embedding.ann.2.usearch"]);
    let (again, m3) = AnnIndex::load(&path, &params.clone().with_ef_search(200)).unwrap();
    assert_eq!(m3.watermark, 1300);
    assert_eq!(again.len(), 6_901);
    assert_eq!(again.params().ef_search, 200);
    assert_eq!(again.search(base.row(0), 1, None).unwrap()[0].1, 0.0);
}

#[test]
fn load_rejects_mismatch_and_damage_and_ignores_crash_leftovers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.ann");
    let (base, queries) = data(2_000, 16, 9);
    let index = filled(Metric::L2, &base);
    index.save(&path, 7).unwrap();
    let params = AnnParams::new(Metric::L2, 16);

    for wrong in [
        AnnParams::new(Metric::Cosine, 16),
        AnnParams::new(Metric::L2, 17),
        params.clone().with_connectivity(32),
        params.clone().with_quantization(Quantization::F16),
    ] {
        assert!(matches!(AnnIndex::load(&path, &wrong), Err(AnnError::ParamsMismatch { .. })), "{wrong:?}");
    }
    let missing = AnnIndex::load(dir.path().join("nope.ann"), &params);
    assert!(matches!(missing, Err(AnnError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound));

    // A crash mid-save leaves temporary files and maybe a complete but unreferenced next
    // generation; the manifest still names generation 1, which loads.
    std::fs::write(dir.path().join("t.ann.tmp"), b"{ torn").unwrap();
    std::fs::write(dir.path().join("t.ann.2.usearch.tmp"), b"partial").unwrap();
    std::fs::copy(dir.path().join("t.ann.1.keys"), dir.path().join("t.ann.2.keys")).unwrap();
    let (loaded, m) = AnnIndex::load(&path, &params).unwrap();
    assert_eq!((m.generation, m.watermark), (1, 7));
    assert_eq!(loaded.search(queries.row(0), K, None).unwrap(), index.search(queries.row(0), K, None).unwrap());
    // The next save overwrites generation 2 (and the manifest's temp file) and clears the rest.
    loaded.save(&path, 8).unwrap();
    let mut files: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    files.sort();
    assert_eq!(files, vec!["t.ann", "t.ann.2.keys", "t.ann.2.usearch"]);

    // Damage: a truncated graph, a flipped key, a garbled manifest.
    let graph = dir.path().join("t.ann.2.usearch");
    let bytes = std::fs::read(&graph).unwrap();
    std::fs::write(&graph, &bytes[..bytes.len() / 2]).unwrap();
    assert!(matches!(AnnIndex::load(&path, &params), Err(AnnError::Corrupt(_))));
    std::fs::write(&graph, &bytes).unwrap();
    let keys = dir.path().join("t.ann.2.keys");
    let mut kb = std::fs::read(&keys).unwrap();
    kb[20] ^= 1;
    std::fs::write(&keys, &kb).unwrap();
    assert!(matches!(AnnIndex::load(&path, &params), Err(AnnError::Corrupt(_))));
    kb[20] ^= 1;
    std::fs::write(&keys, &kb).unwrap();
    AnnIndex::load(&path, &params).unwrap();
    std::fs::write(&path, b"{\"format\": 1").unwrap();
    assert!(matches!(AnnIndex::load(&path, &params), Err(AnnError::Corrupt(_))));
    assert!(AnnIndex::read_manifest(&path).is_err());
}

#[test]
fn quantized_f16_round_trips_through_save() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.ann");
    let (base, queries) = data(2_000, 32, 10);
    let params = AnnParams::new(Metric::Cosine, 32).with_quantization(Quantization::F16);
    let index = AnnIndex::new(params.clone()).unwrap();
    index.add_batch(&(0..2_000).collect::<Vec<u64>>(), &base.data).unwrap();
    index.save(&path, 1).unwrap();
    let (loaded, _) = AnnIndex::load(&path, &params).unwrap();
    for q in 0..queries.len() {
        let hits = loaded.search(queries.row(q), K, None).unwrap();
        assert_eq!(hits, index.search(queries.row(q), K, None).unwrap());
        for (k, d) in hits {
            assert!((d - exact(Metric::Cosine, queries.row(q), base.row(k as usize))).abs() < 1e-3);
        }
    }
}
