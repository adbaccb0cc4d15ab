//! Test fixture: a mesh model built from one YAML text, as the tests of the builders and
//! of translation write their inputs.

use std::path::Path;

use super::{build_model, Built};
use crate::source::parse::parse_file;
use crate::source::InputSet;

/// The model built from `yaml`, which must parse and build without problems.
pub(crate) fn build_clean(yaml: &str) -> Built {
    let parsed = parse_file(Path::new("t.yaml"), yaml);
    assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
    let built = build_model(&InputSet {
        objects: parsed.objects,
        problems: Vec::new(),
    });
    assert!(built.problems.is_empty(), "{:?}", built.problems);
    built
}
