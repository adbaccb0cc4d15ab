//! `retries` as an Envoy retry policy, and Istio's default policy when a route sets none.
//! Numeric HTTP codes in `retryOn` become retriable status codes (and the condition
//! `retriable-status-codes` is added for them).

use envoy_types::pb::envoy::config::route::v3::{
    retry_policy::{retry_priority, RetryPriority},
    RetryPolicy,
};
use envoy_types::pb::envoy::extensions::retry::priority::previous_priorities::v3::PreviousPrioritiesConfig;
use envoy_types::pb::google::protobuf::UInt32Value;

use super::action::proto_duration;
use crate::mesh::traffic::Retries;
use crate::translate::filter::any;
use crate::translate::route::default_retry_policy;

const PREVIOUS_PRIORITIES: &str = "envoy.retry_priorities.previous_priorities";
const RETRIABLE_STATUS_CODES: &str = "retriable-status-codes";

/// The retry policy of a route: `None` disables retries (`attempts: 0`). With consistent
/// hashing retries stay on the hashed host (no "previous hosts" predicate), as in istiod.
pub(super) fn retry_policy(
    retries: Option<&Retries>,
    consistent_hash: bool,
) -> Option<RetryPolicy> {
    let mut out = default_retry_policy();
    if consistent_hash {
        out.retry_host_predicate.clear();
    }
    let Some(r) = retries else {
        return Some(out);
    };
    if r.attempts == 0 {
        return None;
    }
    out.num_retries = Some(UInt32Value { value: r.attempts });
    if let Some(retry_on) = &r.retry_on {
        let (conditions, codes) = parse_retry_on(retry_on);
        out.retry_on = conditions;
        if !codes.is_empty() && !out.retry_on.contains(RETRIABLE_STATUS_CODES) {
            out.retry_on
                .push_str(if out.retry_on.is_empty() { "" } else { "," });
            out.retry_on.push_str(RETRIABLE_STATUS_CODES);
        }
        out.retriable_status_codes = codes;
    }
    out.per_try_timeout = r.per_try_timeout.map(proto_duration);
    if r.retry_remote_localities == Some(true) {
        out.retry_priority = Some(RetryPriority {
            name: PREVIOUS_PRIORITIES.to_string(),
            config_type: Some(retry_priority::ConfigType::TypedConfig(any(
                &PreviousPrioritiesConfig {
                    update_frequency: 2,
                },
            ))),
        });
    }
    Some(out)
}

/// Splits `retryOn` into Envoy conditions and HTTP status codes (numbers of known codes).
fn parse_retry_on(retry_on: &str) -> (String, Vec<u32>) {
    let mut conditions = Vec::new();
    let mut codes = Vec::new();
    for part in retry_on.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.parse::<u32>() {
            Ok(code) if is_http_status(code) => codes.push(code),
            _ => conditions.push(part),
        }
    }
    (conditions.join(","), codes)
}

/// Codes Go's `http.StatusText` knows, which is what istiod accepts as a status here.
fn is_http_status(code: u32) -> bool {
    matches!(
        code,
        100..=103
            | 200..=208
            | 226
            | 300..=305
            | 307
            | 308
            | 400..=418
            | 421..=426
            | 428
            | 429
            | 431
            | 451
            | 500..=508
            | 510
            | 511
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_on_splits_conditions_from_status_codes() {
        assert_eq!(
            parse_retry_on(" 5xx, 503 ,gateway-error,,599,418"),
            ("5xx,gateway-error,599".to_string(), vec![503, 418]),
            "599 is no HTTP status, so it stays a (bad) condition as in istiod"
        );
        let only_codes = retry_policy(
            Some(&Retries {
                attempts: 1,
                per_try_timeout: None,
                retry_on: Some("502,503".into()),
                retry_remote_localities: None,
            }),
            false,
        )
        .unwrap();
        assert_eq!(only_codes.retry_on, RETRIABLE_STATUS_CODES);
        assert_eq!(only_codes.retriable_status_codes, [502, 503]);
    }

    #[test]
    fn consistent_hashing_keeps_retries_on_the_same_host() {
        let policy = retry_policy(None, true).unwrap();
        assert!(policy.retry_host_predicate.is_empty());
        assert_eq!(policy.num_retries, Some(UInt32Value { value: 2 }));
    }
}
