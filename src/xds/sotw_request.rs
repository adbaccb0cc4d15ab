//! A SotW request as the server reads it: `DiscoveryRequest`'s fields, with the resource
//! names left as slices of the request's bytes. Envoy repeats its whole endpoint
//! subscription in every ACK (a name per cluster: 1,000 names, about 60 KB, in a
//! 1,000-service mesh); decoded as strings, each ACK cost an allocation and a UTF-8 check
//! per name, the largest share of a SotW push at 5,000 proxies. Here the names are compared
//! with the subscription as bytes, and strings are made only when the subscription changes.

use std::collections::BTreeSet;

use bytes::Bytes;
use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;
use envoy_types::pb::google::rpc::Status as RpcStatus;
use tonic::Status;

/// Wire-compatible with `envoy.service.discovery.v3.DiscoveryRequest` (fields 1-6; the
/// others are skipped when decoding).
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct SotwRequest {
    #[prost(string, tag = "1")]
    pub(crate) version_info: String,
    #[prost(message, optional, tag = "2")]
    pub(crate) node: Option<Node>,
    /// `string` on the wire; read as bytes, so decoding slices the request.
    #[prost(bytes = "bytes", repeated, tag = "3")]
    pub(crate) resource_names: Vec<Bytes>,
    #[prost(string, tag = "4")]
    pub(crate) type_url: String,
    #[prost(string, tag = "5")]
    pub(crate) response_nonce: String,
    #[prost(message, optional, tag = "6")]
    pub(crate) error_detail: Option<RpcStatus>,
}

impl From<DiscoveryRequest> for SotwRequest {
    fn from(r: DiscoveryRequest) -> Self {
        SotwRequest {
            version_info: r.version_info,
            node: r.node,
            resource_names: r.resource_names.into_iter().map(Bytes::from).collect(),
            type_url: r.type_url,
            response_nonce: r.response_nonce,
            error_detail: r.error_detail,
        }
    }
}

/// The requested names as a subscription: `None` when they are `current` (an ACK that
/// repeats the subscription, in any order), else the new set. A name that is not UTF-8
/// fails as tonic's decoder would.
pub(crate) fn subscription(
    mut names: Vec<Bytes>,
    current: &BTreeSet<String>,
) -> Result<Option<BTreeSet<String>>, Status> {
    if !names.is_sorted() {
        names.sort_unstable();
    }
    names.dedup();
    let same = names.len() == current.len()
        && names
            .iter()
            .zip(current)
            .all(|(n, c)| n[..] == *c.as_bytes());
    if same {
        return Ok(None);
    }
    let names = names
        .into_iter()
        .map(|n| String::from_utf8(n.to_vec()))
        .collect::<Result<BTreeSet<String>, _>>()
        .map_err(|_| {
            Status::internal(
                "failed to decode Protobuf message: DiscoveryRequest.resource_names: invalid string value: data is not UTF-8 encoded",
            )
        })?;
    Ok(Some(names))
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    fn bytes(names: &[&str]) -> Vec<Bytes> {
        names.iter().map(|n| Bytes::from(n.to_string())).collect()
    }

    #[test]
    fn decodes_what_envoy_sends_with_names_sliced_from_the_request() {
        let request = DiscoveryRequest {
            version_info: "v".into(),
            node: Some(Node {
                id: "sidecar~1.2.3.4~a.b~b.svc.cluster.local".into(),
                ..Default::default()
            }),
            resource_names: vec!["b".into(), "a".into()],
            type_url: "t".into(),
            response_nonce: "n".into(),
            error_detail: Some(RpcStatus {
                code: 3,
                message: "bad".into(),
                details: vec![],
            }),
            ..Default::default()
        };
        let wire = Bytes::from(request.encode_to_vec());
        let read = SotwRequest::decode(wire.clone()).unwrap();
        assert_eq!(read, SotwRequest::from(request));
        // A slice of the request's buffer, not a copy.
        let name = read.resource_names[0].as_ptr() as usize;
        assert!((wire.as_ptr() as usize..wire.as_ptr() as usize + wire.len()).contains(&name));
    }

    #[test]
    fn the_same_names_in_any_order_are_no_new_subscription() {
        let current = set(&["a", "b", "c"]);
        assert_eq!(
            subscription(bytes(&["c", "a", "b", "a"]), &current).unwrap(),
            None
        );
        assert_eq!(
            subscription(bytes(&["a", "b"]), &current).unwrap(),
            Some(set(&["a", "b"]))
        );
        assert_eq!(
            subscription(bytes(&["a", "b", "d"]), &current).unwrap(),
            Some(set(&["a", "b", "d"]))
        );
        assert_eq!(subscription(vec![], &BTreeSet::new()).unwrap(), None);
        let bad = vec![Bytes::from_static(&[0xff, 0xfe])];
        assert_eq!(
            subscription(bad, &current).unwrap_err().code(),
            tonic::Code::Internal
        );
    }
}
