//! The `openai` provider: OpenAI's embeddings API and OpenAI-compatible endpoints.
//!
//! `POST <base>/embeddings` with `Authorization: Bearer <key>` (the global
//! `TIDB_EXP_EMBED_OPENAI_API_KEY`) and `{"model", "input": [...], <options, e.g. dimensions>,
//! "encoding_format": "base64"}`; vectors come back as base64 little-endian float32 (float arrays are
//! accepted too), ordered by `index`. Errors carry OpenAI's `{"error": {"message": …}}`.
//!
//! The base is OpenAI's own unless the global `TIDB_EXP_EMBED_OPENAI_API_BASE` names another (a
//! trailing `/embeddings` is optional, as in TiDB). Because SQL users set that variable, the server
//! only calls bases listed in its `allowed_api_bases` setting; any other is refused before a request
//! is made.
//!
//! Batching: at most [`BATCH_SIZE`] texts per request. OpenAI accepts up to 2048 inputs but at
//! most 300,000 tokens per request; 32 inputs of the 8,191-token maximum stay under that.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::http::{self, Http};
use crate::error::{Result, SqlError};

pub const DISPLAY: &str = "OpenAI";
pub const KEY_VAR: &str = "tidb_exp_embed_openai_api_key";
pub const BASE_VAR: &str = "tidb_exp_embed_openai_api_base";
/// Texts per request.
pub const BATCH_SIZE: usize = 32;

pub struct OpenAiProvider {
    http: Arc<Http>,
}

impl OpenAiProvider {
    pub fn new(http: Arc<Http>) -> Self {
        OpenAiProvider { http }
    }
}

/// A base in comparable form: trimmed, no trailing `/` or `/embeddings`.
pub fn normalize_base(base: &str) -> String {
    let b = http::trim_base(base);
    match b.strip_suffix("/embeddings") {
        Some(rest) => http::trim_base(rest),
        None => b,
    }
}

/// The endpoint for the configured base (empty → OpenAI's), if the server allows that base.
pub fn endpoint(configured: Option<&str>, allowed: &[String]) -> Result<String> {
    let base = match configured.map(str::trim) {
        None | Some("") => http::DEFAULT_OPENAI_API_BASE.to_string(),
        Some(b) => {
            let n = normalize_base(b);
            let ok = n == normalize_base(http::DEFAULT_OPENAI_API_BASE) || allowed.iter().any(|a| normalize_base(a) == n);
            if !ok {
                return Err(SqlError::other(format!(
                    "{DISPLAY}: API base '{b}' is not allowed by this server; an administrator can add it to the server setting allowed_api_bases"
                )));
            }
            n
        }
    };
    Ok(format!("{}/embeddings", normalize_base(&base)))
}

static API: http::Api = http::Api {
    display: DISPLAY,
    key_var: KEY_VAR,
    encoding: ("encoding_format", "base64"),
    batch_size: BATCH_SIZE,
    detail: |v| v.get("error").and_then(|e| e.get("message").and_then(http::json_text).or_else(|| http::json_text(e))),
};

impl super::Provider for OpenAiProvider {
    fn batch_size(&self) -> usize {
        BATCH_SIZE
    }
    fn display_name(&self) -> &'static str {
        DISPLAY
    }

    fn embed(&self, model: &str, texts: &[&str], options: &Map<String, Value>, call: &super::Call) -> Result<Vec<Vec<f32>>> {
        let globals = call.globals;
        let key = http::api_key(globals, DISPLAY, KEY_VAR)?;
        let url = endpoint(globals.get(BASE_VAR).map(String::as_str), &self.http.settings().allowed_api_bases)?;
        http::embed_remote(&self.http, &API, url, key, model, texts, options, call)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bases_are_checked() {
        let allowed = vec!["http://127.0.0.1:9000/v1/".to_string()];
        assert_eq!(endpoint(None, &allowed).unwrap(), "https://api.openai.com/v1/embeddings");
        assert_eq!(endpoint(Some(" "), &[]).unwrap(), "https://api.openai.com/v1/embeddings");
        assert_eq!(endpoint(Some("https://api.openai.com/v1/"), &[]).unwrap(), "https://api.openai.com/v1/embeddings");
        assert_eq!(endpoint(Some("http://127.0.0.1:9000/v1"), &allowed).unwrap(), "http://127.0.0.1:9000/v1/embeddings");
        assert_eq!(endpoint(Some("http://127.0.0.1:9000/v1/embeddings"), &allowed).unwrap(), "http://127.0.0.1:9000/v1/embeddings");
        let e = endpoint(Some("http://169.254.169.254/latest"), &allowed).unwrap_err();
        assert!(e.message.starts_with("OpenAI: API base 'http://169.254.169.254/latest' is not allowed"), "{}", e.message);
        assert!(endpoint(Some("http://127.0.0.1:9000/v1/other"), &allowed).is_err());
    }
}
