//! Debouncing of configuration changes: after a first change, wait until no further change
//! has arrived for the quiet period, but never longer than the maximum delay.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{sleep_until, Instant};

/// Waits for the next change on `rx`, then for the burst to settle. Returns `false` when
/// the sender is gone.
pub async fn next_settled<T>(rx: &mut watch::Receiver<T>, quiet: Duration, max: Duration) -> bool {
    next_settled_since(rx, quiet, max).await.is_some()
}

/// As `next_settled`, returning when the first change of the burst was seen (the start
/// of `pilot_proxy_convergence_time`), or `None` when the sender is gone.
pub async fn next_settled_since<T>(
    rx: &mut watch::Receiver<T>,
    quiet: Duration,
    max: Duration,
) -> Option<std::time::Instant> {
    rx.changed().await.ok()?;
    let seen = std::time::Instant::now();
    let deadline = Instant::now() + max;
    loop {
        let quiet_end = (Instant::now() + quiet).min(deadline);
        tokio::select! {
            changed = rx.changed() => {
                if changed.is_err() {
                    return Some(seen);
                }
                if Instant::now() >= deadline {
                    return Some(seen);
                }
            }
            _ = sleep_until(quiet_end) => return Some(seen),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn waits_for_quiet_then_returns() {
        let (tx, mut rx) = watch::channel(0);
        let start = Instant::now();
        let sender = tokio::spawn(async move {
            for i in 1..=5 {
                tx.send(i).unwrap();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            tx
        });
        assert!(next_settled(&mut rx, Duration::from_millis(100), Duration::from_secs(10)).await);
        // Five changes 50 ms apart, then 100 ms of quiet after the last one.
        assert_eq!(start.elapsed(), Duration::from_millis(300));
        assert_eq!(*rx.borrow(), 5);
        drop(sender.await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_waiting_at_the_maximum() {
        let (tx, mut rx) = watch::channel(0);
        let start = Instant::now();
        let sender = tokio::spawn(async move {
            for i in 1..=100 {
                tx.send(i).unwrap();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        assert!(
            next_settled(
                &mut rx,
                Duration::from_millis(100),
                Duration::from_millis(1000)
            )
            .await
        );
        assert_eq!(start.elapsed(), Duration::from_millis(1000));
        sender.abort();
    }
}
