//! What a Delta proxy holds of one type, by name, kept small. Once the proxy is in sync,
//! what it holds is a shared list (the resources its subscription selects from the map it
//! was last in sync with), and only what changed since is the stream's own. For a resource
//! we sent, an entry is the shared `Arc<Resource>` itself (its name and version are the
//! resource's), not two strings. Only versions the proxy told us about
//! (`initial_resource_versions`) own their strings.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::sync::Arc;

use crate::envoy::resource::Resource;

#[derive(Clone)]
enum Entry {
    /// The proxy holds this resource, as we sent it.
    Sent(Arc<Resource>),
    /// The proxy holds something under this resource's name, at no version we have (it
    /// may have dropped it): sending any version differs.
    Stale(Arc<Resource>),
    /// A name and version the proxy says it holds.
    Claimed(Box<(String, String)>),
    /// Nothing held under this name (only as a change from the base).
    Gone(Box<str>),
}

impl Entry {
    fn name(&self) -> &str {
        match self {
            Entry::Sent(r) | Entry::Stale(r) => &r.name,
            Entry::Claimed(c) => &c.0,
            Entry::Gone(name) => name,
        }
    }

    fn version(&self) -> &str {
        match self {
            Entry::Sent(r) => &r.version,
            Entry::Stale(_) | Entry::Gone(_) => "",
            Entry::Claimed(c) => &c.1,
        }
    }

    /// The same name, at no version.
    fn stale(&self) -> Entry {
        match self {
            Entry::Sent(r) | Entry::Stale(r) => Entry::Stale(Arc::clone(r)),
            Entry::Claimed(c) => Entry::Claimed(Box::new((c.0.clone(), String::new()))),
            Entry::Gone(name) => Entry::Gone(name.clone()),
        }
    }
}

impl Borrow<str> for Entry {
    fn borrow(&self) -> &str {
        self.name()
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        self.name().cmp(other.name())
    }
}

/// The resources one Delta stream's proxy holds of one type: name to version. Kept as a
/// shared base, the resources the proxy held when it was last in sync (`rebase`; the same
/// `Arc` for every stream of the same map and subscription), and this stream's changes
/// since, so that a stream in sync costs a pointer, not an entry per resource.
#[derive(Default)]
pub(crate) struct Held {
    /// In name order.
    base: Arc<Vec<Arc<Resource>>>,
    /// Names whose state differs from `base`: held otherwise, or not at all (`Gone`).
    changes: BTreeSet<Entry>,
}

/// What the proxy holds under a name.
enum Found<'a> {
    Entry(&'a Entry),
    Base(&'a Arc<Resource>),
}

impl<'a> Found<'a> {
    fn version(&self) -> &'a str {
        match self {
            Found::Entry(e) => e.version(),
            Found::Base(r) => &r.version,
        }
    }

    fn stale(&self) -> Entry {
        match self {
            Found::Entry(e) => e.stale(),
            Found::Base(r) => Entry::Stale(Arc::clone(r)),
        }
    }
}

impl Held {
    fn in_base(&self, name: &str) -> Option<&Arc<Resource>> {
        let i = self
            .base
            .binary_search_by(|r| r.name.as_str().cmp(name))
            .ok()?;
        Some(&self.base[i])
    }

    fn find(&self, name: &str) -> Option<Found<'_>> {
        match self.changes.get(name) {
            Some(Entry::Gone(_)) => None,
            Some(entry) => Some(Found::Entry(entry)),
            None => self.in_base(name).map(Found::Base),
        }
    }

    /// The version the proxy holds under `name`.
    #[cfg(test)]
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.find(name).map(|f| f.version())
    }

    /// Whether the proxy holds `r` at its version.
    pub(crate) fn holds(&self, r: &Arc<Resource>) -> bool {
        match self.find(&r.name) {
            Some(Found::Entry(Entry::Sent(held)) | Found::Base(held)) => {
                Arc::ptr_eq(held, r) || held.version == r.version
            }
            Some(other) => other.version() == r.version,
            None => false,
        }
    }

    pub(crate) fn contains(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    /// `r` was sent to the proxy.
    pub(crate) fn sent(&mut self, r: &Arc<Resource>) {
        self.changes.replace(Entry::Sent(Arc::clone(r)));
    }

    /// The proxy says it holds `name` at `version`.
    pub(crate) fn claimed(&mut self, name: String, version: String) {
        self.changes
            .replace(Entry::Claimed(Box::new((name, version))));
    }

    pub(crate) fn remove(&mut self, name: &str) -> bool {
        let held = self.contains(name);
        if self.in_base(name).is_some() {
            self.changes.replace(Entry::Gone(name.into()));
        } else {
            self.changes.remove(name);
        }
        held
    }

    /// The proxy holds something under `name` at no version we know (when it holds
    /// `name` at all), so that any version we have is sent again.
    pub(crate) fn forget_version(&mut self, name: &str) {
        if let Some(found) = self.find(name) {
            let stale = found.stale();
            self.changes.replace(stale);
        }
    }

    /// `forget_version` for every held name `pred` selects.
    pub(crate) fn forget_versions_where(&mut self, mut pred: impl FnMut(&str) -> bool) {
        let stale: Vec<Entry> = self
            .names()
            .filter(|n| pred(n))
            .filter_map(|n| self.find(n).map(|f| f.stale()))
            .collect();
        for entry in stale {
            self.changes.replace(entry);
        }
    }

    /// Every name held, in no particular order.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        let base = (self.base.iter())
            .map(|r| r.name.as_str())
            .filter(|n| !self.changes.contains(*n));
        let changed = (self.changes.iter())
            .filter(|e| !matches!(e, Entry::Gone(_)))
            .map(Entry::name);
        base.chain(changed)
    }

    /// Names held differently from the base.
    pub(crate) fn changed(&self) -> usize {
        self.changes.len()
    }

    /// The proxy holds exactly `base` (name order), except for the names `keep` selects,
    /// whose present state is kept.
    pub(crate) fn rebase<'a>(
        &mut self,
        base: Arc<Vec<Arc<Resource>>>,
        keep: impl IntoIterator<Item = &'a str>,
    ) {
        let kept: Vec<Entry> = keep
            .into_iter()
            .map(|name| match self.find(name) {
                Some(Found::Entry(e)) => e.clone(),
                Some(Found::Base(r)) => Entry::Sent(Arc::clone(r)),
                None => Entry::Gone(name.into()),
            })
            .collect();
        self.base = base;
        self.changes.clear();
        for entry in kept {
            let same = match (&entry, self.in_base(entry.name())) {
                (Entry::Gone(_), None) => true,
                (Entry::Sent(r), Some(b)) => Arc::ptr_eq(r, b),
                _ => false,
            };
            if !same {
                self.changes.replace(entry);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envoy::resource::type_url;

    fn res(name: &str, content: u8) -> Arc<Resource> {
        Arc::new(Resource::from_encoded(
            name,
            type_url::CLUSTER,
            vec![content; 4],
        ))
    }

    #[test]
    fn sent_claimed_and_forgotten_versions() {
        let mut held = Held::default();
        let a = res("a", 1);
        held.sent(&a);
        assert!(held.holds(&a));
        assert_eq!(held.get("a"), Some(a.version.as_str()));
        assert!(!held.holds(&res("a", 2)));
        // An equal resource from another generation is held as well.
        assert!(held.holds(&res("a", 1)));

        held.claimed("b".into(), "v1".into());
        assert_eq!(held.get("b"), Some("v1"));
        held.forget_versions_where(|n| n == "b");
        assert_eq!(held.get("b"), Some(""));
        held.forget_version("a");
        assert_eq!(held.get("a"), Some(""));
        assert!(!held.holds(&a));
        held.forget_version("missing");
        assert!(!held.contains("missing"));

        assert_eq!(held.names().collect::<Vec<_>>(), ["a", "b"]);
        assert!(held.remove("a"));
        assert!(!held.contains("a"));
    }
}
