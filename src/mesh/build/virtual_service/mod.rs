//! VirtualService checks, as Istio's validation does them, and conversion into the model's
//! `traffic::VirtualService` (short hosts resolved in the rule's namespace).

mod http;
#[cfg(test)]
mod tests;

use super::hosts::{check_host, resolve};
use super::invalid;
use super::istio_fields::{each, export_to, gateway_refs, l4_match, route_destinations, Checked};
use super::names::object_key;
use crate::mesh::traffic::{self, GatewayRef, L4Match, VirtualService};
use crate::source::objects::networking as wire;
use http::http_route;

pub fn check(vs: &wire::IstioObject<wire::VirtualServiceSpec>) -> Checked<VirtualService> {
    let key = object_key(&vs.metadata, false)?;
    let spec = &vs.spec;
    let ns = key.namespace.as_str();
    let gateways = gateway_refs(&spec.gateways, ns, "spec.gateways")?;
    let gateways = if gateways.is_empty() {
        vec![GatewayRef::Mesh]
    } else {
        gateways
    };
    let mut hosts = Vec::with_capacity(spec.hosts.len());
    for (i, host) in spec.hosts.iter().enumerate() {
        let field = format!("spec.hosts[{i}]");
        check_host(host).map_err(|e| invalid(&field, e))?;
        if host == "*" && gateways.contains(&GatewayRef::Mesh) {
            return Err(invalid(
                field,
                "the wildcard host \"*\" is not allowed for rules bound to the mesh",
            ));
        }
        hosts.push(resolve(host, ns));
    }
    if spec.http.is_empty() && spec.tls.is_empty() && spec.tcp.is_empty() {
        return Err(invalid(
            "spec",
            "a virtual service needs at least one http, tls or tcp route",
        ));
    }
    let http = each(&spec.http, "spec.http", |r, f| http_route(r, ns, f))?;
    let tls = each(&spec.tls, "spec.tls", |r, f| {
        Ok(traffic::TlsRoute {
            matches: each(&r.matches, &format!("{f}.match"), |m, f| {
                tls_match(m, ns, f)
            })?,
            route: route_destinations(&r.route, ns, f)?,
        })
    })?;
    let tcp = each(&spec.tcp, "spec.tcp", |r, f| {
        Ok(traffic::TcpRoute {
            matches: each(&r.matches, &format!("{f}.match"), |m, f| {
                l4_match(
                    &m.destination_subnets,
                    m.port,
                    &m.source_labels,
                    &m.source_namespace,
                    &m.gateways,
                    ns,
                    f,
                )
            })?,
            route: route_destinations(&r.route, ns, f)?,
        })
    })?;
    Ok(VirtualService {
        export_to: export_to(&spec.export_to, ns, "spec.exportTo")?,
        key,
        hosts,
        gateways,
        http,
        tls,
        tcp,
    })
}

fn tls_match(m: &wire::TlsMatchAttributes, ns: &str, field: &str) -> Checked<L4Match> {
    if m.sni_hosts.is_empty() {
        return Err(invalid(
            format!("{field}.sniHosts"),
            "at least one SNI host is required",
        ));
    }
    for (k, h) in m.sni_hosts.iter().enumerate() {
        check_host(h).map_err(|e| invalid(format!("{field}.sniHosts[{k}]"), e))?;
    }
    let l4 = l4_match(
        &m.destination_subnets,
        m.port,
        &m.source_labels,
        &m.source_namespace,
        &m.gateways,
        ns,
        field,
    )?;
    Ok(L4Match {
        sni_hosts: m.sni_hosts.iter().map(|h| h.to_ascii_lowercase()).collect(),
        ..l4
    })
}
