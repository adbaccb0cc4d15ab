//! The one place that knows which YAML library meshd uses (serde-saphyr).

pub use serde_saphyr::Error as YamlError;

/// Parses one YAML document into `T`.
pub fn from_str<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    serde_saphyr::from_str_with_options(text, options())
}

/// The library's default budget stops at 250,000 nodes per document, which a `kind: List`
/// of a few thousand pods exceeds. Input files are the operator's own, so size limits are
/// raised; the limits on aliases (the "billion laughs" defence) and depth stay.
fn options() -> serde_saphyr::Options {
    // Both types are non-exhaustive: set fields on the defaults.
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = usize::MAX;
    budget.max_events = usize::MAX;
    budget.max_total_scalar_bytes = usize::MAX;
    budget.max_reader_input_bytes = None;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options
}

/// A failed typed parse: why, where (1-based line and column, relative to the text given)
/// and which field (`spec.ports[0].port`), where known.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeError {
    pub reason: String,
    pub location: Option<(usize, usize)>,
    pub field: Option<String>,
}

/// Parses one YAML document into `T`, reporting the field path of a type error.
pub fn from_str_with_path<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, DecodeError> {
    let mut field = None;
    let result = serde_saphyr::with_deserializer_from_str_with_options(text, options(), |de| {
        serde_path_to_error::deserialize::<_, T>(de).map_err(|e| {
            let path = e.path().to_string();
            if path != "." && !path.is_empty() {
                field = Some(path);
            }
            e.into_inner()
        })
    });
    result.map_err(|error| {
        let location = error_location(&error);
        let reason = match error.without_snippet() {
            // The library only says "invalid i64"; name what was expected and found.
            YamlError::InvalidScalar { ty, .. } => {
                let found = location.and_then(|(l, c)| scalar_at(text, l, c));
                match found {
                    Some(found) => format!("expected {}, found {found}", describe(ty)),
                    None => format!("expected {}", describe(ty)),
                }
            }
            _ => error_message(&error),
        };
        DecodeError {
            reason,
            location,
            field,
        }
    })
}

fn describe(ty: &str) -> &'static str {
    match ty {
        "bool" => "true or false",
        "f32" | "f64" => "a number",
        t if t.starts_with('i') || t.starts_with('u') => "an integer",
        _ => "a different value",
    }
}

/// The scalar starting at a 1-based line and column, up to the end of the line or a comment.
fn scalar_at(text: &str, line: usize, column: usize) -> Option<String> {
    let line = text.lines().nth(line.checked_sub(1)?)?;
    let rest: String = line.chars().skip(column.checked_sub(1)?).collect();
    let rest = rest.split(" #").next().unwrap_or_default().trim();
    (!rest.is_empty()).then(|| rest.to_string())
}

/// Line and column (1-based) of a parse error, where the library knows them.
pub fn error_location(error: &YamlError) -> Option<(usize, usize)> {
    error
        .location()
        .map(|l| (l.line() as usize, l.column() as usize))
        .filter(|&(line, _)| line > 0)
}

/// The error's message without the location and source snippet the library adds (callers
/// report the location themselves, relative to the whole file).
pub fn error_message(error: &YamlError) -> String {
    let text = error.without_snippet().to_string();
    // The library appends " at line L, column C"; strip it so the reason reads alone.
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// Renders a value as YAML.
pub fn to_string<T: serde::Serialize>(value: &T) -> Result<String, serde_saphyr::SerializeError> {
    serde_saphyr::to_string(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        spec: Inner,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        ports: Vec<Port>,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Port {
        port: u16,
    }

    #[test]
    fn type_errors_name_the_field_and_place() {
        let text = "spec:\n  ports:\n  - port: 80\n  - port: eighty\n";
        let err = from_str_with_path::<Outer>(text).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("spec.ports[1].port"));
        assert_eq!(err.location, Some((4, 11)));
        assert_eq!(err.reason, "expected an integer, found eighty");
    }

    #[test]
    fn syntax_errors_have_a_location() {
        let err = from_str::<serde_json::Value>("a: [b\nc: d\n").unwrap_err();
        assert!(error_location(&err).is_some());
        eprintln!("{:?} {}", error_location(&err), error_message(&err));
    }
}
