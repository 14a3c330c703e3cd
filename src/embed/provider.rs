//! The provider seam: one implementation per embedding service, each in its own file. Adding a
//! provider touches only its file and the registration in `Embedder::new`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::{Map, Value};

use crate::error::Result;
use crate::interrupt::Interrupt;

pub trait Provider: Send + Sync {
    /// TiDB's display name for errors (`JinaAI`, `OpenAI`, …).
    fn display_name(&self) -> &'static str;
    /// Embed `texts` (distinct, non-empty list) with `model` and the request options; one vector per
    /// text, in order.
    fn embed(&self, model: &str, texts: &[&str], options: &Map<String, Value>, call: &Call) -> Result<Vec<Vec<f32>>>;
    /// Which texts fit `model`'s input limit, and the limit (in tokens), where the provider knows
    /// them (`local`); None where it does not (remote providers apply their own rule).
    fn fits(&self, _model: &str, _texts: &[&str]) -> Result<Option<(Vec<bool>, usize)>> {
        Ok(None)
    }
    /// How many tokens of each text `model` would take, where the provider can count them
    /// (`local`, up to its input limit); None where it cannot.
    fn tokens(&self, _model: &str, _texts: &[&str]) -> Result<Option<Vec<usize>>> {
        Ok(None)
    }
    /// Where `model`'s tokens lie in `text` (byte ranges, special tokens left out) and how many
    /// fit one input, where the provider can tokenise (`local`); None where it cannot.
    fn spans(&self, _model: &str, _text: &str) -> Result<Option<(Vec<(usize, usize)>, usize)>> {
        Ok(None)
    }
    /// Relevance of each of `documents` to `query` with the reranker `model`, in order.
    fn rerank(&self, _model: &str, _query: &str, _documents: &[&str], _call: &Call) -> Result<Vec<f32>> {
        Err(crate::error::SqlError::other(format!("{}: this provider has no reranking API here (jina_ai and cohere do)", self.display_name())))
    }
    /// Texts per request: a call of up to this many succeeds or fails as one.
    fn batch_size(&self) -> usize {
        usize::MAX
    }
}

/// SQLSTATE of a provider error that refused the input (a 4xx other than for the key, the rate
/// limit or a timeout): the texts, not the service, are at fault. The code stays TiDB's 1105.
pub const INPUT_REFUSED_STATE: &str = "22000";

/// What a provider call carries besides its texts.
pub struct Call<'a> {
    /// The server's global variables (API keys live there).
    pub globals: &'a BTreeMap<String, String>,
    /// Fires on KILL QUERY: the provider stops waiting and fails with 1317.
    pub interrupt: &'a Arc<Interrupt>,
    /// Where requests and tokens are counted, per (provider, model).
    pub usage: &'a Arc<UsageCell>,
}

/// Counters behind one row of `information_schema.EMBEDDING_USAGE`. Requests and tokens are
/// counted where they happen (per HTTP request or model run), so batches shared by several
/// statements are counted once.
#[derive(Default, Debug)]
pub struct UsageCell {
    requests: AtomicU64,
    texts: AtomicU64,
    tokens: AtomicU64,
    /// Whether any request reported a token count (else TOKENS is NULL: unknown, not zero).
    tokens_known: std::sync::atomic::AtomicBool,
    cache_hits: AtomicU64,
    errors: AtomicU64,
    last_error: Mutex<String>,
    /// Texts cut at the model's input limit.
    truncated: AtomicU64,
}

/// A copy of a [`UsageCell`] (also its stored form: usage survives restarts).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Usage {
    /// Requests to the provider (HTTP requests, or model runs for `local`).
    pub requests: u64,
    /// Texts sent to the provider.
    pub texts: u64,
    /// Tokens as the provider reported them; `None` when it never did.
    pub tokens: Option<u64>,
    /// Texts answered from the cache (memory or store).
    pub cache_hits: u64,
    pub errors: u64,
    pub last_error: String,
    pub truncated: u64,
}

impl UsageCell {
    /// One request; `tokens` when the provider reported them.
    pub fn request(&self, tokens: Option<u64>) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(t) = tokens {
            self.tokens.fetch_add(t, Ordering::Relaxed);
            self.tokens_known.store(true, Ordering::Relaxed);
        }
    }

    pub fn texts(&self, n: u64) {
        self.texts.fetch_add(n, Ordering::Relaxed);
    }

    pub fn cache_hits(&self, n: u64) {
        self.cache_hits.fetch_add(n, Ordering::Relaxed);
    }

    pub fn truncated(&self, n: u64) {
        self.truncated.fetch_add(n, Ordering::Relaxed);
    }

    pub fn error(&self, message: &str) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock() = message.to_string();
    }

    /// Counters as stored before a restart, added to what this process counted since.
    pub fn restore(&self, u: &Usage) {
        self.requests.fetch_add(u.requests, Ordering::Relaxed);
        self.texts.fetch_add(u.texts, Ordering::Relaxed);
        if let Some(t) = u.tokens {
            self.tokens.fetch_add(t, Ordering::Relaxed);
            self.tokens_known.store(true, Ordering::Relaxed);
        }
        self.cache_hits.fetch_add(u.cache_hits, Ordering::Relaxed);
        self.errors.fetch_add(u.errors, Ordering::Relaxed);
        self.truncated.fetch_add(u.truncated, Ordering::Relaxed);
        let mut last = self.last_error.lock();
        if last.is_empty() {
            *last = u.last_error.clone();
        }
    }

    pub fn snapshot(&self) -> Usage {
        Usage {
            requests: self.requests.load(Ordering::Relaxed),
            texts: self.texts.load(Ordering::Relaxed),
            tokens: self.tokens_known.load(Ordering::Relaxed).then(|| self.tokens.load(Ordering::Relaxed)),
            cache_hits: self.cache_hits.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            last_error: self.last_error.lock().clone(),
            truncated: self.truncated.load(Ordering::Relaxed),
        }
    }
}
