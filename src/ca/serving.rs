//! meshd's own serving certificate for the secure xDS port: issued by the CA for the
//! `--server-name` DNS names, renewed at about half its lifetime, and handed to rustls
//! through a resolver, so that new connections get the renewed one without a restart. A
//! new signing CA (`live`) has it issued again at once.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio_rustls::rustls::crypto::ring::sign::any_ecdsa_type;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::ServerConfig;
use tracing::{info, warn};

use super::live::{next_change, LiveAuthority};
use super::{certs_in, Authority, CaError};

/// Lifetime of meshd's serving certificate.
pub const SERVING_TTL: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug)]
pub struct ServingCert {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for ServingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().expect("serving cert lock").clone())
    }
}

impl ServingCert {
    /// Issues the first certificate and starts renewing it (needs a tokio runtime).
    pub fn start(
        authority: impl Into<LiveAuthority>,
        names: Vec<String>,
        ttl: Duration,
    ) -> Result<Arc<ServingCert>, CaError> {
        let authority: LiveAuthority = authority.into();
        let mut changes = authority.watch();
        let first = certified(&changes.borrow_and_update(), &names, ttl)?;
        let serving = Arc::new(ServingCert {
            current: RwLock::new(Arc::new(first)),
        });
        let weak = Arc::downgrade(&serving);
        tokio::spawn(async move {
            let mut wait = ttl / 2;
            let mut signer = authority.current();
            loop {
                let renew_at = tokio::time::Instant::now() + wait;
                loop {
                    tokio::select! {
                        () = tokio::time::sleep_until(renew_at) => break,
                        new = next_change(&mut changes) => {
                            if !new.same_signer(&signer) {
                                info!("the signing CA changed: issuing the serving certificate again");
                                break;
                            }
                        }
                    }
                }
                let Some(serving) = weak.upgrade() else {
                    return;
                };
                signer = authority.current();
                let (a, n) = (signer.clone(), names.clone());
                match tokio::task::spawn_blocking(move || certified(&a, &n, ttl)).await {
                    Ok(Ok(cert)) => {
                        *serving.current.write().expect("serving cert lock") = Arc::new(cert);
                        info!("renewed the secure xds serving certificate");
                        wait = ttl / 2;
                    }
                    Ok(Err(e)) => {
                        warn!(error = %e, "cannot renew the serving certificate, retrying");
                        wait = Duration::from_secs(10);
                    }
                    Err(e) => {
                        warn!(error = %e, "serving certificate task failed, retrying");
                        wait = Duration::from_secs(10);
                    }
                }
            }
        });
        Ok(serving)
    }

    /// The certificate chain new connections get now (DER, leaf first).
    pub fn chain(&self) -> Vec<Vec<u8>> {
        let current = self.current.read().expect("serving cert lock").clone();
        current.cert.iter().map(|c| c.to_vec()).collect()
    }

    /// A rustls server configuration (ring, TLS 1.2 and 1.3, ALPN h2) using this
    /// certificate.
    pub fn server_config(self: &Arc<Self>) -> anyhow::Result<Arc<ServerConfig>> {
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(config))
    }
}

fn certified(
    authority: &Authority,
    names: &[String],
    ttl: Duration,
) -> Result<CertifiedKey, CaError> {
    let issued = authority.issue_server(names, ttl)?;
    let chain: Vec<CertificateDer<'static>> = certs_in(&issued.chain_pem)
        .into_iter()
        .map(CertificateDer::from)
        .collect();
    let key_der = x509_parser::pem::Pem::iter_from_buffer(issued.key_pem.as_bytes())
        .find_map(Result::ok)
        .map(|p| p.contents)
        .ok_or_else(|| CaError::BadIdentity("serving key is not PEM".into()))?;
    let key = any_ecdsa_type(&PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_der)))
        .map_err(|e| CaError::BadIdentity(format!("serving key: {e}")))?;
    Ok(CertifiedKey::new(chain, key))
}
