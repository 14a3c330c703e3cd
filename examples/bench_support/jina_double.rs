//! An in-process double of Jina AI's embeddings API for the remote-provider speed bench: every
//! request is answered after a fixed latency, so the bench can compare embedb's wall time with
//! the ideal `ceil(rows / batch) / concurrency × latency`.
//!
//! It speaks just enough HTTP/1.1 for reqwest: keep-alive connections, `Content-Length` request
//! bodies (a chunked body is refused with 411), one request at a time per connection. Each
//! connection is its own tokio task, and the latency is a tokio timer, so concurrent requests wait
//! in parallel, as they would on a real provider.
//!
//! `POST …/v1/embeddings` with `Authorization: Bearer <key>` and `{"model", "input": [...],
//! "dimensions"?, "embedding_type"?}` gets `{"data": [{"index", "embedding"}], "usage", "model"}`,
//! the vectors as base64 little-endian float32 when `embedding_type` is `base64` (what embedb
//! asks for), else as float arrays. Vectors are unit-length pseudo-random values seeded by the
//! text, so equal texts get equal vectors.
//!
//! It also records what the bench needs to explain a slow run: requests, texts, the largest and
//! smallest batch, the most requests in flight at once, the time-weighted mean in flight, and the
//! time with no request in flight (time embedb spent on something other than waiting for the
//! provider).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Default vector width (Jina's v3 default) when the request names no `dimensions`.
pub const DEFAULT_DIMS: usize = 1024;
/// Larger request bodies are refused; a 16-text batch is a few KB.
const MAX_BODY: usize = 16 << 20;

/// Counters since the last [`JinaDouble::reset`].
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub requests: u64,
    pub texts: u64,
    pub min_batch: usize,
    pub max_batch: usize,
    pub max_in_flight: usize,
    /// Integral of the in-flight count over time, divided by the elapsed time.
    pub mean_in_flight: f64,
    /// Time during which no request was in flight.
    pub idle: Duration,
    pub elapsed: Duration,
    /// From the reset to the first request's arrival, and from the last reply to now.
    pub before_first: Duration,
    pub after_last: Duration,
}

struct State {
    in_flight: usize,
    since: Instant,
    last_change: Instant,
    area: f64,
    idle: Duration,
    first: Option<Instant>,
    last_reply: Option<Instant>,
    stats: Stats,
}

impl State {
    /// Account for the time since the last change at the current in-flight count.
    fn advance(&mut self, now: Instant) {
        let dt = now - self.last_change;
        self.area += dt.as_secs_f64() * self.in_flight as f64;
        if self.in_flight == 0 {
            self.idle += dt;
        }
        self.last_change = now;
    }
}

pub struct JinaDouble {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

struct Shared {
    latency: Duration,
    key: String,
    state: Arc<Mutex<State>>,
}

impl JinaDouble {
    /// Listen on an ephemeral localhost port, on a runtime of its own (so the double never competes
    /// with the engine's runtime for a worker), answering after `latency`; `key` is the only
    /// accepted API key.
    pub fn start(latency: Duration, key: &str) -> JinaDouble {
        let now = Instant::now();
        let state = Arc::new(Mutex::new(State {
            in_flight: 0,
            since: now,
            last_change: now,
            area: 0.0,
            idle: Duration::ZERO,
            first: None,
            last_reply: None,
            stats: Stats::default(),
        }));
        let shared = Arc::new(Shared { latency, key: key.to_string(), state: state.clone() });
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("jina-double".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("jina-double")
                    .enable_all()
                    .build()
                    .expect("double runtime");
                rt.block_on(async move {
                    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the double");
                    tx.send(listener.local_addr().expect("double address")).unwrap();
                    loop {
                        let Ok((stream, _)) = listener.accept().await else { continue };
                        let _ = stream.set_nodelay(true);
                        tokio::spawn(serve(stream, shared.clone()));
                    }
                });
            })
            .expect("double thread");
        JinaDouble { addr: rx.recv().expect("double started"), state }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Start counting afresh (call right before the timed statement).
    pub fn reset(&self) {
        let now = Instant::now();
        let mut s = self.state.lock();
        s.since = now;
        s.last_change = now;
        s.area = 0.0;
        s.idle = Duration::ZERO;
        s.first = None;
        s.last_reply = None;
        s.stats = Stats { max_in_flight: s.in_flight, ..Stats::default() };
    }

    /// The counters from the last reset until now.
    pub fn stats(&self) -> Stats {
        let now = Instant::now();
        let mut s = self.state.lock();
        s.advance(now);
        let elapsed = now - s.since;
        let mut out = s.stats.clone();
        out.elapsed = elapsed;
        out.idle = s.idle;
        out.before_first = s.first.map_or(elapsed, |f| f - s.since);
        out.after_last = s.last_reply.map_or(elapsed, |l| now - l);
        out.mean_in_flight = if elapsed.is_zero() { 0.0 } else { s.area / elapsed.as_secs_f64() };
        out
    }
}

/// One connection: requests one after another until the client closes or asks to.
async fn serve(stream: TcpStream, shared: Arc<Shared>) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut parts = line.split_whitespace();
        let (method, path, version) = (parts.next().unwrap_or(""), parts.next().unwrap_or("").to_string(), parts.next().unwrap_or(""));
        let method = method.to_string();
        let mut keep_alive = version == "HTTP/1.1";
        let (mut length, mut chunked, mut auth) = (0usize, false, String::new());
        loop {
            let mut h = String::new();
            match reader.read_line(&mut h).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let Some((name, value)) = h.split_once(':') else { continue };
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.parse().unwrap_or(0),
                "transfer-encoding" => chunked = !value.eq_ignore_ascii_case("identity"),
                "connection" => keep_alive = !value.eq_ignore_ascii_case("close") && (keep_alive || value.eq_ignore_ascii_case("keep-alive")),
                "authorization" => auth = value.to_string(),
                _ => {}
            }
        }
        if chunked || length > MAX_BODY {
            // We cannot find the end of such a body, so the connection ends here.
            let _ = respond(&mut write, 411, &json!({"detail": "a Content-Length body is required"}), false).await;
            return;
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
        let (status, reply) = handle(&shared, &method, &path, &auth, &body).await;
        if respond(&mut write, status, &reply, keep_alive).await.is_err() || !keep_alive {
            return;
        }
    }
}

/// One request → (status, JSON body). Embedding requests are counted and held for the latency.
async fn handle(shared: &Shared, method: &str, path: &str, auth: &str, body: &[u8]) -> (u16, Value) {
    if method != "POST" || !path.trim_end_matches('/').ends_with("/v1/embeddings") {
        return (404, json!({"detail": "Not Found"}));
    }
    if auth.strip_prefix("Bearer ").map(str::trim) != Some(shared.key.as_str()) {
        return (401, json!({"detail": "Unauthorized"}));
    }
    let req: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return (400, json!({"detail": format!("invalid JSON: {e}")})),
    };
    let Some(input) = req.get("input").and_then(Value::as_array) else {
        return (422, json!({"detail": "input must be a list of strings"}));
    };
    let texts: Vec<&str> = input.iter().filter_map(Value::as_str).collect();
    if texts.len() != input.len() || texts.is_empty() {
        return (422, json!({"detail": "input must be a non-empty list of strings"}));
    }
    let dims = req.get("dimensions").and_then(Value::as_u64).map(|d| d as usize).unwrap_or(DEFAULT_DIMS);
    let base64 = req.get("embedding_type").and_then(Value::as_str) == Some("base64");

    {
        let now = Instant::now();
        let mut s = shared.state.lock();
        s.advance(now);
        s.first.get_or_insert(now);
        s.in_flight += 1;
        let n = texts.len();
        let st = &mut s.stats;
        st.requests += 1;
        st.texts += n as u64;
        st.min_batch = if st.requests == 1 { n } else { st.min_batch.min(n) };
        st.max_batch = st.max_batch.max(n);
        let in_flight = s.in_flight;
        s.stats.max_in_flight = s.stats.max_in_flight.max(in_flight);
    }
    // Build the answer while "the provider computes": the latency is the whole request's time.
    let started = Instant::now();
    let data: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let v = vector_for(t, dims);
            let embedding = if base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    let tokens: usize = texts.iter().map(|t| t.split_whitespace().count()).sum();
    let reply = json!({
        "model": req.get("model").cloned().unwrap_or(Value::Null),
        "object": "list",
        "usage": {"total_tokens": tokens, "prompt_tokens": tokens},
        "data": data,
    });
    tokio::time::sleep(shared.latency.saturating_sub(started.elapsed())).await;
    {
        let now = Instant::now();
        let mut s = shared.state.lock();
        s.advance(now);
        s.in_flight -= 1;
        s.last_reply = Some(now);
    }
    (200, reply)
}

async fn respond(w: &mut tokio::net::tcp::OwnedWriteHalf, status: u16, body: &Value, keep_alive: bool) -> std::io::Result<()> {
    let body = body.to_string();
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        411 => "Length Required",
        _ => "Unprocessable Entity",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n",
        body.len(),
        if keep_alive { "keep-alive" } else { "close" }
    );
    let mut out = head.into_bytes();
    out.extend_from_slice(body.as_bytes());
    w.write_all(&out).await?;
    w.flush().await
}

/// A unit vector of `dims` pseudo-random floats seeded by the text (FNV-1a, then xorshift).
pub fn vector_for(text: &str, dims: usize) -> Vec<f32> {
    let mut seed: u64 = 0xcbf29ce484222325;
    for b in text.bytes() {
        seed = (seed ^ u64::from(b)).wrapping_mul(0x100000001b3);
    }
    let mut x = seed | 1;
    let mut v: Vec<f32> = (0..dims)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|a| *a /= norm);
    v
}
