//! Route configurations. Outbound: one config per HTTP port number, named `"<port>"`, with
//! a virtual host per service the proxy sees on that port plus the catch-all (`allow_any`,
//! or `block_all` under REGISTRY_ONLY). The short host names a proxy may use depend on its
//! namespace, so these are built per scope (`scope::ScopeKey`).
//! Inbound: a small inline config per HTTP target port, to the inbound cluster.

pub mod domains;
pub mod sniffed;

use std::collections::{BTreeMap, BTreeSet};

use envoy_types::pb::envoy::config::route::v3::{
    retry_policy::{retry_host_predicate, RetryHostPredicate},
    route::Action,
    route_action::{ClusterSpecifier, MaxStreamDuration},
    route_match::PathSpecifier,
    Decorator, DirectResponseAction, RetryPolicy, Route, RouteAction, RouteConfiguration,
    RouteMatch, VirtualHost,
};
use envoy_types::pb::envoy::extensions::retry::host::previous_hosts::v3::PreviousHostsPredicate;
use envoy_types::pb::google::protobuf::{BoolValue, Duration, UInt32Value};

use super::filter::any;
use super::http_route;
use super::naming;
use super::scope::destination_rule::set_hash_policies;
use super::scope::Scope;
use crate::mesh::traffic::OutboundPolicy;
use crate::mesh::{Protocol, Service};

/// Istio's default retry conditions for outbound requests. `retriable-status-codes` is
/// listed but, as in istiod, no status code is: a 503 from the application is not retried.
pub const DEFAULT_RETRY_ON: &str =
    "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes";
pub const DEFAULT_RETRY_ATTEMPTS: u32 = 2;
/// Istio's retry condition for inbound requests: only those reset before they reached the
/// application (it closed an idle connection as the request arrived), which are safe to
/// send again whatever their method.
pub const INBOUND_RETRY_ON: &str = "reset-before-request";
const PREVIOUS_HOSTS_PREDICATE: &str = "envoy.retry_host_predicates.previous_hosts";
/// Largest direct response body outbound route configs allow (istiod's value, 1 MiB).
pub const MAX_DIRECT_RESPONSE_BODY_BYTES: u32 = 1024 * 1024;

/// Istio's default retry policy: 2 attempts on connection-level failures, each on another
/// host when one is available.
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
        ..Default::default()
    }
}

/// Istio's default inbound retry policy (see `INBOUND_RETRY_ON`).
pub fn inbound_retry_policy() -> RetryPolicy {
    RetryPolicy {
        retry_on: INBOUND_RETRY_ON.to_string(),
        num_retries: Some(UInt32Value {
            value: DEFAULT_RETRY_ATTEMPTS,
        }),
        ..Default::default()
    }
}

/// A route named `name` sending every path to `cluster` with no timeout (0s disables it,
/// as in Istio), and an action for the caller to complete.
fn catch_all_route(name: &str, cluster: &str, action: RouteAction) -> Route {
    Route {
        name: name.to_string(),
        r#match: Some(RouteMatch {
            path_specifier: Some(PathSpecifier::Prefix("/".to_string())),
            ..Default::default()
        }),
        action: Some(Action::Route(RouteAction {
            cluster_specifier: Some(ClusterSpecifier::Cluster(cluster.to_string())),
            timeout: Some(Duration::default()),
            ..action
        })),
        ..Default::default()
    }
}

/// An outbound catch-all route as istiod builds it: no timeout, and the `grpc-timeout`
/// header honoured without a cap (`max_grpc_timeout: 0s`; istiod keeps this deprecated
/// field on outbound routes rather than `max_stream_duration`).
#[allow(deprecated)]
fn outbound_route(name: &str, cluster: &str, retry: Option<RetryPolicy>) -> Route {
    catch_all_route(
        name,
        cluster,
        RouteAction {
            max_grpc_timeout: Some(Duration::default()),
            retry_policy: retry,
            ..Default::default()
        },
    )
}

/// The route of a service's virtual host when no traffic rule applies: Istio's retries,
/// and the trace operation `<fqdn>:<port>/*`.
pub fn default_route(cluster: &str, hostname: &str, port: u16) -> Route {
    Route {
        decorator: Some(Decorator {
            operation: naming::trace_operation(hostname, port),
            ..Default::default()
        }),
        ..outbound_route(naming::DEFAULT_ROUTE, cluster, Some(default_retry_policy()))
    }
}

/// The route of an inbound chain: to the inbound cluster, with no timeout and no stream
/// duration limit, `grpc-timeout` honoured without a cap, and the inbound retry policy
/// except on gRPC ports (retrying a reset stream is not safe for streaming calls).
pub fn inbound_route(cluster: &str, protocol: Protocol) -> Route {
    let grpc = matches!(protocol, Protocol::Grpc | Protocol::GrpcWeb);
    catch_all_route(
        naming::DEFAULT_ROUTE,
        cluster,
        RouteAction {
            max_stream_duration: Some(MaxStreamDuration {
                max_stream_duration: Some(Duration::default()),
                grpc_timeout_header_max: Some(Duration::default()),
                ..Default::default()
            }),
            retry_policy: (!grpc).then(inbound_retry_policy),
            ..Default::default()
        },
    )
}

fn service_virtual_host(
    service: &Service,
    port: u16,
    proxy_namespace: &str,
    taken: &mut BTreeSet<String>,
) -> Option<VirtualHost> {
    let domains: Vec<String> = domains::domains(service, proxy_namespace)
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
            &service.hostname,
            port,
        )],
        // Envoy tells the application which attempt this is (`x-envoy-attempt-count`).
        include_request_attempt_count: true,
        ..Default::default()
    })
}

fn allow_any_virtual_host() -> VirtualHost {
    VirtualHost {
        name: naming::ALLOW_ANY_VHOST.to_string(),
        domains: vec!["*".to_string()],
        routes: vec![outbound_route(
            naming::ALLOW_ANY_VHOST,
            naming::PASSTHROUGH_CLUSTER,
            None,
        )],
        include_request_attempt_count: true,
        ..Default::default()
    }
}

/// istiod's catch-all under REGISTRY_ONLY: a destination outside the registry gets 502.
fn block_all_virtual_host() -> VirtualHost {
    VirtualHost {
        name: naming::BLOCK_ALL_VHOST.to_string(),
        domains: vec!["*".to_string()],
        routes: vec![Route {
            name: naming::BLOCK_ALL_VHOST.to_string(),
            r#match: Some(RouteMatch {
                path_specifier: Some(PathSpecifier::Prefix("/".to_string())),
                ..Default::default()
            }),
            action: Some(Action::DirectResponse(DirectResponseAction {
                status: 502,
                ..Default::default()
            })),
            ..Default::default()
        }],
        include_request_attempt_count: true,
        ..Default::default()
    }
}

/// HTTP port numbers a scope sees, each with its services sorted by hostname. The proxy's
/// own ports (`naming::is_proxy_port`) get neither a route config nor a listener.
pub fn http_ports<'a>(scope: &Scope<'a>) -> BTreeMap<u16, Vec<&'a Service>> {
    let mut ports: BTreeMap<u16, Vec<&Service>> = BTreeMap::new();
    for service in scope.services() {
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

/// Every outbound route config a scope sees, sorted by name: per HTTP port, a virtual
/// host per service, then the catch-all for other destinations (`allow_any`, or
/// `block_all` when the outbound policy is REGISTRY_ONLY).
pub fn outbound_route_configs(scope: &Scope) -> Vec<RouteConfiguration> {
    let catch_all = match scope.outbound_policy() {
        OutboundPolicy::AllowAny => allow_any_virtual_host(),
        OutboundPolicy::RegistryOnly => block_all_virtual_host(),
    };
    let mut configs: Vec<RouteConfiguration> = http_ports(scope)
        .into_iter()
        .map(|(port, services)| {
            let mut taken = BTreeSet::new();
            // Services a VirtualService names get its routes instead of the default route.
            let (mut virtual_hosts, claimed) =
                http_route::outbound_virtual_hosts(scope, port, &services, &mut taken);
            virtual_hosts.extend(
                services
                    .into_iter()
                    .filter(|s| !claimed.contains(&s.hostname))
                    .filter_map(|s| {
                        let mut host = service_virtual_host(s, port, scope.namespace, &mut taken)?;
                        let hashing = scope.hash_policies(&s.hostname, "", port);
                        host.routes
                            .iter_mut()
                            .for_each(|r| set_hash_policies(r, hashing.clone()));
                        Some(host)
                    }),
            );
            virtual_hosts.push(catch_all.clone());
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
pub fn inbound_route_config(target_port: u16, protocol: Protocol) -> RouteConfiguration {
    RouteConfiguration {
        name: naming::inbound_cluster(target_port),
        virtual_hosts: vec![VirtualHost {
            name: naming::inbound_virtual_host(target_port),
            domains: vec!["*".to_string()],
            routes: vec![inbound_route(
                &naming::inbound_cluster(target_port),
                protocol,
            )],
            ..Default::default()
        }],
        validate_clusters: Some(BoolValue { value: false }),
        ..Default::default()
    }
}

fn config_shell(port: u16) -> RouteConfiguration {
    RouteConfiguration {
        name: naming::route_config(port),
        // Clusters come over CDS on the same stream; do not make RDS wait for them.
        validate_clusters: Some(BoolValue { value: false }),
        max_direct_response_body_size_bytes: Some(UInt32Value {
            value: MAX_DIRECT_RESPONSE_BODY_BYTES,
        }),
        ignore_port_in_host_matching: true,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(route: &Route) -> &RouteAction {
        match route.action.as_ref() {
            Some(Action::Route(a)) => a,
            other => panic!("not a route action: {other:?}"),
        }
    }

    #[test]
    #[allow(deprecated)]
    fn outbound_routes_have_no_timeouts_and_istios_retries() {
        let route = default_route(
            "outbound|9080||reviews.default.svc.cluster.local",
            "reviews.default.svc.cluster.local",
            9080,
        );
        let a = action(&route);
        assert_eq!(a.timeout, Some(Duration::default()));
        assert_eq!(a.max_grpc_timeout, Some(Duration::default()));
        assert!(a.max_stream_duration.is_none());
        assert_eq!(
            route.decorator.as_ref().unwrap().operation,
            "reviews.default.svc.cluster.local:9080/*"
        );
        let retry = a.retry_policy.as_ref().unwrap();
        assert_eq!(retry.retry_on, DEFAULT_RETRY_ON);
        assert_eq!(retry.num_retries, Some(UInt32Value { value: 2 }));
        assert!(
            retry.retriable_status_codes.is_empty(),
            "503 is not retried"
        );
        assert_eq!(retry.host_selection_retry_max_attempts, 5);

        let vhost = allow_any_virtual_host();
        assert!(vhost.include_request_attempt_count);
        let a = action(&vhost.routes[0]);
        assert_eq!(vhost.routes[0].name, naming::ALLOW_ANY_VHOST);
        assert_eq!(a.timeout, Some(Duration::default()));
        assert_eq!(a.max_grpc_timeout, Some(Duration::default()));
        assert!(a.retry_policy.is_none());
    }

    #[test]
    fn inbound_routes_have_no_stream_limit_and_retry_resets_except_grpc() {
        for protocol in [
            Protocol::Http,
            Protocol::Http2,
            Protocol::Grpc,
            Protocol::GrpcWeb,
        ] {
            let config = inbound_route_config(9080, protocol);
            assert_eq!(config.validate_clusters, Some(BoolValue { value: false }));
            let route = &config.virtual_hosts[0].routes[0];
            let a = action(route);
            assert_eq!(a.timeout, Some(Duration::default()));
            let limit = a.max_stream_duration.as_ref().unwrap();
            assert_eq!(limit.max_stream_duration, Some(Duration::default()));
            assert_eq!(limit.grpc_timeout_header_max, Some(Duration::default()));
            let grpc = matches!(protocol, Protocol::Grpc | Protocol::GrpcWeb);
            match &a.retry_policy {
                None => assert!(grpc, "{protocol:?}"),
                Some(retry) => {
                    assert!(!grpc, "{protocol:?}");
                    assert_eq!(retry.retry_on, INBOUND_RETRY_ON);
                    assert_eq!(retry.num_retries, Some(UInt32Value { value: 2 }));
                }
            }
        }
    }

    #[test]
    fn outbound_route_configs_carry_istios_settings() {
        let shell = config_shell(9080);
        assert_eq!(
            shell.max_direct_response_body_size_bytes,
            Some(UInt32Value { value: 1024 * 1024 })
        );
        assert!(shell.ignore_port_in_host_matching);
        assert_eq!(shell.validate_clusters, Some(BoolValue { value: false }));
    }
}
