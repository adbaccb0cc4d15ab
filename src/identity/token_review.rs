//! Caller authentication with Kubernetes ServiceAccount tokens: each bearer token is posted to
//! the API server as an authentication.k8s.io/v1 TokenReview with the audiences istiod asks
//! for (`istio-ca` by default), and an authenticated `system:serviceaccount:<ns>:<sa>` user
//! becomes the identity {namespace, service account}. Anything else is refused with a reason.
//!
//! Successes are cached briefly (keyed by the token's SHA-256, never the token) so that a
//! proxy opening several streams costs one review; refusals are not cached. Tokens never
//! reach a log line or an error message.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec, TokenReviewStatus};
use kube::api::{Api, PostParams};

/// Istio's default `TOKEN_AUDIENCES`.
pub const DEFAULT_AUDIENCE: &str = "istio-ca";
/// How long a successful review is reused.
const CACHE_TTL: Duration = Duration::from_secs(30);
/// Entries kept at most; beyond it expired ones are dropped, then all.
const CACHE_MAX: usize = 10_000;

/// Who a token belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KubeIdentity {
    pub namespace: String,
    pub service_account: String,
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    #[error("no token")]
    NoToken,
    #[error("the TokenReview request failed: {0}")]
    Api(String),
    #[error("the API server could not review the token: {0}")]
    ReviewError(String),
    #[error("the token is not authenticated")]
    NotAuthenticated,
    #[error("the token is not valid for the audiences {0:?}")]
    WrongAudience(Vec<String>),
    #[error("the token is not a service account's (user {0:?})")]
    NotServiceAccount(String),
}

/// Reviews tokens through one API server.
pub struct TokenReviewAuthenticator {
    api: Api<TokenReview>,
    audiences: Vec<String>,
    cache: Mutex<HashMap<[u8; 32], (KubeIdentity, Instant)>>,
}

impl TokenReviewAuthenticator {
    /// Reviews with `audiences` (empty: the API server's own audience).
    pub fn new(client: kube::Client, audiences: Vec<String>) -> TokenReviewAuthenticator {
        TokenReviewAuthenticator {
            api: Api::all(client),
            audiences,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The identity `token` proves, or why it proves none.
    pub async fn authenticate(&self, token: &str) -> Result<KubeIdentity, Refusal> {
        let token = token.trim();
        if token.is_empty() {
            return Err(Refusal::NoToken);
        }
        let key = digest(token);
        if let Some(identity) = self.cached(&key) {
            return Ok(identity);
        }
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: token.to_string(),
                audiences: Some(self.audiences.clone()).filter(|a| !a.is_empty()),
            },
            ..TokenReview::default()
        };
        let reviewed = self
            .api
            .create(&PostParams::default(), &review)
            .await
            .map_err(|error| Refusal::Api(error.to_string()))?;
        let identity = identity_from(reviewed.status.as_ref(), &self.audiences)?;
        self.remember(key, identity.clone());
        Ok(identity)
    }

    fn cached(&self, key: &[u8; 32]) -> Option<KubeIdentity> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .get(key)
            .filter(|(_, at)| at.elapsed() < CACHE_TTL)
            .map(|(identity, _)| identity.clone())
    }

    fn remember(&self, key: [u8; 32], identity: KubeIdentity) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHE_MAX {
            cache.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
        }
        cache.insert(key, (identity, Instant::now()));
    }
}

fn digest(token: &str) -> [u8; 32] {
    let hash = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut key = [0u8; 32];
    key.copy_from_slice(hash.as_ref());
    key
}

/// The identity in a review's status, checked as istiod checks it (authenticated, in group
/// `system:serviceaccounts`, user `system:serviceaccount:<ns>:<sa>`), plus the audience
/// check the TokenReview API asks of its clients.
fn identity_from(
    status: Option<&TokenReviewStatus>,
    audiences: &[String],
) -> Result<KubeIdentity, Refusal> {
    let status = status.ok_or(Refusal::NotAuthenticated)?;
    if let Some(error) = status.error.as_deref().filter(|e| !e.is_empty()) {
        return Err(Refusal::ReviewError(error.to_string()));
    }
    if status.authenticated != Some(true) {
        return Err(Refusal::NotAuthenticated);
    }
    if !audiences.is_empty() {
        let granted = status.audiences.as_deref().unwrap_or_default();
        if !granted.iter().any(|a| audiences.contains(a)) {
            return Err(Refusal::WrongAudience(audiences.to_vec()));
        }
    }
    let user = status.user.clone().unwrap_or_default();
    let username = user.username.unwrap_or_default();
    let in_group = user
        .groups
        .unwrap_or_default()
        .iter()
        .any(|g| g == "system:serviceaccounts");
    let parts: Vec<&str> = username.split(':').collect();
    match parts.as_slice() {
        ["system", "serviceaccount", namespace, account]
            if in_group && !namespace.is_empty() && !account.is_empty() =>
        {
            Ok(KubeIdentity {
                namespace: namespace.to_string(),
                service_account: account.to_string(),
            })
        }
        _ => Err(Refusal::NotServiceAccount(username)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::authentication::v1::UserInfo;

    fn status(username: &str, groups: &[&str], audiences: &[&str]) -> TokenReviewStatus {
        TokenReviewStatus {
            authenticated: Some(true),
            audiences: Some(audiences.iter().map(|a| a.to_string()).collect()),
            user: Some(UserInfo {
                username: Some(username.to_string()),
                groups: Some(groups.iter().map(|g| g.to_string()).collect()),
                ..UserInfo::default()
            }),
            ..TokenReviewStatus::default()
        }
    }

    const SA_GROUPS: [&str; 3] = [
        "system:serviceaccounts",
        "system:serviceaccounts:shop",
        "system:authenticated",
    ];

    fn istio_ca() -> Vec<String> {
        vec![DEFAULT_AUDIENCE.to_string()]
    }

    #[test]
    fn a_service_account_user_is_its_identity() {
        let s = status(
            "system:serviceaccount:shop:reviews",
            &SA_GROUPS,
            &["istio-ca"],
        );
        assert_eq!(
            identity_from(Some(&s), &istio_ca()),
            Ok(KubeIdentity {
                namespace: "shop".into(),
                service_account: "reviews".into()
            })
        );
    }

    #[test]
    fn every_refusal_has_its_reason() {
        let not_authenticated = TokenReviewStatus {
            authenticated: Some(false),
            ..TokenReviewStatus::default()
        };
        assert_eq!(
            identity_from(Some(&not_authenticated), &istio_ca()),
            Err(Refusal::NotAuthenticated)
        );
        assert_eq!(
            identity_from(None, &istio_ca()),
            Err(Refusal::NotAuthenticated)
        );
        let errored = TokenReviewStatus {
            error: Some("token expired".into()),
            ..TokenReviewStatus::default()
        };
        assert_eq!(
            identity_from(Some(&errored), &istio_ca()),
            Err(Refusal::ReviewError("token expired".into()))
        );
        let other_audience = status("system:serviceaccount:shop:reviews", &SA_GROUPS, &["api"]);
        assert_eq!(
            identity_from(Some(&other_audience), &istio_ca()),
            Err(Refusal::WrongAudience(istio_ca()))
        );
        let person = status("alice", &["system:authenticated"], &["istio-ca"]);
        assert_eq!(
            identity_from(Some(&person), &istio_ca()),
            Err(Refusal::NotServiceAccount("alice".into()))
        );
        // The right shape of name without the group is not enough (istiod checks both).
        let impostor = status("system:serviceaccount:shop:reviews", &["x"], &["istio-ca"]);
        assert!(matches!(
            identity_from(Some(&impostor), &istio_ca()),
            Err(Refusal::NotServiceAccount(_))
        ));
        let malformed = status("system:serviceaccount:shop", &SA_GROUPS, &["istio-ca"]);
        assert!(identity_from(Some(&malformed), &istio_ca()).is_err());
    }

    #[test]
    fn without_audiences_the_status_audiences_are_not_checked() {
        let s = status("system:serviceaccount:a:b", &SA_GROUPS, &[]);
        assert!(identity_from(Some(&s), &[]).is_ok());
    }

    #[test]
    fn cache_keys_are_digests_not_tokens() {
        let key = digest("secret-token");
        assert_ne!(&key[..12], b"secret-token");
        assert_eq!(key, digest("secret-token"));
        assert_ne!(key, digest("secret-token2"));
    }
}
