//! Route configurations. Outbound: one config per HTTP port number, named `"<port>"`, with
//! a virtual host per service having that port plus the `allow_any` catch-all. The short
//! host names a proxy may use depend on its namespace, so these are built per namespace.
//! Inbound: a small inline config per HTTP target port, to the inbound cluster.
//!
//! Only a service's own namespace sees a different virtual host (the bare name), so each
//! virtual host is encoded once in both forms (`EncodedPortRoutes`) and a namespace's
//! config is assembled by concatenating bytes, not by building and encoding it again.

use std::collections::{BTreeMap, BTreeSet};

use envoy_types::pb::envoy::config::route::v3::{
    retry_policy::{retry_host_predicate, RetryHostPredicate},
    route::Action,
    route_action::ClusterSpecifier,
    route_match::PathSpecifier,
    RetryPolicy, Route, RouteAction, RouteConfiguration, RouteMatch, VirtualHost,
};
use envoy_types::pb::envoy::extensions::retry::host::previous_hosts::v3::PreviousHostsPredicate;
use envoy_types::pb::google::protobuf::{BoolValue, Duration, UInt32Value};

use prost::Message;

use super::filter::any;
use super::naming;
use crate::mesh::{MeshModel, Service};

/// Istio's default retry conditions.
pub const DEFAULT_RETRY_ON: &str =
    "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes";
pub const DEFAULT_RETRY_ATTEMPTS: u32 = 2;
const PREVIOUS_HOSTS_PREDICATE: &str = "envoy.retry_host_predicates.previous_hosts";

/// Istio's default retry policy: 2 attempts on connection-level failures and 503, each on
/// another host when one is available.
pub fn default_retry_policy() -> RetryPolicy {
    RetryPolicy {
        retry_on: DEFAULT_RETRY_ON.to_string(),
        num_retries: Some(UInt32Value {
            value: DEFAULT_RETRY_ATTEMPTS,
        }),
        retry_host_predicate: vec![RetryHostPredicate {
            name: PREVIOUS_HOSTS_PREDICATE.to_string(),
            config_type: Some(retry_host_predicate::ConfigType::TypedConfig(any(
                &PreviousHostsPredicate::default(),
            ))),
        }],
        host_selection_retry_max_attempts: 5,
        retriable_status_codes: vec![503],
        ..Default::default()
    }
}

/// The route every virtual host has when no traffic rule applies: all paths to `cluster`,
/// no timeout (0s disables it, as in Istio).
pub fn default_route(cluster: &str, retry: Option<RetryPolicy>) -> Route {
    Route {
        name: naming::DEFAULT_ROUTE.to_string(),
        r#match: Some(RouteMatch {
            path_specifier: Some(PathSpecifier::Prefix("/".to_string())),
            ..Default::default()
        }),
        action: Some(Action::Route(RouteAction {
            cluster_specifier: Some(ClusterSpecifier::Cluster(cluster.to_string())),
            timeout: Some(Duration::default()),
            retry_policy: retry,
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn service_virtual_host(
    service: &Service,
    port: u16,
    proxy_namespace: &str,
    taken: &mut BTreeSet<String>,
) -> Option<VirtualHost> {
    let domains: Vec<String> = naming::service_domains(
        &service.hostname,
        &service.key.name,
        &service.key.namespace,
        service.cluster_ip.as_deref(),
        proxy_namespace,
    )
    .into_iter()
    // Envoy rejects a domain listed by two virtual hosts; the first (by name) keeps it.
    .filter(|d| taken.insert(d.clone()))
    .collect();
    if domains.is_empty() {
        return None;
    }
    Some(VirtualHost {
        name: naming::virtual_host(&service.hostname, port),
        domains,
        routes: vec![default_route(
            &naming::outbound_cluster(port, "", &service.hostname),
            Some(default_retry_policy()),
        )],
        ..Default::default()
    })
}

fn allow_any_virtual_host() -> VirtualHost {
    VirtualHost {
        name: naming::ALLOW_ANY_VHOST.to_string(),
        domains: vec!["*".to_string()],
        routes: vec![Route {
            name: naming::ALLOW_ANY_VHOST.to_string(),
            ..default_route(naming::PASSTHROUGH_CLUSTER, None)
        }],
        ..Default::default()
    }
}

/// HTTP port numbers of the mesh, each with its services sorted by hostname. The proxy's
/// own ports (`naming::is_proxy_port`) get neither a route config nor a listener.
pub fn http_ports(model: &MeshModel) -> BTreeMap<u16, Vec<&Service>> {
    let mut ports: BTreeMap<u16, Vec<&Service>> = BTreeMap::new();
    for service in model.services.values() {
        for port in service
            .ports
            .iter()
            .filter(|p| p.protocol.is_http() && !naming::is_proxy_port(p.port))
        {
            ports.entry(port.port).or_default().push(service);
        }
    }
    for services in ports.values_mut() {
        services.sort_by(|a, b| a.hostname.cmp(&b.hostname));
        services.dedup_by(|a, b| a.hostname == b.hostname);
    }
    ports
}

/// Every outbound route config as a proxy in `proxy_namespace` sees it, sorted by name:
/// the plain encoding the assembled bytes of `encoded_route_parts` are checked against.
#[cfg(test)]
pub fn outbound_route_configs(model: &MeshModel, proxy_namespace: &str) -> Vec<RouteConfiguration> {
    let mut configs: Vec<RouteConfiguration> = http_ports(model)
        .into_iter()
        .map(|(port, services)| {
            let mut taken = BTreeSet::new();
            let mut virtual_hosts: Vec<VirtualHost> = services
                .into_iter()
                .filter_map(|s| service_virtual_host(s, port, proxy_namespace, &mut taken))
                .collect();
            virtual_hosts.push(allow_any_virtual_host());
            RouteConfiguration {
                virtual_hosts,
                ..config_shell(port)
            }
        })
        .collect();
    configs.sort_by(|a, b| a.name.cmp(&b.name));
    configs
}

/// The inline route config of an inbound HTTP chain: everything to `inbound|<port>||`.
pub fn inbound_route_config(target_port: u16) -> RouteConfiguration {
    RouteConfiguration {
        name: naming::inbound_cluster(target_port),
        virtual_hosts: vec![VirtualHost {
            name: naming::inbound_virtual_host(target_port),
            domains: vec!["*".to_string()],
            routes: vec![default_route(&naming::inbound_cluster(target_port), None)],
            ..Default::default()
        }],
        validate_clusters: Some(BoolValue { value: false }),
        ..Default::default()
    }
}

/// One virtual host encoded as a `RouteConfiguration.virtual_hosts` field (tag and length
/// included), for proxies in the service's namespace and for all others.
struct EncodedHost {
    namespace: String,
    own_namespace: Vec<u8>,
    other_namespaces: Vec<u8>,
}

/// The pre-encoded pieces of the outbound route config of one port.
pub struct EncodedPortRoutes {
    name: String,
    /// `name`, the only field declared before `virtual_hosts`.
    head: Vec<u8>,
    hosts: Vec<EncodedHost>,
    allow_any: Vec<u8>,
    /// The fields declared after `virtual_hosts`.
    tail: Vec<u8>,
}

/// `virtual_hosts` is field 2 of RouteConfiguration.
const VIRTUAL_HOSTS_TAG: u32 = 2;

fn encode_host_field(host: &VirtualHost) -> Vec<u8> {
    let mut out = Vec::with_capacity(host.encoded_len() + 8);
    prost::encoding::message::encode(VIRTUAL_HOSTS_TAG, host, &mut out);
    out
}

fn config_shell(port: u16) -> RouteConfiguration {
    RouteConfiguration {
        name: naming::route_config(port),
        // Clusters come over CDS on the same stream; do not make RDS wait for them.
        validate_clusters: Some(BoolValue { value: false }),
        ignore_port_in_host_matching: true,
        ..Default::default()
    }
}

impl EncodedPortRoutes {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The encoded route config as a proxy in `namespace` sees it; byte for byte what
    /// encoding `outbound_route_configs`' message for that namespace gives.
    pub fn assemble(&self, namespace: &str) -> Vec<u8> {
        let hosts_len: usize = self
            .hosts
            .iter()
            .map(|h| h.other_namespaces.len().max(h.own_namespace.len()))
            .sum();
        let mut out = Vec::with_capacity(
            self.head.len() + hosts_len + self.allow_any.len() + self.tail.len(),
        );
        out.extend_from_slice(&self.head);
        for host in &self.hosts {
            out.extend_from_slice(if host.namespace == namespace {
                &host.own_namespace
            } else {
                &host.other_namespaces
            });
        }
        out.extend_from_slice(&self.allow_any);
        out.extend_from_slice(&self.tail);
        out
    }
}

/// Every outbound route config in pre-encoded pieces, sorted by name.
pub fn encoded_route_parts(model: &MeshModel) -> Vec<EncodedPortRoutes> {
    let mut parts: Vec<EncodedPortRoutes> = http_ports(model)
        .into_iter()
        .map(|(port, services)| {
            let shell = config_shell(port);
            let head = RouteConfiguration {
                name: shell.name.clone(),
                ..Default::default()
            }
            .encode_to_vec();
            let tail = RouteConfiguration {
                name: String::new(),
                ..shell.clone()
            }
            .encode_to_vec();
            // Only a ClusterIP can be claimed twice (bare names exist in one namespace
            // only), so the taken set is the same for every namespace.
            let mut taken = BTreeSet::new();
            let hosts = services
                .into_iter()
                .filter_map(|s| {
                    let mut own_taken = taken.clone();
                    let own = service_virtual_host(s, port, &s.key.namespace, &mut own_taken)?;
                    let other = service_virtual_host(s, port, "", &mut taken)?;
                    Some(EncodedHost {
                        namespace: s.key.namespace.clone(),
                        own_namespace: encode_host_field(&own),
                        other_namespaces: encode_host_field(&other),
                    })
                })
                .collect();
            EncodedPortRoutes {
                name: shell.name,
                head,
                hosts,
                allow_any: encode_host_field(&allow_any_virtual_host()),
                tail,
            }
        })
        .collect();
    parts.sort_by(|a, b| a.name.cmp(&b.name));
    parts
}
