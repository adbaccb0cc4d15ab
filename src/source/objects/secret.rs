//! Wire shape of the core v1 Secret: its type and its values, base64 in `data` or plain in
//! `stringData`, as `kubectl get -o yaml` prints them. Values may hold private keys, so this
//! type's `Debug` names the keys and never the values.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use super::{null_as_default, ObjectMeta};

#[derive(Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Secret {
    pub metadata: ObjectMeta,
    /// `kubernetes.io/tls`, `Opaque` (generic), or another type meshd does not use.
    #[serde(rename = "type")]
    pub secret_type: Option<String>,
    /// Base64 values.
    #[serde(deserialize_with = "null_as_default")]
    pub data: BTreeMap<String, String>,
    /// Plain values; a key here wins over the same key in `data`, as in Kubernetes.
    #[serde(deserialize_with = "null_as_default")]
    pub string_data: BTreeMap<String, String>,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secret")
            .field("metadata", &self.metadata)
            .field("secret_type", &self.secret_type)
            .field("data_keys", &self.data.keys().collect::<Vec<_>>())
            .field(
                "string_data_keys",
                &self.string_data.keys().collect::<Vec<_>>(),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_names_keys_not_values() {
        let s = Secret {
            data: BTreeMap::from([("tls.key".to_string(), "c2VjcmV0LWtleQ==".to_string())]),
            string_data: BTreeMap::from([("ca.crt".to_string(), "plain-secret".to_string())]),
            ..Default::default()
        };
        let shown = format!("{s:?}");
        assert!(
            shown.contains("tls.key") && shown.contains("ca.crt"),
            "{shown}"
        );
        assert!(
            !shown.contains("c2VjcmV0") && !shown.contains("plain-secret"),
            "{shown}"
        );
    }
}
