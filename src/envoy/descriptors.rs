//! The descriptors of every Envoy message meshd emits, compiled at build time (build.rs)
//! from the protos envoy-types ships: what JSON rendering and reflection over encoded
//! resources need.

use std::sync::OnceLock;

use prost_reflect::DescriptorPool;

static POOL: OnceLock<DescriptorPool> = OnceLock::new();

/// The descriptor pool, decoded on first use.
pub fn pool() -> &'static DescriptorPool {
    POOL.get_or_init(|| {
        DescriptorPool::decode(
            &include_bytes!(concat!(env!("OUT_DIR"), "/envoy_descriptors.bin"))[..],
        )
        .expect("descriptor set compiled by build.rs decodes")
    })
}
