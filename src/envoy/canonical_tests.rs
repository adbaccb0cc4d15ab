//! Every map field meshd emits or soon will, with several entries: built twice until prost
//! encodes the two in different orders (each `HashMap` has its own random hash keys), then
//! both must give the same canonical bytes and resource version.

use std::collections::HashMap;

use bytes::Bytes;
use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::{address, Address, Metadata, SocketAddress};
use envoy_types::pb::envoy::config::endpoint::v3::{
    lb_endpoint::HostIdentifier, ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints,
};
use envoy_types::pb::envoy::config::listener::v3::{filter, Filter, FilterChain, Listener};
use envoy_types::pb::envoy::config::rbac::v3::{
    permission, principal, principal::Authenticated, Permission, Policy, Principal,
    Rbac as RbacRules,
};
use envoy_types::pb::envoy::config::route::v3::{Route, RouteConfiguration, VirtualHost};
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::HttpFault;
use envoy_types::pb::envoy::extensions::filters::http::rbac::v3::{Rbac, RbacPerRoute};
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_filter, HttpConnectionManager, HttpFilter,
};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::HttpProtocolOptions;
use envoy_types::pb::envoy::extensions::upstreams::tcp::v3::TcpProtocolOptions;
use envoy_types::pb::envoy::r#type::matcher::v3::{string_matcher::MatchPattern, StringMatcher};
use envoy_types::pb::google::protobuf::{value::Kind, Any, Duration, Struct, Value};
use prost::{Message, Name};

use super::*;
use crate::envoy::json::any_to_json;
use crate::envoy::resource::{type_url, Resource};

/// Packs like prost alone would (map entries in hash order), unlike `filter::any`.
pub(crate) fn raw_any<M: Message + Name>(message: &M) -> Any {
    Any {
        type_url: M::type_url(),
        value: message.encode_to_vec(),
    }
}

fn string(s: &str) -> Value {
    Value {
        kind: Some(Kind::StringValue(s.into())),
    }
}

fn object(fields: &[(&str, Value)]) -> Struct {
    Struct {
        fields: fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    }
}

/// Istio's endpoint metadata: several filters, a struct nested in a struct.
fn endpoint_metadata() -> Metadata {
    let labels = object(&[
        ("app", string("reviews")),
        ("version", string("v2")),
        ("topology.istio.io/network", string("net-1")),
        ("security.istio.io/tlsMode", string("istio")),
    ]);
    let istio = object(&[
        (
            "workload",
            string("reviews-v2;default;reviews;v2;cluster.local"),
        ),
        (
            "labels",
            Value {
                kind: Some(Kind::StructValue(labels)),
            },
        ),
        ("namespace", string("default")),
    ]);
    Metadata {
        filter_metadata: HashMap::from([
            ("istio".to_string(), istio),
            (
                "envoy.transport_socket_match".to_string(),
                object(&[("tlsMode", string("istio"))]),
            ),
            (
                "envoy.lb".to_string(),
                object(&[("zone", string("z1")), ("region", string("r1"))]),
            ),
        ]),
        ..Default::default()
    }
}

fn load_assignment() -> ClusterLoadAssignment {
    let endpoint = |ip: &str| LbEndpoint {
        host_identifier: Some(HostIdentifier::Endpoint(Endpoint {
            address: Some(Address {
                address: Some(address::Address::SocketAddress(SocketAddress {
                    address: ip.into(),
                    ..Default::default()
                })),
            }),
            ..Default::default()
        })),
        metadata: Some(endpoint_metadata()),
        ..Default::default()
    };
    ClusterLoadAssignment {
        cluster_name: "outbound|9080||reviews.default.svc.cluster.local".into(),
        endpoints: vec![LocalityLbEndpoints {
            lb_endpoints: vec![endpoint("10.0.0.1"), endpoint("10.0.0.2")],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn cluster() -> Cluster {
    Cluster {
        name: "outbound|9080||reviews.default.svc.cluster.local".into(),
        typed_extension_protocol_options: HashMap::from([
            (
                HttpProtocolOptions::full_name(),
                raw_any(&HttpProtocolOptions::default()),
            ),
            (
                TcpProtocolOptions::full_name(),
                raw_any(&TcpProtocolOptions {
                    idle_timeout: Some(Duration {
                        seconds: 3600,
                        nanos: 0,
                    }),
                }),
            ),
        ]),
        metadata: Some(endpoint_metadata()),
        ..Default::default()
    }
}

pub(crate) fn rbac_rules() -> RbacRules {
    let policy = |principal: &str| Policy {
        permissions: vec![Permission {
            rule: Some(permission::Rule::Any(true)),
        }],
        principals: vec![Principal {
            identifier: Some(principal::Identifier::Authenticated(Authenticated {
                principal_name: Some(StringMatcher {
                    match_pattern: Some(MatchPattern::Exact(principal.into())),
                    ..Default::default()
                }),
            })),
        }],
        ..Default::default()
    };
    RbacRules {
        policies: ["a", "b", "c", "d", "e"]
            .iter()
            .map(|n| {
                (
                    format!("ns[default]-policy[{n}]-rule[0]"),
                    policy(&format!("cluster.local/ns/default/sa/{n}")),
                )
            })
            .collect(),
        ..Default::default()
    }
}

/// Two filters configured per route (and per virtual host).
fn per_filter_config() -> HashMap<String, Any> {
    HashMap::from([
        (
            "envoy.filters.http.rbac".to_string(),
            raw_any(&RbacPerRoute {
                rbac: Some(Rbac {
                    rules: Some(rbac_rules()),
                    ..Default::default()
                }),
            }),
        ),
        (
            "envoy.filters.http.fault".to_string(),
            raw_any(&HttpFault::default()),
        ),
    ])
}

fn route_config() -> RouteConfiguration {
    RouteConfiguration {
        name: "9080".into(),
        virtual_hosts: vec![VirtualHost {
            name: "reviews.default.svc.cluster.local:9080".into(),
            domains: vec!["*".into()],
            routes: vec![Route {
                name: "default".into(),
                typed_per_filter_config: per_filter_config(),
                ..Default::default()
            }],
            typed_per_filter_config: per_filter_config(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// RBAC policies inside the RBAC filter's `Any`, inside the HCM's `Any`, in a filter chain.
fn listener() -> Listener {
    let hcm = HttpConnectionManager {
        stat_prefix: "inbound_0.0.0.0_9080".into(),
        http_filters: vec![
            HttpFilter {
                name: "envoy.filters.http.rbac".into(),
                config_type: Some(http_filter::ConfigType::TypedConfig(raw_any(&Rbac {
                    rules: Some(rbac_rules()),
                    ..Default::default()
                }))),
                ..Default::default()
            },
            HttpFilter {
                name: "envoy.filters.http.router".into(),
                config_type: Some(http_filter::ConfigType::TypedConfig(raw_any(
                    &Router::default(),
                ))),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    Listener {
        name: "virtualInbound".into(),
        filter_chains: vec![FilterChain {
            filters: vec![Filter {
                name: "envoy.filters.network.http_connection_manager".into(),
                config_type: Some(filter::ConfigType::TypedConfig(raw_any(&hcm))),
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// Two constructions of the same message that prost encodes differently.
pub(crate) fn two_orders<M: Message>(build: impl Fn() -> M) -> (M, M) {
    let first = build();
    let raw = first.encode_to_vec();
    for _ in 0..200 {
        let second = build();
        if second.encode_to_vec() != raw {
            return (first, second);
        }
    }
    panic!("200 constructions all encoded alike: no map order to canonicalize");
}

/// Asserts that two differently ordered constructions canonicalize to the same bytes and
/// versions (by each way of making a resource), and that the bytes still mean the message.
fn assert_canonical<M: Message>(type_url: &str, build: impl Fn() -> M) -> Vec<u8> {
    let (a, b) = two_orders(build);
    let ra = Resource::encode("r", type_url, &a);
    let rb = Resource::encode("r", type_url, &b);
    assert_eq!(ra.body.value, rb.body.value);
    assert_eq!(ra.version, rb.version);
    let from_raw = Resource::from_encoded("r", type_url, b.encode_to_vec());
    assert_eq!(from_raw, rb);
    // Same meaning: equal JSON (which decodes nested `Any`s and compares maps unordered).
    assert_eq!(
        any_to_json(type_url, &ra.body.value).unwrap(),
        any_to_json(type_url, &a.encode_to_vec()).unwrap()
    );
    // Canonical bytes are left as they are, in the same buffer.
    let again = canonical(type_url, ra.body.value.clone()).unwrap();
    assert_eq!(again.as_ptr(), ra.body.value.as_ptr());
    ra.body.value.to_vec()
}

/// The keys of map field `number` of the message in `bytes`, in encoded order (string keys).
fn map_keys(bytes: &[u8], number: u32) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut buf = bytes;
    while !buf.is_empty() {
        let (tag, wire_type) = prost::encoding::decode_key(&mut buf).unwrap();
        if tag != number {
            prost::encoding::skip_field(
                wire_type,
                tag,
                &mut buf,
                prost::encoding::DecodeContext::default(),
            )
            .unwrap();
            continue;
        }
        let len = prost::encoding::decode_varint(&mut buf).unwrap() as usize;
        let (mut entry, rest) = buf.split_at(len);
        buf = rest;
        let (mut key, mut value) = (String::new(), Vec::new());
        while !entry.is_empty() {
            let (tag, _) = prost::encoding::decode_key(&mut entry).unwrap();
            let len = prost::encoding::decode_varint(&mut entry).unwrap() as usize;
            let (field, rest) = entry.split_at(len);
            entry = rest;
            match tag {
                1 => key = String::from_utf8(field.to_vec()).unwrap(),
                _ => value = field.to_vec(),
            }
        }
        out.push((key, value));
    }
    out
}

fn assert_sorted(keys: &[(String, Vec<u8>)]) {
    let names: Vec<&String> = keys.iter().map(|(k, _)| k).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
}

#[test]
fn endpoint_metadata_is_sorted_at_every_level() {
    let bytes = assert_canonical(
        "type.googleapis.com/envoy.config.core.v3.Metadata",
        endpoint_metadata,
    );
    // Checked by hand: the filters, each filter's struct and the struct inside it.
    let filters = map_keys(&bytes, 1);
    assert_eq!(filters.len(), 3);
    assert_sorted(&filters);
    let mut labels = None;
    for (_, value) in &filters {
        let fields = map_keys(value, 1);
        assert_sorted(&fields);
        labels = labels.or(fields.into_iter().find(|(k, _)| k == "labels"));
    }
    // The labels `Value` holds its struct in field 5; the struct's field 1 is the map.
    let (_, value) = labels.expect("istio metadata has labels");
    let mut inner = value.as_slice();
    let (tag, _) = prost::encoding::decode_key(&mut inner).unwrap();
    assert_eq!(tag, 5);
    let len = prost::encoding::decode_varint(&mut inner).unwrap() as usize;
    let labels = map_keys(&inner[..len], 1);
    assert_eq!(labels.len(), 4);
    assert_sorted(&labels);
}

#[test]
fn load_assignment_with_endpoint_metadata() {
    assert_canonical(type_url::ENDPOINT, load_assignment);
}

#[test]
fn cluster_protocol_options_and_metadata() {
    let bytes = assert_canonical(type_url::CLUSTER, cluster);
    let options = map_keys(&bytes, 36);
    assert_eq!(
        options.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        [
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "envoy.extensions.upstreams.tcp.v3.TcpProtocolOptions"
        ]
    );
}

#[test]
fn per_filter_config_on_route_and_virtual_host() {
    assert_canonical(type_url::ROUTE, route_config);
    assert_canonical(
        "type.googleapis.com/envoy.config.route.v3.VirtualHost",
        || route_config().virtual_hosts.remove(0),
    );
    assert_canonical("type.googleapis.com/envoy.config.route.v3.Route", || {
        route_config().virtual_hosts.remove(0).routes.remove(0)
    });
}

#[test]
fn rbac_policies_inside_any_inside_any() {
    assert_canonical(type_url::LISTENER, listener);
}

#[test]
fn message_without_maps_is_returned_as_is() {
    let address = Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: "10.0.0.1".into(),
            ..Default::default()
        })),
    };
    let bytes = Bytes::from(address.encode_to_vec());
    let out = canonical("envoy.config.core.v3.Address", bytes.clone()).unwrap();
    assert_eq!(out, bytes);
    assert_eq!(out.as_ptr(), bytes.as_ptr());
    // A message type that can hold maps, holding one entry each: no copy either.
    let single = Cluster {
        name: "c".into(),
        metadata: Some(Metadata {
            filter_metadata: HashMap::from([("istio".to_string(), object(&[("a", string("b"))]))]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let bytes = Bytes::from(single.encode_to_vec());
    let out = canonical(type_url::CLUSTER, bytes.clone()).unwrap();
    assert_eq!(out.as_ptr(), bytes.as_ptr());
}

#[test]
fn entries_separated_by_other_fields_are_gathered() {
    // Merged encodings: Struct-less map entries of field 1 with a field 2 entry between.
    let one = |k: &str| Metadata {
        filter_metadata: HashMap::from([(k.to_string(), object(&[("x", string(k))]))]),
        ..Default::default()
    };
    let typed = Metadata {
        typed_filter_metadata: HashMap::from([("t".to_string(), raw_any(&Router::default()))]),
        ..Default::default()
    };
    let mut bytes = one("b").encode_to_vec();
    bytes.extend(typed.encode_to_vec());
    bytes.extend(one("a").encode_to_vec());
    canonicalize("envoy.config.core.v3.Metadata", &mut bytes).unwrap();
    let mut expected = one("a").encode_to_vec();
    expected.extend(one("b").encode_to_vec());
    expected.extend(typed.encode_to_vec());
    assert_eq!(bytes, expected);
}

#[test]
fn errors_name_the_type() {
    assert_eq!(
        canonical("no.such.Message", Bytes::new()),
        Err(CanonicalError::UnknownType("no.such.Message".into()))
    );
    let unknown_any = Listener {
        filter_chains: vec![FilterChain {
            filters: vec![Filter {
                name: "f".into(),
                config_type: Some(filter::ConfigType::TypedConfig(Any {
                    type_url: "type.googleapis.com/no.such.Filter".into(),
                    value: vec![8, 1],
                })),
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    assert_eq!(
        canonical(type_url::LISTENER, unknown_any.encode_to_vec().into()),
        Err(CanonicalError::UnknownType("no.such.Filter".into()))
    );
    // A length running past the end of a map entry.
    let err = canonical(
        "envoy.config.core.v3.Metadata",
        Bytes::from_static(&[10, 5, 1]),
    )
    .unwrap_err();
    assert!(
        matches!(&err, CanonicalError::Malformed { type_name, .. } if type_name == "envoy.config.core.v3.Metadata"),
        "{err}"
    );
}
