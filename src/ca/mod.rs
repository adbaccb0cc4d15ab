//! meshd as the mesh's certificate authority: its root and signing key (`authority`),
//! workload certificates (`issue`), the tokens callers prove who they are with (`token`),
//! the SDS secrets of each authenticated caller with their renewal (`sds`), and meshd's own
//! serving certificate for the secure xDS port (`serving`); the authority in use can be
//! replaced at run time (`live`), by the reloader of `--ca-dir` (`reload`). The xDS server reaches it only
//! through `xds::CallerAuth`.

pub mod args;
pub mod authority;
mod ca_key;
pub mod certificate_service;
mod chain;
pub mod files;
pub mod issue;
pub mod live;
mod pem;
pub mod reload;
#[cfg(test)]
mod reload_tests;
pub mod sds;
pub mod serving;
#[cfg(test)]
mod tests;
pub mod token;

use std::path::{Path, PathBuf};

pub use authority::Authority;
pub use issue::{Identity, Issued};
pub use live::LiveAuthority;
pub use pem::certs_in;
pub use sds::{SdsIssuer, SdsOptions};
pub use token::{AuthError, Authenticator, TokenSigner};

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("signing: {0}")]
    Sign(rcgen::Error),
    #[error("{0}")]
    BadIdentity(String),
}

impl CaError {
    fn io(path: &Path, source: std::io::Error) -> CaError {
        CaError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
