//! ADS responses as they go on the wire. A response holds the shared resources (`Arc`)
//! and writes the protobuf encoding of `envoy.service.discovery.v3` `DiscoveryResponse` /
//! `DeltaDiscoveryResponse` by hand, in parts, so that the response body (`body`) can send
//! each resource's value bytes as a slice of the shared `Bytes` rather than a copy.
//! Fields are written in tag order and empty scalars are omitted, as prost does, so the
//! bytes equal prost's encoding of the generated types.

use std::sync::Arc;

use bytes::BufMut;
use prost::encoding::{encode_key, encode_varint, encoded_len_varint, key_len, WireType};

use crate::envoy::resource::{EncodedAny, Resource};

/// A response as the HTTP body (`body`) sends it: the fields before the resources, each
/// resource as a small prefix, its shared value bytes and a small suffix, then the fields
/// after the resources. Concatenated, the parts are the message's protobuf encoding.
pub(crate) trait WireMessage {
    fn encoded_len(&self) -> usize;
    fn put_head(&self, buf: &mut impl BufMut);
    fn resources(&self) -> &[Arc<Resource>];
    /// Everything of a resource's field up to its `Any` value bytes.
    fn put_resource_prefix(resource: &Resource, buf: &mut impl BufMut);
    /// Everything of a resource's field after its `Any` value bytes.
    fn put_resource_suffix(resource: &Resource, buf: &mut impl BufMut);
    fn put_tail(&self, buf: &mut impl BufMut);

    /// The whole encoding in one buffer (the body sends it in parts instead).
    #[cfg(test)]
    fn encode(&self, buf: &mut impl BufMut) {
        self.put_head(buf);
        for r in self.resources() {
            Self::put_resource_prefix(r, buf);
            buf.put_slice(&r.body.value);
            Self::put_resource_suffix(r, buf);
        }
        self.put_tail(buf);
    }
}

/// A State of the World response (`DiscoveryResponse`).
#[derive(Debug, Clone)]
pub(crate) struct SotwResponse {
    pub(crate) version_info: String,
    /// Shared by every stream sent the same selection (`selection`).
    pub(crate) resources: Arc<Vec<Arc<Resource>>>,
    pub(crate) type_url: &'static str,
    pub(crate) nonce: String,
}

/// A Delta response (`DeltaDiscoveryResponse`); each resource goes out as a discovery
/// `Resource` with its name and version.
#[derive(Debug, Clone)]
pub(crate) struct DeltaResponse {
    pub(crate) system_version_info: String,
    pub(crate) resources: Vec<Arc<Resource>>,
    pub(crate) type_url: &'static str,
    pub(crate) removed_resources: Vec<String>,
    pub(crate) nonce: String,
}

// Field numbers, from envoy/service/discovery/v3/discovery.proto and google/protobuf/any.proto.
const ANY_TYPE_URL: u32 = 1;
const ANY_VALUE: u32 = 2;
const SOTW_VERSION_INFO: u32 = 1;
const SOTW_RESOURCES: u32 = 2;
const SOTW_TYPE_URL: u32 = 4;
const SOTW_NONCE: u32 = 5;
const DELTA_SYSTEM_VERSION_INFO: u32 = 1;
const DELTA_RESOURCES: u32 = 2;
const DELTA_TYPE_URL: u32 = 4;
const DELTA_NONCE: u32 = 5;
const DELTA_REMOVED_RESOURCES: u32 = 6;
const RESOURCE_VERSION: u32 = 1;
const RESOURCE_RESOURCE: u32 = 2;
const RESOURCE_NAME: u32 = 3;

/// Length of a length-delimited field carrying `len` bytes.
fn delimited_len(tag: u32, len: usize) -> usize {
    key_len(tag) + encoded_len_varint(len as u64) + len
}

/// Length of a proto3 string or bytes field: absent when empty.
fn scalar_len(tag: u32, bytes: &[u8]) -> usize {
    if bytes.is_empty() {
        0
    } else {
        delimited_len(tag, bytes.len())
    }
}

fn put_header(tag: u32, len: usize, buf: &mut impl BufMut) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(len as u64, buf);
}

/// Writes a length-delimited field, even when empty (repeated elements, sub-messages).
fn put_delimited(tag: u32, bytes: &[u8], buf: &mut impl BufMut) {
    put_header(tag, bytes.len(), buf);
    buf.put_slice(bytes);
}

/// Writes a proto3 string or bytes field, omitted when empty.
fn put_scalar(tag: u32, bytes: &[u8], buf: &mut impl BufMut) {
    if !bytes.is_empty() {
        put_delimited(tag, bytes, buf);
    }
}

fn any_len(any: &EncodedAny) -> usize {
    scalar_len(ANY_TYPE_URL, any.type_url.as_bytes()) + scalar_len(ANY_VALUE, &any.value)
}

/// Writes the start of `any` as an `Any` sub-message in field `tag`: everything up to
/// the value bytes, which the caller sends after it.
fn put_any_prefix(tag: u32, any: &EncodedAny, buf: &mut impl BufMut) {
    put_header(tag, any_len(any), buf);
    put_scalar(ANY_TYPE_URL, any.type_url.as_bytes(), buf);
    if !any.value.is_empty() {
        put_header(ANY_VALUE, any.value.len(), buf);
    }
}

/// Length of a discovery `Resource` message (version, resource, name).
fn delta_resource_len(r: &Resource) -> usize {
    scalar_len(RESOURCE_VERSION, r.version.as_bytes())
        + delimited_len(RESOURCE_RESOURCE, any_len(&r.body))
        + scalar_len(RESOURCE_NAME, r.name.as_bytes())
}

impl DeltaResponse {
    /// How much `r` adds to a response's encoded length.
    pub(crate) fn resource_encoded_len(r: &Resource) -> usize {
        delimited_len(DELTA_RESOURCES, delta_resource_len(r))
    }
}

impl WireMessage for SotwResponse {
    fn encoded_len(&self) -> usize {
        let resources: usize = self
            .resources
            .iter()
            .map(|r| delimited_len(SOTW_RESOURCES, any_len(&r.body)))
            .sum();
        scalar_len(SOTW_VERSION_INFO, self.version_info.as_bytes())
            + resources
            + scalar_len(SOTW_TYPE_URL, self.type_url.as_bytes())
            + scalar_len(SOTW_NONCE, self.nonce.as_bytes())
    }

    fn put_head(&self, buf: &mut impl BufMut) {
        put_scalar(SOTW_VERSION_INFO, self.version_info.as_bytes(), buf);
    }

    fn resources(&self) -> &[Arc<Resource>] {
        &self.resources
    }

    fn put_resource_prefix(r: &Resource, buf: &mut impl BufMut) {
        put_any_prefix(SOTW_RESOURCES, &r.body, buf);
    }

    fn put_resource_suffix(_: &Resource, _: &mut impl BufMut) {}

    fn put_tail(&self, buf: &mut impl BufMut) {
        put_scalar(SOTW_TYPE_URL, self.type_url.as_bytes(), buf);
        put_scalar(SOTW_NONCE, self.nonce.as_bytes(), buf);
    }
}

impl WireMessage for DeltaResponse {
    fn encoded_len(&self) -> usize {
        let resources: usize = self
            .resources
            .iter()
            .map(|r| delimited_len(DELTA_RESOURCES, delta_resource_len(r)))
            .sum();
        let removed: usize = self
            .removed_resources
            .iter()
            .map(|n| delimited_len(DELTA_REMOVED_RESOURCES, n.len()))
            .sum();
        scalar_len(
            DELTA_SYSTEM_VERSION_INFO,
            self.system_version_info.as_bytes(),
        ) + resources
            + scalar_len(DELTA_TYPE_URL, self.type_url.as_bytes())
            + scalar_len(DELTA_NONCE, self.nonce.as_bytes())
            + removed
    }

    fn put_head(&self, buf: &mut impl BufMut) {
        put_scalar(
            DELTA_SYSTEM_VERSION_INFO,
            self.system_version_info.as_bytes(),
            buf,
        );
    }

    fn resources(&self) -> &[Arc<Resource>] {
        &self.resources
    }

    fn put_resource_prefix(r: &Resource, buf: &mut impl BufMut) {
        put_header(DELTA_RESOURCES, delta_resource_len(r), buf);
        put_scalar(RESOURCE_VERSION, r.version.as_bytes(), buf);
        put_any_prefix(RESOURCE_RESOURCE, &r.body, buf);
    }

    fn put_resource_suffix(r: &Resource, buf: &mut impl BufMut) {
        put_scalar(RESOURCE_NAME, r.name.as_bytes(), buf);
    }

    fn put_tail(&self, buf: &mut impl BufMut) {
        put_scalar(DELTA_TYPE_URL, self.type_url.as_bytes(), buf);
        put_scalar(DELTA_NONCE, self.nonce.as_bytes(), buf);
        for name in &self.removed_resources {
            put_delimited(DELTA_REMOVED_RESOURCES, name.as_bytes(), buf);
        }
    }
}

#[cfg(test)]
#[path = "wire_tests.rs"]
pub(crate) mod tests;
