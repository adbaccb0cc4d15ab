//! Port protocols, chosen as Istio does: `appProtocol` first, then the port name's prefix
//! (`http`, `http-web`, `grpc-api`, ...). A port that declares neither is `Unsupported`
//! (Istio's name): its sidecars detect HTTP on it and treat anything else as TCP. Kubernetes
//! ports on a few well-known server-first ports (SMTP, DNS, MySQL, MongoDB) are plain TCP
//! instead, as Istio does, since detection would wait for a first byte that never comes.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Http,
    Http2,
    Grpc,
    GrpcWeb,
    Https,
    Tls,
    Tcp,
    Mongo,
    Redis,
    Mysql,
    /// Not declared: detected per connection (Istio's `UnsupportedProtocol`).
    Unsupported,
}

/// Ports Istio never sniffs when a Kubernetes port declares no protocol: SMTP, DNS,
/// MySQL and MongoDB servers speak first, so waiting for the client's bytes would hang.
pub const WELL_KNOWN_TCP_PORTS: [u16; 4] = [25, 53, 3306, 27017];

impl Protocol {
    /// Parses Istio's protocol names (case-insensitive): `http`, `http2`, `grpc`, `grpc-web`,
    /// `https`, `tls`, `tcp`, `mongo`, `redis`, `mysql`. Also accepts Kubernetes'
    /// `kubernetes.io/h2c` and `kubernetes.io/ws(s)` application protocols.
    pub fn parse(name: &str) -> Option<Protocol> {
        let lower = name.to_ascii_lowercase();
        Some(match lower.as_str() {
            "http" | "kubernetes.io/ws" => Protocol::Http,
            "http2" | "kubernetes.io/h2c" => Protocol::Http2,
            "grpc" => Protocol::Grpc,
            "grpc-web" => Protocol::GrpcWeb,
            "https" | "kubernetes.io/wss" => Protocol::Https,
            "tls" => Protocol::Tls,
            "tcp" => Protocol::Tcp,
            "mongo" => Protocol::Mongo,
            "redis" => Protocol::Redis,
            "mysql" => Protocol::Mysql,
            _ => return None,
        })
    }

    /// From `appProtocol` if it names a known protocol, else the port name's prefix before
    /// the first `-` (or the whole name), else `Unsupported` (detected).
    pub fn for_port(app_protocol: Option<&str>, port_name: &str) -> Protocol {
        if let Some(p) = app_protocol.and_then(Protocol::parse) {
            return p;
        }
        if let Some(p) = Protocol::parse(port_name) {
            return p;
        }
        let prefix = port_name.split('-').next().unwrap_or_default();
        Protocol::parse(prefix).unwrap_or(Protocol::Unsupported)
    }

    /// As `for_port`, for a Kubernetes Service port: an undeclared protocol on one of the
    /// `WELL_KNOWN_TCP_PORTS` is TCP, as in Istio.
    pub fn for_kubernetes_port(app_protocol: Option<&str>, port_name: &str, port: u16) -> Protocol {
        match Protocol::for_port(app_protocol, port_name) {
            Protocol::Unsupported if WELL_KNOWN_TCP_PORTS.contains(&port) => Protocol::Tcp,
            p => p,
        }
    }

    /// Whether the protocol is detected per connection (HTTP or anything else).
    pub fn is_sniffed(self) -> bool {
        self == Protocol::Unsupported
    }

    /// Whether the sidecar handles this port with the HTTP connection manager.
    pub fn is_http(self) -> bool {
        matches!(
            self,
            Protocol::Http | Protocol::Http2 | Protocol::Grpc | Protocol::GrpcWeb
        )
    }

    /// Whether upstream connections should speak HTTP/2.
    pub fn is_http2(self) -> bool {
        matches!(self, Protocol::Http2 | Protocol::Grpc | Protocol::GrpcWeb)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http => "HTTP",
            Protocol::Http2 => "HTTP2",
            Protocol::Grpc => "GRPC",
            Protocol::GrpcWeb => "GRPC-Web",
            Protocol::Https => "HTTPS",
            Protocol::Tls => "TLS",
            Protocol::Tcp => "TCP",
            Protocol::Mongo => "Mongo",
            Protocol::Redis => "Redis",
            Protocol::Mysql => "MySQL",
            Protocol::Unsupported => "UnsupportedProtocol",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_protocol_like_istio() {
        assert_eq!(Protocol::for_port(None, "http"), Protocol::Http);
        assert_eq!(Protocol::for_port(None, "http-web"), Protocol::Http);
        assert_eq!(Protocol::for_port(None, "grpc-api"), Protocol::Grpc);
        assert_eq!(Protocol::for_port(None, "http2"), Protocol::Http2);
        assert_eq!(Protocol::for_port(None, "mysql"), Protocol::Mysql);
        assert_eq!(Protocol::for_port(None, "web"), Protocol::Unsupported);
        assert_eq!(Protocol::for_port(None, ""), Protocol::Unsupported);
        assert_eq!(Protocol::for_port(None, "tcp-db"), Protocol::Tcp);
        assert_eq!(Protocol::for_port(Some("http"), "tcp-x"), Protocol::Http);
        assert_eq!(Protocol::for_port(Some("weird"), "grpc"), Protocol::Grpc);
        assert_eq!(
            Protocol::for_port(Some("kubernetes.io/h2c"), "x"),
            Protocol::Http2
        );
    }

    #[test]
    fn undeclared_protocols_are_sniffed_except_on_server_first_ports() {
        for (name, port, want) in [
            ("", 8080, Protocol::Unsupported),
            ("web", 80, Protocol::Unsupported),
            ("", 3306, Protocol::Tcp),
            ("db", 27017, Protocol::Tcp),
            ("", 25, Protocol::Tcp),
            ("", 53, Protocol::Tcp),
            // A declared protocol stays what it says, whatever the port.
            ("http", 3306, Protocol::Http),
        ] {
            assert_eq!(
                Protocol::for_kubernetes_port(None, name, port),
                want,
                "{name:?} on {port}"
            );
        }
        assert!(Protocol::Unsupported.is_sniffed());
        assert!(!Protocol::Unsupported.is_http());
        assert!(!Protocol::Tcp.is_sniffed());
    }
}
