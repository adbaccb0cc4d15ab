//! Admission by load and the honest convergence metric, over real gRPC: hundreds of streams
//! opened at once are all admitted (queued, not refused) and all configured; and
//! `pilot_proxy_convergence_time` counts a change when the proxy acknowledges it, not when
//! it is sent, and never a rejected one.

mod support;

use std::time::Duration;

use meshd::xds::server::XdsOptions;
use meshd::xds::type_url::CLUSTER;
use support::*;

/// The value of the metric line starting with `prefix` (0 when absent).
fn metric(h: &Harness, prefix: &str) -> f64 {
    let text = h.status.render_metrics();
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

/// Waits until the metric line `prefix` reads `value`.
async fn wait_metric(h: &Harness, prefix: &str, value: f64) {
    let reached = tokio::time::timeout(WAIT, async {
        while metric(h, prefix) != value {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(
        reached.is_ok(),
        "{prefix} never became {value}:\n{}",
        h.status.render_metrics()
    );
}

const REFUSED: &str = "meshd_xds_streams_refused_total{reason=\"rate_limited\"} ";
const CONVERGED: &str = "pilot_proxy_convergence_time_count ";
const FANOUT: &str = "meshd_xds_push_fanout_time_count ";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mass_connect_is_queued_not_refused_and_everyone_gets_configuration() {
    const STREAMS: usize = 400;
    // Two streams set up at a time: nearly all of the 400 must wait in the queue.
    let options = XdsOptions {
        new_streams_in_progress: 2,
        ..XdsOptions::default()
    };
    let h = std::sync::Arc::new(Harness::start_with(options, 1).await);
    h.set(CLUSTER, vec![res(CLUSTER, "a", 1)]);
    h.bump();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(STREAMS));
    let tasks: Vec<_> = (0..STREAMS)
        .map(|_| {
            let (h, barrier) = (h.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let mut s = h.try_sotw().await?;
                s.subscribe(CLUSTER, &[]).await;
                let r = s.recv().await;
                s.ack(&r, &[]).await;
                Ok::<_, tonic::Status>((s, r.resources.len()))
            })
        })
        .collect();
    let mut streams = Vec::new();
    for t in tasks {
        let (s, resources) = t.await.unwrap().expect("stream admitted");
        assert_eq!(resources, 1, "configuration received");
        streams.push(s);
    }
    assert_eq!(h.status.connected(), STREAMS);
    assert_eq!(metric(&h, REFUSED), 0.0);
    // Every stream is still served afterwards: a change reaches all of them.
    h.set(CLUSTER, vec![res(CLUSTER, "a", 2), res(CLUSTER, "b", 2)]);
    h.bump();
    for s in &mut streams {
        assert_eq!(s.recv().await.resources.len(), 2);
    }
}

#[tokio::test]
async fn a_stream_beyond_a_full_queue_is_refused_and_counted() {
    let options = XdsOptions {
        new_streams_in_progress: 1,
        new_stream_queue: 1,
        ..XdsOptions::default()
    };
    let h = std::sync::Arc::new(Harness::start_with(options, 1).await);
    // Holds the only place (for the hold time): it never sends a request.
    let _idle = h.sotw().await;
    // Two more at once: one takes the only queue slot, the other is refused at once.
    let (tx, mut rx) = tokio::sync::mpsc::channel(2);
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let (h, tx) = (h.clone(), tx.clone());
            tokio::spawn(async move {
                let _ = tx.send(h.try_sotw().await.err()).await;
            })
        })
        .collect();
    let first = tokio::time::timeout(Duration::from_secs(2), rx.recv())
        .await
        .expect("one of the two answered before the hold time ended")
        .unwrap();
    let refused = first.expect("the first answer is a refusal");
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
    assert!(
        refused.message().contains("waiting"),
        "{}",
        refused.message()
    );
    assert_eq!(metric(&h, REFUSED), 1.0);
    for t in tasks {
        t.abort();
    }
}

#[tokio::test]
async fn convergence_counts_an_acknowledged_change_and_not_a_rejected_one() {
    let h = Harness::start().await;
    h.set(CLUSTER, vec![res(CLUSTER, "a", 1)]);
    h.bump();
    let mut s = h.sotw().await;
    s.subscribe(CLUSTER, &[]).await;
    let first = s.recv().await;
    s.ack(&first, &[]).await;
    h.wait_syncz("clusters", "nonce_acked", &first.nonce).await;
    assert_eq!(metric(&h, CONVERGED), 0.0, "a connection is not a change");

    // A change, acknowledged a while after it was sent: counted at the ACK, not the send.
    h.set(CLUSTER, vec![res(CLUSTER, "a", 2)]);
    h.bump();
    let second = s.recv().await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(metric(&h, CONVERGED), 0.0, "sent but not acknowledged yet");
    s.ack(&second, &[]).await;
    wait_metric(&h, CONVERGED, 1.0).await;
    assert_eq!(
        metric(&h, "pilot_proxy_convergence_time_bucket{le=\"0.1\"} "),
        0.0,
        "the delay reaches the ACK, {QUIET:?} after the send"
    );
    assert!(metric(&h, "pilot_proxy_convergence_time_sum ") >= QUIET.as_secs_f64());
    // One proxy: the generation's fan-out round ends with its ACK.
    wait_metric(&h, FANOUT, 1.0).await;

    // A rejected change is not counted.
    h.set(CLUSTER, vec![res(CLUSTER, "a", 3)]);
    h.bump();
    let third = s.recv().await;
    s.nack(&third, &second.version_info, &[]).await;
    wait_until(&h.status, "the rejection recorded", |s| {
        s["clusters"]["nacked"] == true
    })
    .await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(metric(&h, CONVERGED), 1.0, "a NACK is not convergence");

    // The next change the proxy accepts is counted again.
    h.set(CLUSTER, vec![res(CLUSTER, "a", 4)]);
    h.bump();
    let fourth = s.recv().await;
    s.ack(&fourth, &[]).await;
    wait_metric(&h, CONVERGED, 2.0).await;
}
