//! Parsing file contents (multi-document YAML, `kind: List`, JSON) into typed objects.
//!
//! YAML files are split into documents here (on `---` lines at column 0) so that every
//! problem carries the document index and a line number relative to the whole file, and so
//! that one broken document does not hide the others. Each document is read twice: once as a
//! generic value to learn its kind and name, then typed, which yields the field path and
//! position of a type error. Kinds meshd does not handle are skipped with a debug log.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde_json::Value;
use tracing::debug;

use super::objects::KubeObject;
use super::SourceObject;
use crate::problem::{ObjectRef, Origin, Problem};
use crate::yaml::DecodeError;

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
        parse_json(path, text, &mut out);
    } else {
        for doc in split_documents(text) {
            parse_yaml_document(path, &doc, &mut out);
        }
    }
    out
}

/// The kinds meshd reads, by API group/version and kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Namespace,
    Service,
    EndpointSlice,
    Pod,
}

impl Kind {
    fn of(api_version: &str, kind: &str) -> Option<Kind> {
        match (api_version, kind) {
            ("v1", "Namespace") => Some(Kind::Namespace),
            ("v1", "Service") => Some(Kind::Service),
            ("v1", "Pod") => Some(Kind::Pod),
            ("discovery.k8s.io/v1", "EndpointSlice") => Some(Kind::EndpointSlice),
            _ => None,
        }
    }

    fn decode(self, source: Source<'_>) -> Result<KubeObject, DecodeError> {
        Ok(match self {
            Kind::Namespace => KubeObject::Namespace(decode(source)?),
            Kind::Service => KubeObject::Service(decode(source)?),
            Kind::EndpointSlice => KubeObject::EndpointSlice(decode(source)?),
            Kind::Pod => KubeObject::Pod(decode(source)?),
        })
    }
}

/// Where a typed object is decoded from; text sources report positions.
#[derive(Clone, Copy)]
enum Source<'a> {
    Yaml(&'a str),
    Json(&'a str),
    Value(&'a Value),
}

fn decode<T: DeserializeOwned>(source: Source<'_>) -> Result<T, DecodeError> {
    match source {
        Source::Yaml(text) => crate::yaml::from_str_with_path(text),
        Source::Json(text) => {
            let mut de = serde_json::Deserializer::from_str(text);
            serde_path_to_error::deserialize(&mut de).map_err(|e| json_error(e.path(), e.inner()))
        }
        Source::Value(value) => {
            serde_path_to_error::deserialize(value).map_err(|e| json_error(e.path(), e.inner()))
        }
    }
}

fn json_error(path: &serde_path_to_error::Path, error: &serde_json::Error) -> DecodeError {
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

/// One YAML document of a file: its 0-based index, the number of file lines before it, and
/// its text (starting with its `---` line, if any, which YAML accepts).
struct Document<'a> {
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

fn split_documents(text: &str) -> Vec<Document<'_>> {
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

fn parse_yaml_document(path: &Path, doc: &Document<'_>, out: &mut Parsed) {
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

fn parse_json(path: &Path, text: &str, out: &mut Parsed) {
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

fn parse_value(value: &Value, origin: Origin, item: Option<usize>, out: &mut Parsed) {
    accept(
        &Header::of(value),
        Source::Value(value),
        origin,
        0,
        item,
        out,
    );
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

/// What identifies an object, read leniently (any value types) before the typed decode.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Header {
    /// False when the document is not a mapping at all.
    #[serde(skip, default = "yes")]
    is_object: bool,
    api_version: Option<Value>,
    kind: Option<Value>,
    metadata: Option<Value>,
    /// A List's items with their positions (YAML only; from a JSON value, only presence).
    items: Option<Vec<serde_saphyr::Spanned<Value>>>,
}

fn yes() -> bool {
    true
}

impl Header {
    fn of(value: &Value) -> Header {
        Header {
            is_object: value.is_object(),
            api_version: value.get("apiVersion").cloned(),
            kind: value.get("kind").cloned(),
            metadata: value.get("metadata").cloned(),
            items: value.get("items").map(|_| Vec::new()),
        }
    }

    fn api_version(&self) -> Option<&str> {
        self.api_version.as_ref().and_then(Value::as_str)
    }

    fn kind(&self) -> Option<&str> {
        self.kind.as_ref().and_then(Value::as_str)
    }

    fn meta(&self, field: &str) -> Option<&str> {
        self.metadata.as_ref()?.get(field)?.as_str()
    }

    /// `kind: List` (kubectl's) or any `...List` kind with `items`.
    fn is_list(&self) -> bool {
        self.kind().is_some_and(|k| k.ends_with("List")) && self.items.is_some()
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

/// Checks one object's kind and decodes it, or records why it cannot be read.
fn accept(
    header: &Header,
    source: Source<'_>,
    origin: Origin,
    line_offset: usize,
    item: Option<usize>,
    out: &mut Parsed,
) {
    let prefix = |field: &str| match item {
        Some(i) => format!("items[{i}].{field}"),
        None => field.to_string(),
    };
    let problem = |field: &str, reason: &str| Problem {
        origin: origin.clone(),
        object: None,
        field: match (item, field.is_empty()) {
            (Some(i), true) => Some(format!("items[{i}]")),
            (_, false) => Some(prefix(field)),
            (None, true) => None,
        },
        reason: reason.to_string(),
    };
    if !header.is_object {
        out.problems
            .push(problem("", "expected a kubernetes object (a mapping)"));
        return;
    }
    let (Some(api_version), Some(kind_name)) = (header.api_version(), header.kind()) else {
        let missing = if header.kind().is_none() {
            "kind"
        } else {
            "apiVersion"
        };
        out.problems
            .push(problem(missing, &format!("missing {missing}")));
        return;
    };
    let Some(kind) = Kind::of(api_version, kind_name) else {
        debug!(
            file = %origin.file.display(),
            document = origin.document,
            api_version,
            kind = kind_name,
            "skipping a kind meshd does not handle"
        );
        return;
    };
    let namespaced = kind != Kind::Namespace;
    let object_ref = ObjectRef {
        kind: kind_name.to_string(),
        namespace: namespaced.then(|| header.meta("namespace").unwrap_or("default").to_string()),
        name: header.meta("name").unwrap_or_default().to_string(),
    };
    match kind.decode(source) {
        Ok(mut object) => {
            if object.is_namespaced() {
                let meta = object.metadata_mut();
                if meta.namespace.as_deref().is_none_or(str::is_empty) {
                    meta.namespace = Some("default".to_string());
                }
            }
            out.objects.push(SourceObject { origin, object });
        }
        Err(error) => {
            let field = error.field.as_deref().map(prefix);
            out.problems.push(Problem {
                origin: at(&origin, line_offset, error.location),
                object: Some(object_ref),
                field,
                reason: error.reason,
            });
        }
    }
}

#[cfg(test)]
mod tests;
