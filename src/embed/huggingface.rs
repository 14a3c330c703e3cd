//! The `huggingface` provider: Hugging Face Inference (the `hf-inference` provider of the Inference
//! Providers router, which runs Text Embeddings Inference for embedding models).
//!
//! `POST <base>/models/<model>/pipeline/feature-extraction` with `Authorization: Bearer <key>` (the
//! global `TIDB_EXP_EMBED_HUGGINGFACE_API_KEY`) and `{"inputs": [...], <options>}`; the options
//! (`normalize`, `truncate`, `truncation_direction`, `prompt_name`, …) pass through as given. Model
//! names keep their `/` (`huggingface/BAAI/bge-m3` → model `BAAI/bge-m3`). The reply is a list of
//! vectors in input order (a model without pooling would answer per-token vectors; those are
//! refused). Errors carry `{"error": …}`; 503 (model loading) is retried like any 5xx.
//!
//! The base is `https://router.huggingface.co/hf-inference` unless the environment variable
//! `EMBEDB_HUGGINGFACE_API_BASE` names another (an Inference Endpoint's or TEI's URL works when it
//! serves the same path; tests point it at a double).

use std::sync::Arc;

use serde_json::{Map, Value};

use super::http::{self, Http};
use crate::error::Result;

pub const DISPLAY: &str = "HuggingFace";
pub const KEY_VAR: &str = "tidb_exp_embed_huggingface_api_key";
pub const BASE_ENV: &str = "EMBEDB_HUGGINGFACE_API_BASE";
pub const DEFAULT_API_BASE: &str = "https://router.huggingface.co/hf-inference";
/// Texts per request (TEI's default `--max-client-batch-size` is 32).
pub const BATCH_SIZE: usize = 16;

pub struct HuggingFaceProvider {
    http: Arc<Http>,
    base: String,
}

impl HuggingFaceProvider {
    pub fn new(http: Arc<Http>) -> Self {
        let base = http::base_from_env(BASE_ENV, DEFAULT_API_BASE);
        HuggingFaceProvider { http, base }
    }
}

/// `<base>/models/<model>/pipeline/feature-extraction`.
pub fn endpoint(base: &str, model: &str) -> String {
    format!("{}/models/{}/pipeline/feature-extraction", http::trim_base(base), model.trim_matches('/'))
}

/// The request body for one batch.
pub fn request_body(texts: &[String], options: &Map<String, Value>) -> Value {
    let mut m = Map::new();
    m.insert("inputs".into(), Value::Array(texts.iter().map(|t| Value::String(t.clone())).collect()));
    for (k, v) in options {
        if k != "inputs" {
            m.insert(k.clone(), v.clone());
        }
    }
    Value::Object(m)
}

/// `[[...], ...]` → vectors; per-token output (`[[[...]]]`) is refused.
pub fn parse_response(body: &[u8], n: usize) -> std::result::Result<Vec<Vec<f32>>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("unexpected response: {e}"))?;
    let token_level = v.as_array().and_then(|a| a.first()).and_then(Value::as_array).and_then(|a| a.first()).is_some_and(Value::is_array);
    if token_level {
        return Err("the model returns token embeddings, not sentence embeddings".into());
    }
    http::parse_vector_list(Some(&v), n)
}

static API: http::Api = http::Api {
    display: DISPLAY,
    key_var: KEY_VAR,
    encoding: ("", ""),
    batch_size: BATCH_SIZE,
    detail: |v| {
        v.get("error")
            .and_then(|e| e.get("message").and_then(http::json_text).or_else(|| http::json_text(e)))
            .or_else(|| v.get("message").and_then(http::json_text))
    },
};

impl super::Provider for HuggingFaceProvider {
    fn batch_size(&self) -> usize {
        BATCH_SIZE
    }
    fn display_name(&self) -> &'static str {
        DISPLAY
    }

    fn embed(&self, model: &str, texts: &[&str], options: &Map<String, Value>, call: &super::Call) -> Result<Vec<Vec<f32>>> {
        let globals = call.globals;
        let key = http::api_key(globals, DISPLAY, KEY_VAR)?;
        let options = options.clone();
        http::embed_remote_custom(
            &self.http,
            &API,
            endpoint(&self.base, model),
            http::Auth::Bearer(key),
            http::shape(&model, &options),
            texts,
            move |batch| request_body(batch, &options),
            parse_response,
            call,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(
            endpoint("https://router.huggingface.co/hf-inference/", "BAAI/bge-m3"),
            "https://router.huggingface.co/hf-inference/models/BAAI/bge-m3/pipeline/feature-extraction"
        );
        let opts = serde_json::json!({"normalize":true});
        assert_eq!(request_body(&["a".into()], opts.as_object().unwrap()), serde_json::json!({"inputs":["a"],"normalize":true}));
        assert_eq!(parse_response(b"[[1,2],[3,4]]", 2).unwrap(), vec![vec![1.0, 2.0], vec![3.0, 4.0]]);
        assert!(parse_response(b"[[[1,2]]]", 1).unwrap_err().contains("token"));
    }
}
