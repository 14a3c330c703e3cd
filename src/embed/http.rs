//! What the remote embedding providers (`jina`, `openai`) share: one HTTP client (reqwest over rustls
//! with the ring crypto provider, no OpenSSL), its own small tokio runtime, retries with exponential
//! backoff, batching with bounded concurrency, and the response and error shapes those APIs have in
//! common.
//!
//! `Provider::embed` is synchronous (the `EMBED_TEXT` UDF calls it inside `block_in_place` on the
//! server's runtime, or on a plain thread in tests), so requests run on a dedicated runtime
//! (`embedb-http` threads) and the caller waits for the result. That works whatever runtime, if any,
//! the caller is on.
//!
//! Settings come from the server config (`embed_timeout_secs`, `embed_max_retries`,
//! `embed_concurrency`, `jina_api_base`, `allowed_api_bases`); `main` hands them over with
//! [`configure`] before the engine starts, and `Embedder::new` reads them with [`settings`].
//!
//! Rate limits: every attempt waits for its provider's requests- and tokens-per-minute budget
//! first (`rate`: configured, or learnt from the provider's first 429).
//!
//! Retry policy: a request is retried on 429, on any 5xx and on transport errors other than a
//! timeout (connection refused/reset, DNS, broken body), up to `max_retries` times. The wait is the
//! response's `Retry-After` (seconds or an HTTP date, capped at [`MAX_RETRY_AFTER`]) when present,
//! otherwise exponential backoff with jitter: a random 50–100 % of `min(BACKOFF_BASE·2^attempt,
//! BACKOFF_CAP)`. A timed-out request is not retried: each already took `timeout`.
//!
//! API keys: sent only as an `Authorization: Bearer` header marked sensitive; never logged, never put
//! in an error (any echo of the key in a provider's error body is redacted).

use std::future::Future;
use std::sync::{Arc, Once, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;

use super::batcher::{self, BatchFn, BatchKey, Plan};
use super::provider::Call;
use crate::error::SqlError;

/// Jina AI's public API base; requests go to `<base>/v1/embeddings`.
pub const DEFAULT_JINA_API_BASE: &str = "https://api.jina.ai";
/// OpenAI's API base; requests go to `<base>/embeddings`. Always allowed.
pub const DEFAULT_OPENAI_API_BASE: &str = "https://api.openai.com/v1";

pub const DEFAULT_TIMEOUT_SECS: u64 = 30;
pub const DEFAULT_MAX_RETRIES: u32 = 5;
pub const DEFAULT_CONCURRENCY: usize = 4;

const BACKOFF_BASE: Duration = Duration::from_millis(500);
const BACKOFF_CAP: Duration = Duration::from_secs(30);
/// The longest `Retry-After` honoured; a longer one is cut to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Responses larger than this are refused (a 16-text batch of 2048-dim base64 vectors is ~180 KB).
const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// HTTP settings for the remote providers.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpSettings {
    /// Per request (connect + send + whole response).
    pub timeout: Duration,
    /// Retries after the first attempt (so up to `max_retries + 1` requests per batch).
    pub max_retries: u32,
    /// Batches of one `EMBED_TEXT` call in flight at once.
    pub concurrency: usize,
    /// Base URL of the Jina AI API (tests point it at a local double).
    pub jina_api_base: String,
    /// Bases `TIDB_EXP_EMBED_OPENAI_API_BASE` may name (besides OpenAI's own). SQL users cannot make
    /// the server call any other URL.
    pub allowed_api_bases: Vec<String>,
    /// Requests and tokens per minute by provider (`rate::parse_limits`); others learn theirs
    /// from a 429.
    pub rate_limits: std::collections::HashMap<String, super::rate::Limit>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            timeout: Duration::from_secs(DEFAULT_TIMEOUT_SECS),
            max_retries: DEFAULT_MAX_RETRIES,
            concurrency: DEFAULT_CONCURRENCY,
            jina_api_base: DEFAULT_JINA_API_BASE.to_string(),
            allowed_api_bases: Vec::new(),
            rate_limits: Default::default(),
        }
    }
}

/// Install ring as rustls' process-wide crypto provider (once; harmless if someone else did).
fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The runtime the requests run on, separate from the server's so that a synchronous caller can
/// wait for it from anywhere.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("embedb-http")
            .enable_all()
            .build()
            .expect("embedb-http runtime")
    })
}

/// Run `f` on the HTTP runtime and wait for its result on this thread.
pub fn block_on<T: Send + 'static>(f: impl Future<Output = T> + Send + 'static) -> Result<T, String> {
    let handle = runtime().spawn(f);
    futures::executor::block_on(handle).map_err(|e| format!("embedding request task failed: {e}"))
}

/// A client with its settings; one per `Embedder`, shared by its providers.
pub struct Http {
    settings: HttpSettings,
    client: OnceLock<Result<reqwest::Client, String>>,
    /// Requests per minute per provider, shared by every caller.
    limits: super::rate::RateLimits,
}

/// How a request carries the API key.
#[derive(Clone, Debug)]
pub enum Auth {
    /// `Authorization: Bearer <key>`.
    Bearer(String),
    /// `<name>: <key>` (e.g. Gemini's `x-goog-api-key`).
    Header(&'static str, String),
}

/// A finished exchange: the final status and body (after any retries).
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Http {
    pub fn new(settings: HttpSettings) -> Arc<Http> {
        let limits = super::rate::RateLimits::new(&settings.rate_limits);
        Arc::new(Http { settings, client: OnceLock::new(), limits })
    }

    pub fn settings(&self) -> &HttpSettings {
        &self.settings
    }

    fn client(&self) -> Result<reqwest::Client, String> {
        self.client
            .get_or_init(|| {
                install_crypto_provider();
                reqwest::Client::builder()
                    .timeout(self.settings.timeout)
                    .connect_timeout(self.settings.timeout.min(Duration::from_secs(10)))
                    .user_agent(concat!("embedb/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|e| format!("cannot build HTTP client: {}", error_chain(&e)))
            })
            .clone()
    }

    /// POST `body` as JSON to `url` with a bearer key, retrying as the module doc says. `Err` is a
    /// transport failure (after retries) as text without the provider prefix; any HTTP status is `Ok`.
    pub async fn post_json(&self, provider: &str, url: &str, key: &str, body: &Value) -> Result<Reply, String> {
        self.post_json_auth(provider, url, &Auth::Bearer(key.to_string()), body).await
    }

    /// [`Http::post_json`] with the key sent as `auth` says (a bearer token or a named header).
    pub async fn post_json_auth(&self, provider: &str, url: &str, auth: &Auth, body: &Value) -> Result<Reply, String> {
        let client = self.client()?;
        let max = self.settings.max_retries;
        let tokens = super::rate::estimated_tokens(body);
        let mut attempt: u32 = 0;
        loop {
            let req = match auth {
                Auth::Bearer(key) => client.post(url).bearer_auth(key),
                Auth::Header(name, key) => {
                    let mut v = reqwest::header::HeaderValue::from_str(key).map_err(|_| "invalid API key".to_string())?;
                    v.set_sensitive(true);
                    client.post(url).header(*name, v)
                }
            };
            let started = loop {
                match self.limits.admit(provider, tokens) {
                    Ok(at) => break at,
                    Err(wait) => tokio::time::sleep(wait).await,
                }
            };
            let sent = req.json(body).send().await;
            let wait = match sent {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    if status == 429 {
                        let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
                        let requests = header("x-ratelimit-limit-requests").map(|n| n.min(u32::MAX as u64) as u32);
                        self.limits.refused(provider, requests, header("x-ratelimit-limit-tokens"));
                    } else {
                        self.limits.answered(provider);
                    }
                    if (status == 429 || status >= 500) && attempt < max {
                        let wait = retry_after(resp.headers()).unwrap_or_else(|| backoff(attempt));
                        tracing::warn!("{provider}: HTTP {status} from {url}, retry {}/{max} in {wait:?}", attempt + 1);
                        wait
                    } else {
                        match read_body(resp).await {
                            Ok(body) => {
                                if let Some(actual) = reported_tokens(&body) {
                                    self.limits.settle(provider, started, tokens, actual);
                                }
                                return Ok(Reply { status, body });
                            }
                            Err(e) if attempt < max && e.retryable() => {
                                let wait = backoff(attempt);
                                tracing::warn!("{provider}: reading the response from {url} failed ({}), retry {}/{max} in {wait:?}", e.describe(), attempt + 1);
                                wait
                            }
                            Err(e) => return Err(e.describe()),
                        }
                    }
                }
                Err(e) if attempt < max && !e.is_timeout() && !e.is_builder() => {
                    let wait = backoff(attempt);
                    tracing::warn!("{provider}: request to {url} failed ({}), retry {}/{max} in {wait:?}", error_chain(&e), attempt + 1);
                    wait
                }
                Err(e) => return Err(error_chain(&e)),
            };
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

/// The body, refusing more than `MAX_RESPONSE_BYTES`.
async fn read_body(mut resp: reqwest::Response) -> Result<Vec<u8>, ReadError> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(ReadError::Http)? {
        if out.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(ReadError::TooLarge);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

enum ReadError {
    Http(reqwest::Error),
    TooLarge,
}

impl ReadError {
    /// A broken body is retried like a broken connection; a timeout or an oversized body is not.
    fn retryable(&self) -> bool {
        matches!(self, ReadError::Http(e) if !e.is_timeout())
    }

    fn describe(&self) -> String {
        match self {
            ReadError::Http(e) => error_chain(e),
            ReadError::TooLarge => format!("response larger than {MAX_RESPONSE_BYTES} bytes"),
        }
    }
}

/// An error and its sources, without repeating what the outer message already says.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let t = inner.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = inner.source();
    }
    s
}

/// `min(BASE·2^attempt, CAP)` scaled by a random 50–100 %.
pub fn backoff(attempt: u32) -> Duration {
    use rand::Rng;
    let full = BACKOFF_BASE.saturating_mul(1u32 << attempt.min(16)).min(BACKOFF_CAP);
    full.mul_f64(rand::thread_rng().gen_range(0.5..=1.0))
}

/// `Retry-After` as delay-seconds (integer or decimal) or an HTTP date, capped at `MAX_RETRY_AFTER`.
pub fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = h.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    let d = if let Ok(secs) = v.parse::<f64>() {
        if !secs.is_finite() || secs < 0.0 {
            return None;
        }
        Duration::from_secs_f64(secs.min(MAX_RETRY_AFTER.as_secs_f64()))
    } else {
        let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
        (at.with_timezone(&chrono::Utc) - chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO)
    };
    Some(d.min(MAX_RETRY_AFTER))
}

/// How one remote API differs from another, for [`embed_remote`].
pub struct Api {
    /// TiDB's display name, the prefix of every error (`JinaAI`, `OpenAI`).
    pub display: &'static str,
    /// The global variable holding the key (lower case).
    pub key_var: &'static str,
    /// The body field asking for base64 vectors, and its value.
    pub encoding: (&'static str, &'static str),
    /// Texts per request.
    pub batch_size: usize,
    /// The error detail in an error body.
    pub detail: fn(&Value) -> Option<String>,
}

/// Embed `texts` through an OpenAI-shaped `api` at `url` (`{"model","input",…}` in,
/// `{"data":[{"index","embedding"}]}` out): see [`embed_remote_custom`].
#[allow(clippy::too_many_arguments)]
pub fn embed_remote(
    http: &Arc<Http>,
    api: &'static Api,
    url: String,
    key: String,
    model: &str,
    texts: &[&str],
    options: &serde_json::Map<String, Value>,
    call: &Call,
) -> Result<Vec<Vec<f32>>, SqlError> {
    let mut shape = shape(model, options);
    if options.get("late_chunking").and_then(Value::as_bool) == Some(true) {
        // Jina's late chunking reads one request's texts as chunks of one document: this call's
        // texts share a request with no other call's (a `shape` of their own).
        static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        shape.push_str(&format!("\u{0}late#{}", CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)));
    }
    let (model, options) = (model.to_string(), options.clone());
    embed_remote_custom(
        http,
        api,
        url,
        Auth::Bearer(key),
        shape,
        texts,
        move |batch| request_body(&model, batch, &options, api.encoding),
        parse_embeddings,
        call,
    )
}

/// What a request body depends on besides its texts, for [`embed_remote_custom`]'s `shape`.
pub fn shape(model: &str, options: &serde_json::Map<String, Value>) -> String {
    format!("{model}\u{0}{}", Value::Object(options.clone()))
}

/// Marks a request's error text as a refusal of its input (between a request and
/// [`embed_remote_custom`], which turns it into [`super::provider::INPUT_REFUSED_STATE`]).
const INPUT_REFUSED: char = '\u{1}';

/// Embed `texts` through `api` at `url`: `body` builds one request from a batch of texts, `parse`
/// reads one reply (`n` texts). Requests carry up to `api.batch_size` texts and are shared with
/// concurrent statements whose `url`, key and `shape` (model and options: everything `body` uses
/// besides the texts) are the same (`batcher`); up to `embed_concurrency` are in flight, each
/// retried as the module doc says. Vectors come back in input order, errors as TiDB words them. The
/// wait ends early with 1317 when `call.interrupt` fires.
#[allow(clippy::too_many_arguments)]
pub fn embed_remote_custom<B, P>(
    http: &Arc<Http>,
    api: &'static Api,
    url: String,
    auth: Auth,
    shape: String,
    texts: &[&str],
    body: B,
    parse: P,
    call: &Call,
) -> Result<Vec<Vec<f32>>, SqlError>
where
    B: Fn(&[String]) -> Value + Send + Sync + 'static,
    P: Fn(&[u8], usize) -> Result<Vec<Vec<f32>>, String> + Send + Sync + 'static,
{
    let key = match &auth {
        Auth::Bearer(k) | Auth::Header(_, k) => k.clone(),
    };
    let batch_key = BatchKey(format!("{}\u{0}{url}\u{0}{key}\u{0}{shape}", api.display));
    let client = http.clone();
    let (body, parse) = (Arc::new(body), Arc::new(parse));
    let request: BatchFn = Arc::new(move |batch: Vec<String>| {
        let req = body(&batch);
        let (client, url, key, auth, parse) = (client.clone(), url.clone(), key.clone(), auth.clone(), parse.clone());
        Box::pin(async move {
            let reply = client.post_json_auth(api.display, &url, &auth, &req).await.map_err(|e| redact(&e, &key))?;
            if !(200..300).contains(&reply.status) {
                let refused = (400..500).contains(&reply.status) && !matches!(reply.status, 401 | 403 | 408 | 429);
                let message = status_error(api.display, api.key_var, &reply, &key, api.detail);
                return Err(if refused { format!("{INPUT_REFUSED}{message}") } else { message });
            }
            let vectors = parse(&reply.body, batch.len()).map_err(|e| redact(&e, &key))?;
            Ok((vectors, reported_tokens(&reply.body)))
        })
    });
    let usage = call.usage.clone();
    let plan = Plan {
        batch_size: api.batch_size,
        concurrency: http.settings().concurrency,
        call: request,
        on_request: Arc::new(move |tokens| usage.request(tokens)),
    };
    let texts: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
    let interrupt = call.interrupt.clone();
    let run = async move {
        tokio::select! {
            r = batcher::shared().submit(batch_key, texts, plan) => Some(r),
            _ = interrupt.wait() => None,
        }
    };
    let prefix = |e: String| if e.starts_with(api.display) { e } else { format!("{}: {e}", api.display) };
    match block_on(run) {
        Ok(Some(Ok(v))) => Ok(v),
        Ok(None) => Err(crate::interrupt::interrupted()),
        Ok(Some(Err(e))) | Err(e) => Err(match e.strip_prefix(INPUT_REFUSED) {
            Some(m) => SqlError::new(1105, super::provider::INPUT_REFUSED_STATE, prefix(m.to_string())),
            None => SqlError::other(prefix(e)),
        }),
    }
}

/// The token count a reply reports, where the API has one: `usage.total_tokens` (Jina, OpenAI,
/// NVIDIA NIM) or `meta.billed_units.input_tokens` (Cohere).
pub fn reported_tokens(body: &[u8]) -> Option<u64> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v.pointer("/usage/total_tokens")
        .or_else(|| v.pointer("/usage/prompt_tokens"))
        .or_else(|| v.pointer("/meta/billed_units/input_tokens"))
        .and_then(Value::as_u64)
}

/// A list of exactly `n` embeddings (each decoded by [`decode_embedding`]), in order.
pub fn parse_vector_list(list: Option<&Value>, n: usize) -> Result<Vec<Vec<f32>>, String> {
    let list = list.and_then(Value::as_array).ok_or("unexpected response: no embeddings array")?;
    if list.len() != n {
        return Err(format!("response data length {} does not match input texts length {n}", list.len()));
    }
    list.iter()
        .enumerate()
        .map(|(i, e)| decode_embedding(e).map_err(|e| format!("failed to decode embedding for index {i}: {e}")))
        .collect()
}

/// One embedding from a response: a base64 string of little-endian float32s, or an array of numbers.
pub fn decode_embedding(v: &Value) -> Result<Vec<f32>, String> {
    match v {
        Value::String(s) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(s.trim())
                .map_err(|e| format!("invalid base64 embedding: {e}"))?;
            if bytes.len() % 4 != 0 {
                return Err("invalid embedding data".into());
            }
            Ok(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
        }
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_f64().map(|f| f as f32).ok_or_else(|| "invalid embedding data".to_string()))
            .collect(),
        _ => Err("invalid embedding data".into()),
    }
}

/// `{"data":[{"index":i,"embedding":…},…]}` (Jina's and OpenAI's shape) → vectors ordered by
/// `index`; exactly `n` of them with indexes `0..n`.
pub fn parse_embeddings(body: &[u8], n: usize) -> Result<Vec<Vec<f32>>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("unexpected response: {e}"))?;
    let data = v.get("data").and_then(Value::as_array).ok_or("unexpected response: no data array")?;
    if data.len() != n {
        return Err(format!("response data length {} does not match input texts length {n}", data.len()));
    }
    let mut out: Vec<Option<Vec<f32>>> = vec![None; n];
    for (pos, item) in data.iter().enumerate() {
        let index = match item.get("index") {
            Some(i) => i.as_u64().ok_or_else(|| format!("invalid response data index {i}"))? as usize,
            None => pos,
        };
        if index >= n {
            return Err(format!("response data index {index} is out of range [0, {n})"));
        }
        if out[index].is_some() {
            return Err(format!("response data contains duplicate index {index}"));
        }
        let e = item.get("embedding").ok_or_else(|| format!("no embedding for index {index}"))?;
        out[index] = Some(decode_embedding(e).map_err(|e| format!("failed to decode embedding for index {index}: {e}"))?);
    }
    Ok(out.into_iter().map(|v| v.unwrap_or_default()).collect())
}

/// TiDB's text for a missing key, e.g. `JinaAI API key is not configured, to configure the API key:
/// SET @@GLOBAL.TIDB_EXP_EMBED_JINA_AI_API_KEY='<API_KEY>'`.
pub fn missing_key_error(provider: &str, var: &str) -> SqlError {
    SqlError::other(format!(
        "{provider} API key is not configured, to configure the API key: SET @@GLOBAL.{}='<API_KEY>'",
        var.to_ascii_uppercase()
    ))
}

/// TiDB's text for a 401.
pub fn unauthorized_message(provider: &str, var: &str) -> String {
    format!(
        "{provider} returns status unauthorized, check your API key. To reconfigure a new API key: SET @@GLOBAL.{}='<API_KEY>'",
        var.to_ascii_uppercase()
    )
}

/// The key from the globals (`var` lower-case), or TiDB's missing-key error.
pub fn api_key(globals: &std::collections::BTreeMap<String, String>, provider: &str, var: &str) -> Result<String, SqlError> {
    match globals.get(var).map(|s| s.trim()) {
        Some(k) if !k.is_empty() => Ok(k.to_string()),
        _ => Err(missing_key_error(provider, var)),
    }
}

/// The error for a non-2xx reply: 401 → TiDB's unauthorized text; else `<Provider>: <detail>` with
/// the detail `detail` finds in the body, or `<Provider>: status code <n>`. The key is redacted.
pub fn status_error(provider: &str, var: &str, reply: &Reply, key: &str, detail: impl Fn(&Value) -> Option<String>) -> String {
    let body = redact(&String::from_utf8_lossy(&reply.body), key);
    tracing::warn!("{provider} API request failed: status {}, body {}", reply.status, truncate(&body, 2048));
    if reply.status == 401 {
        return unauthorized_message(provider, var);
    }
    match serde_json::from_str::<Value>(&body).ok().as_ref().and_then(detail) {
        Some(d) if !d.is_empty() => format!("{provider}: {d}"),
        _ => format!("{provider}: status code {}", reply.status),
    }
}

/// A JSON error field as text: strings as they are, anything else (FastAPI's validation lists) as JSON.
pub fn json_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

pub fn redact(s: &str, key: &str) -> String {
    if key.len() >= 4 && s.contains(key) {
        s.replace(key, "[REDACTED]")
    } else {
        s.to_string()
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The request body: `model`, `input`, the options (except those three keys), then `fixed`
/// (the wire encoding), so fixed fields win over options.
pub fn request_body(model: &str, input: &[String], options: &serde_json::Map<String, Value>, fixed: (&str, &str)) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("model".into(), Value::String(model.to_string()));
    m.insert("input".into(), Value::Array(input.iter().map(|t| Value::String(t.clone())).collect()));
    for (k, v) in options {
        if k != "model" && k != "input" && k != fixed.0 {
            m.insert(k.clone(), v.clone());
        }
    }
    m.insert(fixed.0.into(), Value::String(fixed.1.into()));
    Value::Object(m)
}

/// Strip whitespace and trailing slashes.
pub fn trim_base(s: &str) -> String {
    s.trim().trim_end_matches('/').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_base64_and_floats() {
        let v: Vec<f32> = vec![1.0, -2.5, 0.125];
        let bytes: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        assert_eq!(decode_embedding(&Value::String(b64)).unwrap(), v);
        assert_eq!(decode_embedding(&serde_json::json!([1.0, -2.5, 0.125])).unwrap(), v);
        assert!(decode_embedding(&Value::String("AAA=".into())).is_err());
    }

    #[test]
    fn orders_by_index() {
        let body = br#"{"data":[{"index":1,"embedding":[2]},{"index":0,"embedding":[1]}]}"#;
        assert_eq!(parse_embeddings(body, 2).unwrap(), vec![vec![1.0], vec![2.0]]);
        assert!(parse_embeddings(body, 3).unwrap_err().contains("does not match"));
        let dup = br#"{"data":[{"index":0,"embedding":[2]},{"index":0,"embedding":[1]}]}"#;
        assert!(parse_embeddings(dup, 2).unwrap_err().contains("duplicate"));
    }

    #[test]
    fn retry_after_forms() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after", "0.25".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
        h.insert("retry-after", "3600".parse().unwrap());
        assert_eq!(retry_after(&h), Some(MAX_RETRY_AFTER));
        h.insert("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn backoff_grows_with_jitter() {
        for a in 0..8 {
            let d = backoff(a);
            let full = BACKOFF_BASE.saturating_mul(1 << a).min(BACKOFF_CAP);
            assert!(d >= full / 2 && d <= full, "{a}: {d:?}");
        }
    }

    #[test]
    fn body_fixed_fields_win() {
        let opts = serde_json::json!({"task":"retrieval.passage","embedding_type":"float","dimensions":8});
        let b = request_body("m", &["a".into()], opts.as_object().unwrap(), ("embedding_type", "base64"));
        assert_eq!(b.to_string(), r#"{"model":"m","input":["a"],"task":"retrieval.passage","dimensions":8,"embedding_type":"base64"}"#);
    }

    #[test]
    fn errors_are_tidbs() {
        let reply = Reply { status: 401, body: b"{}".to_vec() };
        assert_eq!(
            status_error("JinaAI", "tidb_exp_embed_jina_ai_api_key", &reply, "k", |v| v.get("detail").and_then(json_text)),
            "JinaAI returns status unauthorized, check your API key. To reconfigure a new API key: SET @@GLOBAL.TIDB_EXP_EMBED_JINA_AI_API_KEY='<API_KEY>'"
        );
        let reply = Reply { status: 404, body: br#"{"detail":"Model secret-key-123 not found"}"#.to_vec() };
        assert_eq!(
            status_error("JinaAI", "v", &reply, "secret-key-123", |v| v.get("detail").and_then(json_text)),
            "JinaAI: Model [REDACTED] not found"
        );
        let reply = Reply { status: 502, body: b"bad gateway".to_vec() };
        assert_eq!(status_error("JinaAI", "v", &reply, "k", |v| v.get("detail").and_then(json_text)), "JinaAI: status code 502");
        assert_eq!(
            missing_key_error("OpenAI", "tidb_exp_embed_openai_api_key").message,
            "OpenAI API key is not configured, to configure the API key: SET @@GLOBAL.TIDB_EXP_EMBED_OPENAI_API_KEY='<API_KEY>'"
        );
    }

    #[test]
    fn token_counts() {
        assert_eq!(reported_tokens(br#"{"usage":{"total_tokens":12,"prompt_tokens":12},"data":[]}"#), Some(12));
        assert_eq!(reported_tokens(br#"{"meta":{"billed_units":{"input_tokens":7}}}"#), Some(7));
        assert_eq!(reported_tokens(br#"{"embeddings":[]}"#), None);
        assert_eq!(reported_tokens(b"not json"), None);
    }
}

/// A provider's API base: the env var when set and non-empty (tests point it at a local double),
/// else the provider's public base.
pub fn base_from_env(var: &str, default: &str) -> String {
    std::env::var(var).ok().filter(|b| !b.trim().is_empty()).unwrap_or_else(|| default.into())
}
