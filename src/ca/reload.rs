//! Hot reload of `--ca-dir`: every `--ca-reload-interval` the CA files are read and hashed;
//! when the content changed, the new set is checked as a whole (key matches certificate,
//! chain verified up to a root of the bundle, every PEM block whole) and, if good, replaces
//! the authority in use. A bad or half-written set is refused with the file and the reason,
//! once per content, and the CA in use stays.
//!
//! This is how Istio's staged root rotation of a plug-in CA reaches meshd: (1) the bundle
//! `root-cert.pem` gains the new root: only `ROOTCA` changes; (2) the signing files change
//! to ones under the new root: every workload certificate and the serving certificate are
//! issued again; (3) the old root leaves the bundle: `ROOTCA` shrinks.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{debug, error, info};

use super::files::CaFiles;
use super::{Authority, CaError};

/// What a reload changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// The trust bundle (`ROOTCA`) differs.
    pub bundle: bool,
    /// The signing certificate or its chain differs: everything issued must be reissued.
    pub signer: bool,
}

impl Change {
    pub fn between(old: &Authority, new: &Authority) -> Change {
        Change {
            bundle: old.trust_bundle() != new.trust_bundle(),
            signer: !old.same_signer(new),
        }
    }
}

/// The outcome of one look at the directory.
#[derive(Debug)]
pub enum Polled {
    /// The files hold what was last seen (applied or refused).
    Unchanged,
    /// New files that describe the authority in use (e.g. reformatted).
    Same,
    /// New files, checked: the authority to use from now on.
    Apply(Box<Authority>, Change),
    /// New files that cannot be used; the authority in use stays.
    Refused(CaError),
}

/// Remembers what the directory held when last looked at.
pub struct Reloader {
    dir: PathBuf,
    seen: Option<[u8; 32]>,
}

impl Reloader {
    /// A reloader for `dir`. Its first look compares the files with the authority in use
    /// (they may have changed since it was loaded).
    pub fn new(dir: PathBuf) -> Reloader {
        Reloader { dir, seen: None }
    }

    /// Reads the directory and says what to do about it, given the authority in use.
    pub fn poll(&mut self, current: &Authority) -> Polled {
        let files = match CaFiles::read(&self.dir) {
            Ok(files) => files,
            Err(e) => {
                // Refused once until the directory changes (e.g. a file being replaced).
                let marker = refusal_hash(&e);
                if self.seen == Some(marker) {
                    return Polled::Unchanged;
                }
                self.seen = Some(marker);
                return Polled::Refused(e);
            }
        };
        let hash = files.content_hash();
        if self.seen == Some(hash) {
            return Polled::Unchanged;
        }
        self.seen = Some(hash);
        match files.authority() {
            Ok(new) => {
                let change = Change::between(current, &new);
                if change.bundle || change.signer {
                    Polled::Apply(Box::new(new), change)
                } else {
                    Polled::Same
                }
            }
            Err(e) => Polled::Refused(e),
        }
    }
}

/// A stand-in hash for a directory that could not be read, so that the same failure is
/// reported once.
fn refusal_hash(e: &CaError) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, e.to_string().as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// Looks at `dir` every `interval` and replaces the authority in `tx` when its files hold
/// a new, valid CA. Ends when every receiver is gone.
pub async fn run(dir: PathBuf, interval: Duration, tx: watch::Sender<Arc<Authority>>) {
    let mut reloader = Reloader::new(dir.clone());
    info!(dir = %dir.display(), ?interval, "watching the CA directory for changes");
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = tx.closed() => return,
        }
        let current = tx.borrow().clone();
        let polled = tokio::task::spawn_blocking(move || {
            let polled = reloader.poll(&current);
            (reloader, polled)
        })
        .await;
        let Ok((back, polled)) = polled else { return };
        reloader = back;
        match polled {
            Polled::Unchanged => {}
            Polled::Same => {
                debug!(dir = %dir.display(), "CA files read; the CA in use, nothing to do")
            }
            Polled::Apply(new, change) => {
                info!(
                    dir = %dir.display(),
                    trust_bundle_changed = change.bundle,
                    signing_ca_changed = change.signer,
                    roots = super::certs_in(new.trust_bundle()).len(),
                    "CA files changed: applying the new CA"
                );
                tx.send_replace(Arc::new(*new));
            }
            Polled::Refused(e) => error!(
                error = %e,
                "CA files refused; the CA in use stays until the directory holds a valid set"
            ),
        }
    }
}

/// The authority in use, replaced by the reloader of `--ca-dir` when there is one.
pub fn live(authority: Arc<Authority>, args: &super::args::CaArgs) -> super::LiveAuthority {
    let (live, tx) = super::LiveAuthority::new(authority);
    if let Some(dir) = &args.ca_dir {
        tokio::spawn(run(dir.clone(), args.ca_reload_interval, tx));
    }
    live
}
