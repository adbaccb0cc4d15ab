//! Where identity in Kubernetes meets the CA (`crate::ca`): the authority loaded from the
//! root namespace's Secrets (`ca_secret`), and the secure port's authenticator, which takes
//! meshd's own signed tokens (checked locally) and otherwise asks a TokenReview.

use std::sync::Arc;

use futures::future::BoxFuture;

use super::ca_secret::{self, CaOrigin};
use super::token_review::{Refusal, TokenReviewAuthenticator, DEFAULT_AUDIENCE};
use crate::ca::{AuthError, Authenticator, Authority, Identity, TokenSigner};

/// The authority from `cacerts` or `istio-ca-secret` in `root_namespace`, made and stored
/// there when neither exists.
pub async fn authority_from_secrets(
    client: kube::Client,
    root_namespace: &str,
) -> anyhow::Result<(Authority, CaOrigin)> {
    let stored = ca_secret::load_or_create(client, root_namespace, || {
        Authority::new_root_pems().map_err(anyhow::Error::from)
    })
    .await?;
    let name = match stored.origin {
        CaOrigin::PlugIn => ca_secret::CACERTS,
        CaOrigin::Stored | CaOrigin::Created => ca_secret::ISTIO_CA_SECRET,
    };
    let origin = format!("Secret {root_namespace}/{name}");
    let pems = stored.pems;
    Authority::from_pems(
        &pems.ca_cert,
        &pems.ca_key,
        Some(&pems.root_cert),
        Some(&pems.cert_chain),
        &origin,
    )
    .map(|authority| (authority, stored.origin))
    .map_err(|error| anyhow::anyhow!("{origin}: {error}"))
}

/// The secure port's authenticator with a cluster.
pub fn authenticator(client: kube::Client, signer: Arc<TokenSigner>) -> Arc<dyn Authenticator> {
    Arc::new(KubeAuthenticator {
        signer,
        reviewer: TokenReviewAuthenticator::new(client, vec![DEFAULT_AUDIENCE.to_string()]),
    })
}

struct KubeAuthenticator {
    signer: Arc<TokenSigner>,
    reviewer: TokenReviewAuthenticator,
}

impl Authenticator for KubeAuthenticator {
    fn authenticate<'a>(
        &'a self,
        bearer: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Identity, AuthError>> {
        Box::pin(async move {
            let Some(token) = bearer.map(str::trim).filter(|t| !t.is_empty()) else {
                return Err(AuthError::NoToken);
            };
            // A local check first: it costs no API call, and a ServiceAccount token fails
            // it at once (another issuer and signer).
            if let Ok(identity) = self.signer.verify(token, std::time::SystemTime::now()) {
                return Ok(identity);
            }
            self.reviewer
                .authenticate(token)
                .await
                .map(|found| Identity {
                    namespace: found.namespace,
                    service_account: found.service_account,
                })
                .map_err(|refusal| match refusal {
                    Refusal::NoToken => AuthError::NoToken,
                    Refusal::NotServiceAccount(user) => AuthError::NotServiceAccount(user),
                    other => AuthError::Refused(other.to_string()),
                })
        })
    }
}
