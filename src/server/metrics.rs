//! The opt-in Prometheus endpoint (`--metrics-addr host:port`): `GET /metrics` answers the
//! server's counters in Prometheus' text format — statements (by kind, errors, a latency
//! histogram), connections, bytes, embedding calls/texts/tokens/cache hits per model, search
//! index build progress, and the process's resident memory. A deliberately tiny HTTP/1.1 server:
//! one request per connection, bounded reads, nothing else served.

use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::session::Engine;

/// Accept scrapes until the process ends.
pub async fn serve(engine: Arc<Engine>, listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let engine = engine.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(10), answer(engine, stream)).await;
        });
    }
}

async fn answer(engine: Arc<Engine>, mut stream: tokio::net::TcpStream) -> std::io::Result<()> {
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 8192 {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        req.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&req);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, ctype, body) = if method == "GET" && (path == "/metrics" || path.starts_with("/metrics?")) {
        ("200 OK", "text/plain; version=0.0.4; charset=utf-8", render(&engine))
    } else {
        ("404 Not Found", "text/plain; charset=utf-8", "only /metrics is served here\n".to_string())
    };
    let head = format!("HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Every metric, as one scrape's text.
pub fn render(engine: &Engine) -> String {
    let mut out = String::new();
    let open = engine.open_connections.load(std::sync::atomic::Ordering::SeqCst) as u64;
    engine.stats.prometheus(open, &mut out);

    let usage = engine.embedder.usage();
    let series: [(&str, &str, &str); 5] = [
        ("embedb_embedding_requests_total", "counter", "Requests sent to embedding providers (or the local model)."),
        ("embedb_embedding_texts_total", "counter", "Texts embedded."),
        ("embedb_embedding_tokens_total", "counter", "Tokens providers reported."),
        ("embedb_embedding_cache_hits_total", "counter", "Texts served from the embedding cache."),
        ("embedb_embedding_errors_total", "counter", "Failed embedding requests."),
    ];
    for (k, (name, kind, help)) in series.iter().enumerate() {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for ((provider, model), u) in &usage {
            let v = match k {
                0 => u.requests,
                1 => u.texts,
                2 => u.tokens.unwrap_or(0),
                3 => u.cache_hits,
                _ => u.errors,
            };
            let _ = writeln!(out, "{name}{{provider=\"{}\",model=\"{}\"}} {v}", escape(provider), escape(model));
        }
    }

    let _ = writeln!(out, "# HELP embedb_index_rows Rows of each search index, by state (indexed, or still to index while it builds).\n# TYPE embedb_index_rows gauge");
    let mut index = |kind: &str, db: &str, table: &str, name: &str, p: crate::index::search::Progress| {
        let labels = format!("kind=\"{kind}\",db=\"{}\",table=\"{}\",index=\"{}\"", escape(db), escape(table), escape(name));
        let _ = writeln!(out, "embedb_index_rows{{{labels},state=\"indexed\"}} {}", p.rows_indexed);
        let _ = writeln!(out, "embedb_index_rows{{{labels},state=\"pending\"}} {}", p.rows_not_indexed);
    };
    for e in engine.search.all_vector() {
        index("vector", &e.db, &e.table, &e.index_name, e.progress());
    }
    for e in engine.search.all_fulltext() {
        index("fulltext", &e.db, &e.table, &e.index_name, e.progress());
    }

    if let Some(rss) = resident_bytes() {
        let _ = writeln!(out, "# HELP embedb_resident_memory_bytes Resident memory of the server process.\n# TYPE embedb_resident_memory_bytes gauge\nembedb_resident_memory_bytes {rss}");
    }
    out
}

/// The process's resident set size, from /proc (Linux); None elsewhere.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
