//! What `meshd serve --kubernetes` runs for identity besides the CA itself: the leader
//! election and, gated by it, the root ConfigMap publisher, with the trust bundle the CA
//! currently hands out. Stopping releases the lease so another replica takes over at once.

use tokio::sync::watch;
use tracing::info;

use super::lease::{holder_identity, LeaderElector, LeaseConfig};
use super::root_configmap::RootCertPublisher;

pub struct IdentityRuntime {
    elector: LeaderElector,
    bundle: watch::Sender<String>,
    _publisher: RootCertPublisher,
}

impl IdentityRuntime {
    /// Campaigns for `meshd-leader` in `root_namespace` and publishes `bundle` while leading.
    pub fn start(client: kube::Client, root_namespace: &str, bundle: String) -> IdentityRuntime {
        let holder = holder_identity();
        info!(%holder, namespace = root_namespace, "leader election: campaigning");
        let elector =
            LeaderElector::start(client.clone(), LeaseConfig::new(root_namespace, holder));
        let (bundle, bundle_rx) = watch::channel(bundle);
        let publisher = RootCertPublisher::start(client, elector.leader(), bundle_rx);
        IdentityRuntime {
            elector,
            bundle,
            _publisher: publisher,
        }
    }

    /// True while this replica leads.
    pub fn leader(&self) -> watch::Receiver<bool> {
        self.elector.leader()
    }

    /// A new trust bundle (a root rotation): republished everywhere.
    pub fn set_bundle(&self, bundle: String) {
        self.bundle.send_if_modified(|current| {
            let changed = *current != bundle;
            *current = bundle;
            changed
        });
    }

    /// Republishes the trust bundle whenever the CA in use is replaced (a reload of
    /// `--ca-dir`).
    pub fn follow_bundle(&self, authority: crate::ca::LiveAuthority) {
        let bundle = self.bundle.clone();
        let mut changes = authority.watch();
        tokio::spawn(async move {
            loop {
                let new = crate::ca::live::next_change(&mut changes).await;
                let new = new.trust_bundle().to_string();
                bundle.send_if_modified(|current| std::mem::replace(current, new) != *current);
                if bundle.is_closed() {
                    return;
                }
            }
        });
    }

    /// Stops publishing and releases the lease if held.
    pub async fn stop(self) {
        self.elector.release().await;
    }
}
