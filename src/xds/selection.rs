//! Work on a resource set done once for all streams that share it, not once per stream.
//! Proxies of one scope get the same `Arc<ResourceMap>` from the translator, and equal
//! subscriptions are one `Arc` (`names`), so:
//!
//! - `select`: the resources of a map a subscription selects, and their SotW version, are
//!   computed once per (map, subscription) pair; a SotW push is then a refcount.
//! - `diff`: the names that differ between two maps (a generation's and the next's) are
//!   computed once per pair; a Delta stream in sync with the old map looks only at those.
//! - `select_changed`: what a subscription selects of those names, once per (old map, new
//!   map, subscription): the partial SotW response of a named type.
//!
//! Entries are keyed by pointer and hold weak references, so they never keep a map alive
//! and a reused address is never mistaken for the old map (its weak reference is dead).
//! Each cache is a small ring: entries of maps no longer in use are dropped on the next
//! insert, old ones fall out.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, Weak};

use crate::envoy::resource::{set_version, Resource, ResourceMap};

use super::names::Names;

/// Entries per cache: far more than the distinct (scope, subscription) pairs of a push.
const RING: usize = 512;

/// One part of a cache key: an `Arc`'s address and a weak reference that tells whether
/// that allocation is still the one at the address. `None` stands for "every resource".
type Part = Option<(usize, Weak<dyn Any + Send + Sync>)>;

fn part<T: Any + Send + Sync>(arc: Option<&Arc<T>>) -> Part {
    arc.map(|a| {
        let weak: Weak<dyn Any + Send + Sync> = Arc::downgrade(a) as _;
        (Arc::as_ptr(a) as *const () as usize, weak)
    })
}

fn address<T>(arc: Option<&Arc<T>>) -> usize {
    arc.map_or(0, |a| Arc::as_ptr(a) as *const () as usize)
}

/// Equal addresses and a live weak reference: the same allocation, still in use.
fn same(part: &Part, addr: usize) -> bool {
    match part {
        None => addr == 0,
        Some((a, weak)) => *a == addr && weak.strong_count() > 0,
    }
}

fn live(part: &Part) -> bool {
    part.as_ref()
        .is_none_or(|(_, weak)| weak.strong_count() > 0)
}

/// A cache of values computed from up to three shared inputs, keyed by their addresses.
struct Ring<V> {
    entries: Mutex<VecDeque<([Part; 3], Arc<V>)>>,
}

impl<V> Ring<V> {
    const fn new() -> Self {
        Ring {
            entries: Mutex::new(VecDeque::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<([Part; 3], Arc<V>)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The value for the inputs at `addrs`, computed by `make` unless cached.
    fn get_or_insert(
        &self,
        addrs: [usize; 3],
        key: impl FnOnce() -> [Part; 3],
        make: impl FnOnce() -> V,
    ) -> Arc<V> {
        {
            let ring = self.lock();
            let hit = ring
                .iter()
                .rev()
                .find(|(k, _)| k.iter().zip(addrs).all(|(p, a)| same(p, a)));
            if let Some((_, v)) = hit {
                return Arc::clone(v);
            }
        }
        let value = Arc::new(make());
        let mut ring = self.lock();
        // A value may hold resources: one whose inputs are gone would keep an old
        // generation alive.
        ring.retain(|(k, _)| k.iter().all(live));
        if ring.len() >= RING {
            ring.pop_front();
        }
        ring.push_back((key(), Arc::clone(&value)));
        value
    }
}

/// The resources one subscription selects from one map, in name order, and the SotW
/// `version_info` of that set.
pub(crate) struct Selection {
    pub(crate) resources: Arc<Vec<Arc<Resource>>>,
    pub(crate) version: String,
}

static SELECTIONS: Ring<Selection> = Ring::new();

/// What `names` (every resource when `None`) selects from `map`.
pub(crate) fn select(map: &Arc<ResourceMap>, names: Option<&Names>) -> Arc<Selection> {
    SELECTIONS.get_or_insert(
        [address(Some(map)), address(names), 0],
        || [part(Some(map)), part(names), None],
        || {
            let resources: Vec<Arc<Resource>> = match names {
                None => map.values().cloned().collect(),
                Some(names) => names.iter().filter_map(|n| map.get(n)).cloned().collect(),
            };
            let version = set_version(resources.iter().map(|r| r.as_ref()));
            Selection {
                resources: Arc::new(resources),
                version,
            }
        },
    )
}

static CHANGED: Ring<Vec<Arc<Resource>>> = Ring::new();

/// The resources of `new` that `names` selects and that are new or changed since `old`, in
/// name order.
pub(crate) fn select_changed(
    old: &Arc<ResourceMap>,
    new: &Arc<ResourceMap>,
    names: &Names,
) -> Arc<Vec<Arc<Resource>>> {
    CHANGED.get_or_insert(
        [address(Some(old)), address(Some(new)), address(Some(names))],
        || [part(Some(old)), part(Some(new)), part(Some(names))],
        || {
            diff(old, new)
                .changed
                .iter()
                .filter(|n| names.contains(*n))
                .filter_map(|n| new.get(n))
                .cloned()
                .collect()
        },
    )
}

/// Names whose resource differs between an old map and a new one, in name order.
#[derive(Default)]
pub(crate) struct Diff {
    /// New in the new map, or with other content.
    pub(crate) changed: Vec<String>,
    /// In the old map only.
    pub(crate) removed: Vec<String>,
}

static DIFFS: Ring<Diff> = Ring::new();

/// What differs from `old` to `new`.
pub(crate) fn diff(old: &Arc<ResourceMap>, new: &Arc<ResourceMap>) -> Arc<Diff> {
    if Arc::ptr_eq(old, new) {
        return Arc::default();
    }
    DIFFS.get_or_insert(
        [address(Some(old)), address(Some(new)), 0],
        || [part(Some(old)), part(Some(new)), None],
        || compute(old, new),
    )
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

    #[test]
    fn changed_selections_hold_only_subscribed_new_or_changed_resources() {
        let old = map(&[("a", 1), ("b", 1), ("c", 1)]);
        let new = map(&[("a", 1), ("b", 2), ("c", 2), ("d", 1)]);
        let names: Names = Arc::new(["b", "d", "x"].iter().map(|s| s.to_string()).collect());
        let changed = select_changed(&old, &new, &names);
        let got: Vec<&str> = changed.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(got, ["b", "d"]);
        assert!(Arc::ptr_eq(&changed, &select_changed(&old, &new, &names)));
        assert!(select_changed(&new, &new, &names).is_empty());
    }
}
