//! Faults the tests put on meshd's watches, and what meshd's log says about its watches.

use std::path::Path;

use super::meshd::{log_text, wait_until};
use super::proxy::DropProxy;
use super::ApiServer;

/// How many kinds meshd watches (its `watching` log lines).
pub fn watched_kinds(log: &Path) -> usize {
    log_text(log).matches(" watching kind=").count()
}

/// How many lists (first ones and relists) meshd's watchers have completed.
pub fn lists_completed(log: &Path) -> usize {
    log_text(log).matches("Kubernetes list complete").count()
}

/// Cuts meshd (behind `proxy`) off, makes writes meshd does not watch (ServiceAccounts in
/// `namespace`, named after `round`) so that every resource version meshd holds is older
/// than the newest, compacts etcd, and lets meshd back: each watch resumes from a compacted
/// version, gets `410 Gone` and relists. Waits until every kind has listed again. Needs an
/// API server without its watch cache (which would answer resumed watches itself).
pub fn compact_while_cut_off(
    server: &ApiServer,
    proxy: &DropProxy,
    log: &Path,
    namespace: &str,
    round: &str,
) {
    let kinds = watched_kinds(log);
    let lists_before = lists_completed(log);
    proxy.cut();
    for i in 0..2 {
        server.kubectl(
            &[
                "create",
                "serviceaccount",
                "-n",
                namespace,
                &format!("{round}-{i}"),
            ],
            "",
        );
    }
    server.compact();
    proxy.resume();
    wait_until(log, "every kind to relist after the compaction", || {
        lists_completed(log) >= lists_before + kinds
    });
    let text = log_text(log);
    assert!(
        text.contains("Expired") && text.contains("too old"),
        "no 410 in meshd's log:\n{text}"
    );
}
