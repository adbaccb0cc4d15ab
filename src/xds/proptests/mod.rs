//! Property tests of the SotW and Delta stream state machines (`sotw::SotwState`,
//! `delta::DeltaState`), driven directly, without a transport: random sequences of proxy
//! requests (subscribe, unsubscribe, ACK, NACK, stale nonce, reconnect), configuration
//! changes and server steps, checked against small models of the rules in
//! XDS-PROTOCOL.md. The server side is the real state machine with a real `Conn`; only
//! the network is a queue, so that every interleaving of requests and responses the
//! stream loop (`stream::run`) allows can be produced, and nothing depends on timing.
//!
//! What is shared here: the test configuration (fixed cases and seed, so CI is
//! deterministic), the configuration the proxy is served (a few names per type whose
//! content changes), and the stream under test. The expectations about NACKs, which are
//! being revised, are all in `nack`.

mod delta;
mod nack;
mod sotw;

use std::collections::BTreeMap;
use std::sync::Arc;

use envoy_types::pb::google::rpc::Status as RpcStatus;
use proptest::prelude::*;
use proptest::test_runner::Config;

use super::generator::ConfigGenerator;
use super::options::XdsOptions;
use super::shared::Shared;
use super::stream::Conn;
use crate::envoy::resource::{type_url, ProxyResources, Resource};

/// Cases per protocol in CI. Each case is a few hundred microseconds of state machine.
const CASES: u32 = 512;
/// The seed CI uses, so a run is the same on every machine.
const SEED: u64 = 0x6d65_7368_6478_6473;

/// The proptest configuration CI runs (see `testing::fixed_proptest_config`).
fn config() -> Config {
    crate::testing::fixed_proptest_config(CASES, SEED)
}

/// The types a stream can ask for, in push order; secrets are allowed on these streams.
const TYPES: [&str; 5] = type_url::PUSH_ORDER;
/// The names every type draws from: few, so that subscriptions and changes collide.
const NAMES: [&str; 3] = ["a", "b", "c"];

/// Runs `step` (the server sends one response; `false` when it had none) until the stream
/// has nothing left to send; more steps than every type twice over is a push loop.
fn drain_with(mut step: impl FnMut() -> Result<bool, TestCaseError>) -> Result<(), TestCaseError> {
    for _ in 0..4 * TYPES.len() {
        if !step()? {
            return Ok(());
        }
    }
    Err(TestCaseError::fail("the stream never ran out of responses"))
}

/// The position of a served type in `TYPES`.
fn index_of(type_url: &str) -> usize {
    TYPES
        .iter()
        .position(|t| *t == type_url)
        .expect("a served type")
}

/// The `error_detail` of a NACK.
fn rejected() -> Option<RpcStatus> {
    Some(RpcStatus {
        code: 3,
        message: "rejected by the property test".into(),
        details: vec![],
    })
}

fn type_index() -> impl Strategy<Value = usize> {
    0..TYPES.len()
}

fn name() -> impl Strategy<Value = &'static str> {
    prop::sample::select(&NAMES[..])
}

/// A set of names, as the proxy asks for them.
fn names() -> impl Strategy<Value = Vec<&'static str>> {
    prop::sample::subsequence(&NAMES[..], 0..=NAMES.len())
}

/// One edit of the configuration: the resource `name` of type `TYPES[t]` gets content
/// revision `rev`, or disappears (`None`).
#[derive(Debug, Clone)]
struct Edit {
    t: usize,
    name: &'static str,
    rev: Option<u8>,
}

/// A new configuration generation: a few edits (none at all is a generation too).
fn change() -> impl Strategy<Value = Vec<Edit>> {
    prop::collection::vec(
        (type_index(), name(), prop::option::of(0u8..3)).prop_map(|(t, name, rev)| Edit {
            t,
            name,
            rev,
        }),
        0..4,
    )
}

/// The configuration served to the proxy: per type, each existing name's revision.
#[derive(Debug, Clone, Default)]
struct Served {
    revs: BTreeMap<&'static str, BTreeMap<&'static str, u8>>,
}

impl Served {
    /// Everything exists at revision 0.
    fn initial() -> Self {
        let mut c = Served::default();
        for t in TYPES {
            c.revs.insert(t, NAMES.iter().map(|n| (*n, 0)).collect());
        }
        c
    }

    fn apply(&mut self, edits: &[Edit]) {
        for e in edits {
            let of_type = self.revs.entry(TYPES[e.t]).or_default();
            match e.rev {
                Some(rev) => of_type.insert(e.name, rev),
                None => of_type.remove(e.name),
            };
        }
    }

    /// The version the server gives `name` of `type_url`, when it exists.
    fn version(&self, type_url: &str, name: &str) -> Option<String> {
        let rev = self.revs.get(type_url)?.get(name)?;
        Some(resource(type_url, name, *rev).version.clone())
    }

    /// Existing (name, version) pairs of a type, by name.
    fn all(&self, type_url: &str) -> BTreeMap<String, String> {
        NAMES
            .iter()
            .filter_map(|n| Some((n.to_string(), self.version(type_url, n)?)))
            .collect()
    }

    fn resources(&self) -> ProxyResources {
        let mut out = ProxyResources::default();
        for (t, revs) in &self.revs {
            out.set(
                t,
                revs.iter().map(|(n, rev)| Arc::new(resource(t, n, *rev))),
            );
        }
        out
    }
}

/// Content is opaque to the state machines: bytes that differ per revision will do.
fn resource(type_url: &str, name: &str, rev: u8) -> Resource {
    Resource::from_encoded(name, type_url, format!("{name} rev {rev}").into_bytes())
}

/// Never asked: the tests set each stream's resources themselves.
struct NoGenerator;

impl ConfigGenerator for NoGenerator {
    fn generate(
        &self,
        _node: &envoy_types::pb::envoy::config::core::v3::Node,
    ) -> Result<ProxyResources, String> {
        Err("the property tests set resources directly".into())
    }
}

/// The server state shared by streams, with secrets allowed so all five types behave alike.
fn shared() -> Arc<Shared> {
    let (_tx, rx) = tokio::sync::watch::channel(1);
    let options = XdsOptions {
        allow_unauthenticated_secrets: true,
        ..XdsOptions::default()
    };
    Arc::new(Shared::new(Arc::new(NoGenerator), rx, options))
}

/// A new stream holding `config`, as `stream::run` has it after the node's first request.
fn connect(shared: &Arc<Shared>, delta: bool, config: &Served) -> Conn {
    let mut conn = Conn::new(shared.clone(), delta, None);
    conn.resources = config.resources();
    conn
}

/// Sorted (name, version) pairs of resources.
fn pairs<'a>(resources: impl IntoIterator<Item = &'a Arc<Resource>>) -> BTreeMap<String, String> {
    resources
        .into_iter()
        .map(|r| (r.name.clone(), r.version.clone()))
        .collect()
}
