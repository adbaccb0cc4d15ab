//! The SDS side of the CA: authenticates a secure-port caller from its `authorization:
//! Bearer` metadata and hands the xDS server a watch on that identity's secrets, `default`
//! (certificate chain and key) and `ROOTCA` (the trust bundle), by Istio's names.
//!
//! One entry per identity, shared by every stream of that identity. Its task issues the
//! certificate off the async workers (`spawn_blocking`), so issuing never holds up a push,
//! then sleeps until about half the lifetime (with jitter, so a fleet issued together does
//! not renew together) and issues again; the watch wakes every stream holding it. The
//! entry ends when no stream holds it any more. Keys never appear in logs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use envoy_types::pb::envoy::config::core::v3::{data_source, DataSource};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    secret, CertificateValidationContext, Secret, TlsCertificate,
};
use futures::future::BoxFuture;
use tokio::sync::watch;
use tonic::codegen::http::HeaderMap;
use tonic::Status;
use tracing::{info, warn};

use super::issue::{Identity, Issued};
use super::token::Authenticator;
use super::Authority;
use crate::envoy::resource::{type_url, Resource, ResourceMap};
use crate::xds::{Caller, CallerAuth};

/// Istio's SDS name for the workload's own certificate and key.
pub const DEFAULT_SECRET: &str = "default";
/// Istio's SDS name for the trust bundle.
pub const ROOT_SECRET: &str = "ROOTCA";
/// Wait before retrying an issuance that failed.
const RETRY: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct SdsOptions {
    pub trust_domain: String,
    pub workload_cert_ttl: Duration,
}

/// Authenticates callers and keeps each identity's secrets fresh.
#[derive(Clone)]
pub struct SdsIssuer {
    inner: Arc<Inner>,
}

struct Inner {
    authority: Arc<Authority>,
    authenticator: Arc<dyn Authenticator>,
    options: SdsOptions,
    entries: Mutex<HashMap<Identity, watch::Sender<Arc<ResourceMap>>>>,
}

impl SdsIssuer {
    pub fn new(
        authority: Arc<Authority>,
        authenticator: Arc<dyn Authenticator>,
        options: SdsOptions,
    ) -> Self {
        SdsIssuer {
            inner: Arc::new(Inner {
                authority,
                authenticator,
                options,
                entries: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// A watch on `identity`'s secrets, issuing them (in the background) if no stream of
    /// that identity holds them yet. Empty until the first certificate is issued.
    pub fn subscribe(&self, identity: &Identity) -> watch::Receiver<Arc<ResourceMap>> {
        let mut entries = self.inner.entries.lock().expect("sds entries lock");
        if let Some(tx) = entries.get(identity) {
            return tx.subscribe();
        }
        let (tx, rx) = watch::channel(Arc::<ResourceMap>::default());
        entries.insert(identity.clone(), tx.clone());
        tokio::spawn(keep_fresh(self.inner.clone(), identity.clone(), tx));
        rx
    }

    /// Identities with live secrets (for tests and metrics).
    pub fn identities(&self) -> usize {
        self.inner.entries.lock().expect("sds entries lock").len()
    }
}

impl CallerAuth for SdsIssuer {
    fn authenticate<'a>(
        &'a self,
        metadata: &'a HeaderMap,
    ) -> BoxFuture<'a, Result<Caller, Status>> {
        Box::pin(async move {
            let bearer = bearer_token(metadata);
            let identity = self
                .inner
                .authenticator
                .authenticate(bearer)
                .await
                .map_err(|e| Status::unauthenticated(format!("authentication failed: {e}")))?;
            let mut secrets = self.subscribe(&identity);
            // Wait (bounded) for the first certificate, so the proxy's first secret request
            // is answered with it rather than with nothing.
            let _ =
                tokio::time::timeout(Duration::from_secs(10), secrets.wait_for(|s| !s.is_empty()))
                    .await;
            secrets.mark_unchanged();
            Ok(Caller {
                name: identity.spiffe(&self.inner.options.trust_domain),
                secrets,
            })
        })
    }
}

/// The token of `authorization: Bearer <token>`, if any.
pub fn bearer_token(metadata: &HeaderMap) -> Option<&str> {
    let value = metadata.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// Issues `identity`'s certificate, then renews it at about half-life, until no stream
/// holds the watch any more.
async fn keep_fresh(inner: Arc<Inner>, identity: Identity, tx: watch::Sender<Arc<ResourceMap>>) {
    let uri = identity.spiffe(&inner.options.trust_domain);
    loop {
        let authority = inner.authority.clone();
        let (u, ttl) = (uri.clone(), inner.options.workload_cert_ttl);
        let issued = tokio::task::spawn_blocking(move || authority.issue(&u, ttl)).await;
        let wait = match issued {
            Ok(Ok(issued)) => {
                let wait = renew_after(&issued);
                info!(identity = %uri, renew_in = ?wait, "issued workload certificate");
                tx.send_replace(Arc::new(secrets(&issued, inner.authority.trust_bundle())));
                wait
            }
            Ok(Err(e)) => {
                warn!(identity = %uri, error = %e, "cannot issue workload certificate, retrying");
                RETRY
            }
            Err(e) => {
                warn!(identity = %uri, error = %e, "issuing task failed, retrying");
                RETRY
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = tx.closed() => {}
        }
        if tx.receiver_count() == 0 {
            let mut entries = inner.entries.lock().expect("sds entries lock");
            // Checked again under the lock: `subscribe` may have just taken a receiver.
            if tx.receiver_count() == 0 {
                entries.remove(&identity);
                return;
            }
        }
    }
}

/// About half the certificate's remaining lifetime, spread by ±10%.
pub fn renew_after(issued: &Issued) -> Duration {
    let life = issued
        .not_after
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    let jitter = 0.9 + 0.2 * random_unit();
    life.mul_f64(0.5 * jitter).max(Duration::from_secs(1))
}

fn random_unit() -> f64 {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 4];
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX)
}

/// The `default` and `ROOTCA` secrets for an issued certificate.
pub fn secrets(issued: &Issued, trust_bundle: &str) -> ResourceMap {
    let inline = |bytes: &str| {
        Some(DataSource {
            specifier: Some(data_source::Specifier::InlineBytes(
                bytes.as_bytes().to_vec(),
            )),
            ..Default::default()
        })
    };
    let default = Secret {
        name: DEFAULT_SECRET.into(),
        r#type: Some(secret::Type::TlsCertificate(TlsCertificate {
            certificate_chain: inline(&issued.chain_pem),
            private_key: inline(&issued.key_pem),
            ..Default::default()
        })),
    };
    let root = Secret {
        name: ROOT_SECRET.into(),
        r#type: Some(secret::Type::ValidationContext(
            CertificateValidationContext {
                trusted_ca: inline(trust_bundle),
                ..Default::default()
            },
        )),
    };
    [default, root]
        .into_iter()
        .map(|s| {
            let name = s.name.clone();
            let resource = Resource::encode(name.clone(), type_url::SECRET, &s);
            (name, Arc::new(resource))
        })
        .collect()
}
