//! Vector search speed, every engine side by side in one run (issue 6, "Speed").
//!
//! For each data set it prints one table: build (or load + index) time, then recall@10 / QPS at
//! each ef_search, and recall@10 / QPS of a filtered search that keeps 10 % of the rows, for:
//! - `raw`: the usearch crate called directly (same options as embedb's index);
//! - `annindex`: embedb's `AnnIndex` layer (`crates/ann`), in-process;
//! - `sql`: full SQL through the library's in-process `Engine`/`Session`: batched multi-row
//!   INSERTs, `CREATE VECTOR INDEX`, then `SELECT id FROM t ORDER BY VEC_…_DISTANCE(v, '[…]')
//!   LIMIT 10` statements (planned and executed one by one, as a client would send them);
//! - `raw·sql`: raw usearch again, on the graph the `sql` engine built (saved by its clean
//!   shutdown, then loaded by both): the same graph, so `raw·sql` / `sql` at equal ef is the cost
//!   of the SQL path. The two are measured alternately (see [`run_sql`]);
//! - `wire`: the same statements against a real `embedb serve` process, through PyMySQL;
//! - `hnswlib` and `lancedb` (from PyPI) on the same vectors, through `scripts/bench/ann_engines.py`
//!   (which also drives the wire client) in a virtualenv the bench creates
//!   (`$EMBEDB_ANN_BENCH_VENV`, default `~/.cache/embedb-annbench-venv`).
//!
//! QPS is one client thread issuing one query at a time; each ef pass repeats the query list until
//! `--min-secs` passed. Builds use all cores. For `sql` and `wire`, each ef is one
//! `SET SESSION embedb_hnsw_ef_search = N`; a server without that variable gets one row at its
//! default ef. The filter is `cat = 0` on an INT column holding a pseudo-random 0..9 per row.
//!
//! ```text
//! cargo build --release --bin embedb && cp $CARGO_TARGET_DIR/release/embedb /tmp/annbench/
//! cargo run --release --example vector_bench -- --embedb-bin /tmp/annbench/embedb
//! options: --sets scifact,sift,clustered100k[,clustered1m]   (--large adds clustered1m)
//!          --engines raw,annindex,sql,wire,hnswlib,lancedb
//!          --efs 16,32,64,128,256  --queries N (clustered sets)  --min-secs S
//!          --rows-per-insert N  --lance-index IVF_HNSW_SQ|IVF_HNSW_FLAT  --wire-large
//!          --no-filter (raw, raw·sql and sql skip their filtered searches, e.g. for profiling)
//!          --sql-select "id, cat" (the in-process SQL engine's select list; default `id`)
//! ```

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::arrow::array::AsArray;
use embedb::config::Config;
use embedb::session::{Engine, Output, Session};
use embedb_ann::eval::{self, Clustered, Vectors};
use embedb_ann::{AnnIndex, AnnParams, Metric};

const K: usize = 10;
const SEED: u64 = 20_261_125;
/// Rows with this `cat` value pass the filter (10 % of them).
const FILTER_CAT: i32 = 0;
const ENGINES: [&str; 6] = ["raw", "annindex", "sql", "wire", "hnswlib", "lancedb"];

struct Opts {
    sets: Vec<String>,
    engines: Vec<String>,
    efs: Vec<usize>,
    queries: usize,
    min_secs: f64,
    rows_per_insert: usize,
    lance_index: String,
    wire_large: bool,
    /// Run the filtered searches (off with --no-filter, e.g. to profile the plain ones).
    filter: bool,
    /// The `sql` engine's select list (`id` by default; `id, cat` makes each candidate row be
    /// read from the table, as any query reading more than the key and the vector does).
    sql_select: String,
    embedb_bin: Option<PathBuf>,
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        sets: vec!["scifact".into(), "sift".into(), "clustered100k".into()],
        engines: ENGINES.iter().map(|s| s.to_string()).collect(),
        efs: vec![16, 32, 64, 128, 256],
        queries: 500,
        min_secs: 1.0,
        rows_per_insert: 500,
        lance_index: "IVF_HNSW_SQ".into(),
        wire_large: false,
        filter: true,
        sql_select: "id".into(),
        embedb_bin: std::env::var_os("EMBEDB_BIN").map(PathBuf::from),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let list = |s: &str| s.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect::<Vec<_>>();
    let mut i = 0;
    while i < args.len() {
        let (flag, inline) = match args[i].split_once('=') {
            Some((f, v)) => (f.to_string(), Some(v.to_string())),
            None => (args[i].clone(), None),
        };
        let mut value = || -> String {
            if let Some(v) = &inline {
                return v.clone();
            }
            i += 1;
            args.get(i).cloned().unwrap_or_else(|| panic!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--large" => o.sets.push("clustered1m".into()),
            "--wire-large" => o.wire_large = true,
            "--no-filter" => o.filter = false,
            "--sql-select" => o.sql_select = value(),
            "--sets" => o.sets = list(&value()),
            "--engines" => o.engines = list(&value()),
            "--efs" => o.efs = list(&value()).iter().map(|e| e.parse().expect("--efs A,B,…")).collect(),
            "--queries" => o.queries = value().parse().expect("--queries N"),
            "--min-secs" => o.min_secs = value().parse().expect("--min-secs S"),
            "--rows-per-insert" => o.rows_per_insert = value().parse::<usize>().expect("--rows-per-insert N").max(1),
            "--lance-index" => o.lance_index = value(),
            "--embedb-bin" => o.embedb_bin = Some(PathBuf::from(value())),
            other => panic!("unknown option {other} (see the doc comment at the top of examples/vector_bench.rs)"),
        }
        i += 1;
    }
    for e in &o.engines {
        assert!(ENGINES.contains(&e.as_str()), "unknown engine {e}; known: {}", ENGINES.join(","));
    }
    o.sets.dedup();
    o
}

// ---- data ----------------------------------------------------------------------------------------

struct Set {
    name: String,
    metric: Metric,
    base: Vectors,
    queries: Vectors,
    truth: Vec<Vec<u64>>,
    /// The filter column, per base row.
    cats: Vec<i32>,
    truth_filtered: Vec<Vec<u64>>,
}

/// A pseudo-random 0..9 per row, so the filter is not aligned with clusters or insertion order.
fn cat_of(row: u64) -> i32 {
    ((row.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) % 10) as i32
}

fn load_set(name: &str, queries: usize) -> Option<Set> {
    let t = Instant::now();
    let (label, metric, base, q, truth) = match name {
        "scifact" | "sift" => {
            let (dir, metric) = if name == "scifact" { ("scifact_minilm384", Metric::Cosine) } else { ("ngt_sift5k", Metric::L2) };
            let Some(r) = eval::load_real_set(dir) else {
                println!("SKIP {dir}: shared data directory not found (set EMBEDB_SHARED_DIR)");
                return None;
            };
            let r = r.expect("reading real set");
            (dir.to_string(), metric, r.base, r.queries, Some(r.groundtruth))
        }
        "clustered100k" => {
            let (b, q) = Clustered::new(384, SEED).generate(100_000, queries);
            ("clustered 100k×384".to_string(), Metric::Cosine, b, q, None)
        }
        "clustered1m" => {
            let (b, q) = Clustered::new(128, SEED).generate(1_000_000, queries.min(200));
            ("clustered 1M×128".to_string(), Metric::L2, b, q, None)
        }
        other => panic!("unknown set {other}; known: scifact, sift, clustered100k, clustered1m"),
    };
    let truth = truth.unwrap_or_else(|| eval::brute_force(&base, &q, K, metric, &|_| true));
    let cats: Vec<i32> = (0..base.len() as u64).map(cat_of).collect();
    let truth_filtered = eval::brute_force(&base, &q, K, metric, &|key| cat_of(key) == FILTER_CAT);
    println!(
        "\n## {label} ({metric:?}): {} base × {} dims, {} queries (loaded with exact top-{K}, plain and filtered, in {:.1} s)",
        base.len(),
        base.dims,
        q.len(),
        t.elapsed().as_secs_f64()
    );
    Some(Set { name: label, metric, base, queries: q, truth, cats, truth_filtered })
}

// ---- results -------------------------------------------------------------------------------------

#[derive(Default)]
struct Row {
    engine: String,
    build: Option<f64>,
    /// ef → (recall@10, QPS); key `None` = the engine's default ef (ef could not be set).
    cells: BTreeMap<Option<usize>, (f64, f64)>,
    filtered: Option<(f64, f64)>,
    notes: Vec<String>,
}

/// (QPS, results of the first pass): the queries one at a time, repeated until `min_secs` passed.
fn measure(queries: &Vectors, min_secs: f64, mut search: impl FnMut(&[f32]) -> Vec<u64>) -> (f64, Vec<Vec<u64>>) {
    for q in 0..queries.len().min(20) {
        search(queries.row(q));
    }
    let mut first = None;
    let mut done = 0usize;
    let t = Instant::now();
    loop {
        let found: Vec<Vec<u64>> = (0..queries.len()).map(|q| search(queries.row(q))).collect();
        first.get_or_insert(found);
        done += queries.len();
        let secs = t.elapsed().as_secs_f64();
        if secs >= min_secs {
            return (done as f64 / secs, first.unwrap());
        }
    }
}

fn cell(c: Option<&(f64, f64)>) -> String {
    match c {
        Some((r, q)) => format!("{r:.3} / {q:.0}"),
        None => "—".into(),
    }
}

fn print_table(set: &Set, rows: &[Row], efs: &[usize]) {
    let default_ef = AnnParams::DEFAULT_EF_SEARCH;
    print!("\n| engine | build | ");
    for ef in efs {
        print!("ef {ef} | ");
    }
    println!("filtered 10 % (ef {default_ef}) |");
    println!("|---|---:|{}---:|", "---:|".repeat(efs.len()));
    for r in rows {
        print!("| {} | {} | ", r.engine, r.build.map(|b| format!("{b:.2} s")).unwrap_or_else(|| "—".into()));
        for &ef in efs {
            let c = r.cells.get(&Some(ef)).or(if ef == default_ef { r.cells.get(&None) } else { None });
            let star = if ef == default_ef && !r.cells.contains_key(&Some(ef)) && r.cells.contains_key(&None) { "*" } else { "" };
            print!("{}{star} | ", cell(c));
        }
        println!("{} |", cell(r.filtered.as_ref()));
    }
    println!("Cells: recall@10 / QPS (one thread). * = the server's default ef (embedb_hnsw_ef_search could not be set).");
    for r in rows {
        for n in &r.notes {
            println!("- {}: {n}", r.engine);
        }
    }
    // Goal lines: best QPS among the cells with recall ≥ 0.95.
    let best = |name: &str| -> Option<(f64, f64, Option<usize>)> {
        rows.iter().find(|r| r.engine == name).and_then(|r| {
            r.cells
                .iter()
                .filter(|(_, (rec, _))| *rec >= 0.95)
                .map(|(ef, (rec, qps))| (*qps, *rec, *ef))
                .max_by(|a, b| a.0.total_cmp(&b.0))
        })
    };
    let show = |b: Option<(f64, f64, Option<usize>)>| match b {
        Some((q, r, ef)) => format!("{q:.0} QPS (recall {r:.3}, ef {})", ef.map(|e| e.to_string()).unwrap_or("default".into())),
        None => "no cell reaches recall 0.95".into(),
    };
    println!("Best QPS at recall@10 ≥ 0.95 on {}:", set.name);
    for r in rows {
        println!("  {:<9} {}", r.engine, show(best(&r.engine)));
    }
    let ratio = |a: &str, b: &str| match (best(a), best(b)) {
        (Some(x), Some(y)) => Some(x.0 / y.0),
        _ => None,
    };
    if let Some(x) = ratio("raw", "annindex") {
        println!("  raw / annindex = {x:.2}× (goal ≤ 1.3)");
    }
    if let Some(x) = ratio("raw", "sql") {
        println!("  raw / sql (in-process) = {x:.2}× (goal ≤ 1.3)");
    }
    if let Some(x) = ratio("raw·sql", "sql") {
        println!("  raw·sql / sql (in-process, one graph) = {x:.2}× (goal ≤ 1.3)");
    }
    if let Some(x) = ratio("wire", "lancedb") {
        println!("  wire / lancedb = {x:.2}× (goal > 1)");
    }
    for r in rows {
        if let Some((rec, _)) = r.filtered {
            if ["annindex", "sql", "wire"].contains(&r.engine.as_str()) {
                println!("  {} filtered recall {rec:.3} (goal ≥ 0.9)", r.engine);
            }
        }
    }
}

// ---- raw usearch and AnnIndex -------------------------------------------------------------------

fn threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// usearch options equal to embedb's index with parameters `p`.
fn raw_options(p: &AnnParams) -> usearch::IndexOptions {
    usearch::IndexOptions {
        dimensions: p.dims,
        metric: p.metric.usearch_kind(),
        quantization: p.quantization.usearch_kind(),
        connectivity: p.connectivity,
        expansion_add: p.ef_construction,
        expansion_search: p.ef_search,
        multi: false,
    }
}

fn run_raw(set: &Set, o: &Opts) -> Row {
    let p = AnnParams::new(set.metric, set.base.dims);
    let opts = raw_options(&p);
    let t = Instant::now();
    let index = usearch::Index::new(&opts).unwrap();
    index.reserve_capacity_and_threads(set.base.len(), threads()).unwrap();
    let n = set.base.len();
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads() {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                index.add(i as u64, set.base.row(i)).unwrap();
            });
        }
    });
    let mut row = Row { engine: "raw".into(), build: Some(t.elapsed().as_secs_f64()), ..Default::default() };
    measure_raw(&index, set, o, &mut row, |key| key);
    row.notes.push(format!(
        "usearch {} ({}), M {}, ef_construction {}, f32, filtered = usearch's filtered_search",
        usearch::version(),
        usearch::hardware_acceleration_available(),
        p.connectivity,
        p.ef_construction
    ));
    row
}

/// raw usearch's searches on `index`, whose key `k` is row `id_of(k)`: each ef, then filtered at
/// the default ef.
fn measure_raw(index: &usearch::Index, set: &Set, o: &Opts, row: &mut Row, id_of: impl Fn(u64) -> u64 + Copy) {
    for &ef in &o.efs {
        row.cells.insert(Some(ef), raw_pass(index, set, Some(ef), o.min_secs, false, id_of));
    }
    if o.filter {
        row.filtered = Some(raw_pass(index, set, None, o.min_secs, true, id_of));
    }
}

/// (recall@10, QPS) of raw usearch's searches at `ef` (None: the default), of `filtered` ones
/// (the 10 % filter) or not.
fn raw_pass(index: &usearch::Index, set: &Set, ef: Option<usize>, secs: f64, filtered: bool, id_of: impl Fn(u64) -> u64) -> (f64, f64) {
    index.change_expansion_search(ef.unwrap_or(AnnParams::DEFAULT_EF_SEARCH));
    let (qps, found) = if filtered {
        measure(&set.queries, secs, |q| {
            index.filtered_search(q, K, |key| cat_of(id_of(key)) == FILTER_CAT).unwrap().keys.into_iter().map(&id_of).collect()
        })
    } else {
        measure(&set.queries, secs, |q| index.search(q, K).unwrap().keys.into_iter().map(&id_of).collect())
    };
    index.change_expansion_search(AnnParams::DEFAULT_EF_SEARCH);
    let truth = if filtered { &set.truth_filtered } else { &set.truth };
    (eval::recall_at_k(&found, truth, K), qps)
}

/// raw usearch on the graph the `sql` engine built, loaded from the file a clean shutdown of
/// embedb saves: the two engines then search the same graph, so their QPS at equal ef compares
/// the query paths alone. (Two builds link differently: at 1M, recall at one ef moved by up to
/// 0.06 between builds of the same code, which decides a comparison of separate builds.)
/// Its keys are embedb's: row handle h is key h with its sign bit flipped ([`sql_key_id`]).
fn load_saved_graph(set: &Set, dir: &Path) -> Option<usearch::Index> {
    let graph = find_file(dir, ".usearch")?;
    let p = AnnParams::new(set.metric, set.base.dims);
    let index = usearch::Index::new(&raw_options(&p)).ok()?;
    index.load(graph.to_str()?).ok()?;
    index.reserve_capacity_and_threads(index.size().max(1), threads()).ok()?;
    Some(index)
}

/// The row id of an embedb index key (`ann_key`: the handle with its sign bit flipped).
fn sql_key_id(key: u64) -> u64 {
    key ^ (1 << 63)
}

fn find_file(dir: &Path, suffix: &str) -> Option<PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let path = e.path();
        if path.is_dir() {
            if let Some(f) = find_file(&path, suffix) {
                return Some(f);
            }
        } else if path.to_string_lossy().ends_with(suffix) {
            return Some(path);
        }
    }
    None
}

fn run_annindex(set: &Set, o: &Opts) -> Row {
    let t = Instant::now();
    let index = AnnIndex::with_capacity(AnnParams::new(set.metric, set.base.dims), set.base.len()).unwrap();
    let keys: Vec<u64> = (0..set.base.len() as u64).collect();
    index.add_batch(&keys, &set.base.data).unwrap();
    let mut row = Row { engine: "annindex".into(), build: Some(t.elapsed().as_secs_f64()), ..Default::default() };
    for &ef in &o.efs {
        let (qps, found) =
            measure(&set.queries, o.min_secs, |q| index.search(q, K, Some(ef)).unwrap().into_iter().map(|h| h.0).collect());
        row.cells.insert(Some(ef), (eval::recall_at_k(&found, &set.truth, K), qps));
    }
    let (qps, found) = measure(&set.queries, o.min_secs, |q| {
        index.search_filtered(q, K, None, |key| cat_of(key) == FILTER_CAT).unwrap().into_iter().map(|h| h.0).collect()
    });
    row.filtered = Some((eval::recall_at_k(&found, &set.truth_filtered, K), qps));
    row.notes.push("filtered = AnnIndex::search_filtered (picks graph walk or exact scan)".into());
    row
}

// ---- SQL, in-process -----------------------------------------------------------------------------

fn vec_literal(v: &[f32]) -> String {
    let mut s = String::with_capacity(v.len() * 12);
    s.push('[');
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&x.to_string());
    }
    s.push(']');
    s
}

fn distance_fn(m: Metric) -> &'static str {
    match m {
        Metric::Cosine => "VEC_COSINE_DISTANCE",
        Metric::L2 => "VEC_L2_DISTANCE",
        Metric::InnerProduct => "VEC_NEGATIVE_INNER_PRODUCT",
    }
}

fn query_sql(set: &Set, q: usize, filtered: bool, select: &str) -> String {
    let w = if filtered { format!("WHERE cat = {FILTER_CAT} ") } else { String::new() };
    format!("SELECT {select} FROM t {w}ORDER BY {}(v, '{}') LIMIT {K}", distance_fn(set.metric), vec_literal(set.queries.row(q)))
}

fn insert_sql(set: &Set, lo: usize, hi: usize) -> String {
    let mut s = String::from("INSERT INTO t (id, cat, v) VALUES ");
    for i in lo..hi {
        if i > lo {
            s.push(',');
        }
        s.push_str(&format!("({i},{},'{}')", set.cats[i], vec_literal(set.base.row(i))));
    }
    s
}

/// The first column of a result as integers.
fn ids(out: Output) -> Vec<u64> {
    match out {
        Output::Rows { batches, .. } => batches
            .iter()
            .flat_map(|b| {
                let col = cast(b.column(0), &DataType::Int64).expect("integer column");
                col.as_primitive::<Int64Type>().values().iter().map(|&v| v as u64).collect::<Vec<_>>()
            })
            .collect(),
        other => panic!("expected rows, got {other:?}"),
    }
}

fn text_rows(out: Output) -> Vec<String> {
    match out {
        Output::Rows { batches, .. } => {
            let mut lines = Vec::new();
            for b in batches {
                for r in 0..b.num_rows() {
                    let cells: Vec<String> = (0..b.num_columns())
                        .map(|c| {
                            let v = datafusion::common::ScalarValue::try_from_array(b.column(c), r).expect("value");
                            embedb::session::scalar_text(&v)
                        })
                        .collect();
                    lines.push(cells.join(" "));
                }
            }
            lines
        }
        other => panic!("expected rows, got {other:?}"),
    }
}

/// Rounds of the interleaved `sql` / `raw·sql` measurement at each ef (see [`run_sql`]).
const ROUNDS: usize = 3;

/// The `sql` row, then (when its graph was saved) the `raw·sql` row: raw usearch on that graph.
///
/// The engine builds the table and its index through SQL and shuts down, which saves the graph.
/// It then opens again (loading that graph) and raw usearch loads the same file, so both search
/// one graph. At each ef the two alternate, `ROUNDS` times each, every pass `min_secs / ROUNDS`
/// long; a cell holds the median pass. (This machine's speed drifts by 5–20 % over minutes,
/// which two measurements taken one after the other would count as a difference of the paths.)
fn run_sql(set: &Set, o: &Opts) -> Vec<Row> {
    let dir = std::env::temp_dir().join(format!("embedb-vector-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let config = || Config { data_dir: dir.clone(), ..Config::default() };
    let n = set.base.len();
    let sqls: Vec<String> = (0..set.queries.len()).map(|q| query_sql(set, q, false, &o.sql_select)).collect();
    let sqls_f: Vec<String> = (0..set.queries.len()).map(|q| query_sql(set, q, true, &o.sql_select)).collect();
    let engine = Engine::open(config()).expect("engine");
    let mut row = rt.block_on(async {
        let mut s = Session::new(engine.clone(), 1, "root");
        s.run("CREATE DATABASE annbench").await.expect("create database");
        s.use_db("annbench").unwrap();
        s.run(&format!("CREATE TABLE t (id BIGINT PRIMARY KEY, cat INT, v VECTOR({}))", set.base.dims)).await.expect("create");
        let mut load = Duration::ZERO;
        for lo in (0..n).step_by(o.rows_per_insert) {
            let sql = insert_sql(set, lo, (lo + o.rows_per_insert).min(n));
            let t = Instant::now();
            s.run(&sql).await.expect("insert");
            load += t.elapsed();
        }
        let t = Instant::now();
        s.run(&format!("CREATE VECTOR INDEX idx_v ON t (({}(v))) USING HNSW", distance_fn(set.metric))).await.expect("index");
        wait_indexed(&mut s, n, &sqls[0]).await;
        let build = t.elapsed();
        let mut row = Row { engine: "sql".into(), build: Some(load.as_secs_f64() + build.as_secs_f64()), ..Default::default() };
        if o.sql_select != "id" {
            row.notes.push(format!("SELECT {} FROM t …", o.sql_select));
        }
        row.notes.push(format!(
            "INSERT {:.2} s ({} rows per statement) + CREATE VECTOR INDEX until TIFLASH_INDEXES shows 0 rows not indexed {:.2} s",
            load.as_secs_f64(),
            o.rows_per_insert,
            build.as_secs_f64()
        ));
        row
    });
    engine.shutdown();
    drop(engine);
    // The runtime's tasks (the index build's) hold the store until it is gone.
    drop(rt);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let raw = load_saved_graph(set, &dir);
    // An index build's thread may still hold the store for a moment after its last row.
    let engine = {
        let t = Instant::now();
        loop {
            match Engine::open(config()) {
                Ok(e) => break e,
                Err(_) if t.elapsed() < Duration::from_secs(60) => std::thread::sleep(Duration::from_millis(200)),
                Err(e) => panic!("engine reopened: {e:?}"),
            }
        }
    };
    let mut raw_row = Row { engine: "raw·sql".into(), ..Default::default() };
    rt.block_on(async {
        let mut s = Session::new(engine.clone(), 1, "root");
        s.use_db("annbench").unwrap();
        wait_indexed(&mut s, n, &sqls[0]).await;
        for sql in [&sqls[0], &sqls_f[0]] {
            let plan = text_rows(s.run(&format!("EXPLAIN {sql}")).await.expect("explain")).join("\n");
            if !plan.contains("annIndex") {
                row.notes.push(format!("WARNING: EXPLAIN shows no annIndex:\n{plan}"));
            }
        }
        async fn pass(s: &mut Session, sqls: &[String], truth: &[Vec<u64>], min_secs: f64) -> (f64, f64) {
            for sql in sqls.iter().take(20) {
                s.run(sql).await.expect("query");
            }
            let mut first: Option<Vec<Vec<u64>>> = None;
            let mut done = 0usize;
            let t = Instant::now();
            loop {
                let mut found = Vec::with_capacity(sqls.len());
                for sql in sqls {
                    found.push(ids(s.run(sql).await.expect("query")));
                }
                first.get_or_insert(found);
                done += sqls.len();
                let secs = t.elapsed().as_secs_f64();
                if secs >= min_secs {
                    return (eval::recall_at_k(first.as_ref().unwrap(), truth, K), done as f64 / secs);
                }
            }
        }
        // (recall, median QPS) of `ROUNDS` passes.
        fn median(passes: Vec<(f64, f64)>) -> (f64, f64) {
            let mut qps: Vec<f64> = passes.iter().map(|p| p.1).collect();
            qps.sort_by(f64::total_cmp);
            (passes[0].0, qps[qps.len() / 2])
        }
        let slice = o.min_secs / ROUNDS as f64;
        let mut ef_ok = true;
        for &ef in &o.efs {
            if let Err(e) = s.run(&format!("SET SESSION embedb_hnsw_ef_search = {ef}")).await {
                row.notes.push(format!("SET SESSION embedb_hnsw_ef_search failed ({}): default ef only", e.message));
                ef_ok = false;
                break;
            }
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for _ in 0..ROUNDS {
                a.push(pass(&mut s, &sqls, &set.truth, slice).await);
                if let Some(index) = &raw {
                    b.push(raw_pass(index, set, Some(ef), slice, false, sql_key_id));
                }
            }
            row.cells.insert(Some(ef), median(a));
            if !b.is_empty() {
                raw_row.cells.insert(Some(ef), median(b));
            }
        }
        if !ef_ok {
            let r = pass(&mut s, &sqls, &set.truth, o.min_secs).await;
            row.cells.insert(None, r);
        } else {
            s.run(&format!("SET SESSION embedb_hnsw_ef_search = {}", AnnParams::DEFAULT_EF_SEARCH)).await.expect("set");
        }
        if o.filter {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for _ in 0..ROUNDS {
                a.push(pass(&mut s, &sqls_f, &set.truth_filtered, slice).await);
                if let Some(index) = &raw {
                    b.push(raw_pass(index, set, None, slice, true, sql_key_id));
                }
            }
            row.filtered = Some(median(a));
            if !b.is_empty() {
                raw_row.filtered = Some(median(b));
            }
        }
        // Where a statement's time goes: the same session running statements without the search.
        for (what, sql) in [("SELECT 1", "SELECT 1"), ("point lookup by primary key", "SELECT id FROM t WHERE id = 1")] {
            let t = Instant::now();
            let mut m = 0;
            while t.elapsed().as_secs_f64() < 0.5 {
                s.run(sql).await.expect("probe");
                m += 1;
            }
            row.notes.push(format!("{what}: {:.0} statements/s in the same session", m as f64 / t.elapsed().as_secs_f64()));
        }
    });
    row.notes.push(format!(
        "searched after a restart that loaded the saved graph, alternating with raw·sql: {ROUNDS} passes each per cell, median QPS"
    ));
    engine.shutdown();
    drop(engine);
    drop(rt);
    let mut rows = vec![row];
    match raw {
        Some(index) => {
            raw_row.notes.push(format!(
                "raw usearch on the sql engine's own graph ({} vectors, loaded from its saved file), measured alternately with sql: raw·sql / sql compares the query paths on one graph",
                index.size()
            ));
            rows.push(raw_row);
        }
        None => println!("(no saved graph of the sql engine found under {}: no raw·sql row)", dir.display()),
    }
    let _ = std::fs::remove_dir_all(&dir);
    rows
}

/// Poll `information_schema.TIFLASH_INDEXES` until the bench table's index holds all `n` rows,
/// then `EXPLAIN search` until the search uses the graph (the build marks the index ready just
/// after its last row, and only a ready index is saved at shutdown).
async fn wait_indexed(s: &mut Session, n: usize, search: &str) {
    'rows: loop {
        let out = s
            .run(
                "SELECT ROWS_STABLE_INDEXED, ROWS_STABLE_NOT_INDEXED, ERROR_MESSAGE FROM information_schema.TIFLASH_INDEXES \
                 WHERE TIDB_DATABASE = 'annbench' AND TIDB_TABLE = 't' AND INDEX_NAME = 'idx_v'",
            )
            .await
            .expect("progress");
        let rows = text_rows(out);
        if let Some(r) = rows.first() {
            let f: Vec<&str> = r.split(' ').collect();
            if f.len() > 2 && !f[2].is_empty() && f[2] != "NULL" {
                panic!("index build failed: {r}");
            }
            if f[1] == "0" && f[0].parse::<usize>().unwrap_or(0) >= n {
                break 'rows;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let t = Instant::now();
    loop {
        let plan = text_rows(s.run(&format!("EXPLAIN {search}")).await.expect("explain")).join("\n");
        if !plan.contains("exact scan") || t.elapsed() > Duration::from_secs(60) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---- Python engines (hnswlib, lancedb) and the wire client ---------------------------------------

fn venv_python() -> Option<PathBuf> {
    let venv = std::env::var_os("EMBEDB_ANN_BENCH_VENV").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| ".".into())).join(".cache/embedb-annbench-venv")
    });
    let python = venv.join("bin/python");
    let have = |m: &str| Command::new(&python).args(["-c", &format!("import {m}")]).stderr(Stdio::null()).status().map(|s| s.success()).unwrap_or(false);
    if !python.exists() {
        println!("(creating {} and installing hnswlib, lancedb, pymysql, numpy with pip)", venv.display());
        if !Command::new("python3").arg("-m").arg("venv").arg(&venv).status().map(|s| s.success()).unwrap_or(false) {
            return None;
        }
    }
    if !(have("hnswlib") && have("lancedb") && have("pymysql") && have("numpy")) {
        let ok = Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "hnswlib", "lancedb", "pymysql", "numpy"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            return None;
        }
    }
    Some(python)
}

fn repo_root() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()))
}

/// base/query/ground truth/filter column in the files `ann_engines.py` reads.
fn write_python_inputs(set: &Set, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let fvecs = |name: &str, v: &Vectors| {
        let mut w = std::io::BufWriter::new(std::fs::File::create(dir.join(name)).unwrap());
        for i in 0..v.len() {
            w.write_all(&(v.dims as i32).to_le_bytes()).unwrap();
            for x in v.row(i) {
                w.write_all(&x.to_le_bytes()).unwrap();
            }
        }
    };
    fvecs("base.fvecs", &set.base);
    fvecs("query.fvecs", &set.queries);
    let ivecs = |name: &str, t: &[Vec<u64>]| {
        let mut w = std::io::BufWriter::new(std::fs::File::create(dir.join(name)).unwrap());
        for row in t {
            w.write_all(&(K as i32).to_le_bytes()).unwrap();
            for j in 0..K {
                let id = row.get(j).map(|&x| x as i32).unwrap_or(-1);
                w.write_all(&id.to_le_bytes()).unwrap();
            }
        }
    };
    ivecs("gt.ivecs", &set.truth);
    ivecs("gt_filtered.ivecs", &set.truth_filtered);
    let cats: Vec<u8> = set.cats.iter().flat_map(|c| c.to_le_bytes()).collect();
    std::fs::write(dir.join("cat.i32"), cats).unwrap();
}

fn write_params(set: &Set, o: &Opts, dir: &Path, port: u16) {
    let p = AnnParams::new(set.metric, set.base.dims);
    let metric = match set.metric {
        Metric::Cosine => "cosine",
        Metric::L2 => "l2",
        Metric::InnerProduct => "dot",
    };
    let params = serde_json::json!({
        "metric": metric,
        "k": K,
        "m": p.connectivity,
        "ef_construction": p.ef_construction,
        "efs": o.efs,
        "default_ef": AnnParams::DEFAULT_EF_SEARCH,
        "min_secs": o.min_secs,
        "filter_cat": FILTER_CAT,
        // One IVF partition: a single HNSW graph over all rows, searched with nprobes 1, so ef is
        // the only search knob, as for the other engines.
        "lancedb": {"index_type": o.lance_index, "num_partitions": 1, "nprobes": 1},
        "wire": {"port": port, "rows_per_insert": o.rows_per_insert},
    });
    std::fs::write(dir.join("params.json"), serde_json::to_vec_pretty(&params).unwrap()).unwrap();
}

/// Runs `ann_engines.py ENGINE DIR`, echoing its output and collecting its `RESULT` lines.
fn run_python(python: &Path, engine: &str, dir: &Path, name: &str) -> Row {
    let mut row = Row { engine: name.into(), ..Default::default() };
    let script = repo_root().join("scripts/bench/ann_engines.py");
    let mut child = Command::new(python)
        .arg(&script)
        .arg(engine)
        .arg(dir)
        .env("LANCE_LOG", "error")
        .stdout(Stdio::piped())
        .spawn()
        .expect("python");
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let Some(json) = line.strip_prefix("RESULT ") else {
            println!("{line}");
            continue;
        };
        let v: serde_json::Value = serde_json::from_str(json).expect("RESULT json");
        let pair = || (v["recall"].as_f64().unwrap(), v["qps"].as_f64().unwrap());
        match v["kind"].as_str().unwrap() {
            "build" => {
                row.build = v["secs"].as_f64();
                if let Some(n) = v["note"].as_str() {
                    row.notes.push(n.to_string());
                }
            }
            "ef" => {
                row.cells.insert(v["ef"].as_u64().map(|e| e as usize), pair());
            }
            "filtered" => row.filtered = Some(pair()),
            _ => {}
        }
    }
    let status = child.wait().expect("python");
    if !status.success() {
        row.notes.push(format!("FAILED: {status}"));
    }
    row
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn embedb_binary(o: &Opts) -> PathBuf {
    o.embedb_bin.clone().unwrap_or_else(|| {
        // target/<profile>/examples/vector_bench → target/<profile>/embedb
        std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join("embedb")
    })
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_server(bin: &Path, port: u16, data_dir: &Path) -> Option<Server> {
    let child = Command::new(bin)
        .args(["serve", "--host", "127.0.0.1", "--port", &port.to_string(), "--log-level", "warn", "--data-dir"])
        .arg(data_dir)
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| println!("SKIP wire: cannot start {}: {e}", bin.display()))
        .ok()?;
    let server = Server(child);
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(30) {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(server);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("SKIP wire: the server did not listen on port {port} within 30 s");
    None
}

fn main() {
    let o = parse_opts();
    println!(
        "# vector_bench: {} profile, {} cores, usearch {} ({}), k = {K}, M {} ef_construction {}, default ef_search {}; engines {}",
        if cfg!(debug_assertions) { "dev" } else { "release" },
        threads(),
        usearch::version(),
        usearch::hardware_acceleration_available(),
        AnnParams::DEFAULT_CONNECTIVITY,
        AnnParams::DEFAULT_EF_CONSTRUCTION,
        AnnParams::DEFAULT_EF_SEARCH,
        o.engines.join(",")
    );
    if let Ok(l) = std::fs::read_to_string("/proc/loadavg") {
        println!("# load average at start: {}", l.trim());
    }
    let wants = |e: &str| o.engines.iter().any(|x| x == e);
    let python = if wants("hnswlib") || wants("lancedb") || wants("wire") { venv_python() } else { None };
    for name in o.sets.clone() {
        let Some(set) = load_set(&name, o.queries) else { continue };
        let tmp = std::env::temp_dir().join(format!("embedb-vector-bench-py-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let mut wrote = false;
        let mut rows = Vec::new();
        for engine in &o.engines {
            let t = Instant::now();
            let row = match engine.as_str() {
                "raw" => Some(run_raw(&set, &o)),
                "annindex" => Some(run_annindex(&set, &o)),
                "sql" => {
                    let r = run_sql(&set, &o);
                    println!("  (sql done in {:.1} s)", t.elapsed().as_secs_f64());
                    rows.extend(r);
                    continue;
                }
                "wire" | "hnswlib" | "lancedb" => {
                    let Some(py) = &python else {
                        println!("SKIP {engine}: no Python virtualenv (python3 -m venv and pip install failed)");
                        continue;
                    };
                    if engine == "wire" && name == "clustered1m" && !o.wire_large {
                        println!(
                            "SKIP wire on {}: loading 1M rows as SQL text over the wire takes too long on this machine (--wire-large runs it)",
                            set.name
                        );
                        continue;
                    }
                    if !wrote {
                        write_python_inputs(&set, &tmp);
                        wrote = true;
                    }
                    let port = free_port();
                    write_params(&set, &o, &tmp, port);
                    if engine == "wire" {
                        let data_dir = tmp.join("embedb-data");
                        let _ = std::fs::remove_dir_all(&data_dir);
                        let Some(server) = start_server(&embedb_binary(&o), port, &data_dir) else { continue };
                        let r = run_python(py, "wire", &tmp, "wire");
                        drop(server);
                        let _ = std::fs::remove_dir_all(&data_dir);
                        Some(r)
                    } else {
                        let _ = std::fs::remove_dir_all(tmp.join("lancedb"));
                        Some(run_python(py, engine, &tmp, engine))
                    }
                }
                _ => unreachable!(),
            };
            if let Some(r) = row {
                println!("  ({engine} done in {:.1} s)", t.elapsed().as_secs_f64());
                rows.push(r);
            }
        }
        let _ = std::fs::remove_dir_all(&tmp);
        print_table(&set, &rows, &o.efs);
        if let Ok(l) = std::fs::read_to_string("/proc/loadavg") {
            println!("load average after {}: {}", set.name, l.trim());
        }
    }
}
