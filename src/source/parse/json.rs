//! JSON files (one object or a `List`), and turning serde_json errors into positioned
//! decode errors.

use std::path::Path;

use serde_json::Value;

use super::object::{accept, parse_value, Header, Source};
use super::{at, Parsed};
use crate::problem::{Origin, Problem};
use crate::yaml::DecodeError;

pub(super) fn parse_json(path: &Path, text: &str, out: &mut Parsed) {
    let origin = Origin {
        file: path.to_path_buf(),
        document: 0,
        line: Some(1),
        column: None,
    };
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(error) => {
            let e = json_error_at(String::new(), &error);
            out.problems.push(Problem {
                origin: at(&origin, 0, e.location),
                object: None,
                field: None,
                reason: format!("not valid json: {}", e.reason),
            });
            return;
        }
    };
    if Header::of(&value).is_list() {
        // JSON is YAML too: the YAML reader tells where each item starts.
        let lines = list_item_lines(text);
        for (i, item) in list_items(&value).iter().enumerate() {
            let mut item_origin = origin.clone();
            if let Some(&(line, column)) = lines.get(i) {
                item_origin.line = Some(line);
                item_origin.column = Some(column);
            }
            parse_value(item, item_origin, Some(i), out);
        }
    } else {
        accept(
            &Header::of(&value),
            Source::Json(text),
            origin,
            0,
            None,
            out,
        );
    }
}

fn list_items(value: &Value) -> &[Value] {
    value
        .get("items")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The (line, column) of every item of a YAML `List`, relative to the document.
fn list_item_lines(text: &str) -> Vec<(usize, usize)> {
    #[derive(serde::Deserialize)]
    struct Items {
        items: Vec<serde_saphyr::Spanned<serde::de::IgnoredAny>>,
    }
    match crate::yaml::from_str::<Items>(text) {
        Ok(items) => items
            .items
            .iter()
            .map(|i| {
                let l = i.referenced;
                (l.line() as usize, l.column() as usize)
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

pub(crate) fn json_error(
    path: &serde_path_to_error::Path,
    error: &serde_json::Error,
) -> DecodeError {
    json_error_at(path.to_string(), error)
}

fn json_error_at(path: String, error: &serde_json::Error) -> DecodeError {
    // serde_json reports line 0 for errors that did not come from text.
    let location = (error.line() > 0).then(|| (error.line(), error.column().max(1)));
    let mut reason = error.to_string();
    if let Some(at) = reason.rfind(" at line ") {
        reason.truncate(at);
    }
    DecodeError {
        reason,
        location,
        field: (path != "." && !path.is_empty()).then_some(path),
    }
}
