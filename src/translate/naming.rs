//! Every Envoy resource name meshd emits, in one place. The names are Istio's
//! (ISTIO-COMPAT.md) so dashboards, runbooks and EnvoyFilter patches keep working.

/// Outbound capture listener, reached through iptables redirection.
pub const VIRTUAL_OUTBOUND: &str = "virtualOutbound";
/// Inbound capture listener.
pub const VIRTUAL_INBOUND: &str = "virtualInbound";
pub const OUTBOUND_CAPTURE_PORT: u16 = 15001;
pub const INBOUND_CAPTURE_PORT: u16 = 15006;
/// Envoy's admin interface (localhost only).
pub const ADMIN_PORT: u16 = 15000;
/// The pilot-agent status port in Istio; kept free so pods move between meshes unchanged.
pub const AGENT_STATUS_PORT: u16 = 15020;
/// The bootstrap's static readiness listener.
pub const READINESS_PORT: u16 = 15021;
/// The bootstrap's static Prometheus listener.
pub const PROMETHEUS_PORT: u16 = 15090;

/// Ports the sidecar itself owns. meshd builds no per-port listener, route config, inbound
/// chain or inbound cluster for them: a dynamic `0.0.0.0_15021` would share its name with
/// the bootstrap's static listener, and Envoy would keep the static one while the route
/// config it names never gets requested.
pub fn is_proxy_port(port: u16) -> bool {
    matches!(
        port,
        ADMIN_PORT
            | OUTBOUND_CAPTURE_PORT
            | INBOUND_CAPTURE_PORT
            | AGENT_STATUS_PORT
            | READINESS_PORT
            | PROMETHEUS_PORT
    )
}

pub const PASSTHROUGH_CLUSTER: &str = "PassthroughCluster";
pub const INBOUND_PASSTHROUGH_CLUSTER: &str = "InboundPassthroughCluster";
pub const BLACKHOLE_CLUSTER: &str = "BlackHoleCluster";

/// The catch-all virtual host of every outbound route config.
pub const ALLOW_ANY_VHOST: &str = "allow_any";
/// The catch-all virtual host under REGISTRY_ONLY (istiod's name).
pub const BLOCK_ALL_VHOST: &str = "block_all";
/// Name of the route a virtual host has when no traffic rule applies.
pub const DEFAULT_ROUTE: &str = "default";

/// The catch-all filter chain of `virtualOutbound` and `virtualInbound`.
pub const PASSTHROUGH_CHAIN: &str = "PassthroughFilterChain";

/// Address inbound connections to the application are made from. Istio uses it so that
/// iptables can tell Envoy's inbound leg (source 127.0.0.6 on `lo`) from the application's
/// own traffic and leave it alone.
pub const INBOUND_BIND_ADDRESS: &str = "127.0.0.6";

/// The bootstrap's static listeners. Istio leaves them unnamed (Envoy then makes up a
/// name); meshd names them, with a prefix no dynamic listener name can have.
pub fn readiness_listener() -> String {
    format!("meshd_readiness_{READINESS_PORT}")
}

pub fn prometheus_listener() -> String {
    format!("meshd_prometheus_{PROMETHEUS_PORT}")
}

/// Static cluster in the bootstrap that points at meshd.
pub const XDS_CLUSTER: &str = "xds-grpc";

/// Any IPv4 address, the address of the catch-all listeners.
pub const WILDCARD_ADDRESS: &str = "0.0.0.0";

/// `outbound|<port>|<subset>|<fqdn>`; the subset is empty for the service as a whole.
pub fn outbound_cluster(port: u16, subset: &str, hostname: &str) -> String {
    format!("outbound|{port}|{subset}|{hostname}")
}

/// `inbound|<targetPort>||`
pub fn inbound_cluster(target_port: u16) -> String {
    format!("inbound|{target_port}||")
}

/// Outbound HTTP route configs are named after the port alone.
pub fn route_config(port: u16) -> String {
    port.to_string()
}

/// `<fqdn>:<port>`
pub fn virtual_host(hostname: &str, port: u16) -> String {
    format!("{hostname}:{port}")
}

/// The trace operation of a service's routes: `<fqdn>:<port>/*`.
pub fn trace_operation(hostname: &str, port: u16) -> String {
    format!("{}/*", virtual_host(hostname, port))
}

/// `0.0.0.0_<port>`: outbound HTTP listeners and inbound filter chains.
pub fn wildcard_listener(port: u16) -> String {
    format!("{WILDCARD_ADDRESS}_{port}")
}

/// `<VIP>_<port>`: outbound TCP listeners.
pub fn tcp_listener(address: &str, port: u16) -> String {
    format!("{address}_{port}")
}

/// Ends the stat names istiod delimits (cluster `alt_stat_name`s, connection manager
/// stat prefixes). Istio's stats tag rules in the bootstrap (`bootstrap::stats_config`)
/// take everything up to it as the tag value, so names with dots, such as
/// `outbound|9080||reviews.default.svc.cluster.local`, stay whole.
pub const STAT_NAME_DELIMITER: char = ';';

/// `name` followed by the stat name delimiter.
pub fn delimited_stat_name(name: &str) -> String {
    format!("{name}{STAT_NAME_DELIMITER}")
}

/// Stat prefix of the HTTP connection manager on an outbound port:
/// `outbound_0.0.0.0_<port>;`.
pub fn outbound_stat_prefix(port: u16) -> String {
    delimited_stat_name(&format!("outbound_{WILDCARD_ADDRESS}_{port}"))
}

/// Stat prefix of the HTTP connection manager on an inbound port:
/// `inbound_0.0.0.0_<port>;`.
pub fn inbound_stat_prefix(port: u16) -> String {
    delimited_stat_name(&format!("inbound_{WILDCARD_ADDRESS}_{port}"))
}

/// Virtual host of an inbound HTTP chain: `inbound|http|<port>`.
pub fn inbound_virtual_host(port: u16) -> String {
    format!("inbound|http|{port}")
}

/// mTLS SNI for an outbound cluster: `outbound_.<port>_.<subset>_.<fqdn>`.
pub fn outbound_sni(port: u16, subset: &str, hostname: &str) -> String {
    format!("outbound_.{port}_.{subset}_.{hostname}")
}

/// The host names a proxy in `proxy_namespace` may use for a service: the FQDN, the short
/// forms its namespace allows (the bare name only from the same namespace), and the
/// ClusterIP. The hostname is `name.namespace.svc.<suffix>`.
pub fn service_domains(
    hostname: &str,
    name: &str,
    namespace: &str,
    cluster_ip: Option<&str>,
    proxy_namespace: &str,
) -> Vec<String> {
    let mut domains = vec![hostname.to_string()];
    if namespace == proxy_namespace {
        domains.push(name.to_string());
    }
    for short in [
        format!("{name}.{namespace}"),
        format!("{name}.{namespace}.svc"),
    ] {
        if short != hostname {
            domains.push(short);
        }
    }
    if let Some(ip) = cluster_ip {
        domains.push(ip.to_string());
    }
    domains
}

/// The chain of a capture listener that drops connections addressed to the listener's own
/// port: `virtualOutbound-blackhole`, `virtualInbound-blackhole`.
pub fn blackhole_chain(listener: &str) -> String {
    format!("{listener}-blackhole")
}

/// Route config of a gateway's plaintext HTTP servers on one port: `http.<port>`, with
/// `.<bind>` when the servers bind one address.
pub fn gateway_http_route(port: u16, bind: Option<&str>) -> String {
    format!("http.{port}{}", bind_suffix(bind))
}

/// Route config of one HTTPS server that terminates TLS:
/// `https.<port>.<port name>.<gateway>.<namespace>` (and `.<bind>`), as istiod names it.
pub fn gateway_https_route(
    port: u16,
    port_name: &str,
    gateway: &str,
    namespace: &str,
    bind: Option<&str>,
) -> String {
    format!(
        "https.{port}.{port_name}.{gateway}.{namespace}{}",
        bind_suffix(bind)
    )
}

fn bind_suffix(bind: Option<&str>) -> String {
    bind.map(|b| format!(".{b}")).unwrap_or_default()
}

/// A gateway listener: `<bind>_<port>`, `0.0.0.0_<port>` unless the server binds an address.
pub fn gateway_listener(bind: Option<&str>, port: u16) -> String {
    format!("{}_{port}", bind.unwrap_or(WILDCARD_ADDRESS))
}

/// The virtual host that answers 404 on a gateway route config no VirtualService fills:
/// `blackhole:<port>`.
pub fn gateway_blackhole_vhost(port: u16) -> String {
    virtual_host("blackhole", port)
}

/// SDS name of a gateway credential: `kubernetes://<secret name>`.
pub fn credential_secret(name: &str) -> String {
    format!("{CREDENTIAL_PREFIX}{name}")
}

/// SDS name of a gateway credential's CA bundle: `kubernetes://<secret name>-cacert`.
pub fn credential_ca_secret(name: &str) -> String {
    format!("{CREDENTIAL_PREFIX}{name}{CREDENTIAL_CA_SUFFIX}")
}

/// Prefix of SDS names that refer to Kubernetes Secrets.
pub const CREDENTIAL_PREFIX: &str = "kubernetes://";
/// Suffix of the SDS name of a credential's CA bundle.
pub const CREDENTIAL_CA_SUFFIX: &str = "-cacert";

/// Route config of a sniffed (undeclared protocol) service port: `<fqdn>:<port>`, one per
/// service, since its listener is the service's own address, not the shared wildcard.
pub fn sniffed_route_config(hostname: &str, port: u16) -> String {
    format!("{hostname}:{port}")
}

/// Stat prefix of the HTTP connection manager on an outbound listener bound to an address,
/// `outbound_<address>_<port>;` for listener `<address>_<port>` (sniffed ports).
pub fn outbound_listener_stat_prefix(listener: &str) -> String {
    delimited_stat_name(&format!("outbound_{listener}"))
}
