//! The provider seam: one implementation per embedding service, each in its own file. Adding a
//! provider touches only its file and the registration in `Embedder::new`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::Result;

pub trait Provider: Send + Sync {
    /// TiDB's display name for errors (`JinaAI`, `OpenAI`, …).
    fn display_name(&self) -> &'static str;
    /// Embed `texts` (distinct, non-empty list) with `model` and the request options; one vector per
    /// text, in order. `globals` holds the server's global variables (API keys).
    fn embed(&self, model: &str, texts: &[&str], options: &Map<String, Value>, globals: &BTreeMap<String, String>) -> Result<Vec<Vec<f32>>>;
}
