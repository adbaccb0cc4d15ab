//! How one object is read: a lenient header read (kind, name, whether it is a `List`),
//! then the typed decode of a kind from the registry (`source::kinds`), with problems for
//! what cannot be read.

use serde_json::Value;
use std::sync::Arc;
use tracing::debug;

use super::{at, Parsed};
use crate::problem::{ObjectRef, Origin, Problem};
pub(super) use crate::source::kinds::Source;
use crate::source::kinds::{self};
use crate::source::SourceObject;

/// What identifies an object, read leniently (any value types) before the typed decode.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct Header {
    /// False when the document is not a mapping at all.
    #[serde(skip, default = "yes")]
    is_object: bool,
    api_version: Option<Value>,
    kind: Option<Value>,
    metadata: Option<Value>,
    /// A List's items with their positions (YAML only; from a JSON value, only presence).
    pub(super) items: Option<Vec<serde_saphyr::Spanned<Value>>>,
}

fn yes() -> bool {
    true
}

impl Header {
    pub(super) fn of(value: &Value) -> Header {
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
    pub(super) fn is_list(&self) -> bool {
        self.kind().is_some_and(|k| k.ends_with("List")) && self.items.is_some()
    }
}

pub(super) fn parse_value(value: &Value, origin: Origin, item: Option<usize>, out: &mut Parsed) {
    accept(
        &Header::of(value),
        Source::Value(value),
        origin,
        0,
        item,
        out,
    );
}

/// Checks one object's kind and decodes it, or records why it cannot be read.
pub(super) fn accept(
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
    let Some(kind) = kinds::lookup(api_version, kind_name) else {
        debug!(
            file = %origin.file.display(),
            document = origin.document,
            api_version,
            kind = kind_name,
            "skipping a kind meshd does not handle"
        );
        return;
    };
    let namespaced = kind.namespaced;
    let object_ref = ObjectRef {
        kind: kind_name.to_string(),
        namespace: namespaced.then(|| header.meta("namespace").unwrap_or("default").to_string()),
        name: header.meta("name").unwrap_or_default().to_string(),
    };
    match (kind.decode)(source) {
        Ok(mut object) => {
            if kind.namespaced {
                let meta = object.metadata_mut();
                if meta.namespace.as_deref().is_none_or(str::is_empty) {
                    meta.namespace = Some("default".to_string());
                }
            }
            out.objects.push(SourceObject {
                origin,
                object: Arc::new(object),
            });
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
