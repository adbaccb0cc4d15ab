//! Merging the servers of a router proxy's Gateways into listeners, as istiod's
//! `mergeGateways` does: one listener per bind address and port; plaintext HTTP servers
//! on one port share one route config (`http.<port>`); TLS servers on one port share the
//! listener, one filter chain each, told apart by SNI (a host a second server repeats is a
//! conflict and that server is left out); a plaintext server and a TLS one cannot share a
//! port, nor can two plaintext servers unless both are HTTP. The first server (Gateways by
//! namespace and name, servers in order) wins a conflict.

use std::collections::{BTreeMap, BTreeSet};

use crate::mesh::traffic::{Gateway, GatewayServer, NamespaceScope, ServerTlsMode};
use crate::mesh::ObjectKey;
use crate::translate::naming;
use crate::translate::scope::Scope;

/// What a listener carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    /// Plaintext HTTP servers, one connection manager.
    Http,
    /// One plaintext TCP server, tcp_proxy.
    Tcp,
    /// TLS servers (terminated or passed through), one chain each matched by SNI.
    Tls,
}

/// One server of one Gateway, with its route config when it serves HTTP.
#[derive(Debug, Clone)]
pub struct Server<'m> {
    pub gateway: &'m Gateway,
    pub server: &'m GatewayServer,
    /// `http.<port>` or `https.<port>.<port name>.<gateway>.<namespace>`; `None` for TCP,
    /// TLS passthrough and TLS-terminated TCP.
    pub route_name: Option<String>,
}

impl Server<'_> {
    pub fn tls_mode(&self) -> Option<&ServerTlsMode> {
        self.server.tls.as_ref().and_then(|t| t.mode.as_ref())
    }

    /// Whether Envoy terminates TLS for this server (SIMPLE, MUTUAL, OPTIONAL_MUTUAL).
    pub fn terminates_tls(&self) -> bool {
        !self.server.port.protocol.is_http()
            && matches!(
                self.tls_mode(),
                Some(ServerTlsMode::Simple | ServerTlsMode::Mutual | ServerTlsMode::OptionalMutual)
            )
    }

    /// The host names the server's TLS chain matches (namespaces dropped), sorted.
    pub fn sni_hosts(&self) -> Vec<String> {
        let set: BTreeSet<&str> = self.server.hosts.iter().map(|h| h.host.as_str()).collect();
        set.into_iter().map(str::to_string).collect()
    }

    /// The server's hosts that apply to a VirtualService in `namespace` (`ns/host` hosts
    /// only to that namespace's VirtualServices).
    pub fn hosts_for(&self, namespace: &str) -> Vec<&'_ str> {
        self.server
            .hosts
            .iter()
            .filter(|h| match &h.namespace {
                NamespaceScope::Any => true,
                NamespaceScope::Named(ns) => ns == namespace,
                // Sidecar-only forms; a Gateway's `.` is already its namespace.
                NamespaceScope::None | NamespaceScope::ProxyNamespace => false,
            })
            .map(|h| h.host.as_str())
            .collect()
    }

    /// The `credentialName` Secret of a TLS-terminating server, in the Gateway's namespace.
    pub fn credential(&self) -> Option<ObjectKey> {
        let name = self.server.tls.as_ref()?.credential_name.as_deref()?;
        let name = name.strip_prefix(naming::CREDENTIAL_PREFIX).unwrap_or(name);
        Some(ObjectKey {
            namespace: self.gateway.key.namespace.clone(),
            name: name.to_string(),
        })
    }
}

#[derive(Debug, Clone)]
pub struct MergedListener<'m> {
    pub bind: Option<String>,
    pub port: u16,
    pub kind: ListenerKind,
    pub servers: Vec<Server<'m>>,
}

/// The listeners of a router proxy, by bind address and port.
#[derive(Debug, Clone, Default)]
pub struct MergedGateway<'m> {
    pub listeners: BTreeMap<(Option<String>, u16), MergedListener<'m>>,
    /// Servers left out, with why (conflicts, modes meshd does not serve).
    pub skipped: Vec<(ObjectKey, usize, String)>,
}

/// TLS modes a stock Envoy gateway cannot serve yet: ISTIO_MUTUAL needs the mesh CA,
/// AUTO_PASSTHROUGH routes on mesh mTLS SNI names.
fn unsupported(mode: Option<&ServerTlsMode>) -> Option<&'static str> {
    match mode {
        Some(ServerTlsMode::IstioMutual) => Some("tls mode ISTIO_MUTUAL is not served yet"),
        Some(ServerTlsMode::AutoPassthrough) => Some("tls mode AUTO_PASSTHROUGH is not served yet"),
        _ => None,
    }
}

/// The servers of the scope's Gateways laid out on listeners; `listen_port` maps a server
/// port to the port the gateway listens on (`select::listen_port`).
pub fn merge<'m>(scope: &Scope<'m>, listen_port: impl Fn(u16) -> u16) -> MergedGateway<'m> {
    let mut merged = MergedGateway::default();
    for gateway in scope.gateways() {
        let gateway: &'m Gateway = gateway;
        for (index, server) in gateway.servers.iter().enumerate() {
            let mut skip = |reason: String| {
                merged.skipped.push((gateway.key.clone(), index, reason));
            };
            let mode = server.tls.as_ref().and_then(|t| t.mode.as_ref());
            if let Some(reason) = unsupported(mode) {
                skip(reason.to_string());
                continue;
            }
            let port = listen_port(server.port.number);
            let bind = server.bind.clone().filter(|b| !b.is_empty());
            let protocol = server.port.protocol;
            let kind = if protocol.is_http() {
                ListenerKind::Http
            } else if mode.is_none() {
                ListenerKind::Tcp
            } else {
                ListenerKind::Tls
            };
            let mut entry = Server {
                gateway,
                server,
                route_name: None,
            };
            if kind == ListenerKind::Http {
                entry.route_name = Some(naming::gateway_http_route(port, bind.as_deref()));
            } else if protocol == crate::mesh::Protocol::Https && entry.terminates_tls() {
                entry.route_name = Some(naming::gateway_https_route(
                    server.port.number,
                    &server.port.name,
                    &gateway.key.name,
                    &gateway.key.namespace,
                    bind.as_deref(),
                ));
            }
            let key = (bind.clone(), port);
            let Some(existing) = merged.listeners.get_mut(&key) else {
                merged.listeners.insert(
                    key,
                    MergedListener {
                        bind,
                        port,
                        kind,
                        servers: vec![entry],
                    },
                );
                continue;
            };
            match (existing.kind, kind) {
                (ListenerKind::Http, ListenerKind::Http) => existing.servers.push(entry),
                (ListenerKind::Tls, ListenerKind::Tls) => {
                    let taken: BTreeSet<String> = existing
                        .servers
                        .iter()
                        .flat_map(|s| s.sni_hosts())
                        .collect();
                    let repeated: Vec<String> = entry
                        .sni_hosts()
                        .into_iter()
                        .filter(|h| taken.contains(h))
                        .collect();
                    let route_taken = entry.route_name.is_some()
                        && existing
                            .servers
                            .iter()
                            .any(|s| s.route_name == entry.route_name);
                    if !repeated.is_empty() {
                        skip(format!(
                            "port {port}: hosts {repeated:?} already served over TLS by another server"
                        ));
                    } else if route_taken {
                        skip(format!(
                            "port {port}: port name {:?} is not unique among HTTPS servers",
                            server.port.name
                        ));
                    } else {
                        existing.servers.push(entry);
                    }
                }
                (was, now) => skip(format!(
                    "port {port}: a {now:?} server cannot share the port with a {was:?} server"
                )),
            }
        }
    }
    merged
}

impl<'m> MergedGateway<'m> {
    /// The HTTP servers behind each route config name.
    pub fn servers_by_route(&self) -> BTreeMap<&str, Vec<&Server<'m>>> {
        let mut out: BTreeMap<&str, Vec<&Server<'m>>> = BTreeMap::new();
        for listener in self.listeners.values() {
            for server in &listener.servers {
                if let Some(name) = &server.route_name {
                    out.entry(name.as_str()).or_default().push(server);
                }
            }
        }
        out
    }

    /// The Secrets the TLS-terminating servers name, with whether their CA is needed
    /// (MUTUAL and OPTIONAL_MUTUAL verify clients).
    pub fn credentials(&self) -> BTreeMap<ObjectKey, bool> {
        let mut out: BTreeMap<ObjectKey, bool> = BTreeMap::new();
        for server in self.listeners.values().flat_map(|l| &l.servers) {
            if !server.terminates_tls() {
                continue;
            }
            if let Some(key) = server.credential() {
                let ca = matches!(
                    server.tls_mode(),
                    Some(ServerTlsMode::Mutual | ServerTlsMode::OptionalMutual)
                );
                *out.entry(key).or_default() |= ca;
            }
        }
        out
    }
}
