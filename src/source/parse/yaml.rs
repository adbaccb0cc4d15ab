//! YAML files: splitting into documents on `---` lines at column 0, and positions of each
//! document and its `List` items relative to the whole file.

use std::path::Path;

use super::object::{accept, parse_value, Header, Source};
use super::{at, Parsed};
use crate::problem::{Origin, Problem};

/// One YAML document of a file: its 0-based index, the number of file lines before it, and
/// its text (starting with its `---` line, if any, which YAML accepts).
pub(super) struct Document<'a> {
    index: usize,
    line_offset: usize,
    text: &'a str,
}

fn is_separator(line: &str) -> bool {
    let line = line.trim_end_matches(['\n', '\r']);
    line == "---" || line.starts_with("--- ") || line.starts_with("---\t")
}

/// Whether a document holds nothing but blank lines and comments.
fn is_blank(text: &str) -> bool {
    text.lines().all(|line| {
        let line = if is_separator(line) { &line[3..] } else { line };
        let line = line.trim();
        line.is_empty() || line.starts_with('#')
    })
}

pub(super) fn split_documents(text: &str) -> Vec<Document<'_>> {
    let mut pieces = Vec::new();
    let (mut start, mut start_line, mut offset) = (0usize, 0usize, 0usize);
    for (line_no, line) in text.split_inclusive('\n').enumerate() {
        if is_separator(line) && offset > 0 {
            pieces.push((start_line, &text[start..offset]));
            start = offset;
            start_line = line_no;
        }
        offset += line.len();
    }
    pieces.push((start_line, &text[start..]));
    // Text before a first `---` that holds only comments is not a document.
    if pieces.len() > 1 && !is_separator(pieces[0].1) && is_blank(pieces[0].1) {
        pieces.remove(0);
    }
    pieces
        .into_iter()
        .enumerate()
        .map(|(index, (line_offset, text))| Document {
            index,
            line_offset,
            text,
        })
        .collect()
}

/// The 1-based file line of the document's first content line.
fn first_content_line(doc: &Document<'_>) -> usize {
    doc.text
        .lines()
        .position(|l| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with('#') && !is_separator(l)
        })
        .map_or(doc.line_offset + 1, |i| doc.line_offset + i + 1)
}

pub(super) fn parse_yaml_document(path: &Path, doc: &Document<'_>, out: &mut Parsed) {
    if is_blank(doc.text) {
        return;
    }
    let origin = Origin {
        file: path.to_path_buf(),
        document: doc.index,
        line: Some(first_content_line(doc)),
        column: None,
    };
    // A first read learns the kind and name without building the whole document (only a
    // List's items are built, so that a List is read once).
    let header: Header = match crate::yaml::from_str_with_path::<Option<Header>>(doc.text) {
        Ok(Some(h)) => h,
        Ok(None) => return,
        Err(error) => {
            // Tell broken YAML from YAML of the wrong shape by reading it without a shape.
            let problem = match crate::yaml::from_str::<serde::de::IgnoredAny>(doc.text) {
                Err(syntax) => Problem {
                    origin: at(
                        &origin,
                        doc.line_offset,
                        crate::yaml::error_location(&syntax),
                    ),
                    object: None,
                    field: None,
                    reason: format!("not valid yaml: {}", crate::yaml::error_message(&syntax)),
                },
                Ok(_) => Problem {
                    origin: at(&origin, doc.line_offset, error.location),
                    object: None,
                    reason: match error.field {
                        Some(_) => error.reason,
                        None => "expected a kubernetes object (a mapping)".to_string(),
                    },
                    field: error.field,
                },
            };
            out.problems.push(problem);
            return;
        }
    };
    if !header.is_list() {
        let source = Source::Yaml(doc.text);
        accept(&header, source, origin, doc.line_offset, None, out);
        return;
    }
    let items = header.items.unwrap_or_default();
    for (i, item) in items.iter().enumerate() {
        let mut item_origin = origin.clone();
        let at = item.referenced;
        if at.line() > 0 {
            item_origin.line = Some(doc.line_offset + at.line() as usize);
            item_origin.column = Some(at.column() as usize);
        }
        parse_value(&item.value, item_origin, Some(i), out);
    }
}
