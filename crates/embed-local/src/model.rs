//! A BERT-family sentence embedder: tokenise, run the encoder in length buckets, mean-pool, L2-normalise.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config as BertConfig};
use tokenizers::normalizers::NormalizerWrapper;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::error::{Error, Result};
use crate::files::ModelFiles;

/// sentence-transformers' `max_seq_length` for all-MiniLM-L6-v2, used when the model directory has no
/// `sentence_bert_config.json`.
pub const DEFAULT_MAX_SEQ_LEN: usize = 256;

/// How texts are grouped into the batches that go through the encoder together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// At most this many (padded) tokens per forward pass.
    pub max_tokens: usize,
    /// At most this many texts per forward pass.
    pub max_texts: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            max_tokens: 4096,
            max_texts: 128,
        }
    }
}

/// A sentence embedding model held in memory. Cheap to share behind an `Arc`: [`LocalModel::embed`] takes
/// `&self` and may be called from many threads at once.
pub struct LocalModel {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    dims: usize,
    max_seq_len: usize,
    pad_id: u32,
    limits: BatchLimits,
    /// Whether tokenising a prefix cut after an ASCII space gives the leading tokens of the whole text
    /// (true for BERT's normaliser and pre-tokeniser; see [`LocalModel::encode`]).
    prefix_safe: bool,
}

impl std::fmt::Debug for LocalModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalModel")
            .field("dims", &self.dims)
            .field("max_seq_len", &self.max_seq_len)
            .field("device", &self.device)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

#[derive(serde::Deserialize)]
struct SentenceBertConfig {
    max_seq_length: Option<usize>,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("cannot read", path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::Config {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

impl LocalModel {
    /// Loads a BERT-family model (config, tokenizer, safetensors weights) onto the CPU.
    ///
    /// The maximum sequence length comes from `sentence_bert_config.json` next to `config.json` when present
    /// (that is what sentence-transformers uses), else [`DEFAULT_MAX_SEQ_LEN`]; it never exceeds the model's
    /// `max_position_embeddings`. tokenizer.json's own truncation and padding settings are replaced.
    pub fn load(files: &ModelFiles) -> Result<LocalModel> {
        let device = Device::Cpu;
        let config: BertConfig = read_json(&files.config)?;
        if config.hidden_size == 0 || config.max_position_embeddings < 2 {
            return Err(Error::Config {
                path: files.config.clone(),
                message: "hidden_size and max_position_embeddings must be positive".into(),
            });
        }

        let st_config_path = files.dir().join("sentence_bert_config.json");
        let wanted = if st_config_path.is_file() {
            read_json::<SentenceBertConfig>(&st_config_path)?
                .max_seq_length
                .unwrap_or(DEFAULT_MAX_SEQ_LEN)
        } else {
            DEFAULT_MAX_SEQ_LEN
        };
        let max_seq_len = wanted.clamp(2, config.max_position_embeddings);

        let mut tokenizer = Tokenizer::from_file(&files.tokenizer)
            .map_err(|e| Error::Tokenizer(format!("loading {}: {e}", files.tokenizer.display())))?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length: max_seq_len,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(|e| Error::Tokenizer(e.to_string()))?;

        let prefix_safe = matches!(
            tokenizer.get_normalizer(),
            Some(NormalizerWrapper::BertNormalizer(_)) | None
        ) && matches!(
            tokenizer.get_pre_tokenizer(),
            Some(PreTokenizerWrapper::BertPreTokenizer(_))
        ) && tokenizer
            .get_added_tokens_decoder()
            .values()
            .all(|t| !t.content.contains(char::is_whitespace));

        // Read the weights into memory (no mmap: nothing may change them under us).
        let tensors = candle_core::safetensors::load(&files.weights, &device)?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &device);
        let model = BertModel::load(vb, &config)?;

        tracing::debug!(
            dims = config.hidden_size,
            max_seq_len,
            threads = candle_core::utils::get_num_threads(),
            "loaded local embedding model from {}",
            files.dir().display()
        );
        Ok(LocalModel {
            model,
            tokenizer,
            device,
            dims: config.hidden_size,
            max_seq_len,
            pad_id: u32::try_from(config.pad_token_id).unwrap_or(0),
            limits: BatchLimits::default(),
            prefix_safe,
        })
    }

    /// Width of the embeddings (384 for all-MiniLM-L6-v2).
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// Texts are cut to this many word pieces, [CLS] and [SEP] included (256 for all-MiniLM-L6-v2).
    pub fn max_seq_len(&self) -> usize {
        self.max_seq_len
    }

    /// How texts are grouped into forward passes.
    pub fn batch_limits(&self) -> BatchLimits {
        self.limits
    }

    /// Changes how texts are grouped into forward passes (results do not depend on it beyond float noise).
    pub fn set_batch_limits(&mut self, limits: BatchLimits) {
        self.limits = BatchLimits {
            max_tokens: limits.max_tokens.max(1),
            max_texts: limits.max_texts.max(1),
        };
    }

    /// The token ids the model sees for `text` ([CLS] … [SEP], truncated to [`Self::max_seq_len`]).
    pub fn token_ids(&self, text: &str) -> Result<Vec<u32>> {
        self.encode(text)
    }

    /// Tokenises one text, truncated. For long texts only a prefix is tokenised when that provably gives
    /// the same ids as tokenising the whole text (so a megabyte document costs no more than a page).
    fn encode(&self, text: &str) -> Result<Vec<u32>> {
        // Cut points are just after an ASCII space: the normaliser and pre-tokeniser treat every character
        // on its own and split at spaces, so a prefix ending in a space yields exactly the leading tokens of
        // the whole text. If such a prefix already fills the window, the rest cannot change the result.
        let mut prefix_len = self.max_seq_len.saturating_mul(16).max(1024);
        while self.prefix_safe && prefix_len < text.len() {
            if let Some(space) = text.as_bytes()[prefix_len..]
                .iter()
                .position(|&b| b == b' ')
            {
                let cut = prefix_len + space + 1;
                let ids = self.encode_whole(&text[..cut])?;
                if ids.len() >= self.max_seq_len {
                    return Ok(ids);
                }
                prefix_len = cut.saturating_mul(2);
            } else {
                break;
            }
        }
        self.encode_whole(text)
    }

    fn encode_whole(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .tokenizer
            .encode_fast(text, true)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        let mut ids = encoding.get_ids().to_vec();
        ids.truncate(self.max_seq_len);
        Ok(ids)
    }

    /// Embed a batch: tokenise (truncating at [`Self::max_seq_len`] word pieces), group texts into length
    /// buckets so padding is small, run BERT per bucket, mean-pool over the attention mask, L2-normalise.
    ///
    /// Returns one vector of [`Self::dims`] floats per text, in the order of `texts`.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        Ok(self.embed_until(texts, &|| false)?.map(|(v, _)| v).unwrap_or_default())
    }

    /// [`Self::embed`] that also returns how many tokens it encoded, and asks `stop` before each
    /// length bucket: `Ok(None)` when it answered true (a killed statement stops within a bucket).
    pub fn embed_until(&self, texts: &[&str], stop: &dyn Fn() -> bool) -> Result<Option<(Vec<Vec<f32>>, usize)>> {
        if texts.is_empty() {
            return Ok(Some((Vec::new(), 0)));
        }
        let token_ids: Vec<Vec<u32>> = texts
            .iter()
            .map(|t| self.encode(t))
            .collect::<Result<_>>()?;
        let tokens = token_ids.iter().map(Vec::len).sum();

        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| token_ids[i].len());

        let mut out: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        for bucket in buckets(&order, |i| token_ids[i].len(), self.limits) {
            if stop() {
                return Ok(None);
            }
            let seqs: Vec<&[u32]> = bucket.iter().map(|&i| token_ids[i].as_slice()).collect();
            let vectors = self.forward_bucket(&seqs)?;
            for (&i, v) in bucket.iter().zip(vectors) {
                out[i] = v;
            }
        }
        Ok(Some((out, tokens)))
    }

    /// Runs one padded batch through the encoder and pools it.
    fn forward_bucket(&self, seqs: &[&[u32]]) -> Result<Vec<Vec<f32>>> {
        let batch = seqs.len();
        let width = seqs.iter().map(|s| s.len()).max().unwrap_or(0).max(1);
        let mut ids = Vec::with_capacity(batch * width);
        let mut mask = Vec::with_capacity(batch * width);
        for seq in seqs {
            ids.extend_from_slice(seq);
            ids.resize(ids.len() + width - seq.len(), self.pad_id);
            mask.extend(std::iter::repeat_n(1u32, seq.len()));
            mask.extend(std::iter::repeat_n(0u32, width - seq.len()));
        }
        let ids = Tensor::from_vec(ids, (batch, width), &self.device)?;
        let type_ids = ids.zeros_like()?;
        let mask_t = Tensor::from_vec(mask, (batch, width), &self.device)?;
        let hidden = self.model.forward(&ids, &type_ids, Some(&mask_t))?;
        let hidden: Vec<Vec<Vec<f32>>> = hidden.to_dtype(DType::F32)?.to_vec3()?;

        Ok(hidden
            .iter()
            .zip(seqs)
            .map(|(rows, seq)| mean_pool_normalise(&rows[..seq.len()], self.dims))
            .collect())
    }
}

/// Mean of the rows (the unpadded tokens), then L2-normalised, like sentence-transformers'
/// `Pooling(mean)` + `Normalize` (with the same epsilons).
fn mean_pool_normalise(rows: &[Vec<f32>], dims: usize) -> Vec<f32> {
    let mut sum = vec![0f64; dims];
    for row in rows {
        for (s, &x) in sum.iter_mut().zip(row) {
            *s += f64::from(x);
        }
    }
    let count = (rows.len() as f64).max(1e-9);
    let mean: Vec<f64> = sum.into_iter().map(|s| s / count).collect();
    let norm = mean.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
    mean.into_iter().map(|x| (x / norm) as f32).collect()
}

/// Splits `order` (indices sorted by ascending length) into consecutive buckets whose lengths are close,
/// within the batch limits.
fn buckets(
    order: &[usize],
    len_of: impl Fn(usize) -> usize,
    limits: BatchLimits,
) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut shortest = 0usize;
    for &i in order {
        let len = len_of(i).max(1);
        let fits = !current.is_empty()
            && current.len() < limits.max_texts
            && (current.len() + 1) * len <= limits.max_tokens
            // keep padding waste small: at most ~25 % (or 8 tokens) over the bucket's shortest text
            && len <= shortest + (shortest / 4).max(8);
        if !fits && !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
        if current.is_empty() {
            shortest = len;
        }
        current.push(i);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_respect_limits_and_keep_lengths_close() {
        let lens = [2usize, 3, 5, 9, 10, 11, 12, 40, 41, 200, 256, 256, 256];
        let order: Vec<usize> = (0..lens.len()).collect();
        let limits = BatchLimits {
            max_tokens: 600,
            max_texts: 3,
        };
        let got = buckets(&order, |i| lens[i], limits);
        let flat: Vec<usize> = got.iter().flatten().copied().collect();
        assert_eq!(flat, order, "every text once, in order");
        for b in &got {
            assert!(b.len() <= 3);
            let max = b.iter().map(|&i| lens[i]).max().unwrap();
            let min = b.iter().map(|&i| lens[i]).min().unwrap();
            assert!(b.len() == 1 || b.len() * max <= 600, "{b:?}");
            assert!(max <= min + (min / 4).max(8), "{b:?}");
        }
        assert_eq!(
            got,
            vec![
                vec![0, 1, 2],
                vec![3, 4, 5],
                vec![6],
                vec![7, 8],
                vec![9],
                vec![10, 11],
                vec![12]
            ]
        );
    }

    #[test]
    fn pooling_matches_definition() {
        let rows = vec![vec![1.0, 2.0], vec![3.0, 2.0]];
        let v = mean_pool_normalise(&rows, 2);
        let s = 1.0 / 2f32.sqrt();
        assert!((v[0] - s).abs() < 1e-6 && (v[1] - s).abs() < 1e-6);
        assert_eq!(mean_pool_normalise(&[vec![0.0, 0.0]], 2), vec![0.0, 0.0]);
    }
}
