//! Reading meshd's `/debug/syncz`: `{node_id: {delta, <type>: {version_sent,
//! version_acked, nacked, ...}}}` with types `clusters`, `endpoints`, `listeners`, `routes`.

use serde_json::Value;

const TYPES: [&str; 4] = ["clusters", "endpoints", "listeners", "routes"];

/// Whether the proxy is connected and has acked the latest version of every type.
pub fn acked(syncz: &Value, node_id: &str) -> bool {
    let Some(entry) = syncz.get(node_id) else {
        return false;
    };
    TYPES.iter().all(|t| {
        let sent = entry[t]["version_sent"].as_str().unwrap_or("");
        let acked = entry[t]["version_acked"].as_str().unwrap_or("");
        !acked.is_empty() && acked == sent && entry[t]["nacked"] != Value::Bool(true)
    })
}

/// Whether meshd serves the proxy over Delta xDS; `None` when it is not connected.
pub fn delta(syncz: &Value, node_id: &str) -> Option<bool> {
    syncz.get(node_id)?.get("delta")?.as_bool()
}
