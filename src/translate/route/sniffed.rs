//! Route configs of sniffed service ports: `<fqdn>:<port>`, read by the HTTP chain of the
//! service's own outbound listener (`listener::sniffing`). As istiod builds them: the
//! service's virtual host alone, answering any authority (`*`, since the listener already
//! knows the destination), with no catch-all host.

use std::collections::BTreeSet;

use envoy_types::pb::envoy::config::route::v3::{RouteConfiguration, VirtualHost};

use super::{config_shell, service_virtual_host};
use crate::mesh::Service;
use crate::translate::naming;
use crate::translate::scope::Scope;

/// The route config of `service`'s sniffed `port`, around its virtual host as the port's
/// shared route config would hold it.
pub fn sniffed_route_config(
    service: &Service,
    port: u16,
    vhost: VirtualHost,
) -> RouteConfiguration {
    RouteConfiguration {
        name: naming::sniffed_route_config(&service.hostname, port),
        virtual_hosts: vec![VirtualHost {
            domains: vec!["*".to_string()],
            ..vhost
        }],
        ..config_shell(port)
    }
}

/// Every sniffed port the scope sees that gets an outbound listener, as (service, port).
pub fn sniffed_ports<'a>(scope: &Scope<'a>) -> Vec<(&'a Service, u16)> {
    scope
        .services()
        .flat_map(|s| {
            s.ports
                .iter()
                .filter(|p| {
                    p.protocol.is_sniffed()
                        && p.port != naming::OUTBOUND_CAPTURE_PORT
                        && p.port != naming::INBOUND_CAPTURE_PORT
                })
                .map(move |p| (s.as_ref(), p.port))
        })
        .collect()
}

/// The sniffed route configs a scope sees, sorted by name.
pub fn sniffed_route_configs(scope: &Scope) -> Vec<RouteConfiguration> {
    let mut configs: Vec<RouteConfiguration> = sniffed_ports(scope)
        .into_iter()
        .filter_map(|(service, port)| {
            // Its domains are replaced, so none is taken by another host here.
            let vhost = service_virtual_host(service, port, scope.namespace, &mut BTreeSet::new())?;
            Some(sniffed_route_config(service, port, vhost))
        })
        .collect();
    configs.sort_by(|a, b| a.name.cmp(&b.name));
    configs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::{MeshModel, ObjectKey, Protocol, ProxyType, ServicePort, TargetPort};
    use crate::translate::scope::{ScopeIndex, TranslateOptions};
    use std::sync::Arc;

    #[test]
    fn one_host_answering_any_authority_and_no_catch_all() {
        let mut model = MeshModel::default();
        let port = |name: &str, port, protocol| ServicePort {
            name: name.into(),
            port,
            target_port: TargetPort::Number(port),
            protocol,
        };
        let key = ObjectKey {
            namespace: "demo".into(),
            name: "echo".into(),
        };
        model.services.insert(
            key.clone(),
            Arc::new(Service {
                key,
                hostname: "echo.demo.svc.cluster.local".into(),
                cluster_ip: Some("10.96.0.10".into()),
                ports: vec![
                    port("web", 8080, Protocol::Unsupported),
                    port("http", 9080, Protocol::Http),
                    port("tcp", 9000, Protocol::Tcp),
                ],
                selector: None,
                labels: Default::default(),
                origin: crate::mesh::ServiceOrigin::Kubernetes,
            }),
        );
        let options = TranslateOptions::default();
        let index = ScopeIndex::new(&model, &options);
        let labels = Default::default();
        let scope = Scope {
            model: &model,
            options: &options,
            index: &index,
            namespace: "demo",
            proxy_type: ProxyType::Sidecar,
            labels: &labels,
            sidecar: None,
            gateway_keys: &[],
            zone: None,
            identity: false,
        };
        let configs = sniffed_route_configs(&scope);
        assert_eq!(configs.len(), 1);
        let c = &configs[0];
        assert_eq!(c.name, "echo.demo.svc.cluster.local:8080");
        assert_eq!(c.virtual_hosts.len(), 1);
        let vh = &c.virtual_hosts[0];
        assert_eq!(vh.name, "echo.demo.svc.cluster.local:8080");
        assert_eq!(vh.domains, ["*"]);
        assert!(vh.include_request_attempt_count);
        assert!(c.ignore_port_in_host_matching);
    }
}
