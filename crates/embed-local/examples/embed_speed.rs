//! Speed of `LocalModel::embed` against candle's own `BertModel` (the forward pass this crate used
//! before it had its own kernels), on the same texts, alternating rounds; also the lowest cosine
//! between the two.
//!
//! Run: `cargo run -p embedb-embed-local --example embed_speed -- [TEXTS_FILE] [N] [PER_CALL] [ROUNDS]`
//! (the dev profile already optimises this crate and its dependencies) where `TEXTS_FILE` holds JSON
//! lines with a `text` field (default: the SciFact claims in `../shared/data/scifact/queries.jsonl`),
//! N texts (512) are embedded PER_CALL (128) at a time, best of ROUNDS (5). The model comes from
//! `$HOME/.cache/embedb/models/all-MiniLM-L6-v2` (run the crate's tests once to fetch it).
//! `--no-candle` skips candle. `EMBEDB_EMBED_ISA=avx2|generic` tries the other kernels.

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};

fn candle_embed(
    model: &BertModel,
    local: &embedb_embed_local::LocalModel,
    texts: &[&str],
) -> Vec<Vec<f32>> {
    let enc: Vec<Vec<u32>> = texts.iter().map(|t| local.token_ids(t).unwrap()).collect();
    let width = enc.iter().map(Vec::len).max().unwrap();
    let mut ids = Vec::new();
    let mut mask = Vec::new();
    for e in &enc {
        ids.extend_from_slice(e);
        ids.resize(ids.len() + width - e.len(), 0);
        mask.extend(std::iter::repeat_n(1u32, e.len()));
        mask.extend(std::iter::repeat_n(0u32, width - e.len()));
    }
    let ids = Tensor::from_vec(ids, (texts.len(), width), &Device::Cpu).unwrap();
    let mask = Tensor::from_vec(mask, (texts.len(), width), &Device::Cpu).unwrap();
    let hidden: Vec<Vec<Vec<f32>>> = model
        .forward(&ids, &ids.zeros_like().unwrap(), Some(&mask))
        .unwrap()
        .to_vec3()
        .unwrap();
    hidden
        .iter()
        .zip(&enc)
        .map(|(rows, e)| {
            let mut mean = vec![0f64; rows[0].len()];
            for row in &rows[..e.len()] {
                for (m, &x) in mean.iter_mut().zip(row) {
                    *m += f64::from(x);
                }
            }
            let norm = mean.iter().map(|x| x * x).sum::<f64>().sqrt();
            mean.iter().map(|x| (x / norm) as f32).collect()
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let no_candle = args.iter().any(|a| a == "--no-candle");
    let pos: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let file = pos.first().map(|s| s.to_string()).unwrap_or_else(|| {
        root.join("../shared/data/scifact/queries.jsonl")
            .display()
            .to_string()
    });
    let n: usize = pos.get(1).map_or(512, |s| s.parse().unwrap());
    let per_call: usize = pos.get(2).map_or(128, |s| s.parse().unwrap());
    let rounds: usize = pos.get(3).map_or(5, |s| s.parse().unwrap());

    let texts: Vec<String> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["text"].as_str().map(str::to_string))
        .take(n)
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();

    let dir = std::path::PathBuf::from(std::env::var("HOME").unwrap())
        .join(".cache/embedb/models/all-MiniLM-L6-v2");
    let files = embedb_embed_local::model_dir(&dir).unwrap();
    let model = embedb_embed_local::LocalModel::load(&files).unwrap();
    eprintln!("{model:?}");
    let config: Config =
        serde_json::from_str(&std::fs::read_to_string(&files.config).unwrap()).unwrap();
    let tensors = candle_core::safetensors::load(&files.weights, &Device::Cpu).unwrap();
    let candle = BertModel::load(
        VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu),
        &config,
    )
    .unwrap();

    let tokens: usize = refs.iter().map(|t| model.token_ids(t).unwrap().len()).sum();
    eprintln!(
        "{} texts, {tokens} tokens ({:.1} per text), {per_call} per call",
        refs.len(),
        tokens as f64 / refs.len() as f64
    );
    let _ = model.embed(&refs[..8]);
    let (mut best_own, mut best_candle) = (0f64, 0f64);
    let mut own_vectors = Vec::new();
    let mut candle_vectors = Vec::new();
    for round in 1..=rounds {
        let t = Instant::now();
        own_vectors.clear();
        for chunk in refs.chunks(per_call) {
            own_vectors.extend(model.embed(chunk).unwrap());
        }
        let own = refs.len() as f64 / t.elapsed().as_secs_f64();
        best_own = best_own.max(own);
        let mut line = format!("round {round}: own kernels {own:.1} texts/s");
        if !no_candle {
            // candle in length buckets of 32 sorted texts, as this crate did
            let t = Instant::now();
            candle_vectors.clear();
            for chunk in refs.chunks(per_call) {
                let mut order: Vec<usize> = (0..chunk.len()).collect();
                order.sort_by_key(|&i| model.token_ids(chunk[i]).unwrap().len());
                let mut out = vec![Vec::new(); chunk.len()];
                for b in order.chunks(32) {
                    let sub: Vec<&str> = b.iter().map(|&i| chunk[i]).collect();
                    for (&i, v) in b.iter().zip(candle_embed(&candle, &model, &sub)) {
                        out[i] = v;
                    }
                }
                candle_vectors.extend(out);
            }
            let c = refs.len() as f64 / t.elapsed().as_secs_f64();
            best_candle = best_candle.max(c);
            line += &format!(", candle BertModel {c:.1} texts/s");
        }
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        eprintln!(
            "{line}  (load {})",
            load.split_whitespace().next().unwrap_or("?")
        );
    }
    println!("own kernels: {best_own:.1} texts/s (best of {rounds})");
    if !no_candle {
        let worst = own_vectors
            .iter()
            .zip(&candle_vectors)
            .map(|(a, b)| {
                a.iter()
                    .zip(b)
                    .map(|(x, y)| f64::from(*x) * f64::from(*y))
                    .sum::<f64>()
            })
            .fold(1.0f64, f64::min);
        println!("candle BertModel: {best_candle:.1} texts/s; own / candle {:.3}; lowest cosine {worst:.7}", best_own / best_candle);
    }
}
