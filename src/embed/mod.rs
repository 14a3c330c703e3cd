//! Auto embedding: text in, vectors out, through a provider named by the model string.
//!
//! `EMBED_TEXT('local/all-MiniLM-L6-v2', content)` in a generated column walks like this: the DML
//! path evaluates the generated expression once for the statement's whole batch of rows
//! (`sql::dml::fill_generated`) → the `embed_text` UDF (`udf`) gets the texts as one Arrow array →
//! `Embedder::embed` splits the model string (`provider/model`), looks in the cache, and sends the
//! texts it has not seen to the provider in batches (`provider::Provider`, one file per provider:
//! `local` runs the model in-process with candle) → vectors come back in order and are checked for
//! NaN/Inf → the column's `VECTOR(D)` check applies as for any insert.
//!
//! Searching (`VEC_EMBED_COSINE_DISTANCE(col, 'query')`) is rewritten by `sql::query` into the plain
//! distance against the query's embedding, computed once per statement with the column's model and
//! its options with `k@search` keys applied (`options_for_search`).
//!
//! Around that path: `"embedb.…"` options are embedb's own (`own_options`: the column's mode and
//! long-text policy) and never reach a provider; an async column's rows wait in `backlog` for the
//! worker (`session::backlog_worker`); `rate` keeps each remote provider within its requests and
//! tokens per minute; `rerank` scores (query, text) pairs (`RERANK_SCORE`) through the same
//! machinery; `estimate` prices a set of texts before they are embedded (`EMBEDDING_ESTIMATE`).

pub mod backlog;
pub mod batcher;
pub mod chunk;
pub mod cohere;
pub mod estimate;
pub mod gemini;
pub mod http;
pub mod huggingface;
pub mod jina;
pub mod local;
pub mod model_change;
pub mod nvidia_nim;
pub mod openai;
pub mod provider;
pub mod rate;
pub mod rerank;
pub mod udf;

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::{Map, Value};

use crate::error::{Result, SqlError};
pub use provider::{Call, Provider, Usage, UsageCell, INPUT_REFUSED_STATE};

/// Providers TiDB knows (the order of its error message), plus our in-process `local`.
pub const PROVIDERS: &[&str] = &["openai", "jina_ai", "cohere", "gemini", "huggingface", "nvidia_nim", "local"];

/// `provider/model` → (provider lower-cased, model as written).
pub fn parse_model(spec: &str) -> Result<(String, String)> {
    let Some((p, m)) = spec.split_once('/') else {
        return Err(SqlError::other(format!("model name must be in format 'provider/model', got: {spec}")));
    };
    let (p, m) = (p.trim().to_ascii_lowercase(), m.trim().to_string());
    if p.is_empty() || m.is_empty() {
        return Err(SqlError::other(format!("model name must be in format 'provider/model', got: {spec}")));
    }
    if p == "tidbcloud_free" {
        return free_tier_model(&m);
    }
    if !PROVIDERS.contains(&p.as_str()) {
        return Err(SqlError::other(format!(
            "unknown embedding provider '{p}', available providers: {}",
            PROVIDERS.join(", ")
        )));
    }
    if !valid_model_name(&m) {
        return Err(SqlError::other(format!(
            "invalid model name '{m}': use letters, digits and . _ - : @ + in '/'-separated parts, none of them '.' or '..' or starting with '.'"
        )));
    }
    Ok((p, m))
}

/// TiDB Cloud's hosted models (`tidbcloud_free/<provider>/<model>`) exist only on TiDB Cloud.
/// Where the same provider is available here (`cohere`, `jina_ai`, …) the name routes to it, so
/// the DDL of a TiDB Cloud tutorial runs unchanged once that provider's key is set; otherwise
/// (`amazon/titan-…`: no Bedrock here) the error says what to use instead.
fn free_tier_model(m: &str) -> Result<(String, String)> {
    let (inner, model) = m.split_once('/').unwrap_or(("", m));
    let inner = inner.to_ascii_lowercase();
    if PROVIDERS.contains(&inner.as_str()) && inner != "local" && !model.is_empty() {
        return parse_model(&format!("{inner}/{model}"));
    }
    Err(SqlError::other(format!(
        "'tidbcloud_free/{m}' is served by TiDB Cloud only; embedb runs the same SQL with a model it can reach: \
         'local/all-MiniLM-L6-v2' (no key), or a provider you have a key for (jina_ai, openai, cohere, gemini, huggingface, nvidia_nim)"
    )))
}

/// A model name is pasted into a request path (remote providers) or joined to the model directory
/// (local), so it may not climb out of either: '/'-separated parts of a safe alphabet, none empty,
/// none starting with '.' (which rules out `.` and `..`), no backslash, no leading '/'.
pub fn valid_model_name(m: &str) -> bool {
    m.len() <= 256
        && m.split('/').all(|part| {
            !part.is_empty()
                && !part.starts_with('.')
                && part.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-' | b':' | b'@' | b'+'))
        })
}

#[cfg(test)]
mod name_tests {
    use super::*;

    #[test]
    fn model_names_cannot_leave_their_place() {
        for ok in ["all-MiniLM-L6-v2", "BAAI/bge-m3", "text-embedding-3-small", "embed-english-v3.0", "models/gemini-embedding-001", "nvidia/llama-3.2-nv-embedqa-1b-v2"] {
            assert!(valid_model_name(ok), "{ok}");
        }
        for bad in ["../x", "a/../../x", "/abs/path", "a//b", ".hidden", "a/.", "a\\..\\b", "a b", "a?x=1", "a#f", "a%2e%2e", "", "a/"] {
            assert!(!valid_model_name(bad), "{bad}");
        }
        assert!(parse_model("local/../x").is_err());
        assert!(parse_model("local//etc/passwd").is_err());
        assert!(parse_model("huggingface/../../../x").is_err());
        assert_eq!(parse_model("Local/all-MiniLM-L6-v2").unwrap(), ("local".into(), "all-MiniLM-L6-v2".into()));
        assert_eq!(parse_model("tidbcloud_free/cohere/embed-multilingual-v3.0").unwrap(), ("cohere".into(), "embed-multilingual-v3.0".into()));
        let titan = parse_model("tidbcloud_free/amazon/titan-embed-text-v2").unwrap_err().message;
        assert!(titan.contains("TiDB Cloud only") && titan.contains("local/all-MiniLM-L6-v2"), "{titan}");
    }
}

/// The options argument: NULL or '' → none; otherwise a JSON object.
pub fn parse_options(s: Option<&str>) -> Result<Map<String, Value>> {
    match s.map(str::trim) {
        None | Some("") => Ok(Map::new()),
        Some(t) => match serde_json::from_str::<Value>(t) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(SqlError::other("EMBED_TEXT expects options in JSON format")),
        },
    }
}

/// Options that are embedb's own (`"embedb.mode": "async"`): read by embedb, never sent to a
/// provider, so the same DDL means the same on TiDB (which passes unknown keys through).
pub const OWN_OPTION_PREFIX: &str = "embedb.";

/// How an `EMBED_TEXT` column gets its vectors: in the writing statement (TiDB's way), or after
/// the row commits, by the backlog's workers (`backlog`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Sync,
    Async,
}

/// What happens to a text longer than the model's input limit (known for `local` models; a remote
/// provider applies its own rule, e.g. Jina's `truncate` option).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LongText {
    /// Embed its first word pieces, with a warning per statement and a count in usage (the
    /// local model's behaviour, as sentence-transformers').
    Truncate,
    /// Refuse the text: the statement fails (an async row is marked failed).
    Error,
    /// Cut it into chunks that fit (`chunk`), embed each, and keep them all: the column holds the
    /// chunks' vectors one after another and searches rank rows by their best chunk.
    Chunk(chunk::ChunkSize),
}

impl LongText {
    pub fn is_chunk(self) -> bool {
        matches!(self, LongText::Chunk(_))
    }
}

/// embedb's own options of an `EMBED_TEXT` column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OwnOptions {
    pub mode: Mode,
    pub long_text: LongText,
}

/// embedb's own options (`embedb.mode`, `embedb.long_text`); unknown `embedb.` keys and values are
/// errors (1210), so that a typo does not silently leave a column as it was.
pub fn own_options(m: &Map<String, Value>) -> Result<OwnOptions> {
    let bad = |why: String| SqlError::new(1210, "HY000", format!("Incorrect EMBED_TEXT option: {why}"));
    let mut o = OwnOptions { mode: Mode::Sync, long_text: LongText::Truncate };
    let mut size = chunk::ChunkSize { tokens: None, overlap: None };
    let count = |k: &str, v: &Value, lo: u64| -> Result<usize> {
        v.as_u64().filter(|n| (lo..=1_000_000).contains(n)).map(|n| n as usize).ok_or_else(|| bad(format!("'{k}' must be an integer in {lo}..1000000, got {v}")))
    };
    for (k, v) in m {
        let Some(own) = k.strip_prefix(OWN_OPTION_PREFIX) else { continue };
        let value = v.as_str().map(str::to_ascii_lowercase);
        match (own, value.as_deref()) {
            ("chunk_tokens", _) => size.tokens = Some(count(k, v, 1)?),
            ("chunk_overlap", _) => size.overlap = Some(count(k, v, 0)?),
            ("mode", Some("sync")) => o.mode = Mode::Sync,
            ("mode", Some("async")) => o.mode = Mode::Async,
            ("mode", _) => return Err(bad(format!("'{k}' must be \"sync\" or \"async\", got {v}"))),
            ("long_text", Some("truncate")) => o.long_text = LongText::Truncate,
            ("long_text", Some("error")) => o.long_text = LongText::Error,
            ("long_text", Some("chunk")) => o.long_text = LongText::Chunk(size),
            ("long_text", _) => return Err(bad(format!("'{k}' must be \"truncate\", \"error\" or \"chunk\", got {v}"))),
            _ => {
                return Err(bad(format!(
                    "unknown option '{k}' (embedb's own options: embedb.mode, embedb.long_text, embedb.chunk_tokens, embedb.chunk_overlap)"
                )))
            }
        }
    }
    match &mut o.long_text {
        LongText::Chunk(s) => *s = size,
        _ if size.tokens.is_some() || size.overlap.is_some() => {
            return Err(bad("'embedb.chunk_tokens' and 'embedb.chunk_overlap' need \"embedb.long_text\": \"chunk\"".into()))
        }
        _ => {}
    }
    Ok(o)
}

/// The column's mode from its options (see [`own_options`]).
pub fn column_mode(m: &Map<String, Value>) -> Result<Mode> {
    own_options(m).map(|o| o.mode)
}

/// What a connection's statements learnt while embedding, for the statement's warnings.
#[derive(Default)]
pub struct Notes {
    /// Texts cut at their model's input limit, and the last (model, limit).
    truncated: std::sync::atomic::AtomicU64,
    limit: Mutex<Option<(String, usize)>>,
}

impl Notes {
    pub fn truncated(&self, n: u64, model: &str, limit: usize) {
        if n > 0 {
            self.truncated.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            *self.limit.lock() = Some((model.to_string(), limit));
        }
    }
    /// The statement's warning, if texts were truncated (and the count reset).
    pub fn take_warning(&self) -> Option<String> {
        let n = self.truncated.swap(0, std::sync::atomic::Ordering::Relaxed);
        let (model, limit) = self.limit.lock().take()?;
        (n > 0).then(|| format!("{n} text(s) longer than {model}'s input limit of {limit} tokens were truncated to it"))
    }
}

/// Options used when embedding stored rows: `k@search` keys and embedb's own keys are dropped.
pub fn options_for_storage(m: &Map<String, Value>) -> Map<String, Value> {
    m.iter()
        .filter(|(k, _)| !k.ends_with("@search") && !k.starts_with(OWN_OPTION_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Options used when embedding a search query: `k@search` replaces `k`.
pub fn options_for_search(m: &Map<String, Value>) -> Map<String, Value> {
    let mut out = options_for_storage(m);
    for (k, v) in m {
        if let Some(base) = k.strip_suffix("@search") {
            out.insert(base.to_string(), v.clone());
        }
    }
    out
}

/// Shared by all sessions: the providers, a cache of recent results (in memory, backed by the
/// store so that re-embedding the same text after a restart costs nothing), and usage counters.
pub struct Embedder {
    providers: HashMap<String, Arc<dyn Provider>>,
    cache: Mutex<Lru>,
    store: Option<embedb_storage::Store>,
    usage: Mutex<std::collections::BTreeMap<(String, String), Arc<UsageCell>>>,
    /// The usage as last stored (`save_usage` writes what differs).
    saved_usage: Mutex<HashMap<(String, String), Usage>>,
    /// The async columns' backlog: what this process knows beyond the stored entries.
    pub backlog: Arc<backlog::Progress>,
    /// Global variables (API keys live there); read at call time so a new key applies at once.
    pub globals: Arc<parking_lot::RwLock<std::collections::BTreeMap<String, String>>>,
}

/// A small LRU: (model, options, text) → vector.
struct Lru {
    map: HashMap<String, (u64, Arc<Vec<f32>>)>,
    tick: u64,
    cap: usize,
}

impl Lru {
    fn get(&mut self, k: &str) -> Option<Arc<Vec<f32>>> {
        self.tick += 1;
        let t = self.tick;
        self.map.get_mut(k).map(|e| {
            e.0 = t;
            e.1.clone()
        })
    }
    fn put(&mut self, k: String, v: Arc<Vec<f32>>) {
        self.tick += 1;
        if self.map.len() >= self.cap {
            // Evict the least recently used tenth in one sweep.
            let mut ages: Vec<u64> = self.map.values().map(|e| e.0).collect();
            ages.sort_unstable();
            let cut = ages[ages.len() / 10];
            self.map.retain(|_, e| e.0 > cut);
        }
        self.map.insert(k, (self.tick, v));
    }
}

/// [`Embedder::estimate`]'s answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    /// Texts the cache answers.
    pub cached: u64,
    /// Tokens of the texts it does not.
    pub tokens: u64,
    /// Whether `tokens` were counted by the model's tokenizer (else estimated).
    pub tokens_counted: bool,
}

/// Stored usage counters: `x_embed_usage/<provider>\0<model>` → `Usage` as JSON.
const USAGE_PREFIX: &[u8] = b"x_embed_usage/";

/// A text's cache entry under `provider/model` and options (as JSON): what the memory cache keys
/// by, and what the store's key is a hash of.
fn embedding_key(provider: &str, model: &str, options_json: &str, text: &str) -> String {
    format!("{provider}/{model}\u{0}{options_json}\u{0}{text}")
}

/// Key of a persisted embedding: `x_embed/` + SHA-256 of (provider/model, options, text).
fn store_key(full_key: &str) -> Vec<u8> {
    use sha2::Digest;
    let mut k = b"x_embed/".to_vec();
    k.extend_from_slice(&sha2::Sha256::digest(full_key.as_bytes()));
    k
}

impl Embedder {
    pub fn new(
        model_dir: std::path::PathBuf,
        http_settings: http::HttpSettings,
        globals: Arc<parking_lot::RwLock<std::collections::BTreeMap<String, String>>>,
    ) -> Embedder {
        let mut providers: HashMap<String, Arc<dyn Provider>> = HashMap::new();
        providers.insert("local".into(), Arc::new(local::LocalProvider::new(model_dir)));
        // Remote providers share one HTTP client (timeouts, retries, concurrency, allowed bases).
        let http = http::Http::new(http_settings);
        providers.insert("jina_ai".into(), Arc::new(jina::JinaProvider::new(http.clone())));
        providers.insert("cohere".into(), Arc::new(cohere::CohereProvider::new(http.clone())));
        providers.insert("gemini".into(), Arc::new(gemini::GeminiProvider::new(http.clone())));
        providers.insert("huggingface".into(), Arc::new(huggingface::HuggingFaceProvider::new(http.clone())));
        providers.insert("nvidia_nim".into(), Arc::new(nvidia_nim::NvidiaNimProvider::new(http.clone())));
        providers.insert("openai".into(), Arc::new(openai::OpenAiProvider::new(http)));
        Embedder {
            providers,
            cache: Mutex::new(Lru { map: HashMap::new(), tick: 0, cap: 10_000 }),
            store: None,
            usage: Mutex::new(Default::default()),
            saved_usage: Mutex::new(Default::default()),
            backlog: Default::default(),
            globals,
        }
    }

    /// Persist embeddings in `store` (and look there before calling a provider), and the usage
    /// counters too: those stored by an earlier run are loaded now.
    pub fn with_store(mut self, store: embedb_storage::Store) -> Embedder {
        if let Err(e) = self.load_usage(&store) {
            tracing::warn!("embedding usage of earlier runs not loaded: {}", e.message);
        }
        self.store = Some(store);
        self
    }

    fn load_usage(&self, store: &embedb_storage::Store) -> Result<()> {
        let txn = store.begin()?;
        let mut found = Vec::new();
        txn.scan_visit(USAGE_PREFIX, &embedb_storage::codec::prefix_end(USAGE_PREFIX), &mut |k, v| {
            found.push((k.to_vec(), v.to_vec()));
            true
        })?;
        txn.rollback();
        for (k, v) in found {
            let name = String::from_utf8_lossy(&k[USAGE_PREFIX.len()..]).into_owned();
            let (Some((p, m)), Ok(u)) = (name.split_once('\u{0}'), serde_json::from_slice::<Usage>(&v)) else { continue };
            self.usage_cell(p, m).restore(&u);
        }
        Ok(())
    }

    /// Store the usage counters that changed since the last call (the backlog worker calls this
    /// every 2 s, and shutdown once more; a crash loses at most that much counting).
    pub fn save_usage(&self) {
        let Some(store) = &self.store else { return };
        let current = self.usage();
        let mut saved = self.saved_usage.lock();
        let changed: Vec<_> = current.into_iter().filter(|(k, u)| saved.get(k) != Some(u)).collect();
        if changed.is_empty() {
            return;
        }
        let written = store.begin().map_err(SqlError::from).and_then(|txn| {
            for ((p, m), u) in &changed {
                let mut k = USAGE_PREFIX.to_vec();
                k.extend_from_slice(format!("{p}\u{0}{m}").as_bytes());
                txn.put(k, serde_json::to_vec(u).expect("usage serialises"));
            }
            txn.commit().map_err(SqlError::from)
        });
        match written {
            Ok(()) => saved.extend(changed),
            Err(e) => tracing::debug!("embedding usage not stored: {}", e.message),
        }
    }

    /// A copy of the usage counters, per (provider, model).
    pub fn usage(&self) -> Vec<((String, String), Usage)> {
        self.usage.lock().iter().map(|(k, v)| (k.clone(), v.snapshot())).collect()
    }

    /// Texts per provider request for `spec` (`provider/model`): a call of up to this many texts
    /// succeeds or fails as one.
    pub fn batch_size(&self, spec: &str) -> usize {
        parse_model(spec).ok().and_then(|(p, _)| self.providers.get(&p).map(|p| p.batch_size())).unwrap_or(usize::MAX)
    }

    /// A model name that embeds here (its provider exists), with the error an EMBED_TEXT would give.
    pub fn check_model(&self, spec: &str) -> Result<()> {
        self.resolve(spec, "embedding").map(|_| ())
    }

    /// `provider/model` → (provider, model, the provider); `what` names the use in the error.
    fn resolve(&self, spec: &str, what: &str) -> Result<(String, String, &Arc<dyn Provider>)> {
        let (p, model) = parse_model(spec)?;
        let provider = self.providers.get(&p).ok_or_else(|| SqlError::other(format!("{what} provider '{p}' is not available in this build yet")))?;
        Ok((p, model, provider))
    }

    fn usage_cell(&self, provider: &str, model: &str) -> Arc<UsageCell> {
        self.usage.lock().entry((provider.to_string(), model.to_string())).or_default().clone()
    }

    fn persisted(&self, keys: &[String]) -> Vec<Option<Vec<f32>>> {
        let Some(store) = &self.store else { return vec![None; keys.len()] };
        let Ok(txn) = store.begin() else { return vec![None; keys.len()] };
        let out = keys
            .iter()
            .map(|k| txn.get(&store_key(k)).ok().flatten().and_then(|b| embedb_vector::vector_from_bytes(&b).ok()))
            .collect();
        txn.rollback();
        out
    }

    fn persist(&self, items: &[(String, Arc<Vec<f32>>)]) {
        let Some(store) = &self.store else { return };
        // A cache: a failure here only costs a future provider call.
        if let Ok(txn) = store.begin() {
            for (k, v) in items {
                txn.put(store_key(k), embedb_vector::vector_to_bytes(v));
            }
            if let Err(e) = txn.commit() {
                tracing::warn!("embedding cache not persisted: {e}");
            }
        }
    }

    /// Answers `texts` (`None` gives `None`) from the cache — memory, then the store — and the rest
    /// with one `call` for the distinct ones, whose answers `check` validates before they are
    /// cached and stored. `key` names a text's cache entry; `usage` counts hits, texts sent and
    /// errors of `call`. Shared by embeddings and rerank scores (one-element "vectors").
    fn through_cache(
        &self,
        texts: &[Option<&str>],
        key: impl Fn(&str) -> String,
        usage: &UsageCell,
        call: impl FnOnce(&[&str]) -> Result<Vec<Vec<f32>>>,
        check: impl Fn(&[Vec<f32>], usize) -> Result<()>,
    ) -> Result<Vec<Option<Vec<f32>>>> {
        let mut out: Vec<Option<Vec<f32>>> = vec![None; texts.len()];
        let mut missing: Vec<(usize, &str)> = Vec::new();
        {
            let mut cache = self.cache.lock();
            for (i, t) in texts.iter().enumerate() {
                if let Some(t) = t {
                    match cache.get(&key(t)) {
                        Some(v) => out[i] = Some(v.as_ref().clone()),
                        None => missing.push((i, t)),
                    }
                }
            }
        }
        // Then the store: answers from before a restart.
        if !missing.is_empty() && self.store.is_some() {
            let keys: Vec<String> = missing.iter().map(|(_, t)| key(t)).collect();
            let found = self.persisted(&keys);
            let mut cache = self.cache.lock();
            let mut still = Vec::new();
            for ((i, t), (k, v)) in missing.into_iter().zip(keys.into_iter().zip(found)) {
                match v {
                    Some(v) => {
                        cache.put(k, Arc::new(v.clone()));
                        out[i] = Some(v);
                    }
                    None => still.push((i, t)),
                }
            }
            missing = still;
        }
        usage.cache_hits((texts.iter().flatten().count() - missing.len()) as u64);
        if missing.is_empty() {
            return Ok(out);
        }
        // One request per distinct text.
        let mut distinct: Vec<&str> = missing.iter().map(|(_, t)| *t).collect();
        distinct.sort_unstable();
        distinct.dedup();
        let result = call(&distinct);
        usage.texts(distinct.len() as u64);
        if let Err(e) = &result {
            usage.error(&e.message);
        }
        let answers = result?;
        check(&answers, distinct.len())?;
        let mut by_text: HashMap<&str, Arc<Vec<f32>>> = HashMap::new();
        let mut fresh = Vec::with_capacity(distinct.len());
        {
            let mut cache = self.cache.lock();
            for (t, v) in distinct.iter().zip(answers) {
                let v = Arc::new(v);
                cache.put(key(t), v.clone());
                fresh.push((key(t), v.clone()));
                by_text.insert(t, v);
            }
        }
        self.persist(&fresh);
        for (i, t) in missing {
            out[i] = Some(by_text[t].as_ref().clone());
        }
        Ok(out)
    }

    /// What embedding `texts` (distinct) with `spec` and `options` would cost: how many the cache
    /// answers, and the tokens of the others (counted where the provider can, else estimated at
    /// four characters per token). Sends nothing.
    pub fn estimate(&self, spec: &str, texts: &[&str], options: &Map<String, Value>) -> Result<Estimate> {
        let (p, model, provider) = self.resolve(spec, "embedding")?;
        let opts = Value::Object(options.clone()).to_string();
        let keys: Vec<String> = texts.iter().map(|t| embedding_key(&p, &model, &opts, t)).collect();
        let mut cached: Vec<bool> = {
            let mut cache = self.cache.lock();
            keys.iter().map(|k| cache.get(k).is_some()).collect()
        };
        let unknown: Vec<usize> = (0..keys.len()).filter(|&i| !cached[i]).collect();
        let found = self.persisted(&unknown.iter().map(|&i| keys[i].clone()).collect::<Vec<_>>());
        for (i, v) in unknown.into_iter().zip(found) {
            cached[i] = v.is_some();
        }
        let rest: Vec<&str> = texts.iter().zip(&cached).filter(|(_, c)| !**c).map(|(t, _)| *t).collect();
        let (tokens, tokens_counted) = match provider.tokens(&model, &rest)? {
            Some(counts) => (counts.iter().sum::<usize>() as u64, true),
            None => (rest.iter().map(|t| t.chars().count().div_ceil(4) as u64).sum(), false),
        };
        Ok(Estimate { cached: cached.iter().filter(|c| **c).count() as u64, tokens, tokens_counted })
    }

    /// Relevance of each text to `query` with the reranker `spec` (`provider/model`); `None` texts
    /// give `None`. Pairs scored before are answered by the cache (memory, then store).
    pub fn rerank(&self, spec: &str, query: &str, texts: &[Option<&str>], interrupt: &Arc<crate::interrupt::Interrupt>) -> Result<Vec<Option<f64>>> {
        let (p, model, provider) = self.resolve(spec, "reranking")?;
        let key = |t: &str| format!("rerank\u{0}{p}/{model}\u{0}{query}\u{0}{t}");
        let usage = self.usage_cell(&p, &model);
        let scores = self.through_cache(
            texts,
            key,
            &usage,
            |distinct| {
                let globals = self.globals.read().clone();
                let call = Call { globals: &globals, interrupt, usage: &usage };
                Ok(provider.rerank(&model, query, distinct, &call)?.into_iter().map(|s| vec![s]).collect())
            },
            |scores, n| {
                if scores.len() != n || scores.iter().any(|s| s.len() != 1 || !s[0].is_finite()) {
                    return Err(SqlError::other(format!("{}: returned {} scores for {} documents", provider.display_name(), scores.len(), n)));
                }
                Ok(())
            },
        )?;
        Ok(scores.into_iter().map(|s| s.and_then(|s| s.first().map(|x| *x as f64))).collect())
    }

    /// Embed texts with `spec` (`provider/model`) and final options. `None` texts give `None`.
    /// `interrupt` (the statement's connection) stops a provider call that is still running.
    /// Texts over the model's input limit are truncated (see [`Embedder::embed_long`]).
    pub fn embed(
        &self,
        spec: &str,
        texts: &[Option<&str>],
        options: &Map<String, Value>,
        interrupt: &Arc<crate::interrupt::Interrupt>,
    ) -> Result<Vec<Option<Vec<f32>>>> {
        self.embed_long(spec, texts, options, interrupt, LongText::Truncate, None)
    }

    /// [`Embedder::embed`] with a long-text policy: where the provider knows its input limit
    /// (`local`), texts over it are counted in usage and `notes` (Truncate), or refused before any
    /// embedding (Error: 1105 with SQLSTATE 22000, the input's fault).
    pub fn embed_long(
        &self,
        spec: &str,
        texts: &[Option<&str>],
        options: &Map<String, Value>,
        interrupt: &Arc<crate::interrupt::Interrupt>,
        long_text: LongText,
        notes: Option<&Notes>,
    ) -> Result<Vec<Option<Vec<f32>>>> {
        let (p, model, provider) = self.resolve(spec, "embedding")?;
        if let LongText::Chunk(size) = long_text {
            return self.embed_chunked(spec, texts, options, interrupt, size);
        }
        let present: Vec<&str> = texts.iter().flatten().copied().collect();
        if let Some((fits, limit)) = provider.fits(&model, &present)? {
            let over = fits.iter().filter(|f| !**f).count() as u64;
            if over > 0 {
                if long_text == LongText::Error {
                    return Err(SqlError::new(
                        1105,
                        provider::INPUT_REFUSED_STATE,
                        format!("{}: {over} text(s) longer than {spec}'s input limit of {limit} tokens (\"embedb.long_text\": \"error\")", provider.display_name()),
                    ));
                }
                self.usage_cell(&p, &model).truncated(over);
                if let Some(n) = notes {
                    n.truncated(over, spec, limit);
                }
            }
        }
        let opts = Value::Object(options.clone()).to_string();
        let usage = self.usage_cell(&p, &model);
        self.through_cache(
            texts,
            |t| embedding_key(&p, &model, &opts, t),
            &usage,
            |distinct| {
                let globals = self.globals.read().clone();
                let call = Call { globals: &globals, interrupt, usage: &usage };
                provider.embed(&model, distinct, options, &call)
            },
            |vectors, n| {
                if vectors.len() != n {
                    return Err(SqlError::other(format!("{}: returned {} embeddings for {} texts", provider.display_name(), vectors.len(), n)));
                }
                if vectors.iter().any(|v| v.iter().any(|x| !x.is_finite())) {
                    return Err(SqlError::other("embedding contains NaN or infinite values"));
                }
                Ok(())
            },
        )
    }

    /// Where `text` is cut for a chunked column of `spec` (byte ranges; one range, the whole
    /// text, when it fits the model's window).
    pub fn chunk_ranges(&self, spec: &str, text: &str, size: chunk::ChunkSize) -> Result<Vec<(usize, usize)>> {
        let (_, model, provider) = self.resolve(spec, "embedding")?;
        let (spans, window) = match provider.spans(&model, text)? {
            Some((spans, window)) => (spans.into_iter().map(|(s, e)| (s, e, 1)).collect(), window),
            None => (chunk::estimated_spans(text), size.tokens.unwrap_or(chunk::DEFAULT_REMOTE_TOKENS)),
        };
        let (tokens, overlap) = size.resolve(window);
        if spans.iter().map(|s| s.2).sum::<usize>() <= tokens {
            return Ok(vec![(0, text.len())]);
        }
        Ok(chunk::split(text, &spans, tokens, overlap))
    }

    /// [`Embedder::embed_long`] for `chunk`: each text's chunks embedded (each cached on its own),
    /// their vectors one after another.
    fn embed_chunked(
        &self,
        spec: &str,
        texts: &[Option<&str>],
        options: &Map<String, Value>,
        interrupt: &Arc<crate::interrupt::Interrupt>,
        size: chunk::ChunkSize,
    ) -> Result<Vec<Option<Vec<f32>>>> {
        let mut pieces: Vec<Option<&str>> = Vec::new();
        let mut counts = Vec::with_capacity(texts.len());
        for t in texts {
            match t {
                Some(t) => {
                    let ranges = self.chunk_ranges(spec, t, size)?;
                    counts.push(Some(ranges.len()));
                    pieces.extend(chunk::chunk_texts(t, &ranges).into_iter().map(Some));
                }
                None => counts.push(None),
            }
        }
        // Jina's late chunking embeds the texts of one request as chunks of one document: each
        // document's chunks then go in a request of their own.
        let late = options.get("late_chunking").and_then(Value::as_bool) == Some(true);
        let mut vectors = if late {
            let mut all = Vec::with_capacity(pieces.len());
            let mut at = 0;
            for n in counts.iter().flatten() {
                all.extend(self.embed_long(spec, &pieces[at..at + n], options, interrupt, LongText::Truncate, None)?);
                at += n;
            }
            all
        } else {
            self.embed_long(spec, &pieces, options, interrupt, LongText::Truncate, None)?
        }
        .into_iter();
        let mut out = Vec::with_capacity(texts.len());
        for c in counts {
            out.push(match c {
                None => None,
                Some(n) => {
                    let mut all = Vec::new();
                    for v in vectors.by_ref().take(n) {
                        all.extend(v.unwrap_or_default());
                    }
                    Some(all)
                }
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names() {
        assert_eq!(parse_model(" Jina_AI / jina-embeddings-v4").unwrap(), ("jina_ai".into(), "jina-embeddings-v4".into()));
        assert_eq!(parse_model("huggingface/BAAI/bge-m3").unwrap().1, "BAAI/bge-m3");
        assert_eq!(parse_model("nomodel").unwrap_err().message, "model name must be in format 'provider/model', got: nomodel");
        assert!(parse_model("foo/bar").unwrap_err().message.starts_with("unknown embedding provider 'foo', available providers: "));
    }

    #[test]
    fn search_options() {
        let m = parse_options(Some(r#"{"task":"retrieval.passage","task@search":"retrieval.query","dimensions":768}"#)).unwrap();
        assert_eq!(Value::Object(options_for_storage(&m)), serde_json::json!({"task":"retrieval.passage","dimensions":768}));
        assert_eq!(Value::Object(options_for_search(&m)), serde_json::json!({"task":"retrieval.query","dimensions":768}));
        assert!(parse_options(Some("")).unwrap().is_empty());
        assert_eq!(parse_options(Some("not json")).unwrap_err().message, "EMBED_TEXT expects options in JSON format");
    }
}
