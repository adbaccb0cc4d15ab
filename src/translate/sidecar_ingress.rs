//! The inbound side of a proxy whose Sidecar has `ingress` listeners, as istiod builds it:
//! those listeners replace the ports of the services selecting the workload. Each ingress
//! port gets a `virtualInbound` chain (`0.0.0.0_<port>`, by its protocol) and a cluster
//! `inbound|<port>||` whose host comes from `defaultEndpoint`:
//! - none: ORIGINAL_DST, the address the client dialled (as for service ports);
//! - `127.0.0.1:PORT` / `[::1]:PORT`: STATIC to the loopback address, connected to without
//!   the 127.0.0.6 source (loopback traffic is not captured);
//! - `0.0.0.0:PORT` / `[::]:PORT`: STATIC to the proxy's own IP, from 127.0.0.6 so that
//!   the capture rules let it through;
//! - `unix://PATH`: STATIC to the socket.
//!
//! When two ingress listeners name one port, the first keeps it. `bind` and `captureMode`
//! play no part with iptables capture (everything arrives through `virtualInbound`).

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::cluster::v3::{
    cluster::{ClusterDiscoveryType, DiscoveryType, LbPolicy},
    Cluster,
};
use envoy_types::pb::envoy::config::core::v3::{address, Address, Pipe};
use envoy_types::pb::envoy::config::endpoint::v3::{
    lb_endpoint::HostIdentifier, ClusterLoadAssignment, Endpoint, LbEndpoint, LocalityLbEndpoints,
};

use super::cluster::inbound_cluster;
use super::inbound_ports::InboundPorts;
use super::scope::ScopeKey;
use super::{naming, socket_address};
use crate::mesh::traffic::SidecarIngress;
use crate::mesh::{MeshModel, Protocol};

/// Where an ingress port's connections go.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IngressTarget {
    /// The address the client dialled.
    OriginalDst,
    /// The loopback address (`127.0.0.1` or `::1`) and port.
    Loopback(String, u16),
    /// The proxy's own IP (IPv4 or IPv6, as written) on this port.
    ProxyIp { ipv6: bool, port: u16 },
    /// A unix socket path.
    Unix(String),
}

/// Ingress port -> its protocol and target. What the inbound side of such a proxy depends
/// on (with the proxy's IP when some target is `ProxyIp`).
pub type IngressPorts = BTreeMap<u16, (Protocol, IngressTarget)>;

/// The ingress ports of a Sidecar, the sidecar's own ports left out (as for service ports).
pub fn ingress_ports(ingress: &[SidecarIngress]) -> IngressPorts {
    let mut out = IngressPorts::new();
    for listener in ingress {
        let port = listener.port.number;
        if naming::is_proxy_port(port) {
            continue;
        }
        let target = listener
            .default_endpoint
            .as_deref()
            .map_or(IngressTarget::OriginalDst, target);
        out.entry(port).or_insert((listener.port.protocol, target));
    }
    out
}

/// The ingress ports of the Sidecar a scope key names, when it has ingress listeners.
pub fn of_scope(model: &MeshModel, key: &ScopeKey) -> Option<IngressPorts> {
    let sidecar = model.sidecars.get(key.sidecar.as_ref()?)?;
    (!sidecar.ingress.is_empty()).then(|| ingress_ports(&sidecar.ingress))
}

/// A checked `defaultEndpoint` (`mesh::build` accepts only these shapes).
fn target(endpoint: &str) -> IngressTarget {
    if let Some(path) = endpoint.strip_prefix("unix://") {
        return IngressTarget::Unix(path.to_string());
    }
    let (host, port) = endpoint.rsplit_once(':').unwrap_or((endpoint, "0"));
    let port = port.parse().unwrap_or_default();
    match host {
        "127.0.0.1" => IngressTarget::Loopback("127.0.0.1".into(), port),
        "[::1]" => IngressTarget::Loopback("::1".into(), port),
        "[::]" => IngressTarget::ProxyIp { ipv6: true, port },
        _ => IngressTarget::ProxyIp { ipv6: false, port },
    }
}

/// Whether the clusters depend on the proxy's IP.
pub fn uses_proxy_ip(ports: &IngressPorts) -> bool {
    ports
        .values()
        .any(|(_, t)| matches!(t, IngressTarget::ProxyIp { .. }))
}

/// The port set `virtualInbound` builds its chains from.
pub fn chain_ports(ports: &IngressPorts) -> InboundPorts {
    ports
        .iter()
        .map(|(p, (protocol, _))| (*p, *protocol))
        .collect()
}

/// The inbound clusters of the ingress ports; `proxy_ip` fills `0.0.0.0:PORT` targets
/// (istiod falls back to loopback when the proxy has no address of that family).
pub fn inbound_clusters(ports: &IngressPorts, proxy_ip: &str) -> Vec<Cluster> {
    ports
        .iter()
        .map(|(port, (protocol, target))| {
            let cluster = inbound_cluster(*port, *protocol);
            let (address, bind_inbound) = match target {
                IngressTarget::OriginalDst => return cluster,
                IngressTarget::Loopback(ip, p) => (socket_address(ip, *p), false),
                IngressTarget::ProxyIp { ipv6, port: p } => {
                    let ip = match proxy_ip.parse::<std::net::IpAddr>() {
                        Ok(ip) if ip.is_ipv6() == *ipv6 => proxy_ip,
                        _ if *ipv6 => "::1",
                        _ => "127.0.0.1",
                    };
                    (socket_address(ip, *p), ip != "127.0.0.1" && ip != "::1")
                }
                IngressTarget::Unix(path) => (
                    Address {
                        address: Some(address::Address::Pipe(Pipe {
                            path: path.clone(),
                            mode: 0,
                        })),
                    },
                    false,
                ),
            };
            static_cluster(cluster, address, bind_inbound)
        })
        .collect()
}

fn static_cluster(cluster: Cluster, address: Address, bind_inbound: bool) -> Cluster {
    Cluster {
        cluster_discovery_type: Some(ClusterDiscoveryType::Type(DiscoveryType::Static as i32)),
        lb_policy: LbPolicy::LeastRequest as i32,
        // Only ORIGINAL_DST clusters have hosts to clean up.
        cleanup_interval: None,
        upstream_bind_config: if bind_inbound {
            cluster.upstream_bind_config.clone()
        } else {
            None
        },
        load_assignment: Some(ClusterLoadAssignment {
            cluster_name: cluster.name.clone(),
            endpoints: vec![LocalityLbEndpoints {
                lb_endpoints: vec![LbEndpoint {
                    host_identifier: Some(HostIdentifier::Endpoint(Endpoint {
                        address: Some(address),
                        ..Default::default()
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..cluster
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::traffic::IstioPort;

    fn ingress(number: u16, protocol: Protocol, endpoint: Option<&str>) -> SidecarIngress {
        SidecarIngress {
            port: IstioPort {
                number,
                protocol,
                name: format!("p{number}"),
                target_port: None,
            },
            bind: None,
            default_endpoint: endpoint.map(str::to_string),
        }
    }

    fn kind(c: &Cluster) -> ClusterDiscoveryType {
        c.cluster_discovery_type.clone().unwrap()
    }

    fn host(c: &Cluster) -> Address {
        let la = c.load_assignment.as_ref().unwrap();
        let Some(HostIdentifier::Endpoint(e)) = &la.endpoints[0].lb_endpoints[0].host_identifier
        else {
            panic!("endpoint");
        };
        e.address.clone().unwrap()
    }

    #[test]
    fn default_endpoints_pick_the_inbound_cluster_host() {
        let ports = ingress_ports(&[
            ingress(9080, Protocol::Http, Some("127.0.0.1:8080")),
            ingress(9090, Protocol::Grpc, Some("0.0.0.0:9091")),
            ingress(9100, Protocol::Tcp, None),
            ingress(9200, Protocol::Tcp, Some("unix:///var/run/app.sock")),
            ingress(9080, Protocol::Tcp, None),
            ingress(15021, Protocol::Http, None),
        ]);
        assert_eq!(
            chain_ports(&ports),
            InboundPorts::from([
                (9080, Protocol::Http),
                (9090, Protocol::Grpc),
                (9100, Protocol::Tcp),
                (9200, Protocol::Tcp),
            ]),
            "the first listener of a port keeps it; the sidecar's own ports are left out"
        );
        assert!(uses_proxy_ip(&ports));
        let clusters = inbound_clusters(&ports, "10.244.0.7");
        let names: Vec<&str> = clusters.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "inbound|9080||",
                "inbound|9090||",
                "inbound|9100||",
                "inbound|9200||"
            ]
        );
        let static_kind = ClusterDiscoveryType::Type(DiscoveryType::Static as i32);
        let [loopback, own_ip, original, unix] = &clusters[..] else {
            panic!("four clusters");
        };
        assert_eq!(kind(loopback), static_kind);
        assert_eq!(host(loopback), socket_address("127.0.0.1", 8080));
        assert!(
            loopback.upstream_bind_config.is_none(),
            "loopback is not captured"
        );
        assert!(loopback.cleanup_interval.is_none());
        assert_eq!(host(own_ip), socket_address("10.244.0.7", 9091));
        assert!(
            own_ip.upstream_bind_config.is_some(),
            "from 127.0.0.6, past the capture"
        );
        assert!(
            !own_ip.typed_extension_protocol_options.is_empty(),
            "gRPC upstream speaks HTTP/2"
        );
        assert_eq!(original, &inbound_cluster(9100, Protocol::Tcp));
        assert_eq!(kind(unix), static_kind);
        assert!(matches!(
            host(unix).address,
            Some(address::Address::Pipe(Pipe { ref path, .. })) if path == "/var/run/app.sock"
        ));
    }

    #[test]
    fn a_missing_family_falls_back_to_loopback() {
        let ports = ingress_ports(&[ingress(80, Protocol::Http, Some("[::]:8080"))]);
        let clusters = inbound_clusters(&ports, "10.244.0.7");
        assert_eq!(host(&clusters[0]), socket_address("::1", 8080));
        assert!(clusters[0].upstream_bind_config.is_none());
    }
}
