//! The CA directory's files as read at one moment: the signing certificate and key (both
//! required), the trust bundle `root-cert.pem`, the plug-in `cert-chain.pem` and the
//! legacy `old-root-cert.pem` (all optional). One read serves both the load and the
//! content hash the reloader compares, so what is hashed is what gets applied.

use std::fs;
use std::path::{Path, PathBuf};

use super::authority::{Authority, CA_CERT, CA_KEY, CERT_CHAIN, OLD_ROOTS, ROOT_CERT};
use super::CaError;

/// The text of every CA file of a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaFiles {
    pub dir: PathBuf,
    pub ca_cert: String,
    pub ca_key: String,
    pub root_cert: Option<String>,
    pub cert_chain: Option<String>,
    pub old_roots: Option<String>,
}

impl CaFiles {
    /// Reads the files of `dir`; `ca-cert.pem` and `ca-key.pem` must both be there.
    pub fn read(dir: &Path) -> Result<CaFiles, CaError> {
        Ok(CaFiles {
            dir: dir.to_path_buf(),
            ca_cert: read_required(&dir.join(CA_CERT), CA_KEY)?,
            ca_key: read_required(&dir.join(CA_KEY), CA_CERT)?,
            root_cert: read_optional(&dir.join(ROOT_CERT))?,
            cert_chain: read_optional(&dir.join(CERT_CHAIN))?,
            old_roots: read_optional(&dir.join(OLD_ROOTS))?,
        })
    }

    /// SHA-256 over every file's name and content (or its absence): two reads with the
    /// same hash hold the same CA, whatever the files' times say.
    pub fn content_hash(&self) -> [u8; 32] {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        let parts = [
            (CA_CERT, Some(&self.ca_cert)),
            (CA_KEY, Some(&self.ca_key)),
            (ROOT_CERT, self.root_cert.as_ref()),
            (CERT_CHAIN, self.cert_chain.as_ref()),
            (OLD_ROOTS, self.old_roots.as_ref()),
        ];
        for (name, content) in parts {
            ctx.update(name.as_bytes());
            match content {
                Some(text) => {
                    ctx.update(&(text.len() as u64).to_le_bytes());
                    ctx.update(text.as_bytes());
                }
                None => ctx.update(b"\xffabsent"),
            }
        }
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        out
    }

    /// The authority these files describe, checked; errors name the file inside `dir`.
    pub fn authority(&self) -> Result<Authority, CaError> {
        Authority::from_files(self)
    }
}

fn read_required(path: &Path, partner: &str) -> Result<String, CaError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(CaError::Invalid {
            path: path.to_path_buf(),
            reason: format!("missing: a CA directory needs both it and {partner}"),
        }),
        Err(e) => Err(CaError::Io {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

fn read_optional(path: &Path) -> Result<Option<String>, CaError> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CaError::Io {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}
