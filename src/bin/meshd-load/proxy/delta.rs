//! An incremental (Delta) ADS stream as Envoy runs it: wildcard CDS and LDS, then EDS and
//! RDS subscribed and unsubscribed by name as clusters and listeners come and go; every
//! response ACKed by its nonce. Only the names derived from CDS and LDS are kept per
//! resource, not the resources, so a simulated proxy stays small.

use std::collections::{BTreeSet, HashMap};

use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse,
};
use prost::Message;
use tokio::sync::mpsc;
use tonic::transport::Channel;

use super::progress::Progress;
use super::DELTA_PATH;
use super::{Proxy, StreamEnd, REQUEST_QUEUE};
use crate::behaviour::Behaviour;
use crate::grpc;
use crate::stats::Run;
use crate::subscriptions::{eds_names, rds_names, CDS, EDS, LDS, RDS};

/// Per CDS/LDS resource name, the EDS or RDS names it brings.
type Derived = HashMap<String, BTreeSet<String>>;

pub async fn stream(channel: Channel, proxy: &Proxy, run: &Run) -> StreamEnd {
    let (tx, rx) = mpsc::channel(REQUEST_QUEUE);
    let mut end = StreamEnd {
        got_response: false,
    };
    let first = DeltaDiscoveryRequest {
        node: Some(proxy.node.clone()),
        type_url: CDS.to_string(),
        ..Default::default()
    };
    let lds = DeltaDiscoveryRequest {
        type_url: LDS.to_string(),
        ..Default::default()
    };
    if tx.send(first).await.is_err() || tx.send(lds).await.is_err() {
        return end;
    }
    let mut responses = match grpc::open::<_, DeltaDiscoveryResponse>(channel, DELTA_PATH, rx).await
    {
        Ok(r) => r,
        Err(_) => return end,
    };
    let mut progress = Progress::default();
    let mut clusters = Derived::new();
    let mut listeners = Derived::new();
    let mut responded: BTreeSet<String> = BTreeSet::new();
    while let Ok(Some(response)) = responses.message().await {
        end.got_response = true;
        proxy.stats.on_response(response.encoded_len());
        let DeltaDiscoveryResponse {
            resources,
            type_url,
            removed_resources,
            nonce,
            ..
        } = response;
        // Delta responses carry only what changed: any after the first of a type is news.
        let changed = !resources.is_empty() || !removed_resources.is_empty();
        if !responded.insert(type_url.clone()) && changed {
            proxy.stats.on_new_version(run);
        }
        let derived = match type_url.as_str() {
            CDS => Some((&mut clusters, true)),
            LDS => Some((&mut listeners, false)),
            _ => None,
        };
        let mut follow_up = None;
        if let Some((map, is_cds)) = derived {
            for name in &removed_resources {
                map.remove(name);
            }
            for resource in &resources {
                let Some(any) = &resource.resource else {
                    continue;
                };
                let names = if is_cds {
                    eds_names([any])
                } else {
                    rds_names([any])
                };
                map.insert(resource.name.clone(), names);
            }
            let all: BTreeSet<String> = map.values().flatten().cloned().collect();
            let (old, follow_type) = if is_cds {
                (progress.eds_names.clone(), EDS)
            } else {
                (progress.rds_names.clone(), RDS)
            };
            let updated = if is_cds {
                progress.set_eds(all.clone())
            } else {
                progress.set_rds(all.clone())
            };
            if updated {
                follow_up = Some(DeltaDiscoveryRequest {
                    type_url: follow_type.to_string(),
                    resource_names_subscribe: all.difference(&old).cloned().collect(),
                    resource_names_unsubscribe: old.difference(&all).cloned().collect(),
                    ..Default::default()
                });
            }
        }
        if let Some(request) = follow_up {
            if tx.send(request).await.is_err() {
                return end;
            }
        }
        if proxy.behaviour == Behaviour::NeverAck {
            proxy.pause_before_next_read().await;
            continue;
        }
        let ack = DeltaDiscoveryRequest {
            type_url: type_url.clone(),
            response_nonce: nonce,
            error_detail: proxy.behaviour.rejection(),
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
