//! The push queue both protocols keep per stream: each type has a "due" flag (`Some(force)`
//! when a response may be owed; `force` when it must be sent even if unchanged). Responses
//! are built from the flags in push order only when the stream can take one, so the latest
//! configuration and subscription always win.

use std::collections::BTreeMap;

use crate::envoy::resource::type_url;

/// A per-type state with a due flag.
pub(crate) trait Due {
    fn due(&self) -> Option<bool>;
    fn due_mut(&mut self) -> &mut Option<bool>;
}

/// Per-type states of one stream, by type URL.
pub(crate) type Types<T> = BTreeMap<&'static str, T>;

pub(crate) fn any_due<T: Due>(types: &Types<T>) -> bool {
    types.values().any(|t| t.due().is_some())
}

/// A new generation: every subscribed type is re-examined when it can be sent.
pub(crate) fn mark_all_due<T: Due>(types: &mut Types<T>) {
    for t in types.values_mut() {
        t.due_mut().get_or_insert(false);
    }
}

/// Takes due types in push order until `build` yields a response (it yields none when the
/// type turned out unchanged); returns the response and its type.
pub(crate) fn next_in_push_order<T: Due, R>(
    types: &mut Types<T>,
    mut build: impl FnMut(&'static str, &mut T, bool) -> Option<R>,
) -> Option<(&'static str, R)> {
    for url in type_url::PUSH_ORDER {
        let Some(t) = types.get_mut(url) else {
            continue;
        };
        let Some(force) = t.due_mut().take() else {
            continue;
        };
        if let Some(response) = build(url, t, force) {
            return Some((url, response));
        }
    }
    None
}
