//! A State-of-the-World ADS stream as Envoy runs it: wildcard CDS and LDS, then EDS for the
//! EDS clusters and RDS for the routes the listeners name; every response ACKed with its
//! version and nonce, a subscription change sent before the ACK that caused it.

use std::collections::HashMap;

use envoy_types::pb::envoy::service::discovery::v3::{DiscoveryRequest, DiscoveryResponse};
use prost::Message;
use tokio::sync::mpsc;
use tonic::transport::Channel;

use super::progress::Progress;
use super::SOTW_PATH;
use super::{Proxy, StreamEnd, REQUEST_QUEUE};
use crate::behaviour::Behaviour;
use crate::grpc;
use crate::stats::Run;
use crate::subscriptions::{eds_names, rds_names, unwrap_resource, CDS, EDS, LDS, RDS};

/// The last version and nonce seen per type: what an ACK or a subscription change carries.
#[derive(Default, Clone)]
struct Seen {
    version: String,
    nonce: String,
}

pub async fn stream(channel: Channel, proxy: &Proxy, run: &Run) -> StreamEnd {
    let (tx, rx) = mpsc::channel(REQUEST_QUEUE);
    let mut end = StreamEnd {
        got_response: false,
    };
    // Node on the first request only, as Istio's bootstrap has Envoy do.
    let first = DiscoveryRequest {
        node: Some(proxy.node.clone()),
        type_url: CDS.to_string(),
        ..Default::default()
    };
    let lds = DiscoveryRequest {
        type_url: LDS.to_string(),
        ..Default::default()
    };
    if tx.send(first).await.is_err() || tx.send(lds).await.is_err() {
        return end;
    }
    let mut responses = match grpc::open::<_, DiscoveryResponse>(channel, SOTW_PATH, rx).await {
        Ok(r) => r,
        Err(_) => return end,
    };
    let mut progress = Progress::default();
    let mut seen: HashMap<String, Seen> = HashMap::new();
    while let Ok(Some(response)) = responses.message().await {
        end.got_response = true;
        proxy.stats.on_response(response.encoded_len());
        let DiscoveryResponse {
            version_info,
            resources,
            type_url,
            nonce,
            ..
        } = response;
        let previous = seen.get(&type_url).map(|s| s.version.clone());
        if previous.is_some_and(|v| v != version_info) {
            proxy.stats.on_new_version(run);
        }
        let resources: Vec<_> = resources.iter().filter_map(unwrap_resource).collect();
        // A subscription that follows from this response goes out before its ACK.
        let follow_up = match type_url.as_str() {
            CDS if progress.set_eds(eds_names(&resources)) => {
                Some((EDS, progress.eds_names.iter().cloned().collect()))
            }
            LDS if progress.set_rds(rds_names(&resources)) => {
                Some((RDS, progress.rds_names.iter().cloned().collect()))
            }
            _ => None,
        };
        seen.insert(
            type_url.clone(),
            Seen {
                version: version_info.clone(),
                nonce: nonce.clone(),
            },
        );
        // A proxy that never ACKs asks for each type once, then stays silent.
        let follow_up = follow_up.filter(|(follow_type, _)| {
            proxy.behaviour != Behaviour::NeverAck || !seen.contains_key(*follow_type)
        });
        if let Some((follow_type, names)) = follow_up {
            let last = seen.get(follow_type).cloned().unwrap_or_default();
            let request = DiscoveryRequest {
                version_info: last.version,
                response_nonce: last.nonce,
                type_url: follow_type.to_string(),
                resource_names: names,
                ..Default::default()
            };
            if tx.send(request).await.is_err() {
                return end;
            }
        }
        let names = match type_url.as_str() {
            EDS => progress.eds_names.iter().cloned().collect(),
            RDS => progress.rds_names.iter().cloned().collect(),
            _ => Vec::new(),
        };
        if proxy.behaviour == Behaviour::NeverAck {
            proxy.pause_before_next_read().await;
            continue;
        }
        let rejection = proxy.behaviour.rejection();
        let ack = DiscoveryRequest {
            // A rejection carries the last version accepted: none, for a proxy that
            // rejects everything.
            version_info: if rejection.is_some() {
                String::new()
            } else {
                version_info
            },
            response_nonce: nonce,
            type_url: type_url.clone(),
            resource_names: names,
            error_detail: rejection,
            ..Default::default()
        };
        if tx.send(ack).await.is_err() {
            return end;
        }
        if proxy.behaviour.acks() {
            progress.acked(&type_url);
            if progress.synced() {
                proxy.stats.on_synced(run);
            }
        }
        proxy.pause_before_next_read().await;
    }
    end
}
