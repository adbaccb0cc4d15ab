//! The certificate authority's own material: the signing certificate and key, the chain
//! from it to the root, and the trust bundle (the root, plus any older root still trusted
//! during a rotation). Loaded from `--ca-dir` (made there on first start) or kept in memory.
//!
//! Files in the directory, by Istio's names: `ca-cert.pem` + `ca-key.pem` sign;
//! `root-cert.pem` is the root; `cert-chain.pem` (plug-in CAs) is the chain from
//! `ca-cert.pem` up to the root. `old-root-cert.pem` (optional) holds roots that are still
//! trusted while workloads move to a new root; they go into `ROOTCA` but sign nothing.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256,
};
use time::{Duration as TimeDuration, OffsetDateTime};

use super::chain::{certs_strict, complete};
use super::files::CaFiles;
use super::pem::pem_of;
use super::CaError;

pub const ROOT_CERT: &str = "root-cert.pem";
pub const CA_CERT: &str = "ca-cert.pem";
pub const CA_KEY: &str = "ca-key.pem";
pub const CERT_CHAIN: &str = "cert-chain.pem";
pub const OLD_ROOTS: &str = "old-root-cert.pem";

/// A self-signed root made by meshd lives ten years, as Istio's self-signed root does.
const ROOT_LIFETIME: TimeDuration = TimeDuration::days(3650);

/// The CA's signing material. The key never leaves this struct except into `ca-key.pem`.
pub struct Authority {
    pub(super) issuer: Issuer<'static, KeyPair>,
    /// DER certificates from the signing certificate up to the root (root last): what an
    /// issued leaf is followed by.
    pub(super) chain: Vec<Vec<u8>>,
    /// PEM of every root a workload must trust: the current root first, then old ones.
    pub(super) trust_bundle: String,
    /// Where the material came from, for logs.
    pub origin: String,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("origin", &self.origin)
            .field("chain_len", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl Authority {
    /// A fresh self-signed root kept in memory only.
    pub fn in_memory() -> Result<Authority, CaError> {
        let (cert_pem, key) = new_root()?;
        Authority::from_parts(&cert_pem, key, None, None, "")
            .map(|a| a.with_origin("in memory (changes on restart)"))
    }

    /// Loads the CA from `dir`, making a self-signed root there on first start.
    pub fn load_or_create(dir: &Path) -> Result<Authority, CaError> {
        fs::create_dir_all(dir).map_err(|e| CaError::io(dir, e))?;
        let cert_path = dir.join(CA_CERT);
        let key_path = dir.join(CA_KEY);
        match (cert_path.exists(), key_path.exists()) {
            (false, false) => {
                let (cert_pem, key) = new_root()?;
                write_private(&key_path, key.serialize_pem().as_bytes())?;
                write_public(&cert_path, cert_pem.as_bytes())?;
                write_public(&dir.join(ROOT_CERT), cert_pem.as_bytes())?;
                tracing::info!(dir = %dir.display(), "made a new self-signed root CA");
            }
            (true, true) => {}
            (cert, _) => {
                let missing = if cert { &key_path } else { &cert_path };
                return Err(CaError::Invalid {
                    path: missing.clone(),
                    reason: format!(
                        "missing, while {} exists: a CA directory needs both {CA_CERT} and {CA_KEY}",
                        if cert { CA_CERT } else { CA_KEY }
                    ),
                });
            }
        }
        CaFiles::read(dir)?.authority()
    }

    /// The authority of files read from a CA directory; errors name the file there.
    pub(super) fn from_files(files: &CaFiles) -> Result<Authority, CaError> {
        let dir = &files.dir;
        let key =
            super::ca_key::key_pair_from_pem(&files.ca_key).map_err(|e| CaError::Invalid {
                path: dir.join(CA_KEY),
                reason: format!("not a private key: {e}"),
            })?;
        Authority::from_parts(
            &files.ca_cert,
            key,
            files.root_cert.as_deref(),
            files.cert_chain.as_deref(),
            files.old_roots.as_deref().unwrap_or_default(),
        )
        .map_err(|e| e.in_dir(dir))
        .map(|a| a.with_origin(&dir.display().to_string()))
    }

    /// Builds the authority from PEM parts. `root` (the trust bundle: one root, or several
    /// during a rotation) defaults to the signing certificate (a self-signed CA); `chain`
    /// (from the signing certificate up) is completed so that it starts with the signing
    /// certificate and ends with the bundle root it leads to, every link verified.
    fn from_parts(
        cert_pem: &str,
        key: KeyPair,
        root: Option<&str>,
        chain: Option<&str>,
        old_roots: &str,
    ) -> Result<Authority, CaError> {
        let ca = certs_strict(CA_CERT, cert_pem)?
            .into_iter()
            .next()
            .ok_or_else(|| CaError::part(CA_CERT, "holds no certificate"))?;
        check_ca(&ca, &key).map_err(|r| CaError::part(CA_CERT, &r))?;
        let roots = match root.filter(|r| !r.trim().is_empty()) {
            Some(pem) => {
                let roots = certs_strict(ROOT_CERT, pem)?;
                if roots.is_empty() {
                    return Err(CaError::part(ROOT_CERT, "holds no certificate"));
                }
                roots
            }
            None => vec![ca.clone()],
        };
        let given = match chain {
            Some(pem) => certs_strict(CERT_CHAIN, pem)?,
            None => Vec::new(),
        };
        let (certs, signing_root) = complete(&ca, given, &roots)?;
        // The root that signs first, then the others still (or already) trusted.
        let mut bundle: Vec<&Vec<u8>> = vec![&roots[signing_root]];
        let old = certs_strict(OLD_ROOTS, old_roots)?;
        for r in roots.iter().chain(old.iter()) {
            if !bundle.contains(&r) {
                bundle.push(r);
            }
        }
        let trust_bundle = bundle.into_iter().map(|der| pem_of(der)).collect();
        let issuer = Issuer::from_ca_cert_der(&ca.clone().into(), key)
            .map_err(|e| CaError::part(CA_CERT, &format!("cannot sign with it: {e}")))?;
        Ok(Authority {
            issuer,
            chain: certs,
            trust_bundle,
            origin: String::new(),
        })
    }

    /// Builds the authority from PEM text kept elsewhere (the Kubernetes Secrets of
    /// `identity::ca_secret`); `origin` names where, for logs and errors.
    pub fn from_pems(
        cert_pem: &str,
        key_pem: &str,
        root: Option<&str>,
        chain: Option<&str>,
        origin: &str,
    ) -> Result<Authority, CaError> {
        let key = super::ca_key::key_pair_from_pem(key_pem)
            .map_err(|e| CaError::part(CA_KEY, &format!("not a private key: {e}")))?;
        Authority::from_parts(cert_pem, key, root, chain, "").map(|a| a.with_origin(origin))
    }

    /// A new self-signed root as PEM (certificate, key), to be stored elsewhere.
    pub fn new_root_pems() -> Result<(String, String), CaError> {
        let (cert_pem, key) = new_root()?;
        Ok((cert_pem, key.serialize_pem()))
    }

    fn with_origin(mut self, origin: &str) -> Self {
        self.origin = origin.to_string();
        self
    }

    /// PEM of the roots workloads trust (`ROOTCA`).
    pub fn trust_bundle(&self) -> &str {
        &self.trust_bundle
    }

    /// Whether `other` signs with the same certificate and chain (otherwise every
    /// certificate issued by `self` must be issued again).
    pub fn same_signer(&self, other: &Authority) -> bool {
        self.chain == other.chain
    }

    /// PEM of the current root alone.
    pub fn root_pem(&self) -> String {
        pem_of(self.chain.last().expect("a chain ends with its root"))
    }
}

/// A new self-signed P-256 root: CA:true, keyCertSign and cRLSign.
fn new_root() -> Result<(String, KeyPair), CaError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(CaError::Sign)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "cluster.local");
    params
        .distinguished_name
        .push(DnType::CommonName, "meshd root CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - TimeDuration::minutes(5);
    params.not_after = now + ROOT_LIFETIME;
    params.serial_number = Some(super::issue::random_serial());
    let cert = params.self_signed(&key).map_err(CaError::Sign)?;
    Ok((cert.pem(), key))
}

/// Checks that `der` is a CA certificate that may sign, whose public key is `key`'s.
fn check_ca(der: &[u8], key: &KeyPair) -> Result<(), String> {
    use x509_parser::prelude::*;
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| format!("not X.509: {e}"))?;
    if !cert.is_ca() {
        return Err("is not a CA certificate (basicConstraints CA:false)".into());
    }
    if let Ok(Some(usage)) = cert.key_usage() {
        if !usage.value.key_cert_sign() {
            return Err("its key usage does not allow keyCertSign".into());
        }
    }
    let public = &cert.public_key().subject_public_key.data;
    if public.as_ref() != key.public_key_raw() {
        return Err(format!("does not match the key in {CA_KEY}"));
    }
    Ok(())
}

/// Writes a private key readable by its owner only (0600), never replacing a file.
pub(super) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CaError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| CaError::io(path, e))?;
    file.write_all(bytes).map_err(|e| CaError::io(path, e))
}

fn write_public(path: &Path, bytes: &[u8]) -> Result<(), CaError> {
    fs::write(path, bytes).map_err(|e| CaError::io(path, e))
}

impl CaError {
    pub(super) fn part(file: &str, reason: &str) -> CaError {
        CaError::Invalid {
            path: PathBuf::from(file),
            reason: reason.to_string(),
        }
    }

    /// Names the file inside `dir` when the error named only the file.
    fn in_dir(self, dir: &Path) -> CaError {
        match self {
            CaError::Invalid { path, reason } if path.is_relative() => CaError::Invalid {
                path: dir.join(path),
                reason,
            },
            other => other,
        }
    }
}
