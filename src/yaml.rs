//! The one place that knows which YAML library meshd uses (serde-saphyr).

pub use serde_saphyr::Error as YamlError;

/// Parses one YAML document into `T`.
pub fn from_str<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    serde_saphyr::from_str(text)
}

/// Line and column (1-based) of a parse error, where the library knows them.
pub fn error_location(error: &YamlError) -> Option<(usize, usize)> {
    error
        .location()
        .map(|l| (l.line() as usize, l.column() as usize))
}

/// Renders a value as YAML.
pub fn to_string<T: serde::Serialize>(value: &T) -> Result<String, serde_saphyr::SerializeError> {
    serde_saphyr::to_string(value)
}
