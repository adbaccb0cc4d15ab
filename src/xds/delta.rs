//! Delta (incremental) ADS: per type, the subscription (wildcard and explicit names), the
//! version of each resource the proxy holds, versions it rejected, and a push queue of
//! "dirty" types whose diff is computed only when the stream can take a response.
//!
//! A NACK names no resource in a structured way; Envoy's cluster and listener managers
//! apply the valid resources of a response and name each refused one in the message. So
//! the resources of the rejected response that the message names are rejected, and the
//! others count as held by the proxy at the version sent (as if acknowledged). When the
//! message names none of them, every version that response carried is rejected. A
//! rejected version is never sent again; a new version of the resource is.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::DeltaDiscoveryRequest;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::held::Held;
use super::nack;
use super::names::intern;
use super::pending::{any_due, mark_all_due, next_in_push_order, Due};
use super::selection::{self, select};
use super::status::TypeView;
use super::stream::{known_type, Conn, StreamProtocol};
use super::wire::{DeltaResponse, WireMessage};
use crate::envoy::resource::{type_url, Resource, ResourceMap};

/// Responses remembered per type for matching ACKs and NACKs.
const OUTSTANDING: usize = 16;

/// Names a stream in sync may hold differently from its shared selection before it takes
/// the selection again (`Held::rebase`): small, as each keeps an old resource alive. The
/// property tests take the selection at every chance, so that its rules are checked.
#[cfg(not(test))]
const OWN_CHANGES: usize = 16;
#[cfg(test)]
const OWN_CHANGES: usize = 0;

/// Resources in a response past which a stream left in sync takes the shared selection
/// without recording each resource first. The property tests take both ways.
#[cfg(not(test))]
const LARGE_RESPONSE: usize = 64;
#[cfg(test)]
const LARGE_RESPONSE: usize = 1;

#[derive(Default)]
pub(crate) struct DeltaState {
    types: BTreeMap<&'static str, TypeState>,
}

#[derive(Default)]
struct TypeState {
    wildcard: bool,
    /// Names subscribed explicitly; the same `Arc` is the status view's `names`, so a
    /// subscription change copies the set once (`make_mut`) and an ACK copies nothing.
    /// Interned (`names`): streams with equal subscriptions share one set.
    explicit: Arc<BTreeSet<String>>,
    /// What the proxy holds, by name: the version we sent, or one it told us it has.
    known: Held,
    /// The map of the last build after which the proxy holds (or rejected) every resource
    /// of it that it wants, and nothing else: then the next build needs to look only at
    /// what differs from it (`selection::diff`). Cleared by anything that changes what the
    /// proxy wants or holds other than a build.
    basis: Option<Arc<ResourceMap>>,
    /// Subscribed names we told the proxy do not exist.
    absent_notified: BTreeSet<String>,
    /// The last version of each resource the proxy rejected, or that could not be sent
    /// (over the size limit): never sent again.
    rejected: BTreeMap<String, String>,
    outstanding: VecDeque<Sent>,
    /// A response is due; `true` forces one even when the diff is empty.
    pending: Option<bool>,
    view: TypeView,
}

struct Sent {
    nonce: String,
    system_version: String,
    /// The resources sent (shared): their names and versions.
    versions: Vec<Arc<Resource>>,
}

impl StreamProtocol for DeltaState {
    type Request = DeltaDiscoveryRequest;
    type Response = DeltaResponse;
    const DELTA: bool = true;

    fn node(request: &DeltaDiscoveryRequest) -> Option<Node> {
        request.node.clone()
    }

    fn has_pending(&self) -> bool {
        any_due(&self.types)
    }

    fn on_request(&mut self, conn: &mut Conn, request: DeltaDiscoveryRequest) {
        let Some(type_url) = known_type(&request.type_url) else {
            debug!(proxy = %conn.proxy, type_url = %request.type_url, "ignoring a request for a type meshd does not serve");
            return;
        };
        let first = !self.types.contains_key(type_url);
        let t = self.types.entry(type_url).or_default();
        t.ack_or_nack(conn, type_url, &request, first);

        // Subscription changes count whatever the nonce: the proxy will not repeat them.
        let changed = !request.resource_names_subscribe.is_empty()
            || !request.resource_names_unsubscribe.is_empty();
        if first && type_url::is_wildcard(type_url) && request.resource_names_subscribe.is_empty() {
            t.wildcard = true;
        }
        for name in request.resource_names_subscribe {
            if name == "*" {
                if !first && !t.wildcard {
                    // The wildcard asked for again: the proxy may have dropped what it held
                    // only through it. A version no resource has makes those be sent again
                    // (or their removal, when they no longer exist).
                    let explicit = &t.explicit;
                    t.known
                        .forget_versions_where(|held| !explicit.contains(held));
                }
                t.wildcard = true;
                continue;
            }
            if !first {
                // A name subscribed again is asked for again (the proxy may have dropped it).
                // One it did not want until now may even get a version it rejected: it
                // holds nothing for the name, and a listener waiting for it would stay
                // warming. At most one more NACK per subscription, never a loop.
                if !t.wildcard && !t.explicit.contains(&name) {
                    t.rejected.remove(&name);
                }
                t.known.remove(&name);
            }
            t.absent_notified.remove(&name);
            if !t.explicit.contains(&name) {
                Arc::make_mut(&mut t.explicit).insert(name);
            }
        }
        if conn.too_many_names(type_url, t.explicit.len()) {
            return;
        }
        for name in request.resource_names_unsubscribe {
            if name == "*" {
                t.wildcard = false;
                continue;
            }
            if t.explicit.contains(&name) {
                Arc::make_mut(&mut t.explicit).remove(&name);
            }
            t.absent_notified.remove(&name);
            if t.wildcard {
                // Still covered by the wildcard: it is sent again (or its removal, when it
                // no longer exists), which keeps the proxy's view right whatever it did
                // with the unsubscribed copy. A version no resource has makes it differ.
                if t.known.contains(&name) {
                    t.known.forget_version(&name);
                } else {
                    t.known.claimed(name, String::new());
                }
            } else {
                t.known.remove(&name);
            }
        }
        if first || changed {
            t.basis = None;
            t.explicit = intern(std::mem::take(&mut t.explicit));
            t.view.wildcard = t.wildcard;
            t.view.names = Arc::clone(&t.explicit);
        }
        if first {
            for (name, version) in request.initial_resource_versions {
                t.known.claimed(name, version);
            }
            t.pending = Some(true);
        } else if changed {
            t.pending.get_or_insert(false);
        }
        conn.publish(type_url, &t.view);
    }

    fn on_generation(&mut self) {
        mark_all_due(&mut self.types);
    }

    fn next_response(&mut self, conn: &mut Conn) -> Option<DeltaResponse> {
        let (url, response) =
            next_in_push_order(&mut self.types, |url, t, force| t.build(conn, url, force))?;
        if url == type_url::CLUSTER {
            self.clusters_changed(&response);
        }
        Some(response)
    }
}

impl DeltaState {
    /// A changed cluster waits for its endpoints, and a Delta proxy does not ask again for
    /// names it already subscribes to: resend them.
    fn clusters_changed(&mut self, response: &DeltaResponse) {
        let Some(endpoints) = self.types.get_mut(type_url::ENDPOINT) else {
            return;
        };
        let mut any = false;
        for cluster in &response.resources {
            if endpoints.wildcard || endpoints.explicit.contains(&cluster.name) {
                // A version no resource has: the endpoints are sent again, or their removal
                // when they no longer exist (forgetting them would lose that).
                endpoints.known.forget_version(&cluster.name);
                any = true;
            }
        }
        if any {
            endpoints.basis = None;
            endpoints.pending.get_or_insert(false);
        }
    }
}

impl Due for TypeState {
    fn due(&self) -> Option<bool> {
        self.pending
    }

    fn due_mut(&mut self) -> &mut Option<bool> {
        &mut self.pending
    }
}

impl TypeState {
    fn ack_or_nack(
        &mut self,
        conn: &Conn,
        type_url: &'static str,
        request: &DeltaDiscoveryRequest,
        first: bool,
    ) {
        let nonce = &request.response_nonce;
        let rejection = request
            .error_detail
            .as_ref()
            .map(|s| nack::bounded(s.message.clone()));
        let Some(pos) = self.outstanding.iter().position(|s| &s.nonce == nonce) else {
            match rejection {
                // The first request of a type repeats the rejection from before a
                // reconnect: worth showing. Later, it is about a response that is no longer
                // outstanding (stale): ignored, as SotW does.
                Some(message) if first => {
                    debug!(proxy = %conn.proxy, type_url, %nonce, %message, "first request carries an earlier rejection");
                    self.view.last_nack = Some(message);
                }
                Some(message) => {
                    debug!(proxy = %conn.proxy, type_url, %nonce, %message, "ignoring a rejection with a stale nonce");
                }
                None if !nonce.is_empty() => {
                    debug!(proxy = %conn.proxy, type_url, %nonce, "request with a stale nonce");
                }
                None => {}
            }
            return;
        };
        // Responses are answered in order: older outstanding ones are settled too.
        let sent = self
            .outstanding
            .drain(..=pos)
            .next_back()
            .expect("position is in range");
        let latest = self.outstanding.is_empty();
        match rejection {
            Some(message) => {
                let named = nack::named(&message, sent.versions.iter().map(|r| r.name.as_str()));
                let blamed = if named.is_empty() {
                    sent.versions.len()
                } else {
                    named.len()
                };
                warn!(proxy = %conn.proxy, type_url, version = %sent.system_version, nonce = %sent.nonce, rejected = blamed, named = named.len(), %message, "proxy rejected configuration");
                conn.shared.status.metrics().rejected(type_url);
                let named: BTreeSet<String> = named.into_iter().map(str::to_string).collect();
                for r in sent.versions {
                    if named.is_empty() || named.contains(&r.name) {
                        self.rejected.insert(r.name.clone(), r.version.clone());
                    }
                }
                self.view.last_nack = Some(message);
                self.view.nacked = latest;
            }
            None => {
                self.view.version_acked = sent.system_version;
                self.view.nonce_acked = sent.nonce;
                if latest {
                    self.view.nacked = false;
                }
            }
        }
    }

    fn wants(&self, name: &str) -> bool {
        self.wildcard || self.explicit.contains(name)
    }

    fn build(
        &mut self,
        conn: &mut Conn,
        type_url: &'static str,
        force: bool,
    ) -> Option<DeltaResponse> {
        let start = Instant::now();
        let all = conn.resources_of(type_url);
        // The proxy's own secrets make a new map each time: no shared diff for them.
        let basis = self
            .basis
            .take()
            .filter(|_| !force && type_url != type_url::SECRET);
        let (send, removed) = match basis {
            Some(basis) if Arc::ptr_eq(&basis, &all) => {
                self.basis = Some(basis);
                return None;
            }
            Some(basis) => self.changes_since(&basis, &all),
            None => self.changes(&all),
        };
        if send.is_empty() && removed.is_empty() && !force {
            self.in_sync_with(all, false);
            return None;
        }
        // Shared by the streams with this map and subscription: hashed once.
        let system_version = select(&all, (!self.wildcard).then_some(&self.explicit))
            .version
            .clone();
        let nonce = conn.next_nonce();
        let mut response = DeltaResponse {
            system_version_info: system_version.clone(),
            resources: Vec::with_capacity(send.len()),
            type_url,
            removed_resources: Vec::new(),
            nonce: nonce.clone(),
        };
        // Removals go out once, in this response: a resource that fits a response without
        // them is not "too large", it waits for the next one.
        let bare = response.encoded_len();
        response.removed_resources = removed;
        // Up to the size limit; what does not fit goes in the next response. A resource
        // too large for any response is withheld like a rejected version (logged, counted,
        // not tried again until it changes).
        let limit = conn.response_limit();
        let base = response.encoded_len();
        if base > limit {
            // Removals alone over the limit: not retried, no loop.
            conn.oversized(type_url, "removed_resources", base);
            return None;
        }
        let mut size = base;
        let mut rest = false;
        for r in send {
            let len = DeltaResponse::resource_encoded_len(&r);
            if size + len <= limit {
                size += len;
                // An `Arc` only: the bytes are written once, by the codec (`wire`).
                response.resources.push(r);
            } else if bare + len > limit {
                conn.oversized(type_url, &r.name, bare + len);
                self.rejected.insert(r.name.clone(), r.version.clone());
            } else {
                rest = true;
            }
        }
        if rest {
            self.pending.get_or_insert(false);
        }
        if response.resources.is_empty() && response.removed_resources.is_empty() && !force {
            if !rest {
                self.in_sync_with(all, false);
            }
            return None;
        }
        let removed = &response.removed_resources;
        for name in removed {
            self.known.remove(name);
            self.absent_notified.insert(name.clone());
        }
        self.rejected.retain(|name, _| all.contains_key(name));
        let mut versions = Vec::with_capacity(response.resources.len());
        let mut bytes = 0;
        // A large response that leaves the proxy in sync (a cold start): what it holds is
        // the shared selection at once, without an entry per resource first.
        let rebase = !rest && response.resources.len() > LARGE_RESPONSE;
        for r in &response.resources {
            if !rebase {
                self.known.sent(r);
            }
            self.absent_notified.remove(&r.name);
            versions.push(Arc::clone(r));
            bytes += r.body.value.len();
        }
        if !rest {
            self.in_sync_with(Arc::clone(&all), rebase);
        }
        self.outstanding.push_back(Sent {
            nonce: nonce.clone(),
            system_version: system_version.clone(),
            versions,
        });
        if self.outstanding.len() > OUTSTANDING {
            self.outstanding.pop_front();
        }
        self.view.version_sent = system_version.clone();
        self.view.nonce_sent = nonce.clone();
        self.view.nacked = false;
        self.view.responses += 1;
        conn.publish(type_url, &self.view);
        conn.shared
            .status
            .metrics()
            .pushed(type_url, start.elapsed(), bytes);
        debug!(proxy = %conn.proxy, type_url, version = %system_version, %nonce, resources = response.resources.len(), removed = response.removed_resources.len(), "push");
        Some(response)
    }

    /// The proxy now holds (or rejected) every resource of `all` it wants and nothing else:
    /// the next build looks only at what differs from `all` (`basis`), and once the stream
    /// has enough changes of its own, what it holds becomes the shared selection again.
    fn in_sync_with(&mut self, all: Arc<ResourceMap>, rebase: bool) {
        if rebase || self.known.changed() > OWN_CHANGES {
            let selected = select(&all, (!self.wildcard).then_some(&self.explicit));
            // Rejected versions are the exception: the proxy holds what it held before.
            let rejected = self.rejected.keys().map(String::as_str);
            self.known.rebase(Arc::clone(&selected.resources), rejected);
        }
        self.basis = Some(all);
    }

    /// Resources to send (wanted, not held, not rejected at their version) and names to
    /// remove, looking at every resource.
    fn changes(&self, all: &Arc<ResourceMap>) -> (Vec<Arc<Resource>>, Vec<String>) {
        let desired = select(all, (!self.wildcard).then_some(&self.explicit));
        let send = desired
            .resources
            .iter()
            .filter(|r| self.due(r))
            .cloned()
            .collect();
        (send, self.removed(all))
    }

    /// `changes` when the proxy is in sync with `basis` (see `basis`): only the names that
    /// differ between `basis` and `all` can be sent or removed.
    fn changes_since(
        &self,
        basis: &Arc<ResourceMap>,
        all: &Arc<ResourceMap>,
    ) -> (Vec<Arc<Resource>>, Vec<String>) {
        let diff = selection::diff(basis, all);
        let send = diff
            .changed
            .iter()
            .filter_map(|name| all.get(name))
            .filter(|r| self.wants(&r.name) && self.due(r))
            .cloned()
            .collect();
        // In sync with `basis`, the proxy holds only names of it, and explicit names absent
        // from it were already reported removed.
        let removed = diff
            .removed
            .iter()
            .filter(|n| {
                self.known.contains(n)
                    || (self.explicit.contains(*n) && !self.absent_notified.contains(*n))
            })
            .cloned()
            .collect();
        (send, removed)
    }

    /// Whether `r` is to be sent: the proxy neither holds nor rejected this version.
    fn due(&self, r: &Arc<Resource>) -> bool {
        !self.known.holds(r) && self.rejected.get(&r.name) != Some(&r.version)
    }

    /// Names to tell the proxy are gone: ones it holds that no longer exist (or that it
    /// no longer wants), and explicitly subscribed names that do not exist.
    fn removed(&self, all: &ResourceMap) -> Vec<String> {
        let mut removed: BTreeSet<String> = self
            .known
            .names()
            .filter(|n| !(all.contains_key(*n) && self.wants(n)))
            .map(str::to_string)
            .collect();
        for name in self.explicit.iter() {
            if !all.contains_key(name) && !self.absent_notified.contains(name) {
                removed.insert(name.clone());
            }
        }
        removed.into_iter().collect()
    }
}
