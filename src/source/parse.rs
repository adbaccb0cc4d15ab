//! Parsing file contents (multi-document YAML, `kind: List`, JSON) into typed objects.
//!
//! `yaml` splits a file into documents (so every problem carries its document index and a
//! line number relative to the whole file, and one broken document does not hide the
//! others); `json` reads JSON files; `object` learns each object's kind and name from a
//! lenient first read, then decodes it typed through the kinds registry
//! (`source::kinds`), which yields the field path and position of a type error. Kinds
//! meshd does not handle are skipped with a debug log.

mod json;
mod object;
mod yaml;

pub(crate) use json::json_error;

use std::path::Path;

use super::SourceObject;
use crate::problem::{Origin, Problem};

/// What one file yielded: the objects that parsed and the problems with the rest.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    pub objects: Vec<SourceObject>,
    pub problems: Vec<Problem>,
}

/// Parses a file's text; `.json` files as JSON, everything else as YAML.
pub fn parse_file(path: &Path, text: &str) -> Parsed {
    let mut out = Parsed::default();
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if is_json {
        json::parse_json(path, text, &mut out);
    } else {
        for doc in yaml::split_documents(text) {
            yaml::parse_yaml_document(path, &doc, &mut out);
        }
    }
    out
}

/// Moves an origin to a position relative to the document start, when one is known.
fn at(origin: &Origin, line_offset: usize, location: Option<(usize, usize)>) -> Origin {
    let mut origin = origin.clone();
    if let Some((line, column)) = location {
        origin.line = Some(line_offset + line);
        origin.column = Some(column);
    }
    origin
}

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;
