//! The bootstrap's `stats_config`: Istio's stats tag rules, so `/stats/prometheus` gives
//! the metric names and labels an Istio sidecar gives (and Istio dashboards query), e.g.
//! `envoy_cluster_upstream_rq_total{cluster_name="outbound|9080||reviews.default.svc.cluster.local"}`.
//!
//! Envoy's default rules end a cluster name at its first dot, which splits Istio's
//! cluster names (`cluster_name="outbound|9080||reviews"` and a metric named
//! `envoy_cluster_default_svc_cluster_local_upstream_rq_total`). Istio turns the defaults
//! off and ends names at the `;` istiod appends to cluster `alt_stat_name`s and connection
//! manager stat prefixes (`naming::STAT_NAME_DELIMITER`). The rules below are Istio's, in
//! its order (each regex: the first group is cut from the name, the second is the value).

use envoy_types::pb::envoy::config::metrics::v3::{
    tag_specifier::TagValue, StatsConfig, TagSpecifier,
};
use envoy_types::pb::google::protobuf::BoolValue;

/// (tag name, regex), as in Istio's bootstrap template.
pub const ISTIO_STATS_TAGS: &[(&str, &str)] = &[
    ("cluster_name", r"^cluster(\.(.+);)"),
    (
        "http_conn_manager_prefix",
        r"^http\.(((?:[_.[:digit:]\w]*|[_\[\]aAbBcCdDeEfF[:digit:]\w\:]*));\.)",
    ),
    ("thread_name", r"^server(\.(.+))\.watchdog"),
    ("tcp_prefix", r"^tcp\.((.*?)\.)\w+?$"),
    ("response_code", r"_rq(_(\d{3}))$"),
    ("response_code_class", r"_rq(_(\dxx))$"),
    (
        "http_conn_manager_listener_prefix",
        r"^listener(?=\.).*?\.http\.(((?:[_.[:digit:]]*|[_\[\]aAbBcCdDeEfF[:digit:]]*))\.)",
    ),
    (
        "listener_address",
        r"^listener\.(((?:[_.[:digit:]]*|[_\[\]aAbBcCdDeEfF[:digit:]]*))\.)",
    ),
    (
        "mongo_prefix",
        r"^mongo\.(.+?)\.(collection|cmd|cx_|op_|delays_|decoding_)(.*?)$",
    ),
    ("cache", r"(cache\.(.+?)\.)"),
    ("component", r"(component\.(.+?)\.)"),
    ("tag", r"(tag\.(.+?);\.)"),
    ("wasm_filter", r"(wasm_filter\.(.+?)\.)"),
    ("authz_enforce_result", r"rbac(\.(allowed|denied))"),
    ("authz_dry_run_action", r"(\.istio_dry_run_(allow|deny)_)"),
    ("authz_dry_run_result", r"(\.shadow_(allowed|denied))"),
];

/// Istio's tag rules instead of Envoy's defaults (`use_all_default_tags: false`).
///
/// Istio's bootstrap also has a `stats_matcher` that keeps only a few stat prefixes
/// (server, cluster and listener managers, `xds-grpc`), because its `istio.stats` filter
/// reports requests as `istio_requests_total`. Stock Envoy has no such filter, so meshd
/// keeps every Envoy stat; the ones an Istio sidecar also exposes (when told to include
/// them) have the same names and labels.
pub fn stats_config() -> StatsConfig {
    StatsConfig {
        use_all_default_tags: Some(BoolValue { value: false }),
        stats_tags: ISTIO_STATS_TAGS
            .iter()
            .map(|(name, regex)| TagSpecifier {
                tag_name: name.to_string(),
                tag_value: Some(TagValue::Regex(regex.to_string())),
            })
            .collect(),
        ..Default::default()
    }
}
