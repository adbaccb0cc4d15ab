//! `outlierDetection` -> the cluster's outlier detection, as istiod maps it: success-rate
//! ejection off, each consecutive-error counter enforced at 100% when above 0, local-origin
//! errors counted apart only when asked, and Envoy's panic threshold set to
//! `minHealthPercent` (0 when unset: with few pods per service, Envoy's default of 50%
//! would send traffic to ejected hosts as soon as half are out).

use envoy_types::pb::envoy::config::cluster::v3::{
    cluster::CommonLbConfig, Cluster, OutlierDetection as EnvoyOutlier,
};
use envoy_types::pb::envoy::r#type::v3::Percent;
use envoy_types::pb::google::protobuf::UInt32Value;

use super::connection_pool::proto_duration;
use crate::mesh::traffic::OutlierDetection;

fn value(value: u32) -> Option<UInt32Value> {
    Some(UInt32Value { value })
}

/// Enforced at 100% when the counter is on, 0% when it is 0.
fn enforcing(count: u32) -> Option<UInt32Value> {
    value(if count > 0 { 100 } else { 0 })
}

pub fn outlier_detection(o: &OutlierDetection) -> EnvoyOutlier {
    let mut out = EnvoyOutlier {
        enforcing_success_rate: value(0),
        ..Default::default()
    };
    if let Some(n) = o.consecutive_5xx_errors {
        out.consecutive_5xx = value(n);
        out.enforcing_consecutive_5xx = enforcing(n);
    }
    if let Some(n) = o.consecutive_gateway_errors {
        out.consecutive_gateway_failure = value(n);
        out.enforcing_consecutive_gateway_failure = enforcing(n);
    }
    out.interval = o.interval.map(proto_duration);
    out.base_ejection_time = o.base_ejection_time.map(proto_duration);
    if let Some(p) = o.max_ejection_percent.filter(|p| *p > 0) {
        out.max_ejection_percent = value(p);
    }
    if o.split_external_local_origin_errors {
        out.split_external_local_origin_errors = true;
        if let Some(n) = o.consecutive_local_origin_failures.filter(|n| *n > 0) {
            out.consecutive_local_origin_failure = value(n);
            out.enforcing_consecutive_local_origin_failure = value(100);
        }
        out.enforcing_local_origin_success_rate = value(0);
    }
    out
}

pub fn apply(cluster: &mut Cluster, o: &OutlierDetection) {
    cluster.outlier_detection = Some(outlier_detection(o));
    cluster
        .common_lb_config
        .get_or_insert_with(CommonLbConfig::default)
        .healthy_panic_threshold = Some(Percent {
        value: f64::from(o.min_health_percent.unwrap_or(0)),
    });
}
