//! ANN benchmark: build time, single-thread QPS and recall@10 at several ef_search values, for
//! embedb-ann's `AnnIndex` and for the same graph built with raw usearch calls, on the shared
//! real sets and a seeded clustered set; optionally a filter-selectivity sweep (graph walk vs
//! exact scan) that calibrates `AnnIndex::estimate_filter`, and hnswlib via Python.
//!
//! ```text
//! cargo run --release -p embedb-ann --example ann_bench                  # real sets + clustered 100k×384
//! cargo run --release -p embedb-ann --example ann_bench -- --large       # + clustered 1M×128
//! cargo run --release -p embedb-ann --example ann_bench -- --filter-sweep
//! cargo run --release -p embedb-ann --example ann_bench -- --hnswlib     # needs python3 (venv in ~/.cache)
//! options: --n N (clustered size), --queries Q, --skip-real, --skip-clustered
//! ```
//!
//! QPS is one thread issuing one query at a time (the SQL layer's shape); builds use all cores.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use embedb_ann::eval::{self, Clustered, Vectors};
use embedb_ann::{AnnIndex, AnnParams, FilterStrategy, Metric};

const K: usize = 10;
const EFS: [usize; 5] = [16, 32, 64, 128, 256];

struct Set {
    name: String,
    metric: Metric,
    base: Vectors,
    queries: Vectors,
    truth: Vec<Vec<u64>>,
}

struct Opts {
    large: bool,
    filter_sweep: bool,
    hnswlib: bool,
    n: usize,
    queries: usize,
    real: bool,
    clustered: bool,
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        large: false,
        filter_sweep: false,
        hnswlib: false,
        n: 100_000,
        queries: 500,
        real: true,
        clustered: true,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--large" => o.large = true,
            "--filter-sweep" => o.filter_sweep = true,
            "--hnswlib" => o.hnswlib = true,
            "--skip-real" => o.real = false,
            "--skip-clustered" => o.clustered = false,
            "--n" => {
                i += 1;
                o.n = args[i].parse().expect("--n N");
            }
            "--queries" => {
                i += 1;
                o.queries = args[i].parse().expect("--queries Q");
            }
            other => panic!("unknown option {other}"),
        }
        i += 1;
    }
    o
}

fn clustered_set(n: usize, dims: usize, queries: usize, metric: Metric) -> Set {
    let t = Instant::now();
    let (base, q) = Clustered::new(dims, 20_261_125).generate(n, queries);
    let truth = eval::brute_force(&base, &q, K, metric, &|_| true);
    println!("  (generated clustered {n}×{dims} and its exact top-{K} in {:.1} s)", t.elapsed().as_secs_f64());
    Set { name: format!("clustered {n}×{dims}"), metric, base, queries: q, truth }
}

fn real_sets() -> Vec<Set> {
    let mut out = Vec::new();
    for (name, metric) in [("scifact_minilm384", Metric::Cosine), ("ngt_sift5k", Metric::L2)] {
        match eval::load_real_set(name) {
            None => println!("SKIP {name}: shared data directory not found (set EMBEDB_SHARED_DIR)"),
            Some(r) => {
                let r = r.expect("reading real set");
                out.push(Set { name: name.into(), metric, base: r.base, queries: r.queries, truth: r.groundtruth });
            }
        }
    }
    out
}

fn ours(set: &Set) -> (AnnIndex, f64) {
    let t = Instant::now();
    let index = AnnIndex::with_capacity(AnnParams::new(set.metric, set.base.dims), set.base.len()).unwrap();
    let keys: Vec<u64> = (0..set.base.len() as u64).collect();
    index.add_batch(&keys, &set.base.data).unwrap();
    (index, t.elapsed().as_secs_f64())
}

/// The same graph through usearch's own API: same options, one add per row from all cores.
fn raw(set: &Set) -> (usearch::Index, f64) {
    let p = AnnParams::new(set.metric, set.base.dims);
    let t = Instant::now();
    let opts = usearch::IndexOptions {
        dimensions: p.dims,
        metric: p.metric.usearch_kind(),
        quantization: p.quantization.usearch_kind(),
        connectivity: p.connectivity,
        expansion_add: p.ef_construction,
        expansion_search: p.ef_search,
        multi: false,
    };
    let index = usearch::Index::new(&opts).unwrap();
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    index.reserve_capacity_and_threads(set.base.len(), threads).unwrap();
    let n = set.base.len();
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    break;
                }
                index.add(i as u64, set.base.row(i)).unwrap();
            });
        }
    });
    (index, t.elapsed().as_secs_f64())
}

/// (QPS, recall@10) of `search` over all queries.
fn measure(set: &Set, mut search: impl FnMut(&[f32]) -> Vec<u64>) -> (f64, f64) {
    // Warm caches and lazily grown buffers first.
    for q in 0..set.queries.len().min(20) {
        search(set.queries.row(q));
    }
    let t = Instant::now();
    let found: Vec<Vec<u64>> = (0..set.queries.len()).map(|q| search(set.queries.row(q))).collect();
    let secs = t.elapsed().as_secs_f64();
    (set.queries.len() as f64 / secs, eval::recall_at_k(&found, &set.truth, K))
}

fn bench_set(set: &Set) {
    println!(
        "\n## {} ({:?}): {} base × {} dims, {} queries",
        set.name,
        set.metric,
        set.base.len(),
        set.base.dims,
        set.queries.len()
    );
    let (index, build_ours) = ours(set);
    let (raw_index, build_raw) = raw(set);
    let n = set.base.len() as f64;
    println!(
        "build: AnnIndex {build_ours:.2} s ({:.0} vec/s), raw usearch {build_raw:.2} s ({:.0} vec/s); memory {:.1} MiB",
        n / build_ours,
        n / build_raw,
        index.memory_usage() as f64 / (1 << 20) as f64
    );
    println!("| ef_search | AnnIndex QPS | AnnIndex recall@10 | raw usearch QPS | raw recall@10 |");
    println!("|---:|---:|---:|---:|---:|");
    for ef in EFS {
        let (qps, rec) = measure(set, |q| index.search(q, K, Some(ef)).unwrap().into_iter().map(|h| h.0).collect());
        raw_index.change_expansion_search(ef);
        let (rqps, rrec) = measure(set, |q| raw_index.search(q, K).unwrap().keys);
        println!("| {ef} | {qps:.0} | {rec:.4} | {rqps:.0} | {rrec:.4} |");
    }
}

/// Graph walk vs exact scan at falling selectivity, with what `estimate_filter` picks.
fn filter_sweep(set: &Set) {
    println!("\n## filter sweep on {} (k = {K}, default ef)", set.name);
    let (index, _) = ours(set);
    let nq = set.queries.len().min(200);
    println!("| keep | matches | graph ms/q | graph recall | exact ms/q | auto picks | auto ms/q |");
    println!("|---:|---:|---:|---:|---:|---|---:|");
    for per_mille in [500u64, 200, 100, 50, 20, 10, 5, 2, 1] {
        // Pseudo-random subset so the filter is not aligned with clusters or insertion order.
        let keep = move |key: u64| (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) % 1000 < per_mille;
        let queries = Vectors { dims: set.queries.dims, data: set.queries.data[..nq * set.queries.dims].to_vec() };
        let truth = eval::brute_force(&set.base, &queries, K, set.metric, &keep);
        let run = |strategy| {
            let t = Instant::now();
            let found: Vec<Vec<u64>> = (0..nq)
                .map(|q| {
                    index
                        .search_filtered_with(queries.row(q), K, None, strategy, keep)
                        .unwrap()
                        .into_iter()
                        .map(|h| h.0)
                        .collect()
                })
                .collect();
            (t.elapsed().as_secs_f64() * 1e3 / nq as f64, eval::recall_at_k(&found, &truth, K))
        };
        let (g_ms, g_rec) = run(FilterStrategy::Graph);
        let (e_ms, _) = run(FilterStrategy::Exact);
        let (a_ms, _) = run(FilterStrategy::Auto);
        let est = index.estimate_filter(K, None, &keep);
        let matches = (0..set.base.len() as u64).filter(|&k| keep(k)).count();
        println!(
            "| {:.1} % | {matches} | {g_ms:.3} | {g_rec:.4} | {e_ms:.3} | {} | {a_ms:.3} |",
            per_mille as f64 / 10.0,
            if est.prefer_exact { "exact" } else { "graph" }
        );
    }
}

/// hnswlib (PyPI) on the same data, through `bench/hnswlib_bench.py` in a venv under ~/.cache.
fn hnswlib(set: &Set) {
    let home = std::env::var("HOME").unwrap_or_else(|_| ".".into());
    let venv = PathBuf::from(home).join(".cache/embedb-bench-venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        let ok =
            Command::new("python3").arg("-m").arg("venv").arg(&venv).status().map(|s| s.success()).unwrap_or(false)
                && Command::new(&python)
                    .args(["-m", "pip", "install", "--quiet", "hnswlib", "numpy"])
                    .status()
                    .map(|s| s.success())
                    .unwrap_or(false);
        if !ok {
            println!("SKIP hnswlib: could not set up {}", venv.display());
            return;
        }
    }
    let dir = std::env::temp_dir().join(format!("embedb-ann-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, v: &Vectors| {
        let mut bytes = Vec::with_capacity(v.data.len() * 4 + v.len() * 4);
        for i in 0..v.len() {
            bytes.extend((v.dims as i32).to_le_bytes());
            for x in v.row(i) {
                bytes.extend(x.to_le_bytes());
            }
        }
        std::fs::write(dir.join(name), bytes).unwrap();
    };
    write("base.fvecs", &set.base);
    write("query.fvecs", &set.queries);
    let mut gt = Vec::new();
    for t in &set.truth {
        gt.extend((K as i32).to_le_bytes());
        for &id in &t[..K] {
            gt.extend((id as i32).to_le_bytes());
        }
    }
    std::fs::write(dir.join("gt.ivecs"), gt).unwrap();
    let script =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()))
            .join("bench/hnswlib_bench.py");
    let space = match set.metric {
        Metric::Cosine => "cosine",
        Metric::L2 => "l2",
        Metric::InnerProduct => "ip",
    };
    let p = AnnParams::new(set.metric, set.base.dims);
    let efs: Vec<String> = EFS.iter().map(|e| e.to_string()).collect();
    println!("hnswlib on {} (M {}, ef_construction {}):", set.name, p.connectivity, p.ef_construction);
    let status = Command::new(&python)
        .arg(&script)
        .arg(&dir)
        .arg(space)
        .arg(p.connectivity.to_string())
        .arg(p.ef_construction.to_string())
        .arg(efs.join(","))
        .status();
    if !matches!(status, Ok(s) if s.success()) {
        println!("hnswlib run failed: {status:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let o = parse_opts();
    println!(
        "# embedb-ann bench: {} profile, {} cores, usearch {} ({}), k = {K}, defaults M {} ef_construction {} ef_search {}",
        if cfg!(debug_assertions) { "dev" } else { "release" },
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        usearch::version(),
        usearch::hardware_acceleration_available(),
        AnnParams::DEFAULT_CONNECTIVITY,
        AnnParams::DEFAULT_EF_CONSTRUCTION,
        AnnParams::DEFAULT_EF_SEARCH,
    );
    let mut sets = Vec::new();
    if o.real {
        sets.extend(real_sets());
    }
    if o.clustered {
        sets.push(clustered_set(o.n, 384, o.queries, Metric::Cosine));
    }
    if o.large {
        sets.push(clustered_set(1_000_000, 128, o.queries.min(200), Metric::L2));
    }
    for set in &sets {
        bench_set(set);
        if o.hnswlib {
            hnswlib(set);
        }
    }
    if o.filter_sweep {
        let set = sets.iter().max_by_key(|s| s.base.len()).expect("a data set");
        filter_sweep(set);
    }
}
