//! A BERT-family sentence embedder: tokenise, run the encoder in length buckets, mean-pool, L2-normalise.

use std::path::Path;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use candle_core::Device;
use candle_transformers::models::bert::Config as BertConfig;
use tokenizers::normalizers::NormalizerWrapper;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::bert::Bert;
use crate::error::{Error, Result};
use crate::files::ModelFiles;

/// sentence-transformers' `max_seq_length` for all-MiniLM-L6-v2, used when the model directory has no
/// `sentence_bert_config.json`.
pub const DEFAULT_MAX_SEQ_LEN: usize = 256;

/// How texts are grouped into the batches that go through the encoder together. Sequences are packed
/// without padding, so a batch's cost is its token count; batches run on
/// [`crate::compute_threads`] threads at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// At most this many tokens per forward pass (a longer text still goes through on its own).
    pub max_tokens: usize,
    /// At most this many texts per forward pass.
    pub max_texts: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            max_tokens: DEFAULT_MAX_TOKENS,
            max_texts: 128,
        }
    }
}

/// Default tokens per forward pass: large enough that the weights are read from memory a few times per
/// call at most, small enough that a pass's activations stay in the CPU's caches.
const DEFAULT_MAX_TOKENS: usize = 512;

/// A sentence embedding model held in memory. Cheap to share behind an `Arc`: [`LocalModel::embed`] takes
/// `&self` and may be called from many threads at once.
pub struct LocalModel {
    model: Bert,
    tokenizer: Tokenizer,
    /// The same tokenizer without truncation: word-piece offsets of whole texts (chunking).
    spans_tokenizer: Tokenizer,
    threads: usize,
    dims: usize,
    max_seq_len: usize,
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
            .field("isa", &self.model.isa())
            .field("threads", &self.threads)
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
    /// Loads a BERT-family model (config, tokenizer, safetensors weights) for the CPU.
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
        let mut spans_tokenizer = tokenizer.clone();
        spans_tokenizer
            .with_truncation(None)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
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
        let model = Bert::load(&tensors, &config, &files.weights)?;
        drop(tensors);
        let threads = crate::compute_threads().max(1);

        tracing::debug!(
            dims = config.hidden_size,
            max_seq_len,
            threads,
            isa = ?model.isa(),
            "loaded local embedding model from {}",
            files.dir().display()
        );
        Ok(LocalModel {
            model,
            tokenizer,
            spans_tokenizer,
            threads,
            dims: config.hidden_size,
            max_seq_len,
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

    /// Where each word piece of `text` lies (byte ranges, [CLS]/[SEP] left out, nothing
    /// truncated): what a chunker cuts along.
    pub fn word_piece_spans(&self, text: &str) -> Result<Vec<(usize, usize)>> {
        let e = self
            .spans_tokenizer
            .encode(text, false)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(e.get_offsets().to_vec())
    }

    /// Whether `text` fits the model's window ([`Self::max_seq_len`] word pieces, [CLS] and [SEP]
    /// included); a longer text is embedded from its first word pieces only. A long document is
    /// settled by a prefix that already overflows, so it costs no more than a page.
    pub fn fits(&self, text: &str) -> Result<bool> {
        // A word piece covers at least one byte of the text as written (lower-casing and
        // accent-stripping NFD never make more characters than the bytes they came from): a text
        // of fewer bytes than the window fits without tokenising.
        if text.len().saturating_add(2) <= self.max_seq_len {
            return Ok(true);
        }
        let overflows = |t: &str| -> Result<bool> {
            let e = self.tokenizer.encode_fast(t, true).map_err(|e| Error::Tokenizer(e.to_string()))?;
            Ok(!e.get_overflowing().is_empty() || e.get_ids().len() > self.max_seq_len)
        };
        let prefix_len = self.max_seq_len.saturating_mul(16).max(1024);
        if self.prefix_safe && prefix_len < text.len() {
            if let Some(space) = text.as_bytes()[prefix_len..].iter().position(|&b| b == b' ') {
                if overflows(&text[..prefix_len + space + 1])? {
                    return Ok(false);
                }
            }
        }
        Ok(!overflows(text)?)
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
        Ok(self
            .embed_until(texts, &|| false)?
            .map(|(v, _)| v)
            .unwrap_or_default())
    }

    /// [`Self::embed`] that also returns how many tokens it encoded, and asks `stop` before each
    /// forward pass: `Ok(None)` when it answered true (a killed statement stops within a pass).
    pub fn embed_until(
        &self,
        texts: &[&str],
        stop: &(dyn Fn() -> bool + Sync),
    ) -> Result<Option<(Vec<Vec<f32>>, usize)>> {
        if texts.is_empty() {
            return Ok(Some((Vec::new(), 0)));
        }
        let token_ids: Vec<Vec<u32>> = texts
            .iter()
            .map(|t| self.encode(t))
            .collect::<Result<_>>()?;
        let tokens = token_ids.iter().map(Vec::len).sum();

        // Longest first, so the passes that take longest start first and the threads finish together.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(token_ids[i].len()));
        let passes = passes(&order, |i| token_ids[i].len(), self.limits, self.threads);

        // The passes go to `threads` workers (this thread one of them), each taking the next pass left.
        let next = AtomicUsize::new(0);
        let stopped = AtomicBool::new(false);
        let work = || -> Result<Vec<(usize, Vec<Vec<f32>>)>> {
            let mut done = Vec::new();
            loop {
                let p = next.fetch_add(1, Ordering::Relaxed);
                if p >= passes.len() || stopped.load(Ordering::Relaxed) {
                    return Ok(done);
                }
                if stop() {
                    stopped.store(true, Ordering::Relaxed);
                    return Ok(done);
                }
                let seqs: Vec<&[u32]> =
                    passes[p].iter().map(|&i| token_ids[i].as_slice()).collect();
                done.push((p, self.model.embed_pooled(&seqs)?));
            }
        };
        let workers = self.threads.min(passes.len()).max(1);
        let results: Vec<Result<Vec<(usize, Vec<Vec<f32>>)>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (1..workers).map(|_| scope.spawn(work)).collect();
            let mut results = vec![work()];
            for h in handles {
                results.push(
                    h.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                );
            }
            results
        });
        if stopped.load(Ordering::Relaxed) {
            return Ok(None);
        }

        let mut out: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        for result in results {
            for (p, vectors) in result? {
                for (&i, v) in passes[p].iter().zip(vectors) {
                    out[i] = v;
                }
            }
        }
        Ok(Some((out, tokens)))
    }
}

/// Splits `order` into consecutive forward passes within the batch limits, each also at most about a
/// `threads`-th of all tokens so every thread gets work (a text longer than the limit gets a pass of
/// its own).
fn passes(
    order: &[usize],
    len_of: impl Fn(usize) -> usize,
    limits: BatchLimits,
    threads: usize,
) -> Vec<Vec<usize>> {
    let total: usize = order.iter().map(|&i| len_of(i).max(1)).sum();
    let max_tokens = limits.max_tokens.min(total.div_ceil(threads.max(1))).max(1);
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut tokens = 0usize;
    for &i in order {
        let len = len_of(i).max(1);
        if !current.is_empty() && (current.len() >= limits.max_texts || tokens + len > max_tokens) {
            out.push(std::mem::take(&mut current));
            tokens = 0;
        }
        current.push(i);
        tokens += len;
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bert::mean_pool_normalise;

    #[test]
    fn passes_respect_limits_and_share_work() {
        let lens = [256usize, 256, 256, 200, 41, 40, 12, 11, 10, 9, 5, 3, 2];
        let order: Vec<usize> = (0..lens.len()).collect();
        let limits = BatchLimits {
            max_tokens: 600,
            max_texts: 3,
        };
        let got = passes(&order, |i| lens[i], limits, 1);
        let flat: Vec<usize> = got.iter().flatten().copied().collect();
        assert_eq!(flat, order, "every text once, in order");
        for p in &got {
            assert!(p.len() <= 3);
            let tokens: usize = p.iter().map(|&i| lens[i]).sum();
            assert!(p.len() == 1 || tokens <= 600, "{p:?}");
        }
        assert_eq!(
            got,
            vec![
                vec![0, 1],
                vec![2, 3, 4],
                vec![5, 6, 7],
                vec![8, 9, 10],
                vec![11, 12]
            ]
        );
        // with 4 threads no pass holds more than a quarter of the tokens (unless one text does)
        let total: usize = lens.iter().sum();
        for p in passes(&order, |i| lens[i], BatchLimits::default(), 4) {
            let tokens: usize = p.iter().map(|&i| lens[i]).sum();
            assert!(p.len() == 1 || tokens <= total.div_ceil(4), "{p:?}");
        }
        // a text longer than the limit still gets its pass
        assert_eq!(
            passes(&[0], |_| 5000, BatchLimits::default(), 2),
            vec![vec![0]]
        );
    }

    #[test]
    fn pooling_matches_definition() {
        let rows = vec![1.0, 2.0, 3.0, 2.0];
        let v = mean_pool_normalise(&rows, 2);
        let s = 1.0 / 2f32.sqrt();
        assert!((v[0] - s).abs() < 1e-6 && (v[1] - s).abs() < 1e-6);
        assert_eq!(mean_pool_normalise(&[0.0, 0.0], 2), vec![0.0, 0.0]);
    }
}
