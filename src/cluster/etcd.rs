//! The few etcd calls a cluster needs: leases, a create-if-absent claim, puts and prefix reads.
//!
//! They go through etcd's JSON gateway (`POST /v3/...`, keys and values base64, 64-bit numbers as
//! strings), which every etcd v3 server serves beside gRPC: no gRPC stack to build, and the HTTP
//! client is the one the embedding providers already use. Each call tries the endpoints in turn,
//! so losing one member of a three-member etcd stops nothing.

use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};

/// Per-request timeout: a member that does not answer within it is skipped.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(1500);

#[derive(Clone)]
pub struct Etcd {
    endpoints: Vec<String>,
    http: reqwest::Client,
}

/// A key's value and the lease it is bound to (0 = none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub lease: i64,
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
}

fn unb64(v: &Value) -> String {
    let raw = v.as_str().unwrap_or("");
    String::from_utf8_lossy(&base64::engine::general_purpose::STANDARD.decode(raw).unwrap_or_default()).into_owned()
}

/// A 64-bit number, which the gateway writes as a string.
fn num(v: &Value) -> i64 {
    v.as_str().and_then(|s| s.parse().ok()).or_else(|| v.as_i64()).unwrap_or(0)
}

/// The end of the range of keys that start with `prefix`.
fn prefix_end(prefix: &str) -> String {
    let mut b = prefix.as_bytes().to_vec();
    while let Some(last) = b.pop() {
        if last < 0xff {
            b.push(last + 1);
            return String::from_utf8_lossy(&b).into_owned();
        }
    }
    "\0".into()
}

fn entries(kvs: &Value) -> Vec<Entry> {
    kvs.as_array()
        .map(|a| a.iter().map(|kv| Entry { key: unb64(&kv["key"]), value: unb64(&kv["value"]), lease: num(&kv["lease"]) }).collect())
        .unwrap_or_default()
}

impl Etcd {
    /// `urls`: `http://host:port` of each member.
    pub fn new(urls: &[String]) -> Result<Etcd, String> {
        if urls.is_empty() {
            return Err("no etcd endpoints given (--etcd http://host:2379[,…])".into());
        }
        // The HTTP client's TLS (an https:// member) uses the process's crypto provider: ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build().map_err(|e| format!("etcd client: {e}"))?;
        Ok(Etcd { endpoints: urls.iter().map(|u| u.trim_end_matches('/').to_string()).collect(), http })
    }

    async fn call(&self, path: &str, body: Value) -> Result<Value, String> {
        let mut last = String::new();
        for e in &self.endpoints {
            match self.http.post(format!("{e}{path}")).json(&body).send().await {
                Ok(r) if r.status().is_success() => return r.json::<Value>().await.map_err(|e| format!("etcd {path}: {e}")),
                Ok(r) => {
                    let status = r.status();
                    let text = r.text().await.unwrap_or_default();
                    last = format!("{e}: {status} {text}");
                }
                Err(err) => last = format!("{e}: {err}"),
            }
        }
        Err(format!("etcd {path}: no member answered ({last})"))
    }

    /// A new lease of `ttl` seconds; returns its id.
    pub async fn grant(&self, ttl: u64) -> Result<i64, String> {
        let r = self.call("/v3/lease/grant", json!({ "TTL": ttl })).await?;
        match num(&r["ID"]) {
            0 => Err(format!("etcd granted no lease: {r}")),
            id => Ok(id),
        }
    }

    /// Renews a lease; returns its remaining TTL, or None if it has expired.
    pub async fn keep_alive(&self, lease: i64) -> Result<Option<u64>, String> {
        let r = self.call("/v3/lease/keepalive", json!({ "ID": lease.to_string() })).await?;
        let ttl = num(&r["result"]["TTL"]);
        Ok((ttl > 0).then_some(ttl as u64))
    }

    pub async fn revoke(&self, lease: i64) -> Result<(), String> {
        self.call("/v3/lease/revoke", json!({ "ID": lease.to_string() })).await.map(|_| ())
    }

    /// Puts `key` = `value` bound to `lease` if the key does not exist. Ok(None) when it was put;
    /// Ok(Some(holder)) with the existing entry otherwise.
    pub async fn create_if_absent(&self, key: &str, value: &str, lease: i64) -> Result<Option<Entry>, String> {
        let k = b64(key);
        let r = self
            .call(
                "/v3/kv/txn",
                json!({
                    "compare": [{ "key": k, "target": "CREATE", "result": "EQUAL", "create_revision": "0" }],
                    "success": [{ "request_put": { "key": k, "value": b64(value), "lease": lease.to_string() } }],
                    "failure": [{ "request_range": { "key": k } }],
                }),
            )
            .await?;
        if r["succeeded"].as_bool() == Some(true) {
            return Ok(None);
        }
        let holder = entries(&r["responses"][0]["response_range"]["kvs"]).into_iter().next();
        Ok(Some(holder.unwrap_or(Entry { key: key.into(), value: String::new(), lease: 0 })))
    }

    pub async fn put(&self, key: &str, value: &str, lease: i64) -> Result<(), String> {
        self.call("/v3/kv/put", json!({ "key": b64(key), "value": b64(value), "lease": lease.to_string() })).await.map(|_| ())
    }

    pub async fn get(&self, key: &str) -> Result<Option<Entry>, String> {
        let r = self.call("/v3/kv/range", json!({ "key": b64(key) })).await?;
        Ok(entries(&r["kvs"]).into_iter().next())
    }

    /// Every key under `prefix`, in key order.
    pub async fn list(&self, prefix: &str) -> Result<Vec<Entry>, String> {
        let r = self.call("/v3/kv/range", json!({ "key": b64(prefix), "range_end": b64(&prefix_end(prefix)) })).await?;
        Ok(entries(&r["kvs"]))
    }

    /// Deletes `key` only while it is bound to `lease` (a writer stepping down removes its own claim,
    /// never a successor's).
    pub async fn delete_if_lease(&self, key: &str, lease: i64) -> Result<(), String> {
        let k = b64(key);
        self.call(
            "/v3/kv/txn",
            json!({
                "compare": [{ "key": k, "target": "LEASE", "result": "EQUAL", "lease": lease.to_string() }],
                "success": [{ "request_delete_range": { "key": k } }],
            }),
        )
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ends() {
        assert_eq!(prefix_end("/a/"), "/a0");
        assert_eq!(num(&json!("9041999135379613189")), 9041999135379613189);
        assert_eq!(unb64(&json!(b64("x/y"))), "x/y");
    }
}
