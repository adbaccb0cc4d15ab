//! Issuing workload certificates: a SPIFFE URI SAN only, a fresh P-256 key (or the key of
//! a CSR), digitalSignature + keyEncipherment, serverAuth + clientAuth, a random serial, a
//! notBefore set back a little for clock skew between hosts.

use std::fmt;
use std::time::{Duration, SystemTime};

use rcgen::{
    CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, PublicKeyData,
    SanType, SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use time::OffsetDateTime;

use super::authority::Authority;
use super::pem::pem_of;
use super::CaError;

/// How far notBefore is set back, so a peer whose clock is a little behind accepts it.
pub const BACKDATE: Duration = Duration::from_secs(5 * 60);

/// A workload identity: `spiffe://<trust domain>/ns/<namespace>/sa/<service account>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identity {
    pub namespace: String,
    pub service_account: String,
}

impl Identity {
    pub fn spiffe(&self, trust_domain: &str) -> String {
        format!(
            "spiffe://{trust_domain}/ns/{}/sa/{}",
            self.namespace, self.service_account
        )
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.service_account)
    }
}

/// An issued certificate with its key. The key is never shown by `Debug`.
pub struct Issued {
    /// PEM: the leaf, then the CA chain up to the root (root last).
    pub chain_pem: String,
    /// PKCS#8 PEM of the leaf's key (empty when issued for a CSR).
    pub key_pem: String,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

impl fmt::Debug for Issued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issued")
            .field("chain_bytes", &self.chain_pem.len())
            .field("private_key", &"[redacted]")
            .field("not_after", &self.not_after)
            .finish()
    }
}

/// A random 159-bit serial (positive, as RFC 5280 asks).
pub fn random_serial() -> SerialNumber {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 20];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system random source works");
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from_slice(&bytes)
}

impl Authority {
    /// A workload certificate for `uri` with a fresh P-256 key, valid for `ttl`.
    pub fn issue(&self, uri: &str, ttl: Duration) -> Result<Issued, CaError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(CaError::Sign)?;
        let mut issued = self.sign_key(uri, &key, ttl)?;
        issued.key_pem = key.serialize_pem();
        Ok(issued)
    }

    /// A workload certificate for `uri` over `public_key` (a CSR's), valid for `ttl`.
    pub fn sign_key(
        &self,
        uri: &str,
        public_key: &impl PublicKeyData,
        ttl: Duration,
    ) -> Result<Issued, CaError> {
        let now = SystemTime::now();
        let not_before = now - BACKDATE;
        let not_after = now + ttl;
        let mut params = CertificateParams::default();
        // Istio's workload certificates have an empty subject; the identity is the SAN.
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.subject_alt_names = vec![SanType::URI(
            uri.try_into()
                .map_err(|e| CaError::BadIdentity(format!("{uri}: {e}")))?,
        )];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        params.not_before = OffsetDateTime::from(not_before);
        params.not_after = OffsetDateTime::from(not_after);
        params.serial_number = Some(random_serial());
        let cert = params
            .signed_by(public_key, &self.issuer)
            .map_err(CaError::Sign)?;
        let mut chain_pem = cert.pem();
        for der in &self.chain {
            chain_pem.push_str(&pem_of(der));
        }
        Ok(Issued {
            chain_pem,
            key_pem: String::new(),
            not_before,
            not_after,
        })
    }

    /// A serving certificate for meshd itself: DNS SANs `names`, serverAuth only.
    pub fn issue_server(&self, names: &[String], ttl: Duration) -> Result<Issued, CaError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(CaError::Sign)?;
        let now = SystemTime::now();
        let mut params = CertificateParams::new(names.to_vec()).map_err(CaError::Sign)?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = OffsetDateTime::from(now - BACKDATE);
        params.not_after = OffsetDateTime::from(now + ttl);
        params.serial_number = Some(random_serial());
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(CaError::Sign)?;
        let mut chain_pem = cert.pem();
        for der in &self.chain {
            chain_pem.push_str(&pem_of(der));
        }
        Ok(Issued {
            chain_pem,
            key_pem: key.serialize_pem(),
            not_before: now - BACKDATE,
            not_after: now + ttl,
        })
    }
}
