//! The Delta state machine against a model of XDS-PROTOCOL.md's Delta rules: every
//! resource sent is subscribed (wildcard or by name) and current; `removed_resources`
//! names only what does not exist or is no longer wanted; subscribe and unsubscribe count
//! whatever the nonce; ACKs and stale requests are not answered; only a first response
//! may be empty; a rejected version is not sent again (see `nack`); and once the proxy
//! has read and acknowledged everything (after reconnects with
//! `initial_resource_versions` too), it holds exactly the current version of every
//! resource it wants, and has been told of each name it asked for that does not exist.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use envoy_types::pb::envoy::service::discovery::v3::DeltaDiscoveryRequest;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::nack::DeltaNack;
use super::{
    change, config, connect, drain_with, index_of, pairs, rejected, shared, type_index, Edit,
    Served, NAMES, TYPES,
};
use crate::envoy::resource::type_url;
use crate::xds::delta::DeltaState;
use crate::xds::shared::Shared;
use crate::xds::stream::{Conn, StreamProtocol};
use crate::xds::wire::DeltaResponse;

/// Responses the server remembers per type for matching ACKs and NACKs (as
/// `delta::OUTSTANDING`): a NACK of an older one is stale.
const OUTSTANDING: usize = 16;

/// The nonce a request carries besides its subscription changes.
#[derive(Debug, Clone, Copy)]
enum Nonce {
    None,
    /// An old nonce already answered, or one never sent.
    Stale(usize),
}

#[derive(Debug, Clone)]
enum Action {
    /// Subscribes to `name` (`*`: the wildcard); `None` on a type not yet asked for is a
    /// first request without names (the wildcard, for listeners and clusters).
    Subscribe {
        t: usize,
        name: Option<&'static str>,
        nonce: Nonce,
    },
    Unsubscribe {
        t: usize,
        name: &'static str,
        nonce: Nonce,
    },
    /// A request with a stale nonce and no subscription change.
    Stale {
        t: usize,
        pick: usize,
    },
    /// The proxy reads the oldest response in flight and ACKs or NACKs it.
    Receive {
        nack: bool,
    },
    Step,
    Drain,
    Change(Vec<Edit>),
    /// The stream ends; the proxy reconnects, telling the versions it holds.
    Reconnect,
    Settle,
}

fn subscribable() -> impl Strategy<Value = &'static str> {
    prop::sample::select(&["a", "b", "c", "*"][..])
}

fn nonce() -> impl Strategy<Value = Nonce> {
    prop_oneof![
        3 => Just(Nonce::None),
        1 => (0usize..8).prop_map(Nonce::Stale),
    ]
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => (type_index(), prop::option::weighted(0.8, subscribable()), nonce())
            .prop_map(|(t, name, nonce)| Action::Subscribe { t, name, nonce }),
        2 => (type_index(), subscribable(), nonce())
            .prop_map(|(t, name, nonce)| Action::Unsubscribe { t, name, nonce }),
        1 => (type_index(), 0usize..8).prop_map(|(t, pick)| Action::Stale { t, pick }),
        4 => prop::bool::weighted(0.25).prop_map(|nack| Action::Receive { nack }),
        3 => Just(Action::Step),
        2 => Just(Action::Drain),
        2 => change().prop_map(Action::Change),
        1 => Just(Action::Reconnect),
        1 => Just(Action::Settle),
    ]
}

/// The subscription of one type: the wildcard and explicit names.
#[derive(Debug, Default, Clone, PartialEq)]
struct Subscription {
    wildcard: bool,
    explicit: BTreeSet<String>,
}

impl Subscription {
    fn wants(&self, name: &str) -> bool {
        self.wildcard || self.explicit.contains(name)
    }

    /// Applies a request's changes as the protocol says; `first`: the type's first request
    /// on the stream (no names means the wildcard, for listeners and clusters).
    fn apply(&mut self, t: usize, first: bool, subscribe: &[String], unsubscribe: &[String]) {
        if first && type_url::is_wildcard(TYPES[t]) && subscribe.is_empty() {
            self.wildcard = true;
        }
        for name in subscribe {
            if name == "*" {
                self.wildcard = true;
            } else {
                self.explicit.insert(name.clone());
            }
        }
        for name in unsubscribe {
            if name == "*" {
                self.wildcard = false;
            } else {
                self.explicit.remove(name);
            }
        }
    }
}

/// What the proxy has of one type.
#[derive(Debug, Default, Clone)]
struct Proxy {
    requested: bool,
    subscription: Subscription,
    view: BTreeMap<String, String>,
    nonces: Vec<String>,
    /// Names a NACKed response touched: what the proxy holds of them is not asserted
    /// until a response it accepts carries them again.
    unsettled: BTreeSet<String>,
    /// Explicit names the server said do not exist, since they were subscribed.
    told_absent: BTreeSet<String>,
    /// Responses that were in flight when the proxy stopped wanting names they carry: they
    /// settle nothing.
    racing: BTreeSet<String>,
}

/// A response the server may still see ACKed or NACKed.
#[derive(Debug, Clone)]
struct Outstanding {
    nonce: String,
    resources: BTreeMap<String, String>,
}

/// What the model expects of the server for one type on the current stream.
#[derive(Debug, Default, Clone)]
struct Expect {
    requested: bool,
    subscription: Subscription,
    first_owed: bool,
    /// Endpoints only: names whose cluster was sent since their endpoints were.
    after_clusters: BTreeSet<String>,
    outstanding: VecDeque<Outstanding>,
    nack: DeltaNack,
}

struct Run {
    shared: Arc<Shared>,
    served: Served,
    conn: Conn,
    state: DeltaState,
    net: VecDeque<DeltaResponse>,
    proxy: Vec<Proxy>,
    expect: Vec<Expect>,
}

impl Run {
    fn new() -> Self {
        let shared = shared();
        let served = Served::initial();
        let conn = connect(&shared, true, &served);
        Run {
            shared,
            served,
            conn,
            state: DeltaState::default(),
            net: VecDeque::new(),
            proxy: vec![Proxy::default(); TYPES.len()],
            expect: vec![Expect::default(); TYPES.len()],
        }
    }

    fn act(&mut self, action: &Action) -> Result<(), TestCaseError> {
        match action {
            Action::Subscribe { t, name, nonce } => self.subscribe(*t, *name, *nonce),
            Action::Unsubscribe { t, name, nonce } => self.unsubscribe(*t, name, *nonce),
            Action::Stale { t, pick } => {
                if !self.proxy[*t].requested {
                    return Ok(());
                }
                let request = DeltaDiscoveryRequest {
                    type_url: TYPES[*t].into(),
                    response_nonce: self.nonce(*t, Nonce::Stale(*pick)),
                    ..Default::default()
                };
                self.send(*t, request)
            }
            Action::Receive { nack } => self.receive(*nack),
            Action::Step => self.step().map(|_| ()),
            Action::Drain => self.drain(),
            Action::Change(edits) => {
                self.change(edits);
                Ok(())
            }
            Action::Reconnect => self.reconnect(),
            Action::Settle => self.settle(),
        }
    }

    fn nonce(&self, t: usize, nonce: Nonce) -> String {
        let nonces = &self.proxy[t].nonces;
        match nonce {
            Nonce::None => String::new(),
            Nonce::Stale(pick) if pick.is_multiple_of(2) && !nonces.is_empty() => {
                nonces[pick % nonces.len()].clone()
            }
            Nonce::Stale(pick) => format!("never-sent-{pick}"),
        }
    }

    fn subscribe(
        &mut self,
        t: usize,
        name: Option<&str>,
        nonce: Nonce,
    ) -> Result<(), TestCaseError> {
        let first = !self.proxy[t].requested;
        let subscribe: Vec<String> = match name {
            Some(n) => vec![n.to_string()],
            None if first => Vec::new(),
            None => return Ok(()),
        };
        let request = DeltaDiscoveryRequest {
            type_url: TYPES[t].into(),
            resource_names_subscribe: subscribe.clone(),
            response_nonce: if first {
                String::new()
            } else {
                self.nonce(t, nonce)
            },
            ..Default::default()
        };
        let p = &mut self.proxy[t];
        p.requested = true;
        p.subscription.apply(t, first, &subscribe, &[]);
        for n in &subscribe {
            p.told_absent.remove(n);
        }
        self.send(t, request)
    }

    fn unsubscribe(&mut self, t: usize, name: &str, nonce: Nonce) -> Result<(), TestCaseError> {
        if !self.proxy[t].requested {
            return Ok(());
        }
        let unsubscribe = vec![name.to_string()];
        let request = DeltaDiscoveryRequest {
            type_url: TYPES[t].into(),
            resource_names_unsubscribe: unsubscribe.clone(),
            response_nonce: self.nonce(t, nonce),
            ..Default::default()
        };
        // Not asserted (a known gap, left to the server's owners): a response already in
        // flight may carry a name the proxy stops wanting here; if it wants the name again
        // (the wildcard) when that response arrives, it keeps that copy while the server
        // has forgotten it sent it. Such names are unsettled until sent again.
        let p = &mut self.proxy[t];
        p.subscription.apply(t, false, &[], &unsubscribe);
        p.told_absent.remove(name);
        // The proxy drops what it no longer wants.
        let subscription = p.subscription.clone();
        p.view.retain(|n, _| subscription.wants(n));
        for r in self.net.iter().filter(|r| r.type_url == TYPES[t]) {
            let dropped: Vec<String> = r
                .resources
                .iter()
                .map(|x| x.name.clone())
                .filter(|n| !subscription.wants(n))
                .collect();
            if !dropped.is_empty() {
                p.racing.insert(r.nonce.clone());
                p.unsettled.extend(dropped);
            }
        }
        self.send(t, request)
    }

    fn receive(&mut self, nack: bool) -> Result<(), TestCaseError> {
        let Some(response) = self.net.pop_front() else {
            return Ok(());
        };
        let t = index_of(response.type_url);
        let p = &mut self.proxy[t];
        p.nonces.push(response.nonce.clone());
        let touched: BTreeSet<String> = response
            .resources
            .iter()
            .map(|r| r.name.clone())
            .chain(response.removed_resources.iter().cloned())
            .collect();
        if nack {
            p.unsettled.extend(touched);
        } else {
            for (name, version) in pairs(&response.resources) {
                if p.subscription.wants(&name) {
                    p.view.insert(name, version);
                }
            }
            for name in &response.removed_resources {
                p.view.remove(name);
                if p.subscription.explicit.contains(name) {
                    p.told_absent.insert(name.clone());
                }
            }
            if !p.racing.contains(&response.nonce) {
                p.unsettled.retain(|n| !touched.contains(n));
            }
        }
        let request = DeltaDiscoveryRequest {
            type_url: TYPES[t].into(),
            response_nonce: response.nonce.clone(),
            error_detail: if nack { rejected() } else { None },
            ..Default::default()
        };
        self.send(t, request)
    }

    /// Hands a request to the server, updating what the model expects of it.
    fn send(&mut self, t: usize, request: DeltaDiscoveryRequest) -> Result<(), TestCaseError> {
        let idle_before = !self.state.has_pending();
        let e = &mut self.expect[t];
        let first = !e.requested;
        let nack = request.error_detail.is_some();
        if let Some(pos) = e
            .outstanding
            .iter()
            .position(|o| o.nonce == request.response_nonce)
        {
            // Answers settle the older outstanding responses too.
            let answered = e.outstanding.drain(..=pos).next_back().expect("in range");
            if nack {
                e.nack.nacked(&answered.resources);
                for name in answered.resources.keys() {
                    if self.served.version(TYPES[t], name).is_none() {
                        e.nack.gone(name);
                    }
                }
            }
        }
        // A name the proxy did not want before and asks for now may get a rejected version
        // once more (it holds nothing for it; see `DeltaState`).
        for name in &request.resource_names_subscribe {
            if !first && name != "*" && !e.subscription.wants(name) {
                e.nack.gone(name);
            }
        }
        // Subscription changes count whatever the nonce.
        e.subscription.apply(
            t,
            first,
            &request.resource_names_subscribe,
            &request.resource_names_unsubscribe,
        );
        let changes = !request.resource_names_subscribe.is_empty()
            || !request.resource_names_unsubscribe.is_empty();
        if first {
            e.requested = true;
            e.first_owed = true;
        }
        self.state.on_request(&mut self.conn, request);
        let may_answer = first || changes || (nack && DeltaNack::MAY_ANSWER);
        if idle_before && !may_answer {
            prop_assert!(
                !self.state.has_pending(),
                "an ACK or a stale request made a response due"
            );
        }
        Ok(())
    }

    /// Lets the stream send one response; `false` when it had none to send.
    fn step(&mut self) -> Result<bool, TestCaseError> {
        let Some(response) = self.state.next_response(&mut self.conn) else {
            for (t, e) in self.expect.iter().enumerate() {
                prop_assert!(!e.first_owed, "first request of {} unanswered", TYPES[t]);
                for name in &e.after_clusters {
                    let current = self.served.version(TYPES[t], name);
                    prop_assert!(
                        !current.is_some_and(
                            |v| e.subscription.wants(name) && !e.nack.withheld(name, &v)
                        ),
                        "endpoints {name} not pushed after their cluster"
                    );
                }
            }
            return Ok(false);
        };
        let t = index_of(response.type_url);
        let e = &mut self.expect[t];
        prop_assert!(response
            .resources
            .iter()
            .all(|r| r.type_url() == response.type_url));
        let sent = pairs(&response.resources);
        prop_assert_eq!(sent.len(), response.resources.len(), "a name sent twice");
        for (name, version) in &sent {
            prop_assert!(
                e.subscription.wants(name),
                "{name} sent, not subscribed: {:?}",
                e.subscription
            );
            let current = self.served.version(TYPES[t], name);
            prop_assert_eq!(
                Some(version),
                current.as_ref(),
                "{} sent at a version that is not current",
                name
            );
            e.nack.check(name, version)?;
        }
        for name in &response.removed_resources {
            let exists = self.served.version(TYPES[t], name).is_some();
            prop_assert!(
                !(exists && e.subscription.wants(name)),
                "{name} removed while it exists and is wanted"
            );
            prop_assert!(!sent.contains_key(name), "{name} both sent and removed");
        }
        prop_assert!(
            e.first_owed || !sent.is_empty() || !response.removed_resources.is_empty(),
            "an empty {} response that is not the first",
            TYPES[t]
        );
        e.first_owed = false;
        for name in sent.keys().chain(&response.removed_resources) {
            e.after_clusters.remove(name);
        }
        if TYPES[t] == type_url::CLUSTER {
            let endpoints = &mut self.expect[index_of(type_url::ENDPOINT)];
            endpoints.after_clusters.extend(sent.keys().cloned());
        }
        let e = &mut self.expect[t];
        e.outstanding.push_back(Outstanding {
            nonce: response.nonce.clone(),
            resources: sent,
        });
        if e.outstanding.len() > OUTSTANDING {
            e.outstanding.pop_front();
        }
        self.net.push_back(response);
        Ok(true)
    }

    fn drain(&mut self) -> Result<(), TestCaseError> {
        drain_with(|| self.step())
    }

    fn change(&mut self, edits: &[Edit]) {
        self.served.apply(edits);
        self.conn.resources = self.served.resources();
        self.state.on_generation();
        for (t, e) in self.expect.iter_mut().enumerate() {
            for name in NAMES {
                if self.served.version(TYPES[t], name).is_none() {
                    e.nack.gone(name);
                }
            }
        }
    }

    fn reconnect(&mut self) -> Result<(), TestCaseError> {
        self.conn = connect(&self.shared, true, &self.served);
        self.state = DeltaState::default();
        self.net.clear();
        self.expect = vec![Expect::default(); TYPES.len()];
        for (t, type_url) in TYPES.iter().enumerate() {
            let p = &mut self.proxy[t];
            if !p.requested {
                continue;
            }
            p.requested = false;
            p.told_absent.clear();
            p.unsettled.clear();
            let wildcard_type = type_url::is_wildcard(type_url);
            let mut subscribe: Vec<String> = p.subscription.explicit.iter().cloned().collect();
            if p.subscription.wildcard && (!wildcard_type || !subscribe.is_empty()) {
                subscribe.push("*".into());
            }
            if subscribe.is_empty() && !(wildcard_type && p.subscription.wildcard) {
                // Nothing left to ask for: the proxy does not ask for the type again.
                p.view.clear();
                p.subscription = Subscription::default();
                continue;
            }
            p.requested = true;
            let request = DeltaDiscoveryRequest {
                type_url: (*type_url).into(),
                resource_names_subscribe: subscribe,
                initial_resource_versions: p.view.clone().into_iter().collect(),
                ..Default::default()
            };
            self.send(t, request)?;
        }
        Ok(())
    }

    /// Reads and acknowledges everything, then compares the proxy's view with the
    /// server's resources.
    fn settle(&mut self) -> Result<(), TestCaseError> {
        for _ in 0..10 {
            self.drain()?;
            if self.net.is_empty() {
                return self.check_views();
            }
            while !self.net.is_empty() {
                self.receive(false)?;
            }
        }
        Err(TestCaseError::fail("the stream did not settle"))
    }

    fn check_views(&self) -> Result<(), TestCaseError> {
        for (t, p) in self.proxy.iter().enumerate() {
            if !p.requested {
                continue;
            }
            let e = &self.expect[t];
            prop_assert_eq!(
                &p.subscription,
                &e.subscription,
                "model: subscriptions agree"
            );
            for name in NAMES {
                if p.unsettled.contains(name) {
                    continue;
                }
                let current = self.served.version(TYPES[t], name);
                if current.as_ref().is_some_and(|v| e.nack.withheld(name, v)) {
                    continue;
                }
                let expected = current.filter(|_| p.subscription.wants(name));
                prop_assert_eq!(
                    p.view.get(name),
                    expected.as_ref(),
                    "the proxy's {} {}",
                    TYPES[t],
                    name
                );
                if p.subscription.explicit.contains(name)
                    && self.served.version(TYPES[t], name).is_none()
                {
                    prop_assert!(
                        p.told_absent.contains(name),
                        "never told that {} {} does not exist",
                        TYPES[t],
                        name
                    );
                }
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn delta_stream_follows_the_protocol_rules(
        actions in prop::collection::vec(action(), 1..40)
    ) {
        let mut run = Run::new();
        for action in &actions {
            run.act(action)?;
        }
        run.settle()?;
    }
}
