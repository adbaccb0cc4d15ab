//! Which kinds meshd reads and how one object is decoded: a lenient header read (kind,
//! name, whether it is a `List`), then the typed decode, with problems for what cannot be
//! read.

use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::Arc;
use tracing::debug;

use super::json::json_error;
use super::{at, Parsed};
use crate::problem::{ObjectRef, Origin, Problem};
use crate::source::objects::KubeObject;
use crate::source::SourceObject;
use crate::yaml::DecodeError;

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
pub(super) enum Source<'a> {
    Yaml(&'a str),
    Json(&'a str),
    Value(&'a Value),
}

pub(super) fn decode<T: DeserializeOwned>(source: Source<'_>) -> Result<T, DecodeError> {
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
