//! The domains of a service's outbound virtual host, by where the service comes from.
//! Kubernetes Services (ExternalName ones too): the FQDN, the short forms the proxy's
//! namespace may use, the ClusterIP. ServiceEntry hosts, as istiod's
//! `generateVirtualHostDomains`: the host as written (a wildcard stays a wildcard), short
//! forms only for a host shaped like a Kubernetes one (`name.ns.svc.cluster.local`), and
//! the entry's addresses.

use crate::mesh::{Service, ServiceOrigin, DEFAULT_DOMAIN_SUFFIX};
use crate::translate::naming;

/// The name and namespace whose short forms (`name`, `name.ns`, `name.ns.svc`) reach the
/// service, when it has them.
pub fn short_name_parts(service: &Service) -> Option<(&str, &str)> {
    match service.origin {
        ServiceOrigin::Kubernetes | ServiceOrigin::ExternalName(_) => {
            Some((&service.key.name, &service.key.namespace))
        }
        ServiceOrigin::ServiceEntry(_) => {
            let rest = service
                .hostname
                .strip_suffix(DEFAULT_DOMAIN_SUFFIX)?
                .strip_suffix(".svc.")?;
            let (name, namespace) = rest.split_once('.')?;
            let plain = |s: &str| !s.is_empty() && !s.contains(['.', '*']);
            (plain(name) && plain(namespace)).then_some((name, namespace))
        }
    }
}

/// The namespace whose proxies see the service's own-namespace domains (the bare name).
pub fn own_namespace(service: &Service) -> &str {
    short_name_parts(service).map_or(&service.key.namespace, |(_, ns)| ns)
}

pub fn domains(service: &Service, proxy_namespace: &str) -> Vec<String> {
    let vips = service.vips();
    let mut out = match short_name_parts(service) {
        Some((name, namespace)) => {
            naming::service_domains(&service.hostname, name, namespace, None, proxy_namespace)
        }
        None => vec![service.hostname.clone()],
    };
    out.extend(vips.into_iter().map(str::to_string));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::origin::entry_service;
    use crate::mesh::traffic::{ExportTo, Resolution};

    fn entry(host: &str, addresses: &[&str]) -> Service {
        entry_service("ext", host, addresses, Resolution::Dns, ExportTo::All)
    }

    #[test]
    fn entry_hosts_are_matched_as_written_with_their_addresses() {
        assert_eq!(
            domains(&entry("api.example.com", &["240.0.0.1"]), "ext"),
            ["api.example.com", "240.0.0.1"]
        );
        assert_eq!(
            domains(&entry("*.example.com", &[]), "ext"),
            ["*.example.com"]
        );
        let k8s_shaped = entry("db.data.svc.cluster.local", &[]);
        assert_eq!(own_namespace(&k8s_shaped), "data");
        assert_eq!(
            domains(&k8s_shaped, "data"),
            ["db.data.svc.cluster.local", "db", "db.data", "db.data.svc"]
        );
    }
}
