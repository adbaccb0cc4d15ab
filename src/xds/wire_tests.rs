//! The hand-written encoding matches prost's encoding of the generated envoy-types
//! messages byte for byte, and decodes back to the same message.

use std::sync::Arc;

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryResponse, DiscoveryResponse, Resource as DeltaResource,
};
use prost::Message;

use super::{DeltaResponse, SotwResponse, WireMessage};
use crate::envoy::resource::{type_url, Resource};

/// A cluster resource whose encoding is about `size` bytes long.
pub(crate) fn cluster(name: &str, size: usize) -> Arc<Resource> {
    let message = Cluster {
        name: name.to_string(),
        alt_stat_name: "x".repeat(size),
        ..Default::default()
    };
    Arc::new(Resource::encode(name, type_url::CLUSTER, &message))
}

fn resources() -> Vec<Arc<Resource>> {
    vec![
        cluster("a", 0),
        cluster("b", 300),
        cluster("c", 70_000),
        // Empty bytes and an empty name: fields prost omits.
        Arc::new(Resource::from_encoded("", type_url::CLUSTER, Vec::new())),
    ]
}

fn encode(message: &impl WireMessage) -> Vec<u8> {
    let mut buf = Vec::new();
    message.encode(&mut buf);
    assert_eq!(buf.len(), message.encoded_len());
    buf
}

/// The envoy-types message a `SotwResponse` stands for.
pub(crate) fn sotw_prost(r: &SotwResponse) -> DiscoveryResponse {
    DiscoveryResponse {
        version_info: r.version_info.clone(),
        resources: r.resources.iter().map(|r| r.body.to_any()).collect(),
        type_url: r.type_url.to_string(),
        nonce: r.nonce.clone(),
        ..Default::default()
    }
}

/// The envoy-types message a `DeltaResponse` stands for.
pub(crate) fn delta_prost(r: &DeltaResponse) -> DeltaDiscoveryResponse {
    DeltaDiscoveryResponse {
        system_version_info: r.system_version_info.clone(),
        resources: r
            .resources
            .iter()
            .map(|r| DeltaResource {
                name: r.name.clone(),
                version: r.version.clone(),
                resource: Some(r.body.to_any()),
                ..Default::default()
            })
            .collect(),
        type_url: r.type_url.to_string(),
        removed_resources: r.removed_resources.clone(),
        nonce: r.nonce.clone(),
        ..Default::default()
    }
}

fn check_sotw(r: SotwResponse) {
    let expected = sotw_prost(&r);
    let bytes = encode(&r);
    assert_eq!(bytes, expected.encode_to_vec());
    assert_eq!(DiscoveryResponse::decode(&bytes[..]).unwrap(), expected);
}

fn check_delta(r: DeltaResponse) {
    let expected = delta_prost(&r);
    let bytes = encode(&r);
    assert_eq!(bytes, expected.encode_to_vec());
    assert_eq!(
        DeltaDiscoveryResponse::decode(&bytes[..]).unwrap(),
        expected
    );
}

#[test]
fn sotw_with_several_resources() {
    check_sotw(SotwResponse {
        version_info: "0123456789abcdef".into(),
        resources: Arc::new(resources()),
        type_url: type_url::CLUSTER,
        nonce: "1-2".into(),
    });
}

#[test]
fn sotw_empty() {
    check_sotw(SotwResponse {
        version_info: "v".into(),
        resources: Arc::default(),
        type_url: type_url::LISTENER,
        nonce: "1-1".into(),
    });
    check_sotw(SotwResponse {
        version_info: String::new(),
        resources: Arc::default(),
        type_url: "",
        nonce: String::new(),
    });
}

#[test]
fn delta_with_resources_and_removals() {
    check_delta(DeltaResponse {
        system_version_info: "abc".into(),
        resources: resources(),
        type_url: type_url::CLUSTER,
        removed_resources: vec!["gone".into(), String::new(), "x".repeat(200)],
        nonce: "3-4".into(),
    });
}

#[test]
fn delta_only_removals_and_empty() {
    check_delta(DeltaResponse {
        system_version_info: "abc".into(),
        resources: Vec::new(),
        type_url: type_url::ENDPOINT,
        removed_resources: vec!["a".into(), "b".into()],
        nonce: "3-5".into(),
    });
    check_delta(DeltaResponse {
        system_version_info: String::new(),
        resources: Vec::new(),
        type_url: type_url::ROUTE,
        removed_resources: Vec::new(),
        nonce: "3-6".into(),
    });
}
