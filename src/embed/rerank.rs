//! Reranking in SQL: `RERANK_SCORE(model, query, text)` scores (query, text) pairs with a reranker.
//!
//! `SELECT id, content FROM (SELECT … ORDER BY VEC_EMBED_COSINE_DISTANCE(embedding, 'q') LIMIT 50) c
//! ORDER BY RERANK_SCORE('jina_ai/jina-reranker-v2-base-multilingual', 'q', content) DESC LIMIT 10`
//! walks like this: the UDF gets the candidates' texts as one array → `Embedder::rerank` answers
//! pairs it has scored before from the cache (the embeddings' cache, its own keys) and sends the
//! rest to the provider's rerank API in requests of [`BATCH_SIZE`] documents — through the same
//! batcher, concurrency limit, retries and rate limits as embeddings → scores come back in input
//! order. Usage is counted under the reranker's (provider, model) row of `EMBEDDING_USAGE`.
//!
//! APIs: Jina AI `POST <jina_api_base>/v1/rerank` and Cohere `POST <base>/v2/rerank`, both
//! `{"model", "query", "documents": [...], "top_n": n}` in and `{"results": [{"index",
//! "relevance_score"}]}` out. A local cross-encoder needs weights from a registry package, which
//! none ships today (see the issue's note).

use serde_json::{json, Value};

use super::http;

/// Documents per rerank request.
pub const BATCH_SIZE: usize = 32;

/// `<base>/<version>/rerank` (`v1` for Jina, `v2` for Cohere); a base that ends in the version,
/// or names the provider's embeddings endpoint, is trimmed first.
pub fn endpoint(base: &str, version: &str) -> String {
    let b = http::trim_base(base);
    let b = b.strip_suffix("/embeddings").or_else(|| b.strip_suffix("/embed")).unwrap_or(&b).to_string();
    if b.ends_with(&format!("/{version}")) {
        format!("{b}/rerank")
    } else {
        format!("{b}/{version}/rerank")
    }
}

/// One request's body.
pub fn request_body(model: &str, query: &str, documents: &[String]) -> Value {
    json!({"model": model, "query": query, "documents": documents, "top_n": documents.len(), "return_documents": false})
}

/// `{"results": [{"index", "relevance_score"}]}` → one score per document, in input order (each
/// as a one-element "vector", the batcher's currency).
pub fn parse_response(body: &[u8], n: usize) -> Result<Vec<Vec<f32>>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("unexpected response: {e}"))?;
    let results = v.get("results").and_then(Value::as_array).ok_or("unexpected response: no results array")?;
    let mut out: Vec<Option<f32>> = vec![None; n];
    for r in results {
        let i = r.get("index").and_then(Value::as_u64).ok_or("unexpected response: a result without an index")? as usize;
        let s = r.get("relevance_score").and_then(Value::as_f64).ok_or("unexpected response: a result without a relevance_score")?;
        if i >= n || out[i].is_some() {
            return Err(format!("unexpected response: result index {i} out of range or repeated"));
        }
        out[i] = Some(s as f32);
    }
    out.into_iter().map(|s| s.map(|s| vec![s]).ok_or_else(|| format!("response has {} results for {n} documents", results.len()))).collect()
}

/// Score `documents` against `query` through `api` at `url` (batched, shared, retried like embeddings).
#[allow(clippy::too_many_arguments)]
pub fn rerank_remote(
    client: &std::sync::Arc<http::Http>,
    api: &'static http::Api,
    url: String,
    key: String,
    model: &str,
    query: &str,
    documents: &[&str],
    call: &super::Call,
) -> crate::error::Result<Vec<f32>> {
    let mut shape_opts = serde_json::Map::new();
    shape_opts.insert("rerank_query".into(), Value::String(query.to_string()));
    let (m, q) = (model.to_string(), query.to_string());
    let scores = http::embed_remote_custom(
        client,
        api,
        url,
        http::Auth::Bearer(key),
        http::shape(model, &shape_opts),
        documents,
        move |batch| request_body(&m, &q, batch),
        parse_response,
        call,
    )?;
    Ok(scores.into_iter().map(|s| s[0]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(
            request_body("r", "q", &["a".into(), "b".into()]),
            json!({"model":"r","query":"q","documents":["a","b"],"top_n":2,"return_documents":false})
        );
        let body = br#"{"results":[{"index":1,"relevance_score":0.9},{"index":0,"relevance_score":0.1}]}"#;
        assert_eq!(parse_response(body, 2).unwrap(), vec![vec![0.1], vec![0.9]]);
        assert!(parse_response(br#"{"results":[{"index":0,"relevance_score":0.1}]}"#, 2).is_err());
        assert!(parse_response(br#"{"results":[{"index":3,"relevance_score":0.1}]}"#, 1).is_err());
    }
}
