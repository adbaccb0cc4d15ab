//! One simulated Envoy: a tokio task that connects on its own HTTP/2 connection, runs one
//! ADS stream (SotW or Delta), and reconnects with Envoy's backoff when the stream ends.

mod delta;
mod progress;
mod sotw;

use std::sync::Arc;
use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::Node;
use tonic::transport::{Channel, Endpoint};

use crate::backoff::Backoff;
use crate::behaviour::Behaviour;
use crate::stats::{ProxyStats, Run};

/// The xDS flavour a proxy speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Sotw,
    Delta,
}

pub struct Proxy {
    pub index: usize,
    pub node: Node,
    pub protocol: Protocol,
    pub stats: Arc<ProxyStats>,
    pub behaviour: Behaviour,
    /// A slow proxy's pause before reading each response.
    pub slow_delay: Duration,
}

/// How a stream ended.
pub struct StreamEnd {
    /// Whether any response arrived on it (then the backoff starts over, as Envoy's does).
    pub got_response: bool,
}

/// Runs the proxy until the task is aborted.
pub async fn run(proxy: Proxy, endpoint: Endpoint, run: Arc<Run>) {
    let endpoint = proxy.behaviour.endpoint(endpoint);
    let mut backoff = Backoff::new(proxy.index as u64 + 1);
    let mut first = true;
    loop {
        if !first {
            tokio::time::sleep(backoff.next_wait()).await;
        }
        first = false;
        // A fresh channel per attempt: each proxy owns its own connection, like Envoy.
        let channel: Channel = match endpoint.connect().await {
            Ok(channel) => channel,
            Err(_) => {
                proxy
                    .stats
                    .stream_errors
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                continue;
            }
        };
        proxy
            .stats
            .streams
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let end = match proxy.protocol {
            Protocol::Sotw => sotw::stream(channel, &proxy, &run).await,
            Protocol::Delta => delta::stream(channel, &proxy, &run).await,
        };
        proxy
            .stats
            .stream_errors
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if end.got_response {
            backoff.reset();
        }
    }
}

/// How long a request queue may be: requests are tiny and a proxy sends a handful per
/// response, so this only bounds a server that stops reading.
const REQUEST_QUEUE: usize = 64;

impl Proxy {
    /// A slow proxy's pause between reads: its HTTP/2 window fills meanwhile, and the
    /// server has to hold what it wants to send.
    async fn pause_before_next_read(&self) {
        if let Some(delay) = self.behaviour.read_delay(self.slow_delay) {
            tokio::time::sleep(delay).await;
        }
    }
}

const SOTW_PATH: &str =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";
const DELTA_PATH: &str =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources";
