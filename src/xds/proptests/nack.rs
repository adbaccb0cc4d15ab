//! Every expectation the property tests hold about NACKs, in one place, because these
//! rules are being revised. Two cases are deliberately left unconstrained until the new
//! rules land:
//! - a SotW NACK whose request also adds names: it may be answered (for the new names) or
//!   not, and it lifts the ban on resending the rejected content (the new names may not
//!   exist, so the answer can carry the same content);
//! - which resources a Delta NACK rejects beyond those its response carried, and whether
//!   anything is sent after it: only "the versions that response carried are never sent
//!   again on this stream" is asserted.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// SotW: the content (name -> version) of a rejected response, not to be sent again until
/// the configuration changes.
#[derive(Debug, Default, Clone)]
pub(super) struct SotwNack {
    banned: Option<BTreeMap<String, String>>,
}

impl SotwNack {
    /// A NACK (with the latest nonce) of the response that carried `content`; `grew`: the
    /// request also asked for names the subscription did not have.
    pub(super) fn nacked(&mut self, content: Option<&BTreeMap<String, String>>, grew: bool) {
        // Unconstrained: a NACK that adds names may be answered with the same content.
        self.banned = if grew { None } else { content.cloned() };
    }

    /// Whether a NACK request may be answered. Only one that adds names (unconstrained,
    /// see above); none is ever owed.
    pub(super) fn may_answer(grew: bool) -> bool {
        grew
    }

    /// The configuration changed (a new generation): anything may be sent again.
    pub(super) fn generation(&mut self) {
        self.banned = None;
    }

    /// Reasons the same content is sent again on purpose: the subscription grew (the new
    /// names are sent at once, whether they exist or not), or the proxy re-requested
    /// endpoints after a cluster push (always answered).
    pub(super) fn resend_allowed(&mut self) {
        self.banned = None;
    }

    pub(super) fn check(&self, content: &BTreeMap<String, String>) -> Result<(), TestCaseError> {
        prop_assert!(
            self.banned.as_ref() != Some(content),
            "rejected content sent again before the configuration changed: {content:?}"
        );
        Ok(())
    }
}

/// Delta: (name, version) pairs the proxy rejected on this stream.
#[derive(Debug, Default, Clone)]
pub(super) struct DeltaNack {
    /// Not to be sent again.
    banned: BTreeSet<(String, String)>,
    /// Every pair ever rejected on the stream: the server may go on withholding them after
    /// a configuration change (unconstrained), so the proxy's view of them is not asserted.
    ever: BTreeSet<(String, String)>,
}

impl DeltaNack {
    /// A NACK of the response that carried `resources` (name -> version).
    pub(super) fn nacked(&mut self, resources: &BTreeMap<String, String>) {
        self.banned.extend(resources.clone());
        self.ever.extend(resources.clone());
    }

    /// Whether a NACK request may be answered: unconstrained (see above).
    pub(super) const MAY_ANSWER: bool = true;

    /// `name` does not exist (after a generation, or already when the NACK arrives): when
    /// it comes back, even at a rejected version, that is a configuration change and it
    /// may be sent.
    pub(super) fn gone(&mut self, name: &str) {
        self.banned.retain(|(n, _)| n != name);
    }

    /// Whether the proxy's copy of `name` is left out of the comparison of views.
    pub(super) fn withheld(&self, name: &str, version: &str) -> bool {
        self.ever.contains(&(name.to_string(), version.to_string()))
    }

    pub(super) fn check(&self, name: &str, version: &str) -> Result<(), TestCaseError> {
        prop_assert!(
            !self
                .banned
                .contains(&(name.to_string(), version.to_string())),
            "rejected version sent again: {name} {version}"
        );
        Ok(())
    }
}
