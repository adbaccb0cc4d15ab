//! The SDS side of the CA: authenticates a secure-port caller from its `authorization:
//! Bearer` metadata and hands the xDS server a watch on that identity's secrets, `default`
//! (certificate chain and key) and `ROOTCA` (the trust bundle), by Istio's names.
//!
//! One entry per authenticated stream, so a key is never given to two proxies (two proxies
//! of one service account get the same SAN and different keys). Its task issues the
//! certificate off the async workers (`spawn_blocking`), so issuing never holds up a push,
//! then sleeps until about half the lifetime (with jitter, so a fleet issued together does
//! not renew together) and issues again; the watch wakes the stream. When the CA is
//! replaced (`live`), a new trust bundle is pushed at once, and a new signing CA has the
//! certificate issued again after a random delay within `reissue_window`, so a fleet is
//! not reissued all at once. The entry ends with its stream. Keys never appear in logs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
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
use super::live::{next_change, LiveAuthority};
use super::token::Authenticator;
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
    /// After the signing CA changes, each certificate is issued again at a random moment
    /// within this window.
    pub reissue_window: Duration,
}

/// Authenticates callers and keeps each identity's secrets fresh.
#[derive(Clone)]
pub struct SdsIssuer {
    inner: Arc<Inner>,
}

struct Inner {
    authority: LiveAuthority,
    authenticator: Arc<dyn Authenticator>,
    options: SdsOptions,
    entries: AtomicUsize,
}

impl SdsIssuer {
    pub fn new(
        authority: impl Into<LiveAuthority>,
        authenticator: Arc<dyn Authenticator>,
        options: SdsOptions,
    ) -> Self {
        SdsIssuer {
            inner: Arc::new(Inner {
                authority: authority.into(),
                authenticator,
                options,
                entries: AtomicUsize::new(0),
            }),
        }
    }

    /// A watch on new secrets for one stream of `identity`: its own key and certificate,
    /// issued in the background and renewed until the watch is dropped. Empty until the
    /// first certificate is issued.
    pub fn subscribe(&self, identity: &Identity) -> watch::Receiver<Arc<ResourceMap>> {
        let (tx, rx) = watch::channel(Arc::<ResourceMap>::default());
        self.inner.entries.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(keep_fresh(self.inner.clone(), identity.clone(), tx));
        rx
    }

    /// Streams with live secrets (for tests and metrics).
    pub fn entries(&self) -> usize {
        self.inner.entries.load(Ordering::Relaxed)
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

/// Issues the stream's certificate, then renews it at about half-life, pushes a new trust
/// bundle and reissues under a new signing CA, until the stream drops the watch.
async fn keep_fresh(inner: Arc<Inner>, identity: Identity, tx: watch::Sender<Arc<ResourceMap>>) {
    let uri = identity.spiffe(&inner.options.trust_domain);
    let mut changes = inner.authority.watch();
    'issue: loop {
        let authority = changes.borrow_and_update().clone();
        let (a, u, ttl) = (
            authority.clone(),
            uri.clone(),
            inner.options.workload_cert_ttl,
        );
        let issued = match tokio::task::spawn_blocking(move || a.issue(&u, ttl)).await {
            Ok(Ok(issued)) => Some(issued),
            Ok(Err(e)) => {
                warn!(identity = %uri, error = %e, "cannot issue workload certificate, retrying");
                None
            }
            Err(e) => {
                warn!(identity = %uri, error = %e, "issuing task failed, retrying");
                None
            }
        };
        let mut bundle = authority.trust_bundle().to_string();
        let mut renew_at = tokio::time::Instant::now()
            + match &issued {
                Some(issued) => {
                    let wait = renew_after(issued);
                    info!(identity = %uri, renew_in = ?wait, "issued workload certificate");
                    tx.send_replace(Arc::new(secrets(issued, authority.trust_bundle())));
                    wait
                }
                None => RETRY,
            };
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(renew_at) => continue 'issue,
                () = tx.closed() => break 'issue,
                new = next_change(&mut changes) => {
                    if !new.same_signer(&authority) {
                        // Spread over the window: a fleet is not reissued all at once.
                        let soon = tokio::time::Instant::now()
                            + inner.options.reissue_window.mul_f64(random_unit());
                        renew_at = renew_at.min(soon);
                    }
                    if let Some(issued) = issued.as_ref().filter(|_| new.trust_bundle() != bundle) {
                        // The certificate in use, with the new bundle: a root added or
                        // retired reaches the proxy now.
                        tx.send_replace(Arc::new(secrets(issued, new.trust_bundle())));
                    }
                    bundle = new.trust_bundle().to_string();
                }
            }
        }
    }
    inner.entries.fetch_sub(1, Ordering::Relaxed);
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
