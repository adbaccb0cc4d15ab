//! `fault` as the per-route config of `envoy.filters.http.fault` (which every sidecar
//! connection manager carries with no fault of its own): a fixed delay and an abort with
//! an HTTP or gRPC status, each for a percentage of requests.

use envoy_types::pb::envoy::extensions::filters::common::fault::v3::{
    fault_delay::FaultDelaySecifier, FaultDelay,
};
use envoy_types::pb::envoy::extensions::filters::http::fault::v3::{
    fault_abort::ErrorType, FaultAbort, HttpFault,
};
use envoy_types::pb::envoy::r#type::v3::{fractional_percent::DenominatorType, FractionalPercent};

use super::action::proto_duration;
use crate::mesh::traffic::{Abort, Fault};

/// A percentage (0-100, fractions allowed) in millionths, as istiod sends `Percent`.
pub(super) fn fraction(percent: f64) -> FractionalPercent {
    FractionalPercent {
        numerator: (percent * 10_000.0).round() as u32,
        denominator: DenominatorType::Million as i32,
    }
}

/// gRPC status codes by the names Istio accepts.
fn grpc_code(name: &str) -> Option<u32> {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    NAMES.iter().position(|n| *n == name).map(|i| i as u32)
}

/// The filter config of a fault; `None` when nothing in it can be expressed.
pub(super) fn http_fault(fault: &Fault) -> Option<HttpFault> {
    let delay = fault.delay.map(|(fixed, percent)| FaultDelay {
        percentage: Some(fraction(percent)),
        fault_delay_secifier: Some(FaultDelaySecifier::FixedDelay(proto_duration(fixed))),
    });
    let abort = fault.abort.as_ref().and_then(|(kind, percent)| {
        let error_type = match kind {
            Abort::Http(status) => ErrorType::HttpStatus(u32::from(*status)),
            Abort::Grpc(name) => ErrorType::GrpcStatus(grpc_code(name)?),
        };
        Some(FaultAbort {
            percentage: Some(fraction(*percent)),
            error_type: Some(error_type),
            ..Default::default()
        })
    });
    if delay.is_none() && abort.is_none() {
        return None;
    }
    Some(HttpFault {
        delay,
        abort,
        ..Default::default()
    })
}
