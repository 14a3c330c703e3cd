//! The BERT encoder's forward pass on the CPU, on plain f32 buffers with the kernels of
//! [`crate::kernels`].
//!
//! Sequences are packed without padding: a batch is the concatenation of its sequences' tokens, the
//! linear layers run over all tokens at once and attention runs per sequence over its own tokens, so no
//! attention mask is needed and no work is spent on padding (sentence-transformers masks padded keys
//! with a large negative bias, which gives them exactly zero weight: the same result).
//!
//! The weights are those of a Hugging Face `BertModel` checkpoint (`embeddings.*`, `encoder.layer.N.*`,
//! optionally under a `bert.` or `<model_type>.` prefix), read through candle's safetensors loader.

use std::collections::HashMap;

use candle_core::{DType, Tensor};
use candle_transformers::models::bert::{Config as BertConfig, HiddenAct};

use crate::error::{Error, Result};
use crate::kernels::{self, Isa, PackedLinear, Post};

struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

struct Layer {
    /// query, key and value projections stacked into one (`3·hidden` outputs).
    qkv: PackedLinear,
    attn_out: PackedLinear,
    attn_norm: Norm,
    intermediate: PackedLinear,
    output: PackedLinear,
    output_norm: Norm,
}

pub(crate) struct Bert {
    hidden: usize,
    heads: usize,
    head_dim: usize,
    eps: f32,
    act: HiddenAct,
    max_positions: usize,
    word: Vec<f32>,
    position: Vec<f32>,
    /// Token type 0's embedding (every token has type 0 for sentence embeddings).
    token_type0: Vec<f32>,
    embed_norm: Norm,
    layers: Vec<Layer>,
    isa: Isa,
}

/// Reads the named tensors out of a checkpoint, converting to f32.
struct Weights<'a> {
    tensors: &'a HashMap<String, Tensor>,
    prefix: String,
    path: &'a std::path::Path,
}

impl Weights<'_> {
    fn err(&self, message: String) -> Error {
        Error::Config {
            path: self.path.to_path_buf(),
            message,
        }
    }

    fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let full = format!("{}{name}", self.prefix);
        let t = self
            .tensors
            .get(&full)
            .ok_or_else(|| self.err(format!("weights lack tensor {full}")))?;
        if t.dims() != shape {
            return Err(self.err(format!(
                "tensor {full} has shape {:?}, expected {shape:?}",
                t.dims()
            )));
        }
        Ok(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
    }

    /// A layer norm's scale and shift, under either naming (`weight`/`bias` or `gamma`/`beta`).
    fn norm(&self, name: &str, size: usize) -> Result<Norm> {
        let has = |leaf: &str| {
            self.tensors
                .contains_key(&format!("{}{name}.{leaf}", self.prefix))
        };
        let (g, b) = if !has("weight") && has("gamma") {
            ("gamma", "beta")
        } else {
            ("weight", "bias")
        };
        Ok(Norm {
            gamma: self.get(&format!("{name}.{g}"), &[size])?,
            beta: self.get(&format!("{name}.{b}"), &[size])?,
        })
    }

    fn linear(&self, name: &str, out: usize, inp: usize) -> Result<PackedLinear> {
        let w = self.get(&format!("{name}.weight"), &[out, inp])?;
        let b = self.get(&format!("{name}.bias"), &[out])?;
        Ok(PackedLinear::new(&w, &b, out, inp))
    }
}

impl Bert {
    pub(crate) fn load(
        tensors: &HashMap<String, Tensor>,
        config: &BertConfig,
        path: &std::path::Path,
    ) -> Result<Bert> {
        let bad = |message: String| Error::Config {
            path: path.to_path_buf(),
            message,
        };
        let hidden = config.hidden_size;
        let heads = config.num_attention_heads;
        if heads == 0 || hidden % heads != 0 {
            return Err(bad(format!(
                "hidden_size {hidden} is not a multiple of num_attention_heads {heads}"
            )));
        }
        let mut prefixes = vec![String::new(), "bert.".to_string()];
        if let Some(t) = &config.model_type {
            prefixes.push(format!("{t}."));
        }
        let prefix = prefixes
            .into_iter()
            .find(|p| tensors.contains_key(&format!("{p}embeddings.word_embeddings.weight")))
            .ok_or_else(|| bad("weights lack embeddings.word_embeddings.weight".into()))?;
        let w = Weights {
            tensors,
            prefix,
            path,
        };
        let inter = config.intermediate_size;

        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let l = format!("encoder.layer.{i}");
            let mut qkv_w = Vec::with_capacity(3 * hidden * hidden);
            let mut qkv_b = Vec::with_capacity(3 * hidden);
            for part in ["query", "key", "value"] {
                qkv_w.extend(w.get(
                    &format!("{l}.attention.self.{part}.weight"),
                    &[hidden, hidden],
                )?);
                qkv_b.extend(w.get(&format!("{l}.attention.self.{part}.bias"), &[hidden])?);
            }
            layers.push(Layer {
                qkv: PackedLinear::new(&qkv_w, &qkv_b, 3 * hidden, hidden),
                attn_out: w.linear(&format!("{l}.attention.output.dense"), hidden, hidden)?,
                attn_norm: w.norm(&format!("{l}.attention.output.LayerNorm"), hidden)?,
                intermediate: w.linear(&format!("{l}.intermediate.dense"), inter, hidden)?,
                output: w.linear(&format!("{l}.output.dense"), hidden, inter)?,
                output_norm: w.norm(&format!("{l}.output.LayerNorm"), hidden)?,
            });
        }
        let token_types = w.get(
            "embeddings.token_type_embeddings.weight",
            &[config.type_vocab_size, hidden],
        )?;
        Ok(Bert {
            hidden,
            heads,
            head_dim: hidden / heads,
            eps: config.layer_norm_eps as f32,
            act: config.hidden_act,
            max_positions: config.max_position_embeddings,
            word: w.get(
                "embeddings.word_embeddings.weight",
                &[config.vocab_size, hidden],
            )?,
            position: w.get(
                "embeddings.position_embeddings.weight",
                &[config.max_position_embeddings, hidden],
            )?,
            token_type0: token_types[..hidden].to_vec(),
            embed_norm: w.norm("embeddings.LayerNorm", hidden)?,
            layers,
            isa: Isa::detect(),
        })
    }

    pub(crate) fn isa(&self) -> Isa {
        self.isa
    }

    /// Encodes the sequences (token ids, each at most `max_position_embeddings` long, none empty) and
    /// returns each one's mean-pooled last hidden state, L2-normalised.
    pub(crate) fn embed_pooled(&self, seqs: &[&[u32]]) -> Result<Vec<Vec<f32>>> {
        let h = self.hidden;
        let total: usize = seqs.iter().map(|s| s.len()).sum();
        let mut x = vec![0f32; total * h];
        let mut row = 0;
        for seq in seqs {
            if seq.is_empty() || seq.len() > self.max_positions {
                return Err(Error::Tokenizer(format!(
                    "sequence of {} tokens (limit {})",
                    seq.len(),
                    self.max_positions
                )));
            }
            for (pos, &id) in seq.iter().enumerate() {
                let id = id as usize;
                if id * h >= self.word.len() {
                    return Err(Error::Tokenizer(format!(
                        "token id {id} outside the vocabulary"
                    )));
                }
                let word = &self.word[id * h..(id + 1) * h];
                let position = &self.position[pos * h..(pos + 1) * h];
                for (((o, &a), &b), &c) in x[row * h..(row + 1) * h]
                    .iter_mut()
                    .zip(word)
                    .zip(position)
                    .zip(&self.token_type0)
                {
                    *o = a + c + b;
                }
                row += 1;
            }
        }
        kernels::layer_norm(
            self.isa,
            &mut x,
            &self.embed_norm.gamma,
            &self.embed_norm.beta,
            self.eps,
        );

        let inter = self
            .layers
            .first()
            .map_or(0, |l| l.intermediate.out_features());
        let mut qkv = vec![0f32; total * 3 * h];
        let mut ctx = vec![0f32; total * h];
        let mut y = vec![0f32; total * h];
        let mut mid = vec![0f32; total * inter];
        let mut scores = Vec::new();
        let act = match self.act {
            HiddenAct::Gelu => Post::Gelu,
            HiddenAct::GeluApproximate => Post::GeluTanh,
            HiddenAct::Relu => Post::Relu,
        };
        for layer in &self.layers {
            kernels::linear(self.isa, &x, total, &layer.qkv, &mut qkv, Post::None);
            let mut start = 0;
            for seq in seqs {
                let len = seq.len();
                kernels::attention(
                    self.isa,
                    &qkv[start * 3 * h..(start + len) * 3 * h],
                    len,
                    self.heads,
                    self.head_dim,
                    &mut ctx[start * h..(start + len) * h],
                    &mut scores,
                );
                start += len;
            }
            kernels::linear(
                self.isa,
                &ctx,
                total,
                &layer.attn_out,
                &mut y,
                Post::Add(&x),
            );
            kernels::layer_norm(
                self.isa,
                &mut y,
                &layer.attn_norm.gamma,
                &layer.attn_norm.beta,
                self.eps,
            );
            kernels::linear(self.isa, &y, total, &layer.intermediate, &mut mid, act);
            kernels::linear(self.isa, &mid, total, &layer.output, &mut x, Post::Add(&y));
            kernels::layer_norm(
                self.isa,
                &mut x,
                &layer.output_norm.gamma,
                &layer.output_norm.beta,
                self.eps,
            );
        }

        let mut out = Vec::with_capacity(seqs.len());
        let mut start = 0;
        for seq in seqs {
            out.push(mean_pool_normalise(
                &x[start * h..(start + seq.len()) * h],
                h,
            ));
            start += seq.len();
        }
        Ok(out)
    }
}

/// Mean of the rows (a sequence's tokens, `dims` wide), then L2-normalised, like sentence-transformers'
/// `Pooling(mean)` + `Normalize` (with the same epsilons).
pub(crate) fn mean_pool_normalise(rows: &[f32], dims: usize) -> Vec<f32> {
    let mut sum = vec![0f64; dims];
    let n = rows.len() / dims.max(1);
    for row in rows.chunks_exact(dims.max(1)) {
        for (s, &x) in sum.iter_mut().zip(row) {
            *s += f64::from(x);
        }
    }
    let count = (n as f64).max(1e-9);
    let mean: Vec<f64> = sum.into_iter().map(|s| s / count).collect();
    let norm = mean.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
    mean.into_iter().map(|x| (x / norm) as f32).collect()
}
