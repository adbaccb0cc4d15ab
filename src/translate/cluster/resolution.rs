//! How an outbound cluster finds its hosts, from the service's resolution, as istiod's
//! `convertResolution` and cluster builder decide it:
//! - STATIC (Kubernetes ClusterIP services, STATIC ServiceEntries): EDS;
//! - NONE (headless services, NONE ServiceEntries): ORIGINAL_DST, to the address the client
//!   dialled (a ServiceEntry port's `targetPort` replaces the dialled port);
//! - DNS (DNS ServiceEntries, ExternalName services): STRICT_DNS with the endpoints inline;
//! - DNS_ROUND_ROBIN: LOGICAL_DNS with its one endpoint inline.
//!
//! DNS clusters get istiod's resolver settings: IPv4 lookups (meshd's proxies are IPv4),
//! the c-ares resolver with at most 100 UDP queries, a 60 s refresh (the mesh default)
//! that follows the record's TTL, and 100 ms of jitter. A DNS cluster without any endpoint
//! is left out, as istiod does.

use envoy_types::pb::envoy::config::cluster::v3::{
    cluster::{DiscoveryType, DnsLookupFamily, LbConfig, LbPolicy, OriginalDstLbConfig},
    Cluster,
};
use envoy_types::pb::envoy::config::core::v3::TypedExtensionConfig;
use envoy_types::pb::envoy::extensions::network::dns_resolver::cares::v3::CaresDnsResolverConfig;
use envoy_types::pb::google::protobuf::{Duration, UInt32Value};

use crate::mesh::traffic::Resolution;
use crate::mesh::{Endpoint, MeshModel, Service, ServiceOrigin, ServicePort, TargetPort};
use crate::translate::endpoint::load_assignment_of;
use crate::translate::filter::any;

/// The DNS resolver extension istiod names on DNS clusters.
pub const CARES_RESOLVER: &str = "envoy.network.dns_resolver.cares";
/// istiod's `PILOT_DNS_CARES_UDP_MAX_QUERIES` default.
pub const CARES_UDP_MAX_QUERIES: u32 = 100;
/// The mesh's default `dnsRefreshRate`.
pub const DNS_REFRESH_SECS: i64 = 60;
/// istiod's `PILOT_DNS_JITTER_DURATION` default.
pub const DNS_JITTER_MILLIS: i32 = 100;

/// The discovery type and load balancing policy of a service's outbound clusters.
pub fn discovery(service: &Service) -> (DiscoveryType, LbPolicy) {
    match service.resolution() {
        Resolution::Static => (DiscoveryType::Eds, LbPolicy::LeastRequest),
        Resolution::None => (DiscoveryType::OriginalDst, LbPolicy::ClusterProvided),
        Resolution::Dns => (DiscoveryType::StrictDns, LbPolicy::LeastRequest),
        Resolution::DnsRoundRobin => (DiscoveryType::LogicalDns, LbPolicy::LeastRequest),
    }
}

/// Completes a service port's cluster (or a subset's, whose endpoints `keep` keeps) for its
/// resolution: the resolver settings and the inline endpoints of a DNS cluster (`None` when
/// it has no endpoint), the port override of an original-destination ServiceEntry port.
/// Other clusters are returned as they are. Traffic policies come after.
pub fn complete(
    model: &MeshModel,
    service: &Service,
    port: &ServicePort,
    keep: impl Fn(&Endpoint) -> bool,
    cluster: Cluster,
) -> Option<Cluster> {
    match service.resolution() {
        Resolution::Static => Some(cluster),
        Resolution::None => Some(original_dst(service, port, cluster)),
        Resolution::Dns | Resolution::DnsRoundRobin => dns(model, service, port, keep, cluster),
    }
}

fn original_dst(service: &Service, port: &ServicePort, mut cluster: Cluster) -> Cluster {
    let ServiceOrigin::ServiceEntry(_) = service.origin else {
        return cluster;
    };
    if let TargetPort::Number(target) = port.target_port {
        if target != port.port {
            cluster.lb_config = Some(LbConfig::OriginalDstLbConfig(OriginalDstLbConfig {
                upstream_port_override: Some(UInt32Value {
                    value: u32::from(target),
                }),
                ..Default::default()
            }));
        }
    }
    cluster
}

#[allow(deprecated)] // istiod sets the cluster-level DNS fields; Envoy 1.40 still reads them.
fn dns(
    model: &MeshModel,
    service: &Service,
    port: &ServicePort,
    keep: impl Fn(&Endpoint) -> bool,
    cluster: Cluster,
) -> Option<Cluster> {
    let mut assignment = load_assignment_of(model, service, port, cluster.name.clone(), keep);
    if service.resolution() == Resolution::DnsRoundRobin {
        // LOGICAL_DNS takes exactly one host: the first.
        assignment.endpoints.truncate(1);
        if let Some(locality) = assignment.endpoints.first_mut() {
            locality.lb_endpoints.truncate(1);
        }
    }
    if assignment
        .endpoints
        .iter()
        .all(|l| l.lb_endpoints.is_empty())
    {
        return None;
    }
    Some(Cluster {
        load_assignment: Some(assignment),
        dns_lookup_family: DnsLookupFamily::V4Only as i32,
        typed_dns_resolver_config: Some(TypedExtensionConfig {
            name: CARES_RESOLVER.to_string(),
            typed_config: Some(any(&CaresDnsResolverConfig {
                udp_max_queries: Some(UInt32Value {
                    value: CARES_UDP_MAX_QUERIES,
                }),
                ..Default::default()
            })),
        }),
        dns_refresh_rate: Some(Duration {
            seconds: DNS_REFRESH_SECS,
            nanos: 0,
        }),
        dns_jitter: Some(Duration {
            seconds: 0,
            nanos: DNS_JITTER_MILLIS * 1_000_000,
        }),
        respect_dns_ttl: true,
        ..cluster
    })
}

/// The endpoints DNS clusters carry inline: outbound clusters depend on these too.
pub(crate) fn dns_endpoints(
    model: &MeshModel,
) -> Vec<(&crate::mesh::ObjectKey, u16, &crate::mesh::PortEndpoints)> {
    port_endpoints_where(model, |s| {
        matches!(s.resolution(), Resolution::Dns | Resolution::DnsRoundRobin)
    })
}

/// The endpoints of every port of the services `pick` picks, by service key and port.
pub(crate) fn port_endpoints_where(
    model: &MeshModel,
    pick: impl Fn(&Service) -> bool,
) -> Vec<(&crate::mesh::ObjectKey, u16, &crate::mesh::PortEndpoints)> {
    model
        .services
        .values()
        .filter(|s| pick(s))
        .flat_map(|s| {
            s.ports.iter().filter_map(move |p| {
                model
                    .endpoints_of(&s.key, p.port)
                    .map(|e| (&s.key, p.port, e.as_ref()))
            })
        })
        .collect()
}
