//! BM25 on BEIR SciFact: index time, query throughput and nDCG@10 on the train queries.
//!
//! `cargo run -p embedb-fulltext --example scifact_bench [-- <scifact dir>]`
//!
//! The corpus (`corpus.jsonl`: `_id`, `title`, `text`) is read at run time from the directory given,
//! else `<repo>/../shared/data/scifact`, else `$EMBEDB_SHARED_DIR/data/scifact`. Each document is
//! indexed as `title + " " + text` under its row number; each train query (`qrels/train.tsv`) is
//! run through `FullTextIndex::search(query, 10)` and the ranking scored with binary-relevance
//! nDCG@10. Published BM25 on the *test* split is 0.665–0.687 (with stemming and stop words,
//! which TiDB's STANDARD parser does not document, so embedb has neither).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use embedb_fulltext::{FullTextIndex, Parser, WriterOptions};

fn data_dir() -> PathBuf {
    if let Some(arg) = std::env::args().nth(1) {
        return PathBuf::from(arg);
    }
    let manifest =
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into());
    let beside_repo = Path::new(&manifest).join("../../../shared/data/scifact");
    if beside_repo.is_dir() {
        return beside_repo;
    }
    let shared = std::env::var_os("EMBEDB_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_default();
    shared.join("data/scifact")
}

fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

fn field<'a>(v: &'a serde_json::Value, name: &str) -> &'a str {
    v.get(name).and_then(|x| x.as_str()).unwrap_or("")
}

/// Binary-relevance nDCG@10 of one ranking.
fn ndcg_at_10(ranked: &[String], relevant: &HashSet<String>) -> f64 {
    let dcg: f64 = ranked
        .iter()
        .take(10)
        .enumerate()
        .filter(|(_, id)| relevant.contains(*id))
        .map(|(i, _)| 1.0 / ((i + 2) as f64).log2())
        .sum();
    let ideal: f64 = (0..relevant.len().min(10))
        .map(|i| 1.0 / ((i + 2) as f64).log2())
        .sum();
    if ideal == 0.0 {
        0.0
    } else {
        dcg / ideal
    }
}

fn main() {
    let dir = data_dir();
    let corpus = read_jsonl(&dir.join("corpus.jsonl"));
    let queries: HashMap<String, String> = read_jsonl(&dir.join("queries.jsonl"))
        .iter()
        .map(|q| (field(q, "_id").to_string(), field(q, "text").to_string()))
        .collect();
    let mut qrels: HashMap<String, HashSet<String>> = HashMap::new();
    let qrels_text = std::fs::read_to_string(dir.join("qrels/train.tsv")).expect("qrels/train.tsv");
    for line in qrels_text.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() >= 3 && cols[2].trim() != "0" {
            qrels
                .entry(cols[0].to_string())
                .or_default()
                .insert(cols[1].to_string());
        }
    }
    let mut train: Vec<(&String, &HashSet<String>)> = qrels
        .iter()
        .filter(|(q, _)| queries.contains_key(*q))
        .collect();
    train.sort_by(|a, b| a.0.cmp(b.0));
    let ids: Vec<String> = corpus.iter().map(|d| field(d, "_id").to_string()).collect();
    let texts: Vec<String> = corpus
        .iter()
        .map(|d| format!("{} {}", field(d, "title"), field(d, "text")))
        .collect();
    println!(
        "SciFact: {} docs, {} train queries with judgments ({})",
        texts.len(),
        train.len(),
        dir.display()
    );

    let parsers = [
        Parser::Standard,
        Parser::Multilingual,
        Parser::Ngram { min: 3, max: 3 },
    ];
    for parser in parsers {
        let tmp =
            std::env::temp_dir().join(format!("embedb-fulltext-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let options = WriterOptions {
            threads: 1,
            memory_per_thread: 64 << 20,
            merge_threads: 1,
        };
        let index = FullTextIndex::open_or_create_with(&tmp, parser, options).expect("open index");
        let started = Instant::now();
        for (row, text) in texts.iter().enumerate() {
            index.upsert(row as u64, Some(text)).expect("upsert");
        }
        index.commit(1).expect("commit");
        let index_secs = started.elapsed().as_secs_f64();

        // Quality, then throughput over a few passes of the same queries.
        let mut total = 0.0;
        for (qid, relevant) in &train {
            let hits = index.search(&queries[*qid], 10).expect("search");
            let ranked: Vec<String> = hits
                .iter()
                .map(|(row, _)| ids[*row as usize].clone())
                .collect();
            total += ndcg_at_10(&ranked, relevant);
        }
        let ndcg = total / train.len() as f64;
        let passes = 5;
        let started = Instant::now();
        for _ in 0..passes {
            for (qid, _) in &train {
                std::hint::black_box(index.search(&queries[*qid], 10).expect("search"));
            }
        }
        let qps = (passes * train.len()) as f64 / started.elapsed().as_secs_f64();
        let started = Instant::now();
        let mut matched = 0usize;
        for (qid, _) in &train {
            matched += index.matching(&queries[*qid]).expect("matching").len();
        }
        let matching_qps = train.len() as f64 / started.elapsed().as_secs_f64();
        println!(
            "{:<14} index {:>6.2} s ({:>6.0} docs/s)  top-10 {:>7.0} q/s  matching-all {:>6.0} q/s (avg {:.0} rows)  nDCG@10 train {:.4}",
            parser.to_string(),
            index_secs,
            texts.len() as f64 / index_secs,
            qps,
            matching_qps,
            matched as f64 / train.len() as f64,
            ndcg,
        );
        drop(index);
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
