//! State of the World ADS: per type, what the proxy asked for (subscription) kept apart
//! from what we sent it (version, nonce), ACK/NACK by nonce, and a push queue of "dirty"
//! types from which each response is built only when the stream can take it, so the
//! latest configuration and subscription always win.
//!
//! Listeners and clusters are always the full set: what a response leaves out is deleted.
//! For endpoints and routes, Envoy updates only the resources a response carries (as istiod
//! relies on for its endpoint pushes), so once a proxy holds a complete set and acknowledged
//! the last response, a push carries only the subscribed resources that changed since,
//! shared by every stream of the same maps and subscription. A forced response (first
//! request, new names, endpoints after a cluster push), one sent while another is in flight,
//! and the first after a rejection carry the full set.
//!
//! A NACK is not answered (the same content would be rejected again) unless the request
//! also subscribes to new names: Envoy keeps a cluster warming until its endpoints arrive
//! (forever with `initial_fetch_timeout: 0s`), so new names are answered with the current
//! set for the grown subscription. A SotW NACK does not say which resource was bad and
//! Envoy rejects a response as a whole, so leaving some resources out could withhold good
//! ones the proxy never applied; the current set costs at most one more NACK per growth of
//! the subscription, never a loop.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::Node;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::nack::bounded;
use super::names::intern;
use super::pending::{any_due, mark_all_due, next_in_push_order, Due};
use super::selection::{select, select_changed};
use super::sotw_request::{subscription, SotwRequest};
use super::status::TypeView;
use super::stream::{known_type, Conn, StreamProtocol};
use super::wire::{SotwResponse, WireMessage};
use crate::envoy::resource::{type_url, ResourceMap};

#[derive(Default)]
pub(crate) struct SotwState {
    types: BTreeMap<&'static str, TypeState>,
}

struct TypeState {
    /// `version_info` of the last response, to skip pushes that change nothing.
    sent_version: Option<String>,
    /// A response is due; `true` forces it even when the content is unchanged.
    pending: Option<bool>,
    /// Endpoints only: answer the next request even if it looks like an ACK, because the
    /// proxy re-requests endpoints after a cluster push and keeps the clusters warming
    /// until it gets a response.
    always_respond: bool,
    /// Version of a response over the size limit: not built again until the set changes.
    withheld: Option<String>,
    /// Named types: the map of the last response, when the proxy holds every subscribed
    /// resource of it (as far as we know: cleared on a rejection). The next push then
    /// carries only what changed since (see the module comment).
    basis: Option<Arc<ResourceMap>>,
    /// Also holds the names asked for (`view.names`; named types only: listeners and
    /// clusters are always the full set), shared with the status view.
    view: TypeView,
}

impl StreamProtocol for SotwState {
    type Request = SotwRequest;
    type Response = SotwResponse;
    const DELTA: bool = false;

    fn node(request: &SotwRequest) -> Option<Node> {
        request.node.clone()
    }

    fn has_pending(&self) -> bool {
        any_due(&self.types)
    }

    fn on_request(&mut self, conn: &mut Conn, request: SotwRequest) {
        let Some(type_url) = known_type(&request.type_url) else {
            debug!(proxy = %conn.proxy, type_url = %request.type_url, "ignoring a request for a type meshd does not serve");
            return;
        };
        let first = !self.types.contains_key(type_url);
        let t = self.types.entry(type_url).or_insert_with(|| TypeState {
            sent_version: None,
            pending: None,
            always_respond: false,
            withheld: None,
            basis: None,
            view: TypeView {
                wildcard: type_url::is_wildcard(type_url),
                ..TypeView::default()
            },
        });
        // Listeners and clusters are always the full set: their names are not kept.
        let requested = if type_url::is_wildcard(type_url) {
            Vec::new()
        } else {
            request.resource_names
        };
        if conn.too_many_names(type_url, requested.len()) {
            return;
        }
        // `None`: the subscription stays as it is (most requests are ACKs that repeat it).
        let names = match subscription(requested, &t.view.names) {
            Ok(names) => names,
            Err(status) => {
                conn.failure = Some(status);
                return;
            }
        };
        let rejection = request.error_detail.map(|s| bounded(s.message));
        if rejection.is_some() {
            // Whatever it was about, the next response is the full set.
            t.basis = None;
        }
        if first {
            // Answered whatever it carries: after a reconnect the proxy repeats its last
            // rejection and an empty nonce, and still needs the configuration.
            if let Some(message) = rejection {
                debug!(proxy = %conn.proxy, type_url, %message, "first request carries an earlier rejection");
                t.view.last_nack = Some(message);
            }
            t.set_names(names);
            t.pending = Some(true);
            conn.publish(type_url, &t.view);
            return;
        }
        if request.response_nonce != t.view.nonce_sent {
            debug!(proxy = %conn.proxy, type_url, nonce = %request.response_nonce, "ignoring a request with a stale nonce");
            return;
        }
        if let Some(message) = rejection {
            warn!(proxy = %conn.proxy, type_url, version = %t.view.version_sent, nonce = %request.response_nonce, %message, "proxy rejected configuration");
            conn.shared.status.metrics().rejected(type_url);
            t.view.last_nack = Some(message);
            t.view.nacked = true;
            // Not answered: the same content would be rejected again. The next change
            // of configuration pushes, and so do new names (see the module comment).
            if t.grows(&names, type_url) {
                t.pending = Some(true);
            }
            t.set_names(names);
            conn.publish(type_url, &t.view);
            return;
        }
        // After a NACK, Envoy's next request carries the latest nonce, no error and its last
        // good version: that is not an ACK of what we sent, so the rejection stands.
        if request.version_info == t.view.version_sent {
            t.view.nacked = false;
        }
        t.view.version_acked = request.version_info;
        t.view.nonce_acked = request.response_nonce;
        let grew = t.grows(&names, type_url);
        t.set_names(names);
        if grew || t.always_respond {
            t.pending = Some(true);
        }
        conn.publish(type_url, &t.view);
    }

    /// A new generation: every subscribed type is re-examined when it can be sent.
    fn on_generation(&mut self) {
        mark_all_due(&mut self.types);
    }

    /// The next response in push order, built from the current resources and subscription;
    /// `None` when every due type turned out unchanged.
    fn next_response(&mut self, conn: &mut Conn) -> Option<SotwResponse> {
        let (url, response) =
            next_in_push_order(&mut self.types, |url, t, force| t.build(conn, url, force))?;
        if url == type_url::CLUSTER {
            if let Some(endpoints) = self.types.get_mut(type_url::ENDPOINT) {
                endpoints.always_respond = true;
            }
        }
        Some(response)
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
    fn build(
        &mut self,
        conn: &mut Conn,
        type_url: &'static str,
        force: bool,
    ) -> Option<SotwResponse> {
        let start = Instant::now();
        let all = conn.resources_of(type_url);
        let wildcard = type_url::is_wildcard(type_url);
        if !wildcard && self.view.names.is_empty() && !force {
            // The proxy stopped watching this type: nothing to tell it.
            return None;
        }
        // Shared with every stream of the same map and subscription: computed once.
        let selected = select(&all, (!wildcard).then_some(&self.view.names));
        let version = &selected.version;
        if !force && self.sent_version.as_ref() == Some(version) {
            return None;
        }
        if self.withheld.as_ref() == Some(version) {
            return None;
        }
        let version = version.clone();
        // Also shared: the changed part of a named type, for a proxy that holds the rest.
        // Only on top of an acknowledged response: one still in flight may yet be rejected,
        // and the proxy would then lack what a partial response leaves out.
        let acked = self.view.nonce_acked == self.view.nonce_sent && !self.view.nacked;
        let resources = match self.basis.take() {
            Some(basis) if acked && !force && !wildcard && type_url != type_url::SECRET => {
                let changed = select_changed(&basis, &all, &self.view.names);
                if changed.is_empty() {
                    // Only removals: the proxy keeps the rest and drops a cluster's
                    // endpoints with the cluster, so there is nothing to send.
                    self.basis = Some(all);
                    return None;
                }
                changed
            }
            _ => Arc::clone(&selected.resources),
        };
        let nonce = conn.next_nonce();
        // `Arc`s only: the bytes are written once, by the codec (`wire`).
        let response = SotwResponse {
            version_info: version.clone(),
            resources,
            type_url,
            nonce: nonce.clone(),
        };
        if !conn.fits(type_url, response.encoded_len()) {
            self.withheld = Some(version);
            return None;
        }
        self.basis = (!wildcard).then_some(all);
        let bytes = response.resources.iter().map(|r| r.body.value.len()).sum();
        self.sent_version = Some(version.clone());
        self.always_respond = false;
        self.view.version_sent = version.clone();
        self.view.nonce_sent = nonce.clone();
        self.view.nacked = false;
        self.view.responses += 1;
        conn.publish(type_url, &self.view);
        conn.shared
            .status
            .metrics()
            .pushed(type_url, start.elapsed(), bytes);
        debug!(proxy = %conn.proxy, type_url, %version, %nonce, resources = response.resources.len(), "push");
        Some(response)
    }

    /// Whether `names` subscribe to a name not subscribed yet (wildcard types ignore names;
    /// `None` is the current subscription). One walk over both sorted sets.
    fn grows(&self, names: &Option<BTreeSet<String>>, type_url: &str) -> bool {
        let Some(names) = names else {
            return false;
        };
        if type_url::is_wildcard(type_url) {
            return false;
        }
        let mut held = self.view.names.iter().peekable();
        for name in names {
            loop {
                match held.peek() {
                    Some(h) if h.as_str() < name.as_str() => {
                        held.next();
                    }
                    Some(h) if *h == name => break,
                    _ => return true,
                }
            }
        }
        false
    }

    /// Replaces the subscribed names only when they differ, so the `Arc` shared with the
    /// status view changes only with the subscription.
    fn set_names(&mut self, names: Option<BTreeSet<String>>) {
        if let Some(names) = names {
            if names != *self.view.names {
                self.view.names = intern(Arc::new(names));
            }
        }
    }
}
