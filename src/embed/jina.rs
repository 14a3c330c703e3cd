//! The `jina_ai` provider: Jina AI's embeddings API, as TiDB Cloud's Auto Embedding speaks it.
//!
//! `POST <jina_api_base>/v1/embeddings` with `Authorization: Bearer <key>` (the global
//! `TIDB_EXP_EMBED_JINA_AI_API_KEY`) and `{"model", "input": [...], <options>, "embedding_type":
//! "base64"}`; the options (`task`, `dimensions`, `late_chunking`, `truncate`, `normalized`, …) pass
//! through as given. Vectors come back as base64 little-endian float32 (float arrays are accepted
//! too), ordered by `index`.
//!
//! Batching: at most [`BATCH_SIZE`] texts per request — TiDB's own limit; Jina publishes rate limits
//! (requests, tokens and concurrent requests per key tier) rather than a smaller item count, and
//! small batches keep each request well under the per-request token budget for long inputs. A
//! call's batches go out `embed_concurrency` at a time (Jina's free tier allows 5 concurrent
//! requests; the default is 4).

use std::sync::Arc;

use serde_json::{Map, Value};

use super::http::{self, Http};
use crate::error::Result;

pub const DISPLAY: &str = "JinaAI";
pub const KEY_VAR: &str = "tidb_exp_embed_jina_ai_api_key";
/// Texts per request.
pub const BATCH_SIZE: usize = 16;

pub struct JinaProvider {
    http: Arc<Http>,
}

impl JinaProvider {
    pub fn new(http: Arc<Http>) -> Self {
        JinaProvider { http }
    }
}

/// `<base>/v1/embeddings`; a base that already ends in `/v1` or `/v1/embeddings` is used as it is.
pub fn endpoint(base: &str) -> String {
    let b = http::trim_base(base);
    if b.ends_with("/embeddings") {
        b
    } else if b.ends_with("/v1") {
        format!("{b}/embeddings")
    } else {
        format!("{b}/v1/embeddings")
    }
}

static API: http::Api = http::Api {
    display: DISPLAY,
    key_var: KEY_VAR,
    encoding: ("embedding_type", "base64"),
    batch_size: BATCH_SIZE,
    detail: |v| v.get("detail").and_then(http::json_text),
};

static RERANK_API: http::Api = http::Api {
    display: DISPLAY,
    key_var: KEY_VAR,
    encoding: ("", ""),
    batch_size: super::rerank::BATCH_SIZE,
    detail: |v| v.get("detail").and_then(http::json_text),
};

/// `<base>/v1/rerank`.
pub fn rerank_endpoint(base: &str) -> String {
    super::rerank::endpoint(base, "v1")
}

impl super::Provider for JinaProvider {
    fn batch_size(&self) -> usize {
        BATCH_SIZE
    }
    fn display_name(&self) -> &'static str {
        DISPLAY
    }

    fn rerank(&self, model: &str, query: &str, documents: &[&str], call: &super::Call) -> Result<Vec<f32>> {
        let key = http::api_key(call.globals, DISPLAY, KEY_VAR)?;
        super::rerank::rerank_remote(&self.http, &RERANK_API, rerank_endpoint(&self.http.settings().jina_api_base), key, model, query, documents, call)
    }

    fn embed(&self, model: &str, texts: &[&str], options: &Map<String, Value>, call: &super::Call) -> Result<Vec<Vec<f32>>> {
        let globals = call.globals;
        let key = http::api_key(globals, DISPLAY, KEY_VAR)?;
        let url = endpoint(&self.http.settings().jina_api_base);
        http::embed_remote(&self.http, &API, url, key, model, texts, options, call)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(endpoint("https://api.example.test"), "https://api.example.test/v1/embeddings");
        assert_eq!(endpoint("http://127.0.0.1:9/"), "http://127.0.0.1:9/v1/embeddings");
        assert_eq!(endpoint("http://h/v1"), "http://h/v1/embeddings");
        assert_eq!(endpoint("http://h/v1/embeddings"), "http://h/v1/embeddings");
        assert_eq!(rerank_endpoint("https://api.example.test/"), "https://api.example.test/v1/rerank");
        assert_eq!(rerank_endpoint("http://h/v1"), "http://h/v1/rerank");
        assert_eq!(rerank_endpoint("http://h/v1/embeddings"), "http://h/v1/rerank");
    }

    #[test]
    fn connection_errors_are_retried_then_reported() {
        use crate::embed::Provider;
        let settings = http::HttpSettings {
            max_retries: 1,
            jina_api_base: "http://127.0.0.1:1".into(),
            timeout: std::time::Duration::from_secs(5),
            ..Default::default()
        };
        let p = JinaProvider::new(Http::new(settings));
        let mut globals = std::collections::BTreeMap::new();
        let (interrupt, usage) = (crate::interrupt::Interrupt::new(), Default::default());
        globals.insert(KEY_VAR.to_string(), "jina-secret-key".to_string());
        let started = std::time::Instant::now();
        let e = p.embed("jina-embeddings-v3", &["a"], &Map::new(), &super::super::Call { globals: &globals, interrupt: &interrupt, usage: &usage }).unwrap_err();
        assert!(started.elapsed() >= std::time::Duration::from_millis(250), "one backoff before the retry");
        assert!(e.message.starts_with("JinaAI: error sending request"), "{}", e.message);
        assert!(!e.message.contains("jina-secret-key"));
        // from inside a tokio runtime too (the server's case)
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let e2 = rt.block_on(async { p.embed("jina-embeddings-v3", &["a"], &Map::new(), &super::super::Call { globals: &globals, interrupt: &interrupt, usage: &usage }) }).unwrap_err();
        assert_eq!(e2.message, e.message);
        globals.insert(KEY_VAR.to_string(), " ".to_string());
        assert_eq!(
            p.embed("m", &["a"], &Map::new(), &super::super::Call { globals: &globals, interrupt: &interrupt, usage: &usage }).unwrap_err().message,
            "JinaAI API key is not configured, to configure the API key: SET @@GLOBAL.TIDB_EXP_EMBED_JINA_AI_API_KEY='<API_KEY>'"
        );
    }
}
