//! The `cohere` provider: Cohere's Embed API v2.
//!
//! `POST <base>/v2/embed` with `Authorization: Bearer <key>` (the global
//! `TIDB_EXP_EMBED_COHERE_API_KEY`) and `{"model", "texts": [...], "input_type", <options>,
//! "embedding_types": ["float"]}`. `input_type` defaults to `search_document` (stored rows); the
//! options (`input_type`, `output_dimension`, `truncate`, …) pass through as given. The reply is
//! `{"embeddings": {"float": [[...], ...]}}`, one vector per text in input order. Errors carry
//! `{"message": …}`.
//!
//! The base is Cohere's (`https://api.cohere.com`) unless the environment variable
//! `EMBEDB_COHERE_API_BASE` names another (read when the server starts; tests point it at a double).
//! Batching: at most [`BATCH_SIZE`] texts per request (Cohere accepts up to 96).

use std::sync::Arc;

use serde_json::{Map, Value};

use super::http::{self, Http};
use crate::error::Result;

pub const DISPLAY: &str = "Cohere";
pub const KEY_VAR: &str = "tidb_exp_embed_cohere_api_key";
pub const BASE_ENV: &str = "EMBEDB_COHERE_API_BASE";
pub const DEFAULT_API_BASE: &str = "https://api.cohere.com";
/// Texts per request.
pub const BATCH_SIZE: usize = 16;

pub struct CohereProvider {
    http: Arc<Http>,
    base: String,
}

impl CohereProvider {
    pub fn new(http: Arc<Http>) -> Self {
        let base = http::base_from_env(BASE_ENV, DEFAULT_API_BASE);
        CohereProvider { http, base }
    }
}

/// `<base>/v2/embed`; a base already ending in `/v2` or `/v2/embed` is used as it is.
pub fn endpoint(base: &str) -> String {
    let b = http::trim_base(base);
    if b.ends_with("/embed") {
        b
    } else if b.ends_with("/v2") {
        format!("{b}/embed")
    } else {
        format!("{b}/v2/embed")
    }
}

/// The request body for one batch.
pub fn request_body(model: &str, texts: &[String], options: &Map<String, Value>) -> Value {
    let mut m = Map::new();
    m.insert("model".into(), Value::String(model.to_string()));
    m.insert("texts".into(), Value::Array(texts.iter().map(|t| Value::String(t.clone())).collect()));
    m.insert("input_type".into(), Value::String("search_document".into()));
    for (k, v) in options {
        if k != "model" && k != "texts" && k != "embedding_types" {
            m.insert(k.clone(), v.clone());
        }
    }
    m.insert("embedding_types".into(), serde_json::json!(["float"]));
    Value::Object(m)
}

/// `{"embeddings": {"float": [[...], ...]}}` → vectors.
pub fn parse_response(body: &[u8], n: usize) -> std::result::Result<Vec<Vec<f32>>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("unexpected response: {e}"))?;
    let e = v.get("embeddings");
    // v2 answers `{"float": [...]}`; v1's plain list is accepted too.
    let list = match e {
        Some(Value::Object(o)) => o.get("float"),
        other => other,
    };
    http::parse_vector_list(list, n)
}

static API: http::Api = http::Api {
    display: DISPLAY,
    key_var: KEY_VAR,
    encoding: ("embedding_types", "float"),
    batch_size: BATCH_SIZE,
    detail: |v| v.get("message").and_then(http::json_text),
};

static RERANK_API: http::Api = http::Api {
    display: DISPLAY,
    key_var: KEY_VAR,
    encoding: ("", ""),
    batch_size: super::rerank::BATCH_SIZE,
    detail: |v| v.get("message").and_then(http::json_text),
};

/// `<base>/v2/rerank`.
pub fn rerank_endpoint(base: &str) -> String {
    super::rerank::endpoint(base, "v2")
}

impl super::Provider for CohereProvider {
    fn batch_size(&self) -> usize {
        BATCH_SIZE
    }
    fn display_name(&self) -> &'static str {
        DISPLAY
    }

    fn rerank(&self, model: &str, query: &str, documents: &[&str], call: &super::Call) -> Result<Vec<f32>> {
        let key = http::api_key(call.globals, DISPLAY, KEY_VAR)?;
        super::rerank::rerank_remote(&self.http, &RERANK_API, rerank_endpoint(&self.base), key, model, query, documents, call)
    }

    fn embed(&self, model: &str, texts: &[&str], options: &Map<String, Value>, call: &super::Call) -> Result<Vec<Vec<f32>>> {
        let globals = call.globals;
        let key = http::api_key(globals, DISPLAY, KEY_VAR)?;
        let (model, options) = (model.to_string(), options.clone());
        http::embed_remote_custom(
            &self.http,
            &API,
            endpoint(&self.base),
            http::Auth::Bearer(key),
            http::shape(&model, &options),
            texts,
            move |batch| request_body(&model, batch, &options),
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
        assert_eq!(endpoint("https://api.cohere.com/"), "https://api.cohere.com/v2/embed");
        assert_eq!(endpoint("http://h/v2"), "http://h/v2/embed");
        assert_eq!(rerank_endpoint("https://api.cohere.com/"), "https://api.cohere.com/v2/rerank");
        assert_eq!(rerank_endpoint("http://h/v2/embed"), "http://h/v2/rerank");
        let opts = serde_json::json!({"input_type":"search_query","output_dimension":256,"embedding_types":["int8"]});
        let b = request_body("embed-v4.0", &["a".into()], opts.as_object().unwrap());
        assert_eq!(
            b,
            serde_json::json!({"model":"embed-v4.0","texts":["a"],"input_type":"search_query","output_dimension":256,"embedding_types":["float"]})
        );
        assert_eq!(parse_response(br#"{"embeddings":{"float":[[1,2],[3,4]]}}"#, 2).unwrap(), vec![vec![1.0, 2.0], vec![3.0, 4.0]]);
        assert!(parse_response(br#"{"embeddings":{"float":[[1,2]]}}"#, 2).unwrap_err().contains("does not match"));
    }
}
