//! The bound on configuration generations running at once (one per core by default: each
//! is CPU work on the blocking pool), with priority: a connected proxy's new generation (an
//! update, often endpoints only) goes before a new stream's first configuration, so a mass
//! reconnect does not hold up pushes of changes to the proxies already connected. New
//! streams are few in this queue anyway: admission (`admission`) lets only a few per core
//! be in progress.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{AcquireError, Notify, Semaphore, SemaphorePermit};

/// What a generation is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PushClass {
    /// A connected stream's new generation.
    Update,
    /// A new stream's first configuration.
    Initial,
}

pub(crate) struct PushPermits {
    permits: Semaphore,
    updates_waiting: AtomicUsize,
    no_update_waiting: Notify,
    update_arrived: Notify,
}

impl PushPermits {
    pub(crate) fn new(permits: usize) -> Self {
        PushPermits {
            permits: Semaphore::new(permits.max(1)),
            updates_waiting: AtomicUsize::new(0),
            no_update_waiting: Notify::new(),
            update_arrived: Notify::new(),
        }
    }

    /// Waits for a permit; an `Initial` one waits while an update waits, and gives up its
    /// place in the queue when an update arrives.
    pub(crate) async fn acquire(
        &self,
        class: PushClass,
    ) -> Result<SemaphorePermit<'_>, AcquireError> {
        match class {
            PushClass::Update => {
                self.updates_waiting.fetch_add(1, Ordering::SeqCst);
                let _waiting = UpdateWaiting(self);
                self.update_arrived.notify_waiters();
                self.permits.acquire().await
            }
            PushClass::Initial => loop {
                // Each registered before its check, so a wake-up in between is not lost.
                let idle = self.no_update_waiting.notified();
                let arrived = self.update_arrived.notified();
                tokio::pin!(idle, arrived);
                idle.as_mut().enable();
                arrived.as_mut().enable();
                if self.updates_waiting.load(Ordering::SeqCst) != 0 {
                    idle.await;
                    continue;
                }
                tokio::select! {
                    biased;
                    permit = self.permits.acquire() => return permit,
                    () = arrived => {}
                }
            },
        }
    }
}

/// An update waiting for a permit; the last one to stop waiting lets new streams go.
struct UpdateWaiting<'a>(&'a PushPermits);

impl Drop for UpdateWaiting<'_> {
    fn drop(&mut self) {
        if self.0.updates_waiting.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.no_update_waiting.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[tokio::test]
    async fn updates_go_before_new_streams() {
        let permits = Arc::new(PushPermits::new(1));
        let order = Arc::new(Mutex::new(Vec::new()));
        let held = permits.acquire(PushClass::Update).await.unwrap();
        let mut tasks = Vec::new();
        // New streams queue first, then updates arrive.
        for (i, class) in [
            PushClass::Initial,
            PushClass::Initial,
            PushClass::Update,
            PushClass::Update,
        ]
        .into_iter()
        .enumerate()
        {
            let (p, o) = (permits.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = p.acquire(class).await.unwrap();
                o.lock().unwrap().push((i, class));
                tokio::task::yield_now().await;
            }));
            // Let each one reach its wait before the next comes.
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
        }
        drop(held);
        for t in tasks {
            t.await.unwrap();
        }
        let classes: Vec<PushClass> = order.lock().unwrap().iter().map(|(_, c)| *c).collect();
        assert_eq!(
            classes,
            [
                PushClass::Update,
                PushClass::Update,
                PushClass::Initial,
                PushClass::Initial
            ]
        );
    }

    #[tokio::test]
    async fn at_most_the_bound_run_at_once() {
        let permits = PushPermits::new(2);
        let a = permits.acquire(PushClass::Initial).await.unwrap();
        let _b = permits.acquire(PushClass::Update).await.unwrap();
        assert!(permits.permits.try_acquire().is_err());
        drop(a);
        assert!(permits.permits.try_acquire().is_ok());
    }
}
