//! Tokens meshd signs itself, for meshes without a Kubernetes API server: ES256 JWTs shaped
//! like Kubernetes ServiceAccount tokens, and the `Authenticator` that checks them.
//!
//! They are signed by their own key, `token-key.pem` in the CA directory, not by the CA
//! key: a plug-in CA key is often an organisation's intermediate that should sign only
//! certificates, and the two can then be rotated apart (replacing `token-key.pem` revokes
//! every token at once without touching any workload certificate).

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use futures::future::BoxFuture;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair as _, UnparsedPublicKey};
use serde_json::{json, Value};

use super::issue::Identity;
use super::CaError;

pub const TOKEN_KEY: &str = "token-key.pem";
/// The issuer of meshd's tokens.
pub const ISSUER: &str = "meshd";
/// The audience xDS and CA callers' tokens must carry (Istio's default for its CA).
pub const AUDIENCE: &str = "istio-ca";
/// Leeway for clocks that differ a little between hosts.
const LEEWAY: u64 = 60;

/// Why a caller is not authenticated. Messages never include the token itself.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("no bearer token in the authorization metadata")]
    NoToken,
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("token signature does not verify (not signed by this meshd)")]
    BadSignature,
    #[error("token expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token audience does not include {AUDIENCE:?}")]
    WrongAudience,
    #[error("token issuer {0:?} is not {ISSUER:?}")]
    WrongIssuer(String),
    #[error("token subject {0:?} is not a service account (system:serviceaccount:NS:SA)")]
    NotServiceAccount(String),
    #[error("token refused by the Kubernetes TokenReview: {0}")]
    Refused(String),
}

/// Turns a caller's bearer token into the workload identity it proves. Small on purpose:
/// a Kubernetes TokenReview implementation comes later beside this one.
pub trait Authenticator: Send + Sync + 'static {
    fn authenticate<'a>(
        &'a self,
        bearer: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Identity, AuthError>>;
}

/// Signs and checks meshd's own tokens.
pub struct TokenSigner {
    key: EcdsaKeyPair,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigner { key: [redacted] }")
    }
}

impl TokenSigner {
    /// A key kept in memory only: its tokens stop verifying on restart.
    pub fn in_memory() -> Result<TokenSigner, CaError> {
        let key =
            rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(CaError::Sign)?;
        TokenSigner::from_pkcs8(key.serialized_der())
    }

    /// Loads `token-key.pem` from `dir`, making it on first use.
    pub fn load_or_create(dir: &Path) -> Result<TokenSigner, CaError> {
        let path = dir.join(TOKEN_KEY);
        if !path.exists() {
            std::fs::create_dir_all(dir).map_err(|e| CaError::io(dir, e))?;
            let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
                .map_err(CaError::Sign)?;
            match super::authority::write_private(&path, key.serialize_pem().as_bytes()) {
                Ok(()) => {}
                // Made meanwhile by another process: use that one.
                Err(CaError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        let pem = std::fs::read_to_string(&path).map_err(|e| CaError::io(&path, e))?;
        let key = rcgen::KeyPair::from_pem(&pem).map_err(|e| CaError::Invalid {
            path: path.clone(),
            reason: format!("not a private key: {e}"),
        })?;
        TokenSigner::from_pkcs8(key.serialized_der()).map_err(|_| CaError::Invalid {
            path,
            reason: "not a P-256 key".into(),
        })
    }

    fn from_pkcs8(der: &[u8]) -> Result<TokenSigner, CaError> {
        let key = EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            der,
            &SystemRandom::new(),
        )
        .map_err(|e| CaError::BadIdentity(format!("token key: {e}")))?;
        Ok(TokenSigner { key })
    }

    /// A token for `identity`, valid from now for `ttl`.
    pub fn mint(&self, identity: &Identity, ttl: Duration) -> Result<String, CaError> {
        let now = unix(SystemTime::now());
        let claims = json!({
            "iss": ISSUER,
            "sub": format!("system:serviceaccount:{}:{}", identity.namespace, identity.service_account),
            "aud": [AUDIENCE],
            "iat": now,
            "nbf": now,
            "exp": now + ttl.as_secs(),
            "kubernetes.io": {
                "namespace": identity.namespace,
                "serviceaccount": {"name": identity.service_account},
            },
        });
        self.sign(&claims)
    }

    /// Signs any claims (tests make bad tokens with it).
    pub fn sign(&self, claims: &Value) -> Result<String, CaError> {
        let header = json!({"alg": "ES256", "typ": "JWT"});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = self
            .key
            .sign(&SystemRandom::new(), signing_input.as_bytes())
            .map_err(|e| CaError::BadIdentity(format!("signing a token: {e}")))?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(sig.as_ref())
        ))
    }

    /// The identity `token` proves, checked at `now`.
    pub fn verify(&self, token: &str, now: SystemTime) -> Result<Identity, AuthError> {
        let malformed = |why: &str| AuthError::Malformed(why.to_string());
        let mut parts = token.trim().split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("not three dot-separated parts"));
        };
        let header: Value = decode_json(h).ok_or_else(|| malformed("header is not JSON"))?;
        if header.get("alg").and_then(Value::as_str) != Some("ES256") {
            return Err(malformed("alg is not ES256"));
        }
        let sig = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| malformed("signature is not base64url"))?;
        let public = UnparsedPublicKey::new(
            &signature::ECDSA_P256_SHA256_FIXED,
            self.key.public_key().as_ref(),
        );
        public
            .verify(format!("{h}.{c}").as_bytes(), &sig)
            .map_err(|_| AuthError::BadSignature)?;
        let claims: Value = decode_json(c).ok_or_else(|| malformed("claims are not JSON"))?;
        let now = unix(now);
        let exp = claims
            .get("exp")
            .and_then(Value::as_u64)
            .ok_or_else(|| malformed("no exp claim"))?;
        if now >= exp + LEEWAY {
            return Err(AuthError::Expired);
        }
        if let Some(nbf) = claims.get("nbf").and_then(Value::as_u64) {
            if nbf > now + LEEWAY {
                return Err(AuthError::NotYetValid);
            }
        }
        let iss = claims.get("iss").and_then(Value::as_str).unwrap_or("");
        if iss != ISSUER {
            return Err(AuthError::WrongIssuer(iss.to_string()));
        }
        let aud_ok = match claims.get("aud") {
            Some(Value::String(a)) => a == AUDIENCE,
            Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(AUDIENCE)),
            _ => false,
        };
        if !aud_ok {
            return Err(AuthError::WrongAudience);
        }
        let sub = claims.get("sub").and_then(Value::as_str).unwrap_or("");
        service_account_subject(sub).ok_or_else(|| AuthError::NotServiceAccount(sub.into()))
    }
}

impl Authenticator for TokenSigner {
    fn authenticate<'a>(
        &'a self,
        bearer: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Identity, AuthError>> {
        let result = match bearer.map(str::trim).filter(|t| !t.is_empty()) {
            None => Err(AuthError::NoToken),
            Some(token) => self.verify(token, SystemTime::now()),
        };
        Box::pin(std::future::ready(result))
    }
}

/// `system:serviceaccount:NS:SA` with both names DNS-label-like.
fn service_account_subject(sub: &str) -> Option<Identity> {
    let rest = sub.strip_prefix("system:serviceaccount:")?;
    let (ns, sa) = rest.split_once(':')?;
    let ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 253
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    };
    (ok(ns) && ok(sa)).then(|| Identity {
        namespace: ns.to_string(),
        service_account: sa.to_string(),
    })
}

fn decode_json(part: &str) -> Option<Value> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
