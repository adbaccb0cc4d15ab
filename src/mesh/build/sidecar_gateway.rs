//! Sidecar and Gateway checks, as Istio's validation does them, and conversion into the
//! model's `traffic` types.

use super::hosts::check_host;
use super::invalid;
use super::istio_fields::Checked;
use super::names::{is_dns_label, object_key};
use super::service_entry::istio_ports;
use crate::mesh::traffic::{
    Gateway, GatewayServer, IstioPort, NamespaceScope, OutboundPolicy, ScopedHost, ServerTls,
    ServerTlsMode, Sidecar, SidecarEgress, SidecarIngress,
};
use crate::source::objects::networking as wire;

/// `namespace/host` (Sidecar egress, Gateway servers); a bare host means any namespace
/// for Gateways (`*/host`) and is refused for Sidecars, as in Istio.
/// `for_sidecar`: a bare host is refused and `.` stays the proxy's namespace
/// (`NamespaceScope::ProxyNamespace`); for Gateways a bare host means `*/host` and `.` is
/// the Gateway's namespace.
fn scoped_host(text: &str, own: &str, for_sidecar: bool) -> Result<ScopedHost, String> {
    let bare_allowed = !for_sidecar;
    let (ns, host) = match text.split_once('/') {
        Some(parts) => parts,
        None if bare_allowed => ("*", text),
        None => {
            return Err(format!(
                "{text:?} must be namespace/host (./*, */*, ~/*, ns/host)"
            ))
        }
    };
    let namespace = match ns {
        "*" => NamespaceScope::Any,
        "." if for_sidecar => NamespaceScope::ProxyNamespace,
        "." => NamespaceScope::Named(own.to_string()),
        "~" => NamespaceScope::None,
        n if is_dns_label(n) => NamespaceScope::Named(n.to_string()),
        n => return Err(format!("{n:?} in {text:?} is not a namespace")),
    };
    check_host(host)?;
    Ok(ScopedHost {
        namespace,
        host: host.to_ascii_lowercase(),
    })
}

fn one_port(p: &Option<wire::Port>, field: &str) -> Checked<Option<IstioPort>> {
    match p {
        None => Ok(None),
        Some(p) => Ok(istio_ports(std::slice::from_ref(p), field)?.pop()),
    }
}

pub fn check_sidecar(s: &wire::IstioObject<wire::SidecarSpec>) -> Checked<Sidecar> {
    let key = object_key(&s.metadata, false)?;
    let ns = key.namespace.clone();
    let spec = &s.spec;
    let mut ingress = Vec::new();
    for (i, l) in spec.ingress.iter().enumerate() {
        let f = format!("spec.ingress[{i}]");
        let port = one_port(&l.port, &format!("{f}.port"))?
            .ok_or_else(|| invalid(format!("{f}.port"), "port is required"))?;
        if let Some(endpoint) = &l.default_endpoint {
            let ok = endpoint.starts_with("unix://")
                || endpoint.rsplit_once(':').is_some_and(|(host, p)| {
                    matches!(host, "127.0.0.1" | "0.0.0.0" | "[::1]" | "[::]")
                        && p.parse::<u16>().is_ok_and(|p| p > 0)
                });
            if !ok {
                return Err(invalid(
                    format!("{f}.defaultEndpoint"),
                    format!("{endpoint:?} is not 127.0.0.1:PORT, 0.0.0.0:PORT or unix://PATH"),
                ));
            }
        }
        ingress.push(SidecarIngress {
            port,
            bind: l.bind.clone(),
            default_endpoint: l.default_endpoint.clone(),
        });
    }
    let mut egress = Vec::new();
    for (i, l) in spec.egress.iter().enumerate() {
        let f = format!("spec.egress[{i}]");
        if l.hosts.is_empty() {
            return Err(invalid(
                format!("{f}.hosts"),
                "at least one host is required",
            ));
        }
        let hosts = l
            .hosts
            .iter()
            .enumerate()
            .map(|(j, h)| {
                scoped_host(h, &ns, true).map_err(|e| invalid(format!("{f}.hosts[{j}]"), e))
            })
            .collect::<Checked<Vec<_>>>()?;
        egress.push(SidecarEgress {
            port: one_port(&l.port, &format!("{f}.port"))?,
            bind: l.bind.clone(),
            hosts,
        });
    }
    if egress.iter().filter(|e| e.port.is_none()).count() > 1 {
        return Err(invalid(
            "spec.egress",
            "at most one egress listener may leave out the port (the catch-all)",
        ));
    }
    let outbound_traffic_policy = match spec
        .outbound_traffic_policy
        .as_ref()
        .and_then(|p| p.mode.as_deref())
    {
        None => None,
        Some("ALLOW_ANY") => Some(OutboundPolicy::AllowAny),
        Some("REGISTRY_ONLY") => Some(OutboundPolicy::RegistryOnly),
        Some(other) => {
            return Err(invalid(
                "spec.outboundTrafficPolicy.mode",
                format!("{other:?} is not ALLOW_ANY or REGISTRY_ONLY"),
            ))
        }
    };
    Ok(Sidecar {
        key,
        workload_selector: spec.workload_selector.as_ref().map(|w| w.labels.clone()),
        ingress,
        egress,
        outbound_traffic_policy,
    })
}

pub fn check_gateway(g: &wire::IstioObject<wire::GatewaySpec>) -> Checked<Gateway> {
    let key = object_key(&g.metadata, false)?;
    let ns = key.namespace.clone();
    if g.spec.servers.is_empty() {
        return Err(invalid("spec.servers", "at least one server is required"));
    }
    let mut servers: Vec<GatewayServer> = Vec::new();
    for (i, s) in g.spec.servers.iter().enumerate() {
        let f = format!("spec.servers[{i}]");
        let port = one_port(&s.port, &format!("{f}.port"))?
            .ok_or_else(|| invalid(format!("{f}.port"), "port is required"))?;
        if s.hosts.is_empty() {
            return Err(invalid(
                format!("{f}.hosts"),
                "at least one host is required",
            ));
        }
        let hosts = s
            .hosts
            .iter()
            .enumerate()
            .map(|(j, h)| {
                scoped_host(h, &ns, false).map_err(|e| invalid(format!("{f}.hosts[{j}]"), e))
            })
            .collect::<Checked<Vec<_>>>()?;
        let tls = s
            .tls
            .as_ref()
            .map(|t| server_tls(t, &format!("{f}.tls")))
            .transpose()?;
        let needs_tls = port.protocol == crate::mesh::Protocol::Https
            || port.protocol == crate::mesh::Protocol::Tls;
        if needs_tls && tls.as_ref().and_then(|t| t.mode.as_ref()).is_none() {
            return Err(invalid(
                format!("{f}.tls"),
                "an HTTPS or TLS server needs tls settings with a mode",
            ));
        }
        if let Some(name) = s.name.as_deref().filter(|n| !n.is_empty()) {
            if servers.iter().any(|o| o.name.as_deref() == Some(name)) {
                return Err(invalid(
                    format!("{f}.name"),
                    format!("server name {name:?} is used twice"),
                ));
            }
        }
        servers.push(GatewayServer {
            port,
            bind: s.bind.clone(),
            hosts,
            tls,
            name: s.name.clone().filter(|n| !n.is_empty()),
        });
    }
    Ok(Gateway {
        key,
        selector: g.spec.selector.clone(),
        servers,
    })
}

fn server_tls(t: &wire::ServerTlsSettings, field: &str) -> Checked<ServerTls> {
    let mode = match t.mode.as_deref() {
        None => None,
        Some("PASSTHROUGH") => Some(ServerTlsMode::Passthrough),
        Some("SIMPLE") => Some(ServerTlsMode::Simple),
        Some("MUTUAL") => Some(ServerTlsMode::Mutual),
        Some("AUTO_PASSTHROUGH") => Some(ServerTlsMode::AutoPassthrough),
        Some("ISTIO_MUTUAL") => Some(ServerTlsMode::IstioMutual),
        Some("OPTIONAL_MUTUAL") => Some(ServerTlsMode::OptionalMutual),
        Some(other) => {
            return Err(invalid(
                format!("{field}.mode"),
                format!("{other:?} is not one of PASSTHROUGH, SIMPLE, MUTUAL, AUTO_PASSTHROUGH, ISTIO_MUTUAL, OPTIONAL_MUTUAL"),
            ))
        }
    };
    let files = t.server_certificate.is_some() || t.private_key.is_some();
    if t.credential_name.is_some() && (files || t.ca_certificates.is_some()) {
        return Err(invalid(
            field,
            "credentialName may not be combined with serverCertificate, privateKey or caCertificates",
        ));
    }
    let terminates = matches!(
        mode,
        Some(ServerTlsMode::Simple | ServerTlsMode::Mutual | ServerTlsMode::OptionalMutual)
    );
    if terminates
        && t.credential_name.is_none()
        && (t.server_certificate.is_none() || t.private_key.is_none())
    {
        return Err(invalid(
            field,
            "SIMPLE and MUTUAL need credentialName, or serverCertificate and privateKey",
        ));
    }
    if mode == Some(ServerTlsMode::Mutual)
        && t.credential_name.is_none()
        && t.ca_certificates.is_none()
    {
        return Err(invalid(
            field,
            "MUTUAL needs caCertificates (or credentialName with a ca.crt) to verify clients",
        ));
    }
    if mode.is_none() && !t.https_redirect.unwrap_or(false) {
        return Err(invalid(format!("{field}.mode"), "mode is required"));
    }
    Ok(ServerTls {
        https_redirect: t.https_redirect.unwrap_or(false),
        mode,
        credential_name: t.credential_name.clone(),
        server_certificate: t.server_certificate.clone(),
        private_key: t.private_key.clone(),
        ca_certificates: t.ca_certificates.clone(),
        subject_alt_names: t.subject_alt_names.clone(),
        min_protocol_version: t.min_protocol_version.clone(),
        max_protocol_version: t.max_protocol_version.clone(),
        cipher_suites: t.cipher_suites.clone(),
    })
}

#[cfg(test)]
#[path = "sidecar_gateway_tests.rs"]
mod tests;
