//! Where an HNSW graph's recall goes: builds an `AnnIndex` on the seeded clustered set (the
//! vector bench's 1M×128 L2 set by default) and prints, at several ef, recall@10 with a
//! histogram of hits per query (does recall drop because a few walks end in the wrong region,
//! or because many miss one neighbour?), then how many sampled base rows a search for the row's
//! own vector fails to return first (rows the walk cannot reach).
//!
//! ```text
//! cargo run --release -p embedb-ann --example graph_probe -- [M] [ef_construction] [rows]
//! ```

use std::time::Instant;

use embedb_ann::eval::{self, Clustered};
use embedb_ann::{AnnIndex, AnnParams, Metric};

/// The vector bench's seed, so that the set is the bench's.
const SEED: u64 = 20_261_125;
const K: usize = 10;

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().expect("M, ef_construction, rows: numbers")).collect();
    let m = args.first().copied().unwrap_or(AnnParams::DEFAULT_CONNECTIVITY);
    let efc = args.get(1).copied().unwrap_or(AnnParams::DEFAULT_EF_CONSTRUCTION);
    let n = args.get(2).copied().unwrap_or(1_000_000);
    let (base, queries) = Clustered::new(128, SEED).generate(n, 200);
    let truth = eval::brute_force(&base, &queries, K, Metric::L2, &|_| true);
    let params = AnnParams::new(Metric::L2, 128).with_connectivity(m).with_ef_construction(efc);
    let index = AnnIndex::with_capacity(params, n).expect("index");
    let t = Instant::now();
    let keys: Vec<u64> = (0..n as u64).collect();
    index.add_batch(&keys, &base.data).expect("build");
    println!("{n} rows, M {m}, ef_construction {efc}: built in {:.1} s", t.elapsed().as_secs_f64());
    for ef in [64, 256, 1024, 4096] {
        let found: Vec<Vec<u64>> = (0..queries.len()).map(|q| index.search_keys(queries.row(q), K, Some(ef)).expect("search")).collect();
        let mut hits = [0usize; K + 1];
        for (f, t) in found.iter().zip(&truth) {
            hits[f.iter().filter(|key| t.contains(key)).count()] += 1;
        }
        println!("ef {ef}: recall@10 {:.3}; queries by hits 0..=10: {hits:?}", eval::recall_at_k(&found, &truth, K));
    }
    let step = (n / 5000).max(1);
    for ef in [64, 256] {
        let sampled: Vec<usize> = (0..n).step_by(step).collect();
        let lost = sampled.iter().filter(|&&i| index.search_keys(base.row(i), 1, Some(ef)).expect("search").first() != Some(&(i as u64))).count();
        println!("ef {ef}: {lost} of {} sampled rows are not their own vector's nearest result", sampled.len());
    }
}
