//! The `nvidia_nim` provider: NVIDIA NIM's OpenAI-compatible embeddings API.
//!
//! `POST <base>/v1/embeddings` with `Authorization: Bearer <key>` (the global
//! `TIDB_EXP_EMBED_NVIDIA_NIM_API_KEY`) and `{"model", "input": [...], "input_type", <options>,
//! "encoding_format": "float"}`. `input_type` defaults to `passage` (stored rows; NIM's retrieval
//! models require it); options (`input_type`, `truncate`, `dimensions`, …) pass through as given.
//! The reply is OpenAI's `{"data": [{"index", "embedding"}]}`, ordered by `index`.
//!
//! The base is NVIDIA's hosted API (`https://integrate.api.nvidia.com`) unless the environment
//! variable `EMBEDB_NVIDIA_NIM_API_BASE` names another (a self-hosted NIM; tests use a double).

use std::sync::Arc;

use serde_json::{Map, Value};

use super::http::{self, Http};
use crate::error::Result;

pub const DISPLAY: &str = "NVIDIA NIM";
pub const KEY_VAR: &str = "tidb_exp_embed_nvidia_nim_api_key";
pub const BASE_ENV: &str = "EMBEDB_NVIDIA_NIM_API_BASE";
pub const DEFAULT_API_BASE: &str = "https://integrate.api.nvidia.com";
/// Texts per request.
pub const BATCH_SIZE: usize = 16;

pub struct NvidiaNimProvider {
    http: Arc<Http>,
    base: String,
}

impl NvidiaNimProvider {
    pub fn new(http: Arc<Http>) -> Self {
        let base = http::base_from_env(BASE_ENV, DEFAULT_API_BASE);
        NvidiaNimProvider { http, base }
    }
}

/// `<base>/v1/embeddings`; a base already ending in `/v1` or `/v1/embeddings` is used as it is.
pub fn endpoint(base: &str) -> String {
    super::jina::endpoint(base)
}

static API: http::Api = http::Api {
    display: DISPLAY,
    key_var: KEY_VAR,
    encoding: ("encoding_format", "float"),
    batch_size: BATCH_SIZE,
    detail: |v| {
        v.get("error")
            .and_then(|e| e.get("message").and_then(http::json_text).or_else(|| http::json_text(e)))
            .or_else(|| v.get("detail").and_then(http::json_text))
            .or_else(|| v.get("message").and_then(http::json_text))
            .or_else(|| v.get("title").and_then(http::json_text))
    },
};

impl super::Provider for NvidiaNimProvider {
    fn batch_size(&self) -> usize {
        BATCH_SIZE
    }
    fn display_name(&self) -> &'static str {
        DISPLAY
    }

    fn embed(&self, model: &str, texts: &[&str], options: &Map<String, Value>, call: &super::Call) -> Result<Vec<Vec<f32>>> {
        let globals = call.globals;
        let key = http::api_key(globals, DISPLAY, KEY_VAR)?;
        let mut opts = Map::new();
        opts.insert("input_type".into(), Value::String("passage".into()));
        for (k, v) in options {
            opts.insert(k.clone(), v.clone());
        }
        http::embed_remote(&self.http, &API, endpoint(&self.base), key, model, texts, &opts, call)
    }
}
