//! Bearer JWTs: verifying them (HS256 with the server secret, and RS256/ES256 public keys of an
//! external identity provider), minting them (`berth token`), and the scopes they grant.
//! `alg: none` is never accepted, and each key only verifies tokens of its own algorithm, so
//! an HS256 token signed with a public key's bytes is refused.

mod scope;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

pub use scope::{Scope, Scopes};

use crate::config::Secret;

/// Why a token or key was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No usable bearer token.
    #[error("a bearer token is required")]
    Missing,
    /// The token is malformed, badly signed, expired or otherwise invalid.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// The token does not grant the scope the operation needs.
    #[error("the token lacks the {0} scope")]
    MissingScope(Scope),
    /// A configured key could not be loaded.
    #[error("cannot load key {path}: {reason}")]
    Key {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// The claims Berth reads and writes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Who the token speaks for.
    pub sub: String,
    /// Expiry (seconds since the epoch); required.
    pub exp: u64,
    /// Issued at.
    #[serde(default)]
    pub iat: u64,
    /// Space-separated scopes.
    #[serde(default)]
    pub scope: String,
    /// Issuer, when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audience, when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// Repository grants of a registry token (from `/v2/token`); absent on other tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<Vec<Access>>,
}

/// One grant of a registry token, as the Docker token specification writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    /// Always `repository` for now.
    #[serde(rename = "type")]
    pub kind: String,
    /// The repository.
    pub name: String,
    /// Granted actions: `pull`, `push`, `delete`.
    pub actions: Vec<String>,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's subject.
    pub subject: String,
    /// What it may do.
    pub scopes: Scopes,
    /// For a registry token: exactly the repository actions it grants.
    pub access: Option<Vec<Access>>,
}

impl Principal {
    /// Fails unless the caller holds `scope` (or `admin`).
    pub fn require(&self, scope: Scope) -> Result<(), AuthError> {
        if self.scopes.allows(scope) {
            Ok(())
        } else {
            Err(AuthError::MissingScope(scope))
        }
    }
}

/// Verifies bearer tokens and mints server-signed ones.
pub struct Authenticator {
    hs_secret: Secret<Vec<u8>>,
    external: Vec<(DecodingKey, Algorithm)>,
    issuer: Option<String>,
    audience: Option<String>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("external_keys", &self.external.len())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// Where the authenticator's keys come from.
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    /// `BERTH_JWT_SECRET`; else `jwt.secret` in the data directory, generated when missing.
    pub jwt_secret: Option<Secret<String>>,
    /// PEM files of RS256 or ES256 public keys whose tokens are accepted too.
    pub public_keys: Vec<std::path::PathBuf>,
    /// Required `iss`, when set.
    pub issuer: Option<String>,
    /// Required `aud`, when set.
    pub audience: Option<String>,
}

impl Authenticator {
    /// Loads the keys; generates the HS256 secret in `data_dir` on first start when none is given.
    pub fn load(config: &AuthConfig, data_dir: &Path) -> Result<Self, AuthError> {
        let hs_secret = match &config.jwt_secret {
            Some(secret) => secret.expose().as_bytes().to_vec(),
            None => load_or_create_secret(&data_dir.join("jwt.secret"))?,
        };
        let mut external = Vec::new();
        for path in &config.public_keys {
            let key_error = |reason: String| AuthError::Key {
                path: path.display().to_string(),
                reason,
            };
            let pem = std::fs::read(path).map_err(|e| key_error(e.to_string()))?;
            let key = if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
                (key, Algorithm::RS256)
            } else if let Ok(key) = DecodingKey::from_ec_pem(&pem) {
                (key, Algorithm::ES256)
            } else {
                return Err(key_error("not an RSA or EC public key in PEM form".into()));
            };
            external.push(key);
        }
        Ok(Self {
            hs_secret: Secret::new(hs_secret),
            external,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
        })
    }

    fn validation(&self, algorithm: Algorithm) -> Validation {
        let mut validation = Validation::new(algorithm);
        validation.leeway = 30;
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        required.extend(self.issuer.as_ref().map(|_| "iss"));
        required.extend(self.audience.as_ref().map(|_| "aud"));
        validation.set_required_spec_claims(&required);
        match &self.issuer {
            Some(issuer) => validation.set_issuer(&[issuer]),
            None => validation.iss = None,
        }
        match &self.audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        validation
    }

    /// Verifies a bearer token and returns its caller.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| AuthError::Invalid(e.to_string()))?;
        let claims = if header.alg == Algorithm::HS256 {
            let key = DecodingKey::from_secret(self.hs_secret.expose());
            jsonwebtoken::decode::<Claims>(token, &key, &self.validation(Algorithm::HS256))
                .map_err(|e| AuthError::Invalid(e.to_string()))?
                .claims
        } else {
            let mut last =
                AuthError::Invalid(format!("algorithm {:?} is not accepted", header.alg));
            let mut found = None;
            for (key, algorithm) in self.external.iter().filter(|(_, a)| *a == header.alg) {
                match jsonwebtoken::decode::<Claims>(token, key, &self.validation(*algorithm)) {
                    Ok(data) => {
                        found = Some(data.claims);
                        break;
                    }
                    Err(e) => last = AuthError::Invalid(e.to_string()),
                }
            }
            found.ok_or(last)?
        };
        Ok(Principal {
            subject: claims.sub,
            scopes: Scopes::parse(&claims.scope),
            access: claims.access,
        })
    }

    /// Mints an HS256 token for `subject` with `scopes`, valid for `ttl`.
    pub fn mint(&self, subject: &str, scopes: &Scopes, ttl: Duration) -> String {
        self.sign(subject, scopes.to_string(), None, ttl)
    }

    /// Mints a registry token that grants exactly `access`, valid for `ttl`.
    pub fn mint_registry_token(&self, subject: &str, access: Vec<Access>, ttl: Duration) -> String {
        self.sign(subject, String::new(), Some(access), ttl)
    }

    fn sign(
        &self,
        subject: &str,
        scope: String,
        access: Option<Vec<Access>>,
        ttl: Duration,
    ) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let claims = Claims {
            sub: subject.to_owned(),
            exp: now + ttl.as_secs().max(1),
            iat: now,
            scope,
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            access,
        };
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(self.hs_secret.expose()),
        )
        .expect("HS256 signing does not fail")
    }
}

fn load_or_create_secret(path: &Path) -> Result<Vec<u8>, AuthError> {
    let key_error = |e: std::io::Error| AuthError::Key {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    match std::fs::read_to_string(path) {
        Ok(text) => STANDARD.decode(text.trim()).map_err(|e| AuthError::Key {
            path: path.display().to_string(),
            reason: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let secret: [u8; 32] = rand::random();
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(key_error)?;
            }
            crate::secrets::write_private(path, &STANDARD.encode(secret)).map_err(key_error)?;
            Ok(secret.to_vec())
        }
        Err(e) => Err(key_error(e)),
    }
}
