//! Translation that only looks things up: `probe(f)` runs `f` on this thread with every
//! translator cache in look-up mode, where a part not built yet is not built but marks the
//! probe as missed. The xDS server asks the generator this way first, on its async worker:
//! a proxy whose scope is already translated (all proxies but the first of a scope, after
//! a change) gets its configuration in a few microseconds, without handing the work to a
//! blocking thread and back (two cross-thread wake-ups per proxy and push). A miss costs
//! the look-ups, and the caller then translates on a blocking thread.

use std::cell::Cell;

thread_local! {
    /// `Some(missed)` while a probe runs on this thread.
    static PROBE: Cell<Option<bool>> = const { Cell::new(None) };
}

/// `f`'s result when it needed nothing that is not built yet; `None` otherwise (its result,
/// made of empty stand-ins for the missing parts, is dropped).
pub fn probe<T>(f: impl FnOnce() -> T) -> Option<T> {
    let outer = PROBE.with(|p| p.replace(Some(false)));
    let out = f();
    let missed = PROBE.with(|p| p.replace(outer)) == Some(true);
    (!missed).then_some(out)
}

/// Whether a probe runs on this thread.
pub(crate) fn active() -> bool {
    PROBE.with(|p| p.get().is_some())
}

/// Whether the probe on this thread has missed a part so far (its results are stand-ins).
pub fn missed_so_far() -> bool {
    PROBE.with(|p| p.get() == Some(true))
}

/// The probe on this thread needed a part that is not built.
pub(crate) fn missed() {
    PROBE.with(|p| {
        if p.get().is_some() {
            p.set(Some(true));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_miss_anywhere_in_the_probe_fails_it_and_nothing_leaks_outside() {
        assert!(!active());
        assert_eq!(probe(|| 1), Some(1));
        assert_eq!(
            probe(|| {
                missed();
                2
            }),
            None
        );
        assert!(!active());
        assert_eq!(
            probe(|| {
                missed();
                missed_so_far()
            }),
            None
        );
        missed();
        assert_eq!(probe(active), Some(true));
    }
}
