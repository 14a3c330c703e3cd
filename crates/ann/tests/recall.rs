//! Recall of the default parameters against exact neighbours: the shared real sets (their
//! `groundtruth.ivecs`) and a seeded clustered set (brute force), unfiltered and with a filter
//! keeping 10 % of the keys. Figures are printed; run with `--nocapture` to see them.

use embedb_ann::eval::{self, Clustered, RealSet, Vectors};
use embedb_ann::{AnnIndex, AnnParams, FilterStrategy, Metric, Quantization};

const K: usize = 10;

fn build(params: AnnParams, base: &Vectors) -> AnnIndex {
    let index = AnnIndex::with_capacity(params, base.len()).unwrap();
    let keys: Vec<u64> = (0..base.len() as u64).collect();
    index.add_batch(&keys, &base.data).unwrap();
    assert_eq!(index.len(), base.len());
    index
}

fn real_set(name: &str) -> Option<RealSet> {
    match eval::load_real_set(name) {
        None => {
            println!("SKIP {name}: shared data directory not found (set EMBEDB_SHARED_DIR)");
            None
        }
        Some(r) => Some(r.unwrap_or_else(|e| panic!("reading {name}: {e}"))),
    }
}

/// Searches every query, checks each returned distance is the TiDB value for that row, and
/// returns recall@10 against `truth`.
fn recall(index: &AnnIndex, base: &Vectors, queries: &Vectors, truth: &[Vec<u64>], ef: Option<usize>) -> f64 {
    let metric = index.metric();
    let found: Vec<Vec<u64>> = (0..queries.len())
        .map(|q| {
            let query = queries.row(q);
            let hits = index.search(query, K, ef).unwrap();
            assert_eq!(hits.len(), K);
            for w in hits.windows(2) {
                assert!(w[0].1 <= w[1].1, "results must ascend: {hits:?}");
            }
            if index.params().quantization == Quantization::F32 {
                for &(key, d) in &hits {
                    let want = embedb_ann::distance::exact(metric, query, base.row(key as usize));
                    assert_eq!(d, want, "distance for key {key} must equal {}", metric.tidb_function());
                }
            }
            hits.into_iter().map(|(k, _)| k).collect()
        })
        .collect();
    eval::recall_at_k(&found, truth, K)
}

#[test]
fn sift5k_l2_default_params() {
    let Some(set) = real_set("ngt_sift5k") else { return };
    let index = build(AnnParams::new(Metric::L2, set.base.dims), &set.base);
    let r = recall(&index, &set.base, &set.queries, &set.groundtruth, None);
    println!("ngt_sift5k L2: {} base, {} queries, recall@10 = {r:.4}", set.base.len(), set.queries.len());
    assert!(r >= 0.95, "recall@10 {r}");
}

#[test]
fn scifact_minilm_cosine_and_inner_product_default_params() {
    let Some(set) = real_set("scifact_minilm384") else { return };
    // The ground truth is by inner product over unit vectors, which ranks like cosine.
    for metric in [Metric::Cosine, Metric::InnerProduct] {
        let index = build(AnnParams::new(metric, set.base.dims), &set.base);
        let r = recall(&index, &set.base, &set.queries, &set.groundtruth, None);
        println!(
            "scifact_minilm384 {metric:?}: {} base, {} queries, recall@10 = {r:.4}",
            set.base.len(),
            set.queries.len()
        );
        assert!(r >= 0.95, "{metric:?} recall@10 {r}");
    }
}

#[test]
fn scifact_minilm_quantized() {
    let Some(set) = real_set("scifact_minilm384") else { return };
    for (q, floor) in [(Quantization::F16, 0.95), (Quantization::I8, 0.85)] {
        let index = build(AnnParams::new(Metric::Cosine, set.base.dims).with_quantization(q), &set.base);
        let r = recall(&index, &set.base, &set.queries, &set.groundtruth, None);
        println!("scifact_minilm384 cosine {q:?}: recall@10 = {r:.4}, {} bytes", index.memory_usage());
        assert!(r >= floor, "{q:?} recall@10 {r}");
        // Quantised distances are approximate but close to the TiDB value.
        let query = set.queries.row(0);
        for (key, d) in index.search(query, K, None).unwrap() {
            let want = embedb_ann::distance::exact(Metric::Cosine, query, set.base.row(key as usize));
            assert!((d - want).abs() < 0.02, "{q:?}: {d} vs {want}");
        }
    }
}

/// A 10 % subset, spread pseudo-randomly over the keys.
fn ten_percent(key: u64) -> bool {
    key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32 < (u32::MAX as u64 + 1) / 10
}

#[test]
fn clustered_20k_unfiltered_and_filtered() {
    let (base, queries) = Clustered::new(128, 42).generate(20_000, 200);
    let metric = Metric::L2;
    let index = build(AnnParams::new(metric, base.dims), &base);

    let truth = eval::brute_force(&base, &queries, K, metric, &|_| true);
    let r = recall(&index, &base, &queries, &truth, None);
    println!("clustered 20k×128 L2: recall@10 = {r:.4}");
    assert!(r >= 0.95, "recall@10 {r}");

    let passing = (0..base.len() as u64).filter(|&k| ten_percent(k)).count();
    assert!((1_800..2_200).contains(&passing), "{passing} keys pass");
    let truth = eval::brute_force(&base, &queries, K, metric, &ten_percent);
    for strategy in [FilterStrategy::Graph, FilterStrategy::Auto, FilterStrategy::Exact] {
        let found: Vec<Vec<u64>> = (0..queries.len())
            .map(|q| {
                let hits = index.search_filtered_with(queries.row(q), K, None, strategy, ten_percent).unwrap();
                assert_eq!(hits.len(), K, "{strategy:?} must return k results");
                assert!(hits.iter().all(|&(key, _)| ten_percent(key)), "{strategy:?} returned a filtered-out key");
                hits.into_iter().map(|(k, _)| k).collect()
            })
            .collect();
        let r = eval::recall_at_k(&found, &truth, K);
        println!("clustered 20k, 10 % filter, {strategy:?}: recall@10 = {r:.4}");
        assert!(r >= 0.95, "{strategy:?} filtered recall@10 {r}");
        if strategy == FilterStrategy::Exact {
            assert_eq!(r, 1.0);
        }
    }
    let est = index.estimate_filter(K, None, &ten_percent);
    println!("estimate for the 10 % filter: {est:?}");
    assert!((0.06..0.14).contains(&est.selectivity), "{est:?}");
}

#[test]
fn clustered_very_selective_filter_returns_every_match() {
    let (base, queries) = Clustered::new(64, 7).generate(20_000, 20);
    let index = build(AnnParams::new(Metric::Cosine, base.dims), &base);
    // 5 keys pass: fewer than k, so every one of them comes back, in exact order.
    let few = |key: u64| key % 4_000 == 17;
    let truth = eval::brute_force(&base, &queries, K, Metric::Cosine, &few);
    for strategy in [FilterStrategy::Graph, FilterStrategy::Auto] {
        for (q, want) in truth.iter().enumerate() {
            let hits = index.search_filtered_with(queries.row(q), K, None, strategy, few).unwrap();
            let keys: Vec<u64> = hits.iter().map(|h| h.0).collect();
            assert_eq!(&keys, want, "{strategy:?}");
        }
    }
    // 1 % pass: the estimate picks the scan, which is exact.
    let one_percent = |key: u64| key % 100 == 3;
    let est = index.estimate_filter(K, None, &one_percent);
    assert!(est.prefer_exact, "{est:?}");
    let truth = eval::brute_force(&base, &queries, K, Metric::Cosine, &one_percent);
    for (q, want) in truth.iter().enumerate() {
        let keys: Vec<u64> =
            index.search_filtered(queries.row(q), K, None, one_percent).unwrap().iter().map(|h| h.0).collect();
        assert_eq!(&keys, want);
    }
}

#[test]
fn uniform_random_recall_is_reported() {
    // Uniform noise in 128 dimensions has no neighbourhood structure; HNSW recall drops there.
    // Reported for reference, not a target (the defaults are chosen on the sets above).
    let base = eval::uniform(10_000, 128, 3);
    let queries = eval::uniform(100, 128, 4);
    let index = build(AnnParams::new(Metric::L2, 128), &base);
    let truth = eval::brute_force(&base, &queries, K, Metric::L2, &|_| true);
    for ef in [64, 256] {
        let r = recall(&index, &base, &queries, &truth, Some(ef));
        println!("uniform 10k×128 L2, ef_search {ef}: recall@10 = {r:.4}");
        assert!(r > 0.3, "recall@10 {r} is implausibly low");
    }
}
