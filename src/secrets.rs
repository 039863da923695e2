//! Secrets at rest: upstream passwords are sealed with AES-256-GCM under the server key before
//! they are stored, and opened only where a proxy needs them. The key comes from
//! `BERTH_SECRET_KEY` (32 bytes, base64) or from `secret.key` in the data directory, generated on
//! first start. Several instances on one database must share the key.

use std::fmt;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, OsRng};
use aes_gcm::{AeadCore, Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Why a key could not be loaded or a secret not opened.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The configured key is not 32 bytes of base64.
    #[error("the secret key must be 32 bytes, base64-encoded ({0})")]
    BadKey(String),
    /// The key file could not be read or written.
    #[error("cannot use the key file {path}: {source}")]
    KeyFile {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A stored secret does not open with this key.
    #[error("a stored secret cannot be decrypted with this server's key")]
    Undecryptable,
}

/// A sealed secret: what is stored.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The 96-bit nonce.
    pub nonce: Vec<u8>,
    /// The ciphertext with its tag.
    pub ciphertext: Vec<u8>,
}

/// The server's secret box.
#[derive(Clone)]
pub struct SecretBox {
    cipher: Aes256Gcm,
}

impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBox([redacted])")
    }
}

impl SecretBox {
    /// A box with a fresh key that is never stored, for tools that record events but never
    /// seal or open a secret (`berth fsck --repair`).
    pub fn ephemeral() -> Self {
        Self {
            cipher: Aes256Gcm::new(&Aes256Gcm::generate_key(OsRng)),
        }
    }

    /// A box from a base64 key.
    pub fn from_base64(key: &str) -> Result<Self, SecretError> {
        let bytes = STANDARD
            .decode(key.trim())
            .map_err(|e| SecretError::BadKey(e.to_string()))?;
        let cipher = Aes256Gcm::new_from_slice(&bytes)
            .map_err(|_| SecretError::BadKey(format!("got {} bytes", bytes.len())))?;
        Ok(Self { cipher })
    }

    /// The key from `configured` when given, else from `<data_dir>/secret.key`, created with a
    /// fresh random key (mode 0600) when missing.
    pub fn load(configured: Option<&str>, data_dir: &Path) -> Result<Self, SecretError> {
        if let Some(key) = configured {
            return Self::from_base64(key);
        }
        let path = data_dir.join("secret.key");
        let key_file = |source| SecretError::KeyFile {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(&path) {
            Ok(key) => Self::from_base64(&key),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = STANDARD.encode(Aes256Gcm::generate_key(OsRng));
                std::fs::create_dir_all(data_dir).map_err(key_file)?;
                write_private(&path, &key).map_err(key_file)?;
                Self::from_base64(&key)
            }
            Err(e) => Err(key_file(e)),
        }
    }

    /// Seals a secret with a fresh nonce.
    pub fn seal(&self, plaintext: &str) -> Sealed {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = self
            .cipher
            .encrypt(&nonce, plaintext.as_bytes())
            .expect("AES-GCM encryption does not fail for in-memory data");
        Sealed {
            nonce: nonce.to_vec(),
            ciphertext,
        }
    }

    /// Opens a sealed secret.
    pub fn open(&self, sealed: &Sealed) -> Result<String, SecretError> {
        if sealed.nonce.len() != 12 {
            return Err(SecretError::Undecryptable);
        }
        let plaintext = self
            .cipher
            .decrypt(Nonce::from_slice(&sealed.nonce), sealed.ciphertext.as_ref())
            .map_err(|_| SecretError::Undecryptable)?;
        String::from_utf8(plaintext).map_err(|_| SecretError::Undecryptable)
    }
}

/// Writes a file only its owner can read.
pub fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_with_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = SecretBox::load(None, dir.path()).unwrap();
        let sealed = secrets.seal("hunter2");
        assert!(!sealed.ciphertext.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(secrets.open(&sealed).unwrap(), "hunter2");
        // The generated key is kept and reused.
        assert_eq!(
            SecretBox::load(None, dir.path())
                .unwrap()
                .open(&sealed)
                .unwrap(),
            "hunter2"
        );
        let other = SecretBox::from_base64(&STANDARD.encode([7u8; 32])).unwrap();
        assert!(matches!(
            other.open(&sealed),
            Err(SecretError::Undecryptable)
        ));
        assert!(SecretBox::from_base64("c2hvcnQ=").is_err());
    }
}
