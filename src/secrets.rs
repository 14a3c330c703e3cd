//! Secrets at rest. Provider keys set with `SET GLOBAL TIDB_EXP_EMBED_…_API_KEY` persist in the
//! catalog like every global variable, but sealed: AES-256-GCM under a server key that lives in
//! a file of its own, never in the data file.
//!
//! - The key file is `--secret-key-file` (config `secret_key_file`, env `EMBEDB_SECRET_KEY_FILE`),
//!   by default `<data_dir>/secret.key`; it is made with 32 random bytes and mode 0600 on first
//!   start. Keep it elsewhere (and out of backups of the data directory) for the data file alone
//!   to reveal nothing.
//! - A stored secret is `ENC1` + 12-byte nonce + ciphertext and tag; the variable's name is the
//!   associated data, so a sealed value cannot be moved to another variable.
//! - A value written before sealing existed (plain text) is sealed at the next start.
//! - With the wrong key file a secret cannot be opened: the server starts, logs which variable
//!   must be set again (never its value), and treats it as unset.

use std::path::Path;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

use crate::error::{Result, SqlError};

const MAGIC: &[u8] = b"ENC1";

pub struct SecretBox {
    key: LessSafeKey,
    rng: SystemRandom,
}

fn io_err(what: &str, path: &Path, e: impl std::fmt::Display) -> SqlError {
    SqlError::other(format!("{what} {}: {e}", path.display()))
}

impl SecretBox {
    /// The key in `path`, made there first if the file does not exist.
    pub fn open(path: &Path) -> Result<SecretBox> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut k = [0u8; 32];
                SystemRandom::new().fill(&mut k).map_err(|_| SqlError::other("no system randomness for the secret key"))?;
                write_private(path, &k)?;
                tracing::info!("made the secret key file {} (it seals provider keys; keep it safe)", path.display());
                k.to_vec()
            }
            Err(e) => return Err(io_err("cannot read the secret key file", path, e)),
        };
        if bytes.len() != 32 {
            return Err(io_err("the secret key file must hold 32 bytes:", path, format!("it holds {}", bytes.len())));
        }
        Self::from_key(&bytes)
    }

    /// A key that lives only in this process (an engine without a data directory).
    pub fn ephemeral() -> SecretBox {
        let mut k = [0u8; 32];
        let _ = SystemRandom::new().fill(&mut k);
        Self::from_key(&k).expect("32 bytes make an AES-256 key")
    }

    fn from_key(k: &[u8]) -> Result<SecretBox> {
        let key = UnboundKey::new(&AES_256_GCM, k).map_err(|_| SqlError::other("invalid secret key"))?;
        Ok(SecretBox { key: LessSafeKey::new(key), rng: SystemRandom::new() })
    }

    /// `value` sealed for storage under the variable `name`.
    pub fn seal(&self, name: &str, value: &str) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).expect("system randomness");
        let mut data = value.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(name.as_bytes()), &mut data)
            .expect("AES-GCM seals any length we store");
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&data);
        out
    }

    /// A stored value of the variable `name`: opened if sealed, as is if it predates sealing
    /// (`Ok(None)` then, so the caller can seal it). Err when the key does not open it.
    pub fn unseal(&self, name: &str, stored: &[u8]) -> std::result::Result<Option<String>, ()> {
        let Some(rest) = stored.strip_prefix(MAGIC) else { return Ok(None) };
        if rest.len() < NONCE_LEN {
            return Err(());
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| ())?;
        let mut data = sealed.to_vec();
        let plain = self.key.open_in_place(nonce, Aad::from(name.as_bytes()), &mut data).map_err(|_| ())?;
        String::from_utf8(plain.to_vec()).map(Some).map_err(|_| ())
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io_err("cannot create", dir, e))?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path).map_err(|e| io_err("cannot create the secret key file", path, e))?;
    f.write_all(bytes).and_then(|_| f.sync_all()).map_err(|e| io_err("cannot write the secret key file", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let a = SecretBox::open(&path).unwrap();
        let sealed = a.seal("tidb_exp_embed_jina_ai_api_key", "jina_secret_123");
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        // the same file opens it again; another key or another variable name does not
        let again = SecretBox::open(&path).unwrap();
        assert_eq!(again.unseal("tidb_exp_embed_jina_ai_api_key", &sealed), Ok(Some("jina_secret_123".into())));
        assert_eq!(again.unseal("tidb_exp_embed_openai_api_key", &sealed), Err(()));
        assert_eq!(SecretBox::ephemeral().unseal("tidb_exp_embed_jina_ai_api_key", &sealed), Err(()));
        assert_eq!(again.unseal("x", b"plain text"), Ok(None));
        #[cfg(unix)]
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions()) & 0o777, 0o600);
    }
}
