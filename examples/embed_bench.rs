//! Auto-embedding throughput with the local model, side by side in one run on the same texts:
//!
//! 1. raw in-process candle inference (`LocalModel::embed`) on the texts, in batches;
//! 2. `INSERT … VALUES` through embedb's SQL layer (in-process library, no network), into a table
//!    whose `VECTOR(384)` column is `EMBED_TEXT('local/all-MiniLM-L6-v2', t)`, with a fresh data dir
//!    so no cache helps.
//!
//! It prints texts/s for both and embedb's overhead (goal: ≤ 10 %).
//!
//! Run: `cargo run --example embed_bench -- [N_TEXTS] [ROWS_PER_INSERT]`
//! (defaults 512 and 128). The texts are SciFact claims (`../shared/data/scifact/queries.jsonl`).

use std::time::Instant;

use embedb::config::Config;
use embedb::session::{Engine, Session};

fn texts(n: usize) -> Vec<String> {
    // Resolved at run time: a shared target dir may hold a binary built from another checkout.
    let root = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into());
    let path = format!("{root}/../shared/data/scifact/queries.jsonl");
    let data = std::fs::read_to_string(path).expect("../shared/data/scifact/queries.jsonl beside the repository");
    let mut out: Vec<String> = data
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["text"].as_str().map(str::to_string))
        .collect();
    out.truncate(n);
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(512);
    let per_insert: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(128);
    let texts = texts(n);
    let config = Config::default();

    // 1. raw candle
    let files = embedb_embed_local::ensure_default_model(&config.model_dir).expect("model");
    let model = embedb_embed_local::LocalModel::load(&files).expect("load");
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let _ = model.embed(&refs[..8.min(refs.len())]); // warm-up
    let t = Instant::now();
    for chunk in refs.chunks(per_insert) {
        model.embed(chunk).expect("embed");
    }
    let raw = texts.len() as f64 / t.elapsed().as_secs_f64();

    // 2. through embedb: INSERT statements on a fresh store
    let dir = std::env::temp_dir().join(format!("embedb-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let rate = rt.block_on(async {
        let engine = Engine::open(Config { data_dir: dir.clone(), ..config.clone() }).expect("engine");
        let mut s = Session::new(engine, 1, "root");
        s.use_db("test").unwrap();
        let ddl = "CREATE TABLE b (id INT PRIMARY KEY, t TEXT, \
                   e VECTOR(384) GENERATED ALWAYS AS (EMBED_TEXT('local/all-MiniLM-L6-v2', t)) STORED)";
        s.run(ddl).await.expect("create");
        // warm the provider's model load outside the timing (the raw side loaded its model too)
        s.run("SELECT EMBED_TEXT('local/all-MiniLM-L6-v2', 'warm up')").await.expect("warm");
        let t = Instant::now();
        let mut id = 0;
        for chunk in texts.chunks(per_insert) {
            let values: Vec<String> = chunk
                .iter()
                .map(|x| {
                    id += 1;
                    format!("({id}, '{}')", x.replace('\\', "\\\\").replace('\'', "''"))
                })
                .collect();
            s.run(&format!("INSERT INTO b (id, t) VALUES {}", values.join(","))).await.expect("insert");
        }
        texts.len() as f64 / t.elapsed().as_secs_f64()
    });
    let _ = std::fs::remove_dir_all(&dir);

    println!("texts: {}  rows per INSERT: {}  threads: {}", texts.len(), per_insert, embedb_embed_local::compute_threads());
    println!("raw candle (LocalModel::embed)      {raw:8.1} texts/s");
    println!("embedb INSERT (EMBED_TEXT column)   {rate:8.1} rows/s");
    println!("embedb / raw                        {:8.3}  (overhead {:+.1} %)", rate / raw, (raw / rate - 1.0) * 100.0);
}
