//! Resource versions are equal across processes, for resources whose maps prost encodes in
//! a different order every time.
//!
//! Why the maps are ordered differently: prost generates `std::collections::HashMap` for
//! proto maps and encodes them in iteration order. Every `HashMap` gets its own hash keys
//! (`RandomState`: per-process random keys, bumped for each new map), so both two instances
//! in one process and the same instance in two processes usually iterate differently. The
//! test checks that this really happens here (the raw prost encodings differ between
//! instances and between the two child processes), so without canonical encoding the
//! versions would differ too and the test would fail.
//!
//! How: `versions_within_one_process` builds each resource `INSTANCES` times, checks that
//! all give one version and prints a report; `versions_across_processes` runs that test
//! twice as child processes (this very test binary) and compares the reports.

use std::collections::{BTreeSet, HashMap};
use std::process::Command;

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::Metadata;
use envoy_types::pb::envoy::config::endpoint::v3::{
    ClusterLoadAssignment, LbEndpoint, LocalityLbEndpoints,
};
use envoy_types::pb::envoy::config::listener::v3::{filter, Filter, FilterChain, Listener};
use envoy_types::pb::envoy::config::rbac::v3::{permission, Permission, Policy, Rbac as Rules};
use envoy_types::pb::envoy::config::route::v3::{RouteConfiguration, VirtualHost};
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::HttpFault;
use envoy_types::pb::envoy::extensions::filters::http::rbac::v3::{Rbac, RbacPerRoute};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_filter, HttpConnectionManager, HttpFilter,
};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::HttpProtocolOptions;
use envoy_types::pb::envoy::extensions::upstreams::tcp::v3::TcpProtocolOptions;
use envoy_types::pb::google::protobuf::{value::Kind, Any, Struct, Value};
use meshd::envoy::resource::content_version;
use meshd::envoy::{type_url, Resource};
use prost::{Message, Name};

const INSTANCES: usize = 16;
const REPORT: &str = "canonical-report ";

/// Packs as prost alone does: map entries in hash order.
fn raw_any<M: Message + Name>(message: &M) -> Any {
    Any {
        type_url: M::type_url(),
        value: message.encode_to_vec(),
    }
}

fn strings(pairs: &[(&str, &str)]) -> Struct {
    Struct {
        fields: pairs
            .iter()
            .map(|(k, v)| {
                let v = Value {
                    kind: Some(Kind::StringValue(v.to_string())),
                };
                (k.to_string(), v)
            })
            .collect(),
    }
}

fn metadata() -> Metadata {
    let mut istio = strings(&[("workload", "reviews-v2"), ("namespace", "default")]);
    istio.fields.insert(
        "labels".into(),
        Value {
            kind: Some(Kind::StructValue(strings(&[
                ("app", "reviews"),
                ("version", "v2"),
                ("team", "books"),
            ]))),
        },
    );
    Metadata {
        filter_metadata: HashMap::from([
            ("istio".into(), istio),
            (
                "envoy.transport_socket_match".into(),
                strings(&[("tlsMode", "istio")]),
            ),
            (
                "envoy.lb".into(),
                strings(&[("zone", "z1"), ("region", "r1")]),
            ),
        ]),
        ..Default::default()
    }
}

fn rules() -> Rules {
    Rules {
        policies: (0..5)
            .map(|i| {
                let policy = Policy {
                    permissions: vec![Permission {
                        rule: Some(permission::Rule::DestinationPort(9080 + i)),
                    }],
                    ..Default::default()
                };
                (format!("ns[default]-policy[p{i}]-rule[0]"), policy)
            })
            .collect(),
        ..Default::default()
    }
}

/// The resources, each built afresh (new maps) on every call.
fn resources() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let cluster = Cluster {
        name: "outbound|9080||reviews.default.svc.cluster.local".into(),
        typed_extension_protocol_options: HashMap::from([
            (
                HttpProtocolOptions::full_name(),
                raw_any(&HttpProtocolOptions::default()),
            ),
            (
                TcpProtocolOptions::full_name(),
                raw_any(&TcpProtocolOptions::default()),
            ),
        ]),
        metadata: Some(metadata()),
        ..Default::default()
    };
    let endpoints = ClusterLoadAssignment {
        cluster_name: "outbound|9080||reviews.default.svc.cluster.local".into(),
        endpoints: vec![LocalityLbEndpoints {
            lb_endpoints: (0..3)
                .map(|_| LbEndpoint {
                    metadata: Some(metadata()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let per_filter = || {
        HashMap::from([
            (
                "envoy.filters.http.rbac".to_string(),
                raw_any(&RbacPerRoute {
                    rbac: Some(Rbac {
                        rules: Some(rules()),
                        ..Default::default()
                    }),
                }),
            ),
            (
                "envoy.filters.http.fault".to_string(),
                raw_any(&HttpFault::default()),
            ),
        ])
    };
    let routes = RouteConfiguration {
        name: "9080".into(),
        virtual_hosts: vec![VirtualHost {
            name: "reviews:9080".into(),
            typed_per_filter_config: per_filter(),
            routes: vec![envoy_types::pb::envoy::config::route::v3::Route {
                typed_per_filter_config: per_filter(),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let hcm = HttpConnectionManager {
        stat_prefix: "inbound_0.0.0.0_9080".into(),
        http_filters: vec![HttpFilter {
            name: "envoy.filters.http.rbac".into(),
            config_type: Some(http_filter::ConfigType::TypedConfig(raw_any(&Rbac {
                rules: Some(rules()),
                ..Default::default()
            }))),
            ..Default::default()
        }],
        ..Default::default()
    };
    let listener = Listener {
        name: "virtualInbound".into(),
        filter_chains: vec![FilterChain {
            filters: vec![Filter {
                name: "envoy.filters.network.http_connection_manager".into(),
                config_type: Some(filter::ConfigType::TypedConfig(raw_any(&hcm))),
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    vec![
        ("cluster", type_url::CLUSTER, cluster.encode_to_vec()),
        ("endpoints", type_url::ENDPOINT, endpoints.encode_to_vec()),
        ("routes", type_url::ROUTE, routes.encode_to_vec()),
        ("listener", type_url::LISTENER, listener.encode_to_vec()),
    ]
}

/// Per resource: its version and the hash of each instance's raw prost encoding.
#[derive(Debug, PartialEq)]
struct Line {
    name: String,
    version: String,
    raw: Vec<String>,
}

fn build_report() -> Vec<Line> {
    let instances: Vec<_> = (0..INSTANCES).map(|_| resources()).collect();
    (0..instances[0].len())
        .map(|i| {
            let (name, url, _) = &instances[0][i];
            let versions: BTreeSet<String> = instances
                .iter()
                .map(|set| Resource::from_encoded(*name, url, set[i].2.clone()).version)
                .collect();
            assert_eq!(versions.len(), 1, "{name}: {versions:?}");
            Line {
                name: name.to_string(),
                version: versions.into_iter().next().unwrap(),
                raw: instances
                    .iter()
                    .map(|set| content_version(name, &set[i].2))
                    .collect(),
            }
        })
        .collect()
}

fn parse(stdout: &str) -> Vec<Line> {
    stdout
        .lines()
        // libtest prints `test <name> ... ` before the first line of output.
        .filter_map(|l| l.split_once(REPORT).map(|(_, report)| report))
        .map(|l| {
            let mut words = l.split(' ');
            Line {
                name: words.next().unwrap().into(),
                version: words.next().unwrap().into(),
                raw: words.next().unwrap().split(',').map(String::from).collect(),
            }
        })
        .collect()
}

#[test]
fn versions_within_one_process() {
    let report = build_report();
    for line in &report {
        // Within this process already, the instances' raw encodings differ.
        let distinct: BTreeSet<&String> = line.raw.iter().collect();
        assert!(distinct.len() > 1, "{}: maps encoded alike", line.name);
        println!(
            "{REPORT}{} {} {}",
            line.name,
            line.version,
            line.raw.join(",")
        );
    }
}

#[test]
fn versions_across_processes() {
    let run = || {
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "versions_within_one_process",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .output()
            .expect("running this test binary");
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(out.status.success(), "child failed: {stdout}");
        let report = parse(&stdout);
        assert_eq!(report.len(), 4, "{stdout}");
        report
    };
    let (a, b) = (run(), run());
    let here = build_report();
    for ((a, b), here) in a.iter().zip(&b).zip(&here) {
        assert_eq!(a.name, here.name);
        assert_eq!(a.version, b.version, "{}", a.name);
        assert_eq!(a.version, here.version, "{}", a.name);
    }
    // The first instance of each resource, encoded by prost alone, differs between the two
    // processes for at least one resource (by chance all four would match with a
    // probability far below one in a million): the versions agree despite that.
    assert!(
        a.iter().zip(&b).any(|(a, b)| a.raw[0] != b.raw[0]),
        "{a:?} {b:?}"
    );
}
