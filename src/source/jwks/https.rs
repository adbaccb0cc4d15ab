//! TLS for `https` jwksUris. The server's certificate is checked against the system's trust
//! store, or, as Go's client in istiod does, only against the PEM certificates in
//! `SSL_CERT_FILE` and the directories in `SSL_CERT_DIR` when either is set (so private
//! issuers and tests can be trusted without touching the system store). The store is read
//! again for every fetch, so an updated bundle is picked up without a restart.

use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

/// The roots jwksUris are checked against: the system's, or `SSL_CERT_FILE` /
/// `SSL_CERT_DIR`'s.
pub fn system_roots() -> Result<RootCertStore, String> {
    let loaded = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _unparsable) = roots.add_parsable_certificates(loaded.certs);
    if added == 0 {
        let errors: Vec<String> = loaded.errors.iter().map(|e| e.to_string()).collect();
        return Err(format!(
            "no trusted root certificates (system store, or SSL_CERT_FILE / SSL_CERT_DIR when \
             set){}",
            if errors.is_empty() {
                String::new()
            } else {
                format!(": {}", errors.join("; "))
            }
        ));
    }
    Ok(roots)
}

/// A client configuration trusting `roots` (ring, TLS 1.2 and 1.3, no client certificate).
pub fn client_config(roots: RootCertStore) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The TLS handshake over `tcp`, checking the certificate against `host` (a DNS name or an
/// IP address).
pub async fn connect(
    config: Arc<ClientConfig>,
    host: &str,
    tcp: TcpStream,
) -> Result<TlsStream<TcpStream>, String> {
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| format!("{host:?} is not a valid TLS server name: {e}"))?;
    TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS handshake: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use tokio_rustls::rustls::ServerConfig;
    use tokio_rustls::TlsAcceptor;

    const JWKS: &str = r#"{"keys":[{"kty":"EC"}]}"#;

    /// A CA and a serving certificate for 127.0.0.1 it signs.
    fn ca_and_server() -> (CertificateDer<'static>, ServerConfig) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = vec![rcgen::SanType::IpAddress([127, 0, 0, 1].into())];
        let cert = params.signed_by(&key, &issuer).unwrap();
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let server = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap();
        (ca.der().clone(), server)
    }

    /// Serves one TLS connection with `answer`; `close_notify` says whether it ends the TLS
    /// session properly or just drops the connection.
    async fn serve_once(server: ServerConfig, answer: String, close_notify: bool) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let Ok(mut tls) = TlsAcceptor::from(Arc::new(server)).accept(tcp).await else {
                return;
            };
            let mut buf = [0u8; 1024];
            let _ = tls.read(&mut buf).await;
            tls.write_all(answer.as_bytes()).await.unwrap();
            tls.flush().await.unwrap();
            if close_notify {
                tls.shutdown().await.unwrap();
            }
        });
        format!("https://{addr}/keys")
    }

    fn trusting(ca: &CertificateDer<'static>) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(ca.clone()).unwrap();
        client_config(roots).unwrap()
    }

    #[tokio::test]
    async fn fetches_over_tls_from_a_trusted_server_only() {
        let (ca, server) = ca_and_server();
        let ok = format!("HTTP/1.0 200 OK\r\n\r\n{JWKS}");
        let uri = serve_once(server.clone(), ok.clone(), true).await;
        let got = super::super::fetch_with(&uri, Some(trusting(&ca))).await;
        assert_eq!(got.unwrap(), JWKS);

        // Another CA: the handshake fails, and nothing is fetched.
        let (other_ca, _) = ca_and_server();
        let uri = serve_once(server.clone(), ok.clone(), true).await;
        let e = super::super::fetch_with(&uri, Some(trusting(&other_ca)))
            .await
            .unwrap_err();
        assert!(
            e.contains("TLS handshake") && e.contains("certificate"),
            "{e}"
        );

        // No close_notify: whole only with a matching Content-Length.
        let uri = serve_once(server.clone(), ok, false).await;
        let e = super::super::fetch_with(&uri, Some(trusting(&ca)))
            .await
            .unwrap_err();
        assert!(e.contains("close_notify"), "{e}");
        let sized = format!(
            "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{JWKS}",
            JWKS.len()
        );
        let uri = serve_once(server, sized, false).await;
        let got = super::super::fetch_with(&uri, Some(trusting(&ca))).await;
        assert_eq!(got.unwrap(), JWKS);
    }
}
