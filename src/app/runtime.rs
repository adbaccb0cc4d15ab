//! The async runtime of `meshd serve`: a fixed, bounded set of threads. One async worker
//! per core, and a blocking pool bounded by the work that uses it: configuration
//! generation (at most `--max-concurrent-pushes` at once, one per core by default), the
//! pipeline's model build and translation (`block_in_place`, which hands its worker's
//! queue to a blocking-pool thread), certificate issuance and file reads. Tokio's default
//! of 512 blocking threads let a push start one thread per stream generating at once
//! (about 100 with the old limit of 100 concurrent pushes); work beyond the bound waits in
//! the pool's queue instead of adding threads.

use anyhow::Context;

use crate::xds::server::cores;

/// Blocking-pool threads besides those of concurrent pushes: the pipeline's build, the
/// CA and the file source, and one spare so that none of them waits behind the others.
const BLOCKING_SPARE: usize = 4;

/// Threads of the blocking pool for `max_concurrent_pushes` generations at once.
pub(crate) fn max_blocking_threads(max_concurrent_pushes: usize) -> usize {
    max_concurrent_pushes.max(1) + BLOCKING_SPARE
}

pub(crate) fn build(max_concurrent_pushes: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    build_named(max_concurrent_pushes, "meshd")
}

fn build_named(
    max_concurrent_pushes: usize,
    name: &str,
) -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores())
        .max_blocking_threads(max_blocking_threads(max_concurrent_pushes))
        .thread_name(name)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Threads of this process named `name` (Linux; names are cut to 15 bytes).
    fn threads_named(name: &str) -> usize {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|comm| comm.trim_end() == name)
            .count()
    }

    #[test]
    fn the_blocking_pool_is_bounded_under_many_blocking_tasks() {
        const NAME: &str = "meshd-rt-test";
        let runtime = build_named(2, NAME).unwrap();
        let most = runtime.block_on(async {
            let tasks: Vec<_> = (0..100)
                .map(|_| {
                    tokio::task::spawn_blocking(|| {
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        threads_named(NAME)
                    })
                })
                .collect();
            let mut most = 0;
            for t in tasks {
                most = most.max(t.await.unwrap());
            }
            most
        });
        assert!(most > cores(), "the blocking pool was used");
        assert!(
            most <= cores() + max_blocking_threads(2),
            "{most} threads for 100 blocking tasks"
        );
        runtime.shutdown_background();
    }
}
