//! Subscription name sets shared between streams. Sidecars of one namespace subscribe to
//! the same endpoint and route names; held once per stream, those sets were a large part of
//! a stream's memory (about 1,000 strings each in a 1,000-service mesh). `intern` returns
//! the one live `Arc` of a set equal to the one given, so equal subscriptions are stored
//! once, and an unchanged `Arc` pointer tells the push path that a subscription is the same.
//!
//! Small and empty sets are interned too: the push path caches per subscription `Arc`
//! (`selection`), and one `Arc` per stream would crowd those caches.
//!
//! Only live sets are found: the table keeps weak references, and dead ones are swept
//! whenever the table has doubled since the last sweep, so it is bounded by the sets
//! streams hold, not by what clients ever sent.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// A subscription: names, sorted.
pub(crate) type Names = Arc<BTreeSet<String>>;

#[derive(Default)]
struct Table {
    by_hash: HashMap<u64, Vec<Weak<BTreeSet<String>>>>,
    /// Weak references held, live or dead.
    entries: usize,
    /// `entries` after the last sweep.
    swept: usize,
}

fn table() -> &'static Mutex<Table> {
    static TABLE: OnceLock<Mutex<Table>> = OnceLock::new();
    TABLE.get_or_init(Mutex::default)
}

fn hash(names: &BTreeSet<String>) -> u64 {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    for n in names {
        hasher.update(n.as_bytes());
        hasher.update(&[0]);
    }
    hasher.digest()
}

/// The live set equal to `names`, or `names` itself (then remembered for later callers).
pub(crate) fn intern(names: Names) -> Names {
    let key = hash(&names);
    let mut table = table().lock().unwrap_or_else(|e| e.into_inner());
    let bucket = table.by_hash.entry(key).or_default();
    for weak in bucket.iter() {
        if let Some(live) = weak.upgrade() {
            if Arc::ptr_eq(&live, &names) || *live == *names {
                return live;
            }
        }
    }
    let before = bucket.len();
    bucket.retain(|w| w.strong_count() > 0);
    bucket.push(Arc::downgrade(&names));
    let after = bucket.len();
    table.entries = table.entries + after - before;
    if table.entries > 2 * table.swept + 1024 {
        table.by_hash.retain(|_, bucket| {
            bucket.retain(|w| w.strong_count() > 0);
            !bucket.is_empty()
        });
        table.entries = table.by_hash.values().map(Vec::len).sum();
        table.swept = table.entries;
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> Names {
        Arc::new(names.iter().map(|n| n.to_string()).collect())
    }

    #[test]
    fn equal_sets_share_one_arc_and_dead_ones_are_not_found() {
        let a = intern(set(&["a", "b", "c", "d"]));
        let b = intern(set(&["a", "b", "c", "d"]));
        assert!(Arc::ptr_eq(&a, &b));
        let other = intern(set(&["a", "b", "c", "e"]));
        assert!(!Arc::ptr_eq(&a, &other));
        drop((a, b));
        // The first set is gone: the next one is remembered in its place.
        let again = intern(set(&["a", "b", "c", "d"]));
        let same = intern(set(&["a", "b", "c", "d"]));
        assert!(Arc::ptr_eq(&again, &same));
    }

    #[test]
    fn the_table_is_swept_of_dead_sets() {
        for i in 0..5000 {
            let n = format!("sweep-{i}");
            drop(intern(set(&[&n, "b", "c", "d"])));
        }
        let table = table().lock().unwrap();
        assert!(table.entries <= 2 * table.swept + 1024);
        assert!(table.entries < 5000);
    }
}
