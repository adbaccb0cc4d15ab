//! Port protocols, chosen as Istio does: `appProtocol` first, then the port name's prefix
//! (`http`, `http-web`, `grpc-api`, ...), else plain TCP.

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
}

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
    /// the first `-` (or the whole name), else TCP.
    pub fn for_port(app_protocol: Option<&str>, port_name: &str) -> Protocol {
        if let Some(p) = app_protocol.and_then(Protocol::parse) {
            return p;
        }
        if let Some(p) = Protocol::parse(port_name) {
            return p;
        }
        let prefix = port_name.split('-').next().unwrap_or_default();
        Protocol::parse(prefix).unwrap_or(Protocol::Tcp)
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
        assert_eq!(Protocol::for_port(None, "web"), Protocol::Tcp);
        assert_eq!(Protocol::for_port(None, ""), Protocol::Tcp);
        assert_eq!(Protocol::for_port(Some("http"), "tcp-x"), Protocol::Http);
        assert_eq!(Protocol::for_port(Some("weird"), "grpc"), Protocol::Grpc);
        assert_eq!(
            Protocol::for_port(Some("kubernetes.io/h2c"), "x"),
            Protocol::Http2
        );
    }
}
