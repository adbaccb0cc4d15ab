//! `envoy.filters.network.http_connection_manager` for sidecar listeners, routes either
//! from RDS over ADS (outbound) or inline (inbound), with the settings istiod gives every
//! sidecar connection manager by default; and the plain one of the bootstrap's static
//! listeners.

use envoy_types::pb::envoy::config::core::v3::Http2ProtocolOptions;
use envoy_types::pb::envoy::config::listener::v3::{filter, Filter};
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_connection_manager::{
        CodecType, ForwardClientCertDetails, PathWithEscapedSlashesAction, RouteSpecifier,
        SetCurrentClientCertDetails, UpgradeConfig,
    },
    HttpConnectionManager, Rds, RequestIdExtension,
};
use envoy_types::pb::envoy::extensions::request_id::uuid::v3::UuidRequestIdConfig;
use envoy_types::pb::google::protobuf::{BoolValue, Duration};

use super::cors::cors_filter;
use super::fault::fault_filter;
use super::grpc_stats::grpc_stats_filter;
use super::router::router_filter;
use crate::translate::ads_config_source;

pub const NAME: &str = "envoy.filters.network.http_connection_manager";

/// The `server` header istiod's inbound connection managers send (outbound ones keep
/// Envoy's own `envoy`, as istiod leaves it unset there).
pub const INBOUND_SERVER_NAME: &str = "istio-envoy";

/// Where the connection manager gets its routes.
pub enum Routes {
    /// By name, over the ADS stream.
    Rds(String),
    Inline(Box<RouteConfiguration>),
}

/// Which side of the sidecar a connection manager serves: istiod sets a few fields
/// differently on each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// `0.0.0.0_<port>`, the application's outgoing requests.
    Outbound,
    /// A chain of `virtualInbound`, requests to the application; `http2` for ports declared
    /// HTTP/2 or gRPC.
    Inbound { http2: bool },
}

fn route_specifier(routes: Routes) -> RouteSpecifier {
    match routes {
        Routes::Rds(name) => RouteSpecifier::Rds(Rds {
            config_source: Some(ads_config_source()),
            route_config_name: name,
        }),
        Routes::Inline(config) => RouteSpecifier::RouteConfig(*config),
    }
}

/// Envoy's UUID request ids, also deciding trace sampling (istiod's default extension).
fn uuid_request_id() -> RequestIdExtension {
    let config = UuidRequestIdConfig {
        use_request_id_for_trace_sampling: Some(BoolValue { value: true }),
        ..Default::default()
    };
    RequestIdExtension {
        typed_config: Some(super::any(&config)),
    }
}

/// A sidecar connection manager as istiod builds it for a Kubernetes Service port with no
/// Istio configuration (mesh config defaults):
/// - `stream_idle_timeout: 0s`: Envoy's default of 5 minutes would reset idle gRPC
///   streams, websockets and server-sent events that the application keeps open;
/// - path normalisation `BASE` (istiod's default): RFC 3986 normalisation, slashes not
///   merged, escaped slashes kept as they are;
/// - no `x-forwarded-for` trust (a sidecar is not the edge), websocket upgrades,
///   `100-continue` proxied, UUID request ids;
/// - HTTP filters `grpc_stats`, `fault`, `cors`, then `router`: the stock ones of istiod's
///   chain, in its order (the Istio-only `istio.metadata_exchange`, `istio.alpn` and
///   `istio.stats` are left out);
/// - inbound: `server: istio-envoy`, client certificate details appended to
///   `x-forwarded-client-cert` (Envoy strips the header on connections without a client
///   certificate), and HTTP/2 options for HTTP/2 and gRPC ports.
pub fn hcm_config(side: Side, stat_prefix: &str, routes: Routes) -> HttpConnectionManager {
    let mut hcm = HttpConnectionManager {
        codec_type: CodecType::Auto as i32,
        stat_prefix: stat_prefix.to_string(),
        route_specifier: Some(route_specifier(routes)),
        http_filters: vec![
            grpc_stats_filter(),
            fault_filter(),
            cors_filter(),
            router_filter(),
        ],
        use_remote_address: Some(BoolValue { value: false }),
        upgrade_configs: vec![UpgradeConfig {
            upgrade_type: "websocket".to_string(),
            ..Default::default()
        }],
        stream_idle_timeout: Some(Duration::default()),
        normalize_path: Some(BoolValue { value: true }),
        merge_slashes: false,
        path_with_escaped_slashes_action: PathWithEscapedSlashesAction::KeepUnchanged as i32,
        request_id_extension: Some(uuid_request_id()),
        proxy_100_continue: true,
        ..Default::default()
    };
    if let Side::Inbound { http2 } = side {
        hcm.server_name = INBOUND_SERVER_NAME.to_string();
        hcm.forward_client_cert_details = ForwardClientCertDetails::AppendForward as i32;
        hcm.set_current_client_cert_details = Some(SetCurrentClientCertDetails {
            subject: Some(BoolValue { value: true }),
            uri: true,
            dns: true,
            ..Default::default()
        });
        if http2 {
            hcm.http2_protocol_options = Some(Http2ProtocolOptions::default());
        }
    }
    hcm
}

fn filter(config: &HttpConnectionManager) -> Filter {
    Filter {
        name: NAME.to_string(),
        config_type: Some(filter::ConfigType::TypedConfig(super::any(config))),
    }
}

pub fn hcm_filter(side: Side, stat_prefix: &str, routes: Routes) -> Filter {
    filter(&hcm_config(side, stat_prefix, routes))
}

/// The connection manager of a bootstrap listener serving part of the admin API (readiness,
/// Prometheus): only routes and the router, like Istio's bootstrap.
pub fn local_hcm_filter(stat_prefix: &str, routes: RouteConfiguration) -> Filter {
    filter(&HttpConnectionManager {
        codec_type: CodecType::Auto as i32,
        stat_prefix: stat_prefix.to_string(),
        route_specifier: Some(RouteSpecifier::RouteConfig(routes)),
        http_filters: vec![router_filter()],
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(hcm: &HttpConnectionManager) -> Vec<&str> {
        hcm.http_filters.iter().map(|f| f.name.as_str()).collect()
    }

    #[test]
    fn sidecar_defaults_on_both_sides() {
        for side in [
            Side::Outbound,
            Side::Inbound { http2: false },
            Side::Inbound { http2: true },
        ] {
            let hcm = hcm_config(side, "p", Routes::Rds("80".into()));
            assert_eq!(hcm.stream_idle_timeout, Some(Duration::default()));
            assert_eq!(hcm.normalize_path, Some(BoolValue { value: true }));
            assert!(!hcm.merge_slashes);
            assert_eq!(
                hcm.path_with_escaped_slashes_action,
                PathWithEscapedSlashesAction::KeepUnchanged as i32
            );
            assert_eq!(hcm.use_remote_address, Some(BoolValue { value: false }));
            assert_eq!(hcm.upgrade_configs[0].upgrade_type, "websocket");
            assert!(hcm.proxy_100_continue);
            let id = hcm.request_id_extension.as_ref().unwrap();
            assert_eq!(
                id.typed_config.as_ref().unwrap().type_url,
                "type.googleapis.com/envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig"
            );
            assert_eq!(
                names(&hcm),
                [
                    super::super::grpc_stats::NAME,
                    super::super::fault::NAME,
                    super::super::cors::NAME,
                    super::super::router::NAME
                ]
            );
        }
    }

    #[test]
    fn rds_waits_for_routes_without_deadline() {
        let hcm = hcm_config(Side::Outbound, "p", Routes::Rds("9080".into()));
        let Some(RouteSpecifier::Rds(rds)) = hcm.route_specifier else {
            panic!("expected RDS");
        };
        assert_eq!(rds.route_config_name, "9080");
        assert_eq!(
            rds.config_source.unwrap().initial_fetch_timeout,
            Some(Duration::default())
        );
    }

    #[test]
    fn inbound_only_settings() {
        let out = hcm_config(Side::Outbound, "p", Routes::Rds("80".into()));
        assert_eq!(out.server_name, "");
        assert_eq!(
            out.forward_client_cert_details,
            ForwardClientCertDetails::Sanitize as i32
        );
        assert!(out.set_current_client_cert_details.is_none());
        assert!(out.http2_protocol_options.is_none());

        let inbound =
            |http2| hcm_config(Side::Inbound { http2 }, "p", Routes::Inline(Box::default()));
        let h1 = inbound(false);
        assert_eq!(h1.server_name, INBOUND_SERVER_NAME);
        assert_eq!(
            h1.forward_client_cert_details,
            ForwardClientCertDetails::AppendForward as i32
        );
        let details = h1.set_current_client_cert_details.unwrap();
        assert_eq!(details.subject, Some(BoolValue { value: true }));
        assert!(details.uri && details.dns && !details.cert && !details.chain);
        assert!(h1.http2_protocol_options.is_none());
        assert!(inbound(true).http2_protocol_options.is_some());
    }
}
