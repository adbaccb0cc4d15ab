//! The State of the World state machine against a model of XDS-PROTOCOL.md's SotW rules:
//! a response carries exactly the subscribed names that exist (the full set for wildcard
//! types), or for endpoints and routes after a complete response only those that changed,
//! and has a cause (first request, names grown, endpoints re-requested after a
//! cluster push, or changed content after a new generation); stale and ordinary ACK
//! requests are not answered; what is owed is sent before the stream goes idle; a
//! rejected content is not resent until the configuration changes (see `nack`); and once
//! the proxy has read and acknowledged everything, its view equals the server's current
//! resources for its subscription.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::nack::SotwNack;
use super::{
    change, config, connect, drain_with, index_of, names, pairs, rejected, resource, shared,
    type_index, Edit, Served, TYPES,
};
use crate::envoy::resource::{set_version, type_url, Resource};
use crate::xds::shared::Shared;
use crate::xds::sotw::SotwState;
use crate::xds::stream::{Conn, StreamProtocol};
use crate::xds::wire::SotwResponse;

type Content = BTreeMap<String, String>;

#[derive(Debug, Clone)]
enum Action {
    /// The proxy asks for type `t` with `names` (none for wildcard types) carrying the
    /// latest nonce it has; a first request of the stream may carry an earlier rejection.
    Request {
        t: usize,
        names: Vec<&'static str>,
        rejection: bool,
    },
    /// A request with a nonce that is not the latest arrives: an older one, or one never
    /// sent (a late duplicate).
    Stale {
        t: usize,
        names: Vec<&'static str>,
        rejection: bool,
        pick: usize,
    },
    /// The proxy reads the oldest response in flight and ACKs or NACKs it.
    Receive { nack: bool },
    /// The stream can take one response.
    Step,
    /// The stream sends everything it has.
    Drain,
    /// A new configuration generation.
    Change(Vec<Edit>),
    /// The stream ends; the proxy reconnects and asks again for what it had.
    Reconnect,
    /// Everything in flight is read and acknowledged; the views must agree.
    Settle,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => (type_index(), names(), prop::bool::weighted(0.2))
            .prop_map(|(t, names, rejection)| Action::Request { t, names, rejection }),
        1 => (type_index(), names(), any::<bool>(), 0usize..8)
            .prop_map(|(t, names, rejection, pick)| Action::Stale { t, names, rejection, pick }),
        4 => prop::bool::weighted(0.25).prop_map(|nack| Action::Receive { nack }),
        3 => Just(Action::Step),
        2 => Just(Action::Drain),
        2 => change().prop_map(Action::Change),
        1 => Just(Action::Reconnect),
        1 => Just(Action::Settle),
    ]
}

/// What the proxy has of one type.
#[derive(Debug, Default, Clone)]
struct Proxy {
    requested: bool,
    want: BTreeSet<String>,
    view: Content,
    /// The latest nonce received, and older ones.
    nonce: String,
    old_nonces: Vec<String>,
    /// `version_info` of the last response accepted.
    version: String,
    /// Its last answer was a NACK (repeated on the first request after a reconnect).
    rejected_last: bool,
}

/// What the model expects of the server for one type on the current stream.
#[derive(Debug, Default, Clone)]
struct Expect {
    requested: bool,
    /// Names of the last request the server took (named types).
    subscribed: BTreeSet<String>,
    nonce: Option<String>,
    last: Option<Content>,
    /// `version_info` of the last response: the full set it stood for.
    last_version: Option<String>,
    /// What the last response carried (all of `last`, or the changes of a partial one).
    last_sent: Option<Content>,
    /// Responses the server owes.
    first_owed: bool,
    grew_owed: bool,
    endpoints_owed: bool,
    /// A response the server may send (unconstrained NACK case, see `nack`).
    nack_may_answer: bool,
    /// Endpoints only: clusters were pushed since the last endpoint response.
    clusters_pushed: bool,
    generation_since: bool,
    nack: SotwNack,
}

struct Run {
    shared: Arc<Shared>,
    served: Served,
    conn: Conn,
    state: SotwState,
    net: VecDeque<SotwResponse>,
    proxy: Vec<Proxy>,
    expect: Vec<Expect>,
}

fn wildcard(t: usize) -> bool {
    type_url::is_wildcard(TYPES[t])
}

/// Types whose pushes may carry only what changed (endpoints and routes): Envoy updates the
/// resources a response carries and keeps the others.
fn partial(t: usize) -> bool {
    !wildcard(t) && TYPES[t] != type_url::SECRET
}

/// What a proxy holds after accepting `content` for type `t`, having held `held`.
fn accepted(t: usize, held: &Content, content: Content) -> Content {
    if wildcard(t) {
        return content;
    }
    let mut merged = held.clone();
    merged.extend(content);
    merged
}

impl Run {
    fn new() -> Self {
        let shared = shared();
        let served = Served::initial();
        let conn = connect(&shared, false, &served);
        Run {
            shared,
            served,
            conn,
            state: SotwState::default(),
            net: VecDeque::new(),
            proxy: vec![Proxy::default(); TYPES.len()],
            expect: vec![Expect::default(); TYPES.len()],
        }
    }

    /// What a response of type `t` must carry now.
    fn expected(&self, t: usize, subscribed: &BTreeSet<String>) -> Content {
        let all = self.served.all(TYPES[t]);
        if wildcard(t) {
            return all;
        }
        all.into_iter()
            .filter(|(n, _)| subscribed.contains(n))
            .collect()
    }

    fn act(&mut self, action: &Action) -> Result<(), TestCaseError> {
        match action {
            Action::Request {
                t,
                names,
                rejection,
            } => self.request(*t, names, *rejection),
            Action::Stale {
                t,
                names,
                rejection,
                pick,
            } => self.stale(*t, names, *rejection, *pick),
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

    /// The names the proxy sends for `t`, which become what it wants (and keeps).
    fn set_want(&mut self, t: usize, names: &[&str]) -> Vec<String> {
        if wildcard(t) {
            return Vec::new();
        }
        let p = &mut self.proxy[t];
        p.want = names.iter().map(|n| n.to_string()).collect();
        let want = p.want.clone();
        p.view.retain(|n, _| want.contains(n));
        p.want.iter().cloned().collect()
    }

    fn request(&mut self, t: usize, names: &[&str], rejection: bool) -> Result<(), TestCaseError> {
        let resource_names = self.set_want(t, names);
        let p = &mut self.proxy[t];
        let first = !p.requested;
        p.requested = true;
        let request = DiscoveryRequest {
            version_info: p.version.clone(),
            node: None,
            resource_names,
            type_url: TYPES[t].into(),
            response_nonce: if first {
                String::new()
            } else {
                p.nonce.clone()
            },
            // Only a first request repeats a rejection; a later one is an ACK with names.
            error_detail: if first && rejection { rejected() } else { None },
            ..Default::default()
        };
        self.send(t, request)
    }

    fn stale(
        &mut self,
        t: usize,
        names: &[&str],
        rejection: bool,
        pick: usize,
    ) -> Result<(), TestCaseError> {
        if !self.proxy[t].requested {
            return Ok(());
        }
        // A late duplicate, not what the proxy wants now: its names change nothing on
        // either side. (A proxy that changes its names while a response is in flight sends
        // a stale nonce too: that is `Request` before `Receive`.)
        let resource_names = names.iter().map(|n| n.to_string()).collect();
        let p = &self.proxy[t];
        let nonce = if pick.is_multiple_of(2) && !p.old_nonces.is_empty() {
            p.old_nonces[pick % p.old_nonces.len()].clone()
        } else {
            format!("never-sent-{pick}")
        };
        let request = DiscoveryRequest {
            version_info: p.version.clone(),
            resource_names,
            type_url: TYPES[t].into(),
            response_nonce: nonce,
            error_detail: if rejection { rejected() } else { None },
            ..Default::default()
        };
        self.send(t, request)
    }

    fn receive(&mut self, nack: bool) -> Result<(), TestCaseError> {
        let Some(response) = self.net.pop_front() else {
            return Ok(());
        };
        let t = index_of(response.type_url);
        let p = &mut self.proxy[t];
        let previous = std::mem::replace(&mut p.nonce, response.nonce.clone());
        if !previous.is_empty() {
            p.old_nonces.push(previous);
        }
        let resource_names: Vec<String> = if wildcard(t) {
            Vec::new()
        } else {
            p.want.iter().cloned().collect()
        };
        let error_detail = if nack {
            p.rejected_last = true;
            rejected()
        } else {
            let want = p.want.clone();
            let content = pairs(response.resources.iter())
                .into_iter()
                .filter(|(n, _)| wildcard(t) || want.contains(n))
                .collect();
            p.view = accepted(t, &p.view, content);
            p.version = response.version_info.clone();
            p.rejected_last = false;
            None
        };
        let request = DiscoveryRequest {
            version_info: p.version.clone(),
            resource_names,
            type_url: TYPES[t].into(),
            response_nonce: response.nonce.clone(),
            error_detail,
            ..Default::default()
        };
        self.send(t, request)
    }

    /// Hands a request to the server, updating what the model expects of it.
    fn send(&mut self, t: usize, request: DiscoveryRequest) -> Result<(), TestCaseError> {
        let idle_before = !self.state.has_pending();
        let e = &mut self.expect[t];
        let first = !e.requested;
        // Before the first response, the latest nonce sent is the empty one: a proxy that
        // changes its names before it hears back is heard.
        let taken = first || e.nonce.as_deref().unwrap_or("") == request.response_nonce;
        let mut may_answer = false;
        if taken {
            let names: BTreeSet<String> = request.resource_names.iter().cloned().collect();
            let grew = !wildcard(t) && !names.is_subset(&e.subscribed);
            e.subscribed = names;
            let nack = request.error_detail.is_some();
            if first {
                // Answered even when it repeats a rejection and has no nonce.
                e.requested = true;
                e.first_owed = true;
                may_answer = true;
            } else if nack {
                e.nack.nacked(e.last_sent.as_ref(), grew);
                if SotwNack::may_answer(grew) {
                    e.nack_may_answer = true;
                    may_answer = true;
                }
            } else {
                if grew {
                    e.grew_owed = true;
                    e.nack.resend_allowed();
                    may_answer = true;
                }
                if TYPES[t] == type_url::ENDPOINT && e.clusters_pushed {
                    e.endpoints_owed = true;
                    e.nack.resend_allowed();
                    may_answer = true;
                }
            }
        }
        self.state.on_request(&mut self.conn, request.into());
        if idle_before && !may_answer {
            prop_assert!(
                !self.state.has_pending(),
                "a stale request, a NACK or a plain ACK made a response due"
            );
        }
        Ok(())
    }

    /// Lets the stream send one response; `false` when it had none to send.
    fn step(&mut self) -> Result<bool, TestCaseError> {
        let Some(response) = self.state.next_response(&mut self.conn) else {
            for (t, e) in self.expect.iter().enumerate() {
                prop_assert!(
                    !(e.first_owed || e.grew_owed || e.endpoints_owed),
                    "idle with a response owed for {}: {e:?}",
                    TYPES[t]
                );
            }
            return Ok(false);
        };
        let t = index_of(response.type_url);
        prop_assert!(response
            .resources
            .iter()
            .all(|r| r.type_url() == response.type_url));
        let content = pairs(response.resources.iter());
        let expected = self.expected(t, &self.expect[t].subscribed);
        let e = &self.expect[t];
        let forced = e.first_owed || e.grew_owed || e.endpoints_owed || e.nack_may_answer;
        if content != expected {
            // Only what changed since a complete response the proxy did not reject.
            prop_assert!(
                partial(t) && !forced && !content.is_empty(),
                "a {} response that is not the full set: {content:?}, expected {expected:?}",
                TYPES[t]
            );
            prop_assert!(
                content.iter().all(|(n, v)| expected.get(n) == Some(v)),
                "a partial {} response with what is not current: {content:?}",
                TYPES[t]
            );
        }
        // The version names the full set, partial response or not.
        let full: Vec<Resource> = expected
            .keys()
            .map(|n| resource(TYPES[t], n, self.served.revs[TYPES[t]][n.as_str()]))
            .collect();
        prop_assert_eq!(&response.version_info, &set_version(full.iter()));
        let e = &mut self.expect[t];
        // What the server takes the proxy to hold after a partial response.
        let sent = content.clone();
        let content = if partial(t) {
            accepted(t, e.last.as_ref().unwrap_or(&Content::new()), content)
        } else {
            content
        };
        // Changed for the proxy, or (a full response after a rejection, which may tell the
        // proxy nothing new) in the set the server serves.
        let changed = e.last.as_ref() != Some(&content)
            || e.last_version.as_ref() != Some(&response.version_info);
        prop_assert!(
            e.first_owed
                || e.grew_owed
                || e.endpoints_owed
                || e.nack_may_answer
                || (e.generation_since && changed),
            "a {} response without a cause: {e:?}",
            TYPES[t]
        );
        if !e.first_owed {
            e.nack.check(&sent)?;
        }
        e.first_owed = false;
        e.grew_owed = false;
        e.endpoints_owed = false;
        e.nack_may_answer = false;
        e.clusters_pushed = false;
        e.generation_since = false;
        e.last = Some(content);
        e.last_version = Some(response.version_info.clone());
        e.last_sent = Some(sent);
        e.nonce = Some(response.nonce.clone());
        if TYPES[t] == type_url::CLUSTER {
            self.expect[index_of(type_url::ENDPOINT)].clusters_pushed = true;
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
        for e in &mut self.expect {
            e.generation_since = true;
            e.nack.generation();
        }
    }

    fn reconnect(&mut self) -> Result<(), TestCaseError> {
        self.conn = connect(&self.shared, false, &self.served);
        self.state = SotwState::default();
        self.net.clear();
        self.expect = vec![Expect::default(); TYPES.len()];
        for t in 0..TYPES.len() {
            let p = &mut self.proxy[t];
            if !p.requested {
                continue;
            }
            p.requested = false;
            let want: Vec<String> = p.want.iter().cloned().collect();
            let names: Vec<&str> = want.iter().map(String::as_str).collect();
            let rejected = p.rejected_last;
            self.request(t, &names, rejected)?;
        }
        Ok(())
    }

    /// Reads and acknowledges everything, re-sends subscriptions the server ignored (stale),
    /// then compares the proxy's view with the server's resources.
    fn settle(&mut self) -> Result<(), TestCaseError> {
        for _ in 0..10 {
            self.drain()?;
            if self.net.is_empty() {
                let mut synced = false;
                for t in 0..TYPES.len() {
                    let p = &self.proxy[t];
                    if p.requested
                        && !wildcard(t)
                        && !p.rejected_last
                        && self.expect[t].subscribed != p.want
                    {
                        let want: Vec<String> = p.want.iter().cloned().collect();
                        let names: Vec<&str> = want.iter().map(String::as_str).collect();
                        self.request(t, &names, false)?;
                        synced = true;
                    }
                }
                if !synced {
                    return self.check_views();
                }
            }
            while !self.net.is_empty() {
                self.receive(false)?;
            }
        }
        Err(TestCaseError::fail("the stream did not settle"))
    }

    fn check_views(&self) -> Result<(), TestCaseError> {
        for (t, p) in self.proxy.iter().enumerate() {
            // A proxy keeps what it had after a rejection, until the configuration changes.
            if !p.requested || p.rejected_last {
                continue;
            }
            let expected = self.expected(t, &p.want);
            // A named resource that no longer exists stays with the proxy (Envoy drops
            // endpoints and routes with the cluster or listener that uses them).
            let view: Content = (p.view.iter())
                .filter(|(n, _)| wildcard(t) || expected.contains_key(*n))
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect();
            prop_assert_eq!(&view, &expected, "the proxy's {}", TYPES[t]);
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn sotw_stream_follows_the_protocol_rules(
        actions in prop::collection::vec(action(), 1..40)
    ) {
        let mut run = Run::new();
        for action in &actions {
            run.act(action)?;
        }
        run.settle()?;
    }
}
