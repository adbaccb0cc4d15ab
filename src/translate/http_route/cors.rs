//! `corsPolicy` as the per-route config of `envoy.filters.http.cors`.

use envoy_types::pb::envoy::config::core::v3::RuntimeFractionalPercent;
use envoy_types::pb::envoy::extensions::filters::http::cors::v3::CorsPolicy;
use envoy_types::pb::envoy::r#type::v3::{fractional_percent::DenominatorType, FractionalPercent};
use envoy_types::pb::google::protobuf::BoolValue;

use super::matching::string_matcher;
use crate::mesh::traffic::Cors;

pub(super) fn cors_policy(cors: &Cors) -> CorsPolicy {
    CorsPolicy {
        allow_origin_string_match: cors.allow_origins.iter().map(string_matcher).collect(),
        allow_methods: cors.allow_methods.join(","),
        allow_headers: cors.allow_headers.join(","),
        expose_headers: cors.expose_headers.join(","),
        // Whole seconds, as istiod writes it.
        max_age: cors
            .max_age
            .map(|d| d.as_secs().to_string())
            .unwrap_or_default(),
        allow_credentials: cors.allow_credentials.map(|value| BoolValue { value }),
        filter_enabled: Some(RuntimeFractionalPercent {
            default_value: Some(FractionalPercent {
                numerator: 100,
                denominator: DenominatorType::Hundred as i32,
            }),
            ..Default::default()
        }),
        // Preflights from origins the policy does not allow go on to the application
        // unless the policy says IGNORE (Envoy's behaviour before 1.30, kept by istiod).
        forward_not_matching_preflights: Some(BoolValue {
            value: cors.forward_unmatched_preflights,
        }),
        ..Default::default()
    }
}
