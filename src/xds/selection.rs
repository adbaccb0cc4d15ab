//! Work on a resource set done once for all streams that share it, not once per stream.
//! Proxies of one scope get the same `Arc<ResourceMap>` from the translator, and equal
//! subscriptions are one `Arc` (`names`), so:
//!
//! - `select`: the resources of a map a subscription selects, and their SotW version, are
//!   computed once per (map, subscription) pair; a SotW push is then a refcount.
//! - `diff`: the names that differ between two maps (a generation's and the next's) are
//!   computed once per pair; a Delta stream in sync with the old map looks only at those.
//!
//! Entries are keyed by pointer and hold weak references, so they never keep a map alive
//! and a reused address is never mistaken for the old map (its weak reference is dead).
//! Each cache is a small ring: entries of maps no longer in use are dropped on the next
//! insert, old ones fall out.

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, Weak};

use crate::envoy::resource::{set_version, Resource, ResourceMap};

use super::names::Names;

/// Entries per cache: far more than the distinct (scope, subscription) pairs of a push.
const RING: usize = 512;

/// The resources one subscription selects from one map, in name order, and the SotW
/// `version_info` of that set.
pub(crate) struct Selection {
    pub(crate) resources: Arc<Vec<Arc<Resource>>>,
    pub(crate) version: String,
}

struct SelectEntry {
    map: Weak<ResourceMap>,
    /// `None`: every resource of the map (wildcard).
    names: Option<Weak<BTreeSet<String>>>,
    selection: Arc<Selection>,
}

static SELECTIONS: Mutex<VecDeque<SelectEntry>> = Mutex::new(VecDeque::new());

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn is<T>(weak: &Weak<T>, arc: &Arc<T>) -> bool {
    // Equal pointers and a live weak reference: the same allocation, still in use.
    std::ptr::eq(weak.as_ptr(), Arc::as_ptr(arc)) && weak.strong_count() > 0
}

/// What `names` (every resource when `None`) selects from `map`.
pub(crate) fn select(map: &Arc<ResourceMap>, names: Option<&Names>) -> Arc<Selection> {
    {
        let ring = lock(&SELECTIONS);
        let hit = ring.iter().rev().find(|e| {
            is(&e.map, map)
                && match (&e.names, names) {
                    (None, None) => true,
                    (Some(w), Some(n)) => is(w, n),
                    _ => false,
                }
        });
        if let Some(e) = hit {
            return Arc::clone(&e.selection);
        }
    }
    let resources: Vec<Arc<Resource>> = match names {
        None => map.values().cloned().collect(),
        Some(names) => names.iter().filter_map(|n| map.get(n)).cloned().collect(),
    };
    let version = set_version(resources.iter().map(|r| r.as_ref()));
    let selection = Arc::new(Selection {
        resources: Arc::new(resources),
        version,
    });
    let mut ring = lock(&SELECTIONS);
    // A selection holds its resources: one whose map or subscription is gone would keep an
    // old generation alive.
    ring.retain(|e| {
        e.map.strong_count() > 0 && e.names.as_ref().is_none_or(|n| n.strong_count() > 0)
    });
    if ring.len() >= RING {
        ring.pop_front();
    }
    ring.push_back(SelectEntry {
        map: Arc::downgrade(map),
        names: names.map(Arc::downgrade),
        selection: Arc::clone(&selection),
    });
    selection
}

/// Names whose resource differs between an old map and a new one, in name order.
#[derive(Default)]
pub(crate) struct Diff {
    /// New in the new map, or with other content.
    pub(crate) changed: Vec<String>,
    /// In the old map only.
    pub(crate) removed: Vec<String>,
}

struct DiffEntry {
    old: Weak<ResourceMap>,
    new: Weak<ResourceMap>,
    diff: Arc<Diff>,
}

static DIFFS: Mutex<VecDeque<DiffEntry>> = Mutex::new(VecDeque::new());

/// What differs from `old` to `new`.
pub(crate) fn diff(old: &Arc<ResourceMap>, new: &Arc<ResourceMap>) -> Arc<Diff> {
    if Arc::ptr_eq(old, new) {
        return Arc::default();
    }
    {
        let ring = lock(&DIFFS);
        if let Some(e) = ring
            .iter()
            .rev()
            .find(|e| is(&e.old, old) && is(&e.new, new))
        {
            return Arc::clone(&e.diff);
        }
    }
    let diff = Arc::new(compute(old, new));
    let mut ring = lock(&DIFFS);
    ring.retain(|e| e.old.strong_count() > 0 && e.new.strong_count() > 0);
    if ring.len() >= RING {
        ring.pop_front();
    }
    ring.push_back(DiffEntry {
        old: Arc::downgrade(old),
        new: Arc::downgrade(new),
        diff: Arc::clone(&diff),
    });
    diff
}

/// One walk over both maps, side by side in name order.
fn compute(old: &ResourceMap, new: &ResourceMap) -> Diff {
    let mut diff = Diff::default();
    let mut o = old.iter().peekable();
    let mut n = new.iter().peekable();
    loop {
        match (o.peek(), n.peek()) {
            (None, None) => break,
            (Some((name, _)), None) => {
                diff.removed.push((*name).clone());
                o.next();
            }
            (None, Some((name, _))) => {
                diff.changed.push((*name).clone());
                n.next();
            }
            (Some((on, or)), Some((nn, nr))) => match on.cmp(nn) {
                std::cmp::Ordering::Less => {
                    diff.removed.push((*on).clone());
                    o.next();
                }
                std::cmp::Ordering::Greater => {
                    diff.changed.push((*nn).clone());
                    n.next();
                }
                std::cmp::Ordering::Equal => {
                    if !Arc::ptr_eq(or, nr) && or.version != nr.version {
                        diff.changed.push((*nn).clone());
                    }
                    o.next();
                    n.next();
                }
            },
        }
    }
    diff
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envoy::resource::type_url;

    fn map(entries: &[(&str, u8)]) -> Arc<ResourceMap> {
        Arc::new(
            entries
                .iter()
                .map(|(n, c)| {
                    let r = Resource::from_encoded(*n, type_url::CLUSTER, vec![*c; 3]);
                    (n.to_string(), Arc::new(r))
                })
                .collect(),
        )
    }

    #[test]
    fn diff_names_changed_added_and_removed_once_per_pair() {
        let old = map(&[("a", 1), ("b", 1), ("c", 1)]);
        let new = map(&[("b", 2), ("c", 1), ("d", 1)]);
        let d = diff(&old, &new);
        assert_eq!(d.changed, ["b", "d"]);
        assert_eq!(d.removed, ["a"]);
        assert!(Arc::ptr_eq(&d, &diff(&old, &new)));
        assert!(diff(&new, &new).changed.is_empty());
    }

    #[test]
    fn selections_are_shared_and_follow_the_subscription() {
        let m = map(&[("a", 1), ("b", 1), ("c", 1)]);
        let all = select(&m, None);
        assert_eq!(all.resources.len(), 3);
        assert!(Arc::ptr_eq(&all, &select(&m, None)));
        let names: Names = Arc::new(["a", "c", "x"].iter().map(|s| s.to_string()).collect());
        let some = select(&m, Some(&names));
        let got: Vec<&str> = some.resources.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(got, ["a", "c"]);
        assert_eq!(
            some.version,
            set_version(some.resources.iter().map(|r| r.as_ref()))
        );
        assert!(Arc::ptr_eq(&some, &select(&m, Some(&names))));
        // Another map with the same content at another address is computed on its own.
        let other = map(&[("a", 1), ("b", 1), ("c", 1)]);
        assert!(!Arc::ptr_eq(&all, &select(&other, None)));
        assert_eq!(all.version, select(&other, None).version);
    }
}
