//! Ed25519 signing keys (private JWK set) and the public JWKS.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use ed25519_dalek::SigningKey;
use jsonwebtoken::{DecodingKey, EncodingKey};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::token::{self, Claims, TokenError};
use crate::AUDIENCE;

/// Why a key file or JWKS could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}: not a JWK set: {1}")]
    Parse(String, serde_json::Error),
    #[error("key {kid:?}: {reason}")]
    Invalid { kid: String, reason: String },
    #[error("the key set has no Ed25519 key")]
    Empty,
    #[error("key {0:?} is the only signing key: add a new one before removing it")]
    LastKey(String),
}

/// One JWK as stored and served: an Ed25519 OKP key, `d` only in the private file.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Jwk {
    kty: String,
    #[serde(default)]
    crv: String,
    #[serde(default)]
    kid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    alg: Option<String>,
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    usage: Option<String>,
    #[serde(default)]
    x: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    d: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct JwkSet {
    keys: Vec<Jwk>,
}

struct Signer {
    kid: String,
    seed: [u8; 32],
    encoding: EncodingKey,
}

impl Signer {
    fn from_seed(seed: [u8; 32]) -> Result<Self, KeyError> {
        let signing = SigningKey::from_bytes(&seed);
        let x = URL_SAFE_NO_PAD.encode(signing.verifying_key().as_bytes());
        let kid = thumbprint(&x);
        let der = signing.to_pkcs8_der().map_err(|error| KeyError::Invalid {
            kid: kid.clone(),
            reason: error.to_string(),
        })?;
        Ok(Self {
            kid,
            seed,
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
        })
    }

    fn x(&self) -> String {
        URL_SAFE_NO_PAD.encode(
            SigningKey::from_bytes(&self.seed)
                .verifying_key()
                .as_bytes(),
        )
    }

    fn jwk(&self, private: bool) -> Jwk {
        Jwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            kid: self.kid.clone(),
            alg: Some("EdDSA".into()),
            usage: Some("sig".into()),
            x: self.x(),
            d: private.then(|| URL_SAFE_NO_PAD.encode(self.seed)),
        }
    }
}

/// RFC 7638 thumbprint of an Ed25519 public key: the key id.
fn thumbprint(x: &str) -> String {
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

fn decode_32(kid: &str, field: &str, value: &str) -> Result<[u8; 32], KeyError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(value.trim_end_matches('='))
        .map_err(|error| KeyError::Invalid {
            kid: kid.into(),
            reason: format!("{field}: {error}"),
        })?;
    bytes.try_into().map_err(|_| KeyError::Invalid {
        kid: kid.into(),
        reason: format!("{field} is not 32 bytes"),
    })
}

fn is_ed25519(jwk: &Jwk) -> bool {
    jwk.kty == "OKP" && jwk.crv == "Ed25519"
}

/// The origin's signing keys, oldest first: the last (newest) signs, every
/// key verifies. Stored as a private JWK set (`{"keys":[{..., "d": ...}]}`).
pub struct SigningKeySet {
    keys: Vec<Signer>,
}

impl std::fmt::Debug for SigningKeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.keys.iter().map(|key| key.kid.as_str()).collect();
        f.debug_struct("SigningKeySet")
            .field("kids", &kids)
            .finish()
    }
}

impl SigningKeySet {
    /// A set with one fresh key.
    pub fn generate() -> Self {
        let mut set = Self { keys: Vec::new() };
        set.rotate();
        set
    }

    /// Adds a fresh key, which signs from now on; returns its kid.
    pub fn rotate(&mut self) -> String {
        loop {
            let mut seed = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut seed);
            // Encoding a fresh 32-byte seed cannot fail; retry rather than panic.
            if let Ok(signer) = Signer::from_seed(seed) {
                let kid = signer.kid.clone();
                self.keys.push(signer);
                return kid;
            }
        }
    }

    /// Removes a key: tokens it signed stop verifying. The last key stays.
    pub fn remove(&mut self, kid: &str) -> Result<bool, KeyError> {
        if self.keys.len() == 1 && self.keys[0].kid == kid {
            return Err(KeyError::LastKey(kid.into()));
        }
        let before = self.keys.len();
        self.keys.retain(|key| key.kid != kid);
        Ok(self.keys.len() != before)
    }

    /// Key ids, oldest first; the last one signs.
    pub fn kids(&self) -> Vec<String> {
        self.keys.iter().map(|key| key.kid.clone()).collect()
    }

    /// The kid new tokens are signed with.
    pub fn current_kid(&self) -> &str {
        self.keys
            .last()
            .map(|key| key.kid.as_str())
            .unwrap_or_default()
    }

    /// Parses a private JWK set.
    pub fn from_json(text: &str, origin: &str) -> Result<Self, KeyError> {
        let set: JwkSet =
            serde_json::from_str(text).map_err(|error| KeyError::Parse(origin.into(), error))?;
        let mut keys = Vec::new();
        for jwk in set.keys.iter().filter(|jwk| is_ed25519(jwk)) {
            let d = jwk.d.as_deref().ok_or_else(|| KeyError::Invalid {
                kid: jwk.kid.clone(),
                reason: "no private part (d)".into(),
            })?;
            let signer = Signer::from_seed(decode_32(&jwk.kid, "d", d)?)?;
            if !jwk.kid.is_empty() && jwk.kid != signer.kid {
                return Err(KeyError::Invalid {
                    kid: jwk.kid.clone(),
                    reason: format!("kid is not the key's thumbprint {}", signer.kid),
                });
            }
            keys.push(signer);
        }
        if keys.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(Self { keys })
    }

    /// The private JWK set, to store (mode 0600) in the data dir.
    pub fn to_json(&self) -> String {
        let set = JwkSet {
            keys: self.keys.iter().map(|key| key.jwk(true)).collect(),
        };
        serde_json::to_string_pretty(&set).unwrap_or_default()
    }

    /// Reads the key file at `path`.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
            path: path.into(),
            source,
        })?;
        Self::from_json(&text, &path.display().to_string())
    }

    /// Reads the key file, or generates a key and writes the file when
    /// there is none (the first start).
    pub fn load_or_generate(path: &Path) -> Result<Self, KeyError> {
        match std::fs::metadata(path) {
            Ok(_) => Self::load(path),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let set = Self::generate();
                set.save(path)?;
                Ok(set)
            }
            Err(source) => Err(KeyError::Io {
                path: path.into(),
                source,
            }),
        }
    }

    /// Writes the private key file atomically, readable by its owner only.
    pub fn save(&self, path: &Path) -> Result<(), KeyError> {
        let io = |source| KeyError::Io {
            path: path.into(),
            source,
        };
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let temporary = path.with_extension("tmp");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temporary).map_err(io)?;
        std::io::Write::write_all(&mut file, self.to_json().as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&temporary, path).map_err(io)
    }

    /// The public half, for verifying and for the JWKS.
    pub fn public(&self) -> PublicKeySet {
        let keys = self.keys.iter().map(|key| key.jwk(false)).collect();
        // The public JWKs of valid signers always decode.
        PublicKeySet::from_jwks(keys).unwrap_or_else(|_| PublicKeySet::default())
    }

    /// Mints a token for `video` valid from `now` for `ttl_seconds`.
    pub fn mint(
        &self,
        video: &str,
        ttl_seconds: u64,
        now: u64,
        referrers: &[String],
    ) -> Result<String, TokenError> {
        let signer = self
            .keys
            .last()
            .ok_or_else(|| TokenError::Mint("no signing key".into()))?;
        if ttl_seconds == 0 {
            return Err(TokenError::Mint("ttl_seconds must be at least 1".into()));
        }
        let claims = Claims {
            aud: AUDIENCE.into(),
            sub: video.into(),
            iat: now,
            exp: now.saturating_add(ttl_seconds),
            referrers: referrers.to_vec(),
        };
        token::mint(&signer.kid, &signer.encoding, &claims)
    }
}

/// Public keys by kid: what edges and other servers verify with.
#[derive(Clone, Default)]
pub struct PublicKeySet {
    jwks: Vec<Jwk>,
    keys: HashMap<String, DecodingKey>,
}

impl std::fmt::Debug for PublicKeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKeySet")
            .field("kids", &self.kids())
            .finish()
    }
}

impl PartialEq for PublicKeySet {
    fn eq(&self, other: &Self) -> bool {
        self.kids() == other.kids()
    }
}

impl PublicKeySet {
    fn from_jwks(jwks: Vec<Jwk>) -> Result<Self, KeyError> {
        let mut keys = HashMap::new();
        let mut kept = Vec::new();
        for mut jwk in jwks.into_iter().filter(is_ed25519) {
            decode_32(&jwk.kid, "x", &jwk.x)?;
            let decoding =
                DecodingKey::from_ed_components(&jwk.x).map_err(|error| KeyError::Invalid {
                    kid: jwk.kid.clone(),
                    reason: error.to_string(),
                })?;
            if jwk.kid.is_empty() {
                jwk.kid = thumbprint(&jwk.x);
            }
            jwk.d = None;
            keys.insert(jwk.kid.clone(), decoding);
            kept.push(jwk);
        }
        if kept.is_empty() {
            return Err(KeyError::Empty);
        }
        Ok(Self { jwks: kept, keys })
    }

    /// Parses a JWKS document (keys other than Ed25519 are skipped; a
    /// private part, if any, is dropped).
    pub fn from_json(text: &str, origin: &str) -> Result<Self, KeyError> {
        let set: JwkSet =
            serde_json::from_str(text).map_err(|error| KeyError::Parse(origin.into(), error))?;
        Self::from_jwks(set.keys)
    }

    /// The JWKS document served at [`crate::JWKS_PATH`].
    pub fn to_json(&self) -> String {
        let set = JwkSet {
            keys: self.jwks.clone(),
        };
        serde_json::to_string(&set).unwrap_or_default()
    }

    /// Key ids, in the order of the set.
    pub fn kids(&self) -> Vec<String> {
        self.jwks.iter().map(|jwk| jwk.kid.clone()).collect()
    }

    /// Verifies `token` for `video` at `now` (Unix seconds): signature with
    /// the key its `kid` names, audience, expiry and subject.
    pub fn verify(&self, token: &str, video: &str, now: u64) -> Result<Claims, TokenError> {
        let kid = token::token_kid(token)?;
        let key = self
            .keys
            .get(&kid)
            .ok_or_else(|| TokenError::UnknownKey(kid.clone()))?;
        token::verify(token, key, video, now)
    }
}
