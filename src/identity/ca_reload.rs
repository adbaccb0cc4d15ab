//! Hot reload of the plug-in CA Secret `cacerts` (with `--kubernetes` and no `--ca-dir`):
//! read again every `--ca-reload-interval` and applied as a changed `--ca-dir` is
//! (`ca::reload`): the new material is checked as a whole, a new bundle reaches every
//! stream's `ROOTCA`, a new signing CA has everything reissued, and a bad Secret is refused
//! with its name, key and reason while the CA in use stays. istiod watches the same Secret
//! as mounted files; meshd reads it through the API.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use tokio::sync::watch;
use tracing::{error, info, warn};

use super::ca_secret::{plug_in_of, CaPems, CACERTS};
use crate::ca::reload::Change;
use crate::ca::Authority;

/// Reads `cacerts` in `namespace` every `interval` and replaces the authority in `tx` when
/// it holds new, valid material. Ends when every receiver is gone.
pub async fn run(
    client: kube::Client,
    namespace: String,
    interval: Duration,
    tx: watch::Sender<Arc<Authority>>,
) {
    let api: Api<Secret> = Api::namespaced(client, &namespace);
    let name = format!("{namespace}/{CACERTS}");
    info!(secret = %name, ?interval, "watching the plug-in CA Secret for changes");
    let mut seen: Option<Result<CaPems, String>> = None;
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = tx.closed() => return,
        }
        let secret = match api.get_opt(CACERTS).await {
            Ok(Some(secret)) => secret,
            Ok(None) => continue,
            Err(e) => {
                warn!(secret = %name, error = %e, "cannot read the CA Secret; the CA in use stays");
                continue;
            }
        };
        let pems = plug_in_of(&secret);
        if seen.as_ref() == Some(&pems) {
            continue;
        }
        seen = Some(pems.clone());
        let built = pems.and_then(|p| {
            Authority::from_pems(
                &p.ca_cert,
                &p.ca_key,
                Some(&p.root_cert),
                Some(&p.cert_chain),
                &format!("Secret {name}"),
            )
            .map_err(|e| e.to_string())
        });
        match built {
            Ok(new) => {
                let change = Change::between(&tx.borrow(), &new);
                if change.bundle || change.signer {
                    info!(
                        secret = %name,
                        trust_bundle_changed = change.bundle,
                        signing_ca_changed = change.signer,
                        "CA Secret changed: applying the new CA"
                    );
                    tx.send_replace(Arc::new(new));
                }
            }
            Err(reason) => error!(
                secret = %name,
                error = %reason,
                "CA Secret refused; the CA in use stays until it holds a valid set"
            ),
        }
    }
}
