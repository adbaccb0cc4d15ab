//! What a Delta proxy holds of one type, by name, kept small: for a resource we sent, the
//! entry is the shared `Arc<Resource>` itself (its name and version are the resource's),
//! so a stream holding 2,000 resources keeps 2,000 pointers, not 4,000 strings. Only
//! versions the proxy told us about (`initial_resource_versions`) own their strings.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::sync::Arc;

use crate::envoy::resource::Resource;

enum Entry {
    /// The proxy holds this resource, as we sent it.
    Sent(Arc<Resource>),
    /// The proxy holds something under this resource's name, at no version we have (it
    /// may have dropped it): sending any version differs.
    Stale(Arc<Resource>),
    /// A name and version the proxy says it holds.
    Claimed(Box<(String, String)>),
}

impl Entry {
    fn name(&self) -> &str {
        match self {
            Entry::Sent(r) | Entry::Stale(r) => &r.name,
            Entry::Claimed(c) => &c.0,
        }
    }

    fn version(&self) -> &str {
        match self {
            Entry::Sent(r) => &r.version,
            Entry::Stale(_) => "",
            Entry::Claimed(c) => &c.1,
        }
    }

    /// The same name, at no version.
    fn stale(&self) -> Entry {
        match self {
            Entry::Sent(r) | Entry::Stale(r) => Entry::Stale(Arc::clone(r)),
            Entry::Claimed(c) => Entry::Claimed(Box::new((c.0.clone(), String::new()))),
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

/// The resources one Delta stream's proxy holds of one type: name to version.
#[derive(Default)]
pub(crate) struct Held {
    entries: BTreeSet<Entry>,
}

impl Held {
    /// The version the proxy holds under `name`.
    #[cfg(test)]
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.entries.get(name).map(Entry::version)
    }

    /// Whether the proxy holds `r` at its version.
    pub(crate) fn holds(&self, r: &Arc<Resource>) -> bool {
        match self.entries.get(r.name.as_str()) {
            Some(Entry::Sent(held)) => Arc::ptr_eq(held, r) || held.version == r.version,
            Some(other) => other.version() == r.version,
            None => false,
        }
    }

    pub(crate) fn contains(&self, name: &str) -> bool {
        self.entries.contains(name)
    }

    /// `r` was sent to the proxy.
    pub(crate) fn sent(&mut self, r: &Arc<Resource>) {
        self.entries.replace(Entry::Sent(Arc::clone(r)));
    }

    /// The proxy says it holds `name` at `version`.
    pub(crate) fn claimed(&mut self, name: String, version: String) {
        self.entries
            .replace(Entry::Claimed(Box::new((name, version))));
    }

    pub(crate) fn remove(&mut self, name: &str) -> bool {
        self.entries.remove(name)
    }

    /// The proxy holds something under `name` at no version we know (when it holds
    /// `name` at all), so that any version we have is sent again.
    pub(crate) fn forget_version(&mut self, name: &str) {
        if let Some(entry) = self.entries.get(name) {
            let stale = entry.stale();
            self.entries.replace(stale);
        }
    }

    /// `forget_version` for every held name `pred` selects.
    pub(crate) fn forget_versions_where(&mut self, mut pred: impl FnMut(&str) -> bool) {
        let stale: Vec<Entry> = self
            .entries
            .iter()
            .filter(|e| pred(e.name()))
            .map(Entry::stale)
            .collect();
        for entry in stale {
            self.entries.replace(entry);
        }
    }

    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(Entry::name)
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
