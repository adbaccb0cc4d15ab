//! Which virtual hosts VirtualServices give an outbound HTTP port, as istiod decides it:
//! a service named by a VirtualService's hosts gets that VirtualService's routes instead
//! of the default route (exact hosts first; a service under several wildcard hosts goes to
//! the most specific); hosts that are not services (an external name) get a virtual host
//! of their own, `<host>:<port>` with the host as its only domain. On ports other than 80
//! only VirtualServices naming a service with the port take part, and a VirtualService
//! whose hosts name no such service adds nothing there; port 80 takes every
//! VirtualService, so external hosts are reachable on it (istiod's long-standing rule).

use std::collections::{BTreeMap, BTreeSet};

use envoy_types::pb::envoy::config::route::v3::{Route, VirtualHost};

use super::{build_routes, RouteContext};
use crate::mesh::traffic::select::host_matches;
use crate::mesh::traffic::VirtualService;
use crate::mesh::Service;
use crate::translate::naming;

/// The port on which hosts that are not services get virtual hosts from any VirtualService.
const NON_SERVICE_HOST_PORT: u16 = 80;

/// What a VirtualService virtual host stands for.
#[derive(Debug)]
pub enum Target<'a> {
    Service(&'a Service),
    /// A host that is no service with this port (lowercase, as written after resolution).
    Host(String),
}

/// One virtual host a VirtualService gives the port, before domains are chosen.
#[derive(Debug)]
pub struct VsVirtualHost<'a> {
    pub target: Target<'a>,
    pub routes: Vec<Route>,
}

impl VsVirtualHost<'_> {
    pub fn hostname(&self) -> &str {
        match &self.target {
            Target::Service(s) => &s.hostname,
            Target::Host(h) => h,
        }
    }

    /// The Envoy virtual host: named `<host>:<port>`, with `domains` (the caller's choice
    /// for a service: its names and ClusterIP as the proxy may use them).
    pub fn virtual_host(&self, port: u16, domains: Vec<String>) -> VirtualHost {
        VirtualHost {
            name: naming::virtual_host(self.hostname(), port),
            domains,
            routes: self.routes.clone(),
            include_request_attempt_count: true,
            ..Default::default()
        }
    }
}

/// The VirtualService virtual hosts of `port`, in istiod's order (VirtualServices in the
/// order given; within one, its other hosts, then its services), and the hostnames of the
/// services they cover (which get no default virtual host).
pub fn port_virtual_hosts<'a>(
    ctx: &RouteContext,
    virtual_services: &[&VirtualService],
    services: &[&'a Service],
    port: u16,
) -> (Vec<VsVirtualHost<'a>>, BTreeSet<String>) {
    let by_host: BTreeMap<&str, &'a Service> =
        services.iter().map(|s| (s.hostname.as_str(), *s)).collect();
    let wildcard_owner = most_specific_wildcards(virtual_services, services);
    let mut out = Vec::new();
    let mut claimed = BTreeSet::new();
    for (index, vs) in virtual_services.iter().enumerate() {
        let names_service = vs.hosts.iter().any(|h| {
            by_host.contains_key(h.as_str())
                || (h.starts_with('*') && services.iter().any(|s| host_matches(h, &s.hostname)))
        });
        if port != NON_SERVICE_HOST_PORT && !names_service {
            continue;
        }
        let routes = build_routes(ctx, vs, port);
        if routes.is_empty() {
            continue;
        }
        let mut others = Vec::new();
        let mut matched: Vec<&'a Service> = Vec::new();
        for host in &vs.hosts {
            let host = host.to_ascii_lowercase();
            if !host.starts_with('*') {
                match by_host.get(host.as_str()) {
                    Some(s) => matched.push(s),
                    None => others.push(host),
                }
                continue;
            }
            let covered: Vec<&'a Service> = services
                .iter()
                .copied()
                .filter(|s| host_matches(&host, &s.hostname))
                .collect();
            if covered.is_empty() {
                others.push(host);
            }
            matched.extend(
                covered
                    .into_iter()
                    .filter(|s| wildcard_owner.get(s.hostname.as_str()) == Some(&index)),
            );
        }
        if matched.is_empty() && port != NON_SERVICE_HOST_PORT {
            continue;
        }
        for host in others {
            out.push(VsVirtualHost {
                target: Target::Host(host),
                routes: routes.clone(),
            });
        }
        for service in matched {
            claimed.insert(service.hostname.clone());
            out.push(VsVirtualHost {
                target: Target::Service(service),
                routes: routes.clone(),
            });
        }
    }
    (out, claimed)
}

/// For each service under some wildcard host, the VirtualService (by index) whose wildcard
/// covering it is the most specific (longest); the first on ties.
fn most_specific_wildcards(
    virtual_services: &[&VirtualService],
    services: &[&Service],
) -> BTreeMap<String, usize> {
    let mut best: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for (index, vs) in virtual_services.iter().enumerate() {
        for host in vs.hosts.iter().filter(|h| h.starts_with('*')) {
            for s in services.iter().filter(|s| host_matches(host, &s.hostname)) {
                let entry = best
                    .entry(s.hostname.clone())
                    .or_insert((host.len(), index));
                if host.len() > entry.0 {
                    *entry = (host.len(), index);
                }
            }
        }
    }
    best.into_iter().map(|(h, (_, i))| (h, i)).collect()
}
