//! TLS credentials from Kubernetes Secrets, as gateways use them through `credentialName`:
//! a certificate chain with its private key and/or a CA bundle, all PEM. The key material
//! never shows in `Debug` output (and so in no log or debug view built from it).

use std::fmt;

use super::model::ObjectKey;

/// One Secret's TLS material, checked to be PEM of the right kind.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsCredential {
    pub key: ObjectKey,
    /// Certificate chain and private key (PEM); both or neither.
    pub identity: Option<CertAndKey>,
    /// CA certificates (PEM) that verify clients (`ca.crt`, generic `cacert`).
    pub ca_cert: Option<Vec<u8>>,
}

#[derive(Clone, PartialEq, Eq)]
pub struct CertAndKey {
    pub cert_chain: Vec<u8>,
    pub private_key: Vec<u8>,
}

impl fmt::Debug for TlsCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsCredential")
            .field("key", &self.key)
            .field("identity", &self.identity)
            .field("ca_cert", &self.ca_cert.as_ref().map(|c| c.len()))
            .finish()
    }
}

impl fmt::Debug for CertAndKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertAndKey")
            .field("cert_chain_bytes", &self.cert_chain.len())
            .field("private_key", &"[redacted]")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_key_material() {
        let c = TlsCredential {
            key: ObjectKey {
                namespace: "ns".into(),
                name: "cert".into(),
            },
            identity: Some(CertAndKey {
                cert_chain: b"CHAIN".to_vec(),
                private_key: b"TOP-SECRET".to_vec(),
            }),
            ca_cert: Some(b"CA-BYTES".to_vec()),
        };
        let shown = format!("{c:?}");
        assert!(
            shown.contains("ns") && shown.contains("[redacted]"),
            "{shown}"
        );
        for hidden in ["CHAIN", "TOP-SECRET", "CA-BYTES"] {
            assert!(!shown.contains(hidden), "{shown}");
        }
    }
}
