//! The `gemini` provider: the Gemini API's batch embeddings (Google AI Studio keys).
//!
//! `POST <base>/v1beta/models/<model>:batchEmbedContents` with `x-goog-api-key: <key>` (the global
//! `TIDB_EXP_EMBED_GEMINI_API_KEY`) and `{"requests": [{"model": "models/<model>", "content":
//! {"parts": [{"text": …}]}, "taskType", "outputDimensionality"}, …]}`, one request per text. The
//! options `task_type` and `output_dimensionality` (snake or camel case) become the REST fields
//! `taskType` and `outputDimensionality`; other options (e.g. `title`) pass through into each request
//! as given. The reply is `{"embeddings": [{"values": [...]}, …]}` in input order. Errors carry
//! `{"error": {"message", "status"}}`; Gemini answers a bad key with 400 `API_KEY_INVALID`, reported
//! as TiDB's unauthorized text like a 401.
//!
//! The base is `https://generativelanguage.googleapis.com` unless the environment variable
//! `EMBEDB_GEMINI_API_BASE` names another (tests point it at a double). Batching: at most
//! [`BATCH_SIZE`] texts per request (the API accepts up to 100).

use std::sync::Arc;

use serde_json::{Map, Value};

use super::http::{self, Http};
use crate::error::{Result, SqlError};

pub const DISPLAY: &str = "Gemini";
pub const KEY_VAR: &str = "tidb_exp_embed_gemini_api_key";
pub const BASE_ENV: &str = "EMBEDB_GEMINI_API_BASE";
pub const DEFAULT_API_BASE: &str = "https://generativelanguage.googleapis.com";
/// Texts per request.
pub const BATCH_SIZE: usize = 16;

pub struct GeminiProvider {
    http: Arc<Http>,
    base: String,
}

impl GeminiProvider {
    pub fn new(http: Arc<Http>) -> Self {
        let base = http::base_from_env(BASE_ENV, DEFAULT_API_BASE);
        GeminiProvider { http, base }
    }
}

/// The model without a leading `models/`.
fn bare_model(model: &str) -> &str {
    model.strip_prefix("models/").unwrap_or(model)
}

/// `<base>/v1beta/models/<model>:batchEmbedContents`; a base already ending in a version
/// (`/v1beta`, `/v1`) keeps it.
pub fn endpoint(base: &str, model: &str) -> String {
    let b = http::trim_base(base);
    let b = if b.ends_with("/v1beta") || b.ends_with("/v1") { b } else { format!("{b}/v1beta") };
    format!("{b}/models/{}:batchEmbedContents", bare_model(model))
}

/// The request body for one batch.
pub fn request_body(model: &str, texts: &[String], options: &Map<String, Value>) -> Value {
    let name = format!("models/{}", bare_model(model));
    let mut extra = Map::new();
    for (k, v) in options {
        let k = match k.as_str() {
            "task_type" => "taskType",
            "output_dimensionality" => "outputDimensionality",
            "model" | "content" => continue,
            other => other,
        };
        extra.insert(k.to_string(), v.clone());
    }
    let requests: Vec<Value> = texts
        .iter()
        .map(|t| {
            let mut r = Map::new();
            r.insert("model".into(), Value::String(name.clone()));
            r.insert("content".into(), serde_json::json!({"parts": [{"text": t}]}));
            for (k, v) in &extra {
                r.insert(k.clone(), v.clone());
            }
            Value::Object(r)
        })
        .collect();
    serde_json::json!({ "requests": requests })
}

/// `{"embeddings": [{"values": [...]}, …]}` → vectors.
pub fn parse_response(body: &[u8], n: usize) -> std::result::Result<Vec<Vec<f32>>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("unexpected response: {e}"))?;
    let list = v.get("embeddings").and_then(Value::as_array).ok_or("unexpected response: no embeddings array")?;
    let values: Vec<Value> = list.iter().map(|e| e.get("values").cloned().unwrap_or(Value::Null)).collect();
    http::parse_vector_list(Some(&Value::Array(values)), n)
}

static API: http::Api = http::Api {
    display: DISPLAY,
    key_var: KEY_VAR,
    encoding: ("", ""),
    batch_size: BATCH_SIZE,
    detail: |v| {
        let e = v.get("error")?;
        let invalid_key = e.get("details").and_then(Value::as_array).is_some_and(|d| {
            d.iter().any(|x| x.get("reason").and_then(Value::as_str) == Some("API_KEY_INVALID"))
        });
        if invalid_key {
            return Some(INVALID_KEY.to_string());
        }
        e.get("message").and_then(http::json_text).or_else(|| http::json_text(e))
    },
};

/// What `detail` answers for Gemini's 400 `API_KEY_INVALID`, turned into the unauthorized text.
const INVALID_KEY: &str = "\u{0}API_KEY_INVALID";

impl super::Provider for GeminiProvider {
    fn batch_size(&self) -> usize {
        BATCH_SIZE
    }
    fn display_name(&self) -> &'static str {
        DISPLAY
    }

    fn embed(&self, model: &str, texts: &[&str], options: &Map<String, Value>, call: &super::Call) -> Result<Vec<Vec<f32>>> {
        let globals = call.globals;
        let key = http::api_key(globals, DISPLAY, KEY_VAR)?;
        let (m, options) = (model.to_string(), options.clone());
        http::embed_remote_custom(
            &self.http,
            &API,
            endpoint(&self.base, model),
            http::Auth::Header("x-goog-api-key", key),
            http::shape(&model, &options),
            texts,
            move |batch| request_body(&m, batch, &options),
            parse_response,
            call,
        )
        .map_err(|e| {
            if e.message.contains(INVALID_KEY) {
                SqlError::other(http::unauthorized_message(DISPLAY, KEY_VAR))
            } else {
                e
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(
            endpoint("https://generativelanguage.googleapis.com/", "gemini-embedding-001"),
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-embedding-001:batchEmbedContents"
        );
        assert_eq!(endpoint("http://h/v1beta", "models/m"), "http://h/v1beta/models/m:batchEmbedContents");
        let opts = serde_json::json!({"task_type":"RETRIEVAL_DOCUMENT","output_dimensionality":768});
        assert_eq!(
            request_body("m", &["a".into()], opts.as_object().unwrap()),
            serde_json::json!({"requests":[{"model":"models/m","content":{"parts":[{"text":"a"}]},"taskType":"RETRIEVAL_DOCUMENT","outputDimensionality":768}]})
        );
        assert_eq!(parse_response(br#"{"embeddings":[{"values":[1,2]},{"values":[3]}]}"#, 2).unwrap(), vec![vec![1.0, 2.0], vec![3.0]]);
    }
}
