//! Wire shape of the core v1 Secret: its type and its values, base64 in `data` or plain in
//! `stringData`, as `kubectl get -o yaml` prints them. Values may hold private keys, so this
//! type's `Debug` names the keys and never the values.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use super::ObjectMeta;

#[derive(Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Secret {
    pub metadata: ObjectMeta,
    /// `kubernetes.io/tls`, `Opaque` (generic), or another type meshd does not use.
    #[serde(rename = "type")]
    pub secret_type: Option<String>,
    /// Base64 values.
    #[serde(deserialize_with = "secret_values")]
    pub data: BTreeMap<String, String>,
    /// Plain values; a key here wins over the same key in `data`, as in Kubernetes.
    #[serde(deserialize_with = "secret_values")]
    pub string_data: BTreeMap<String, String>,
}

/// A map of key to string whose type errors never quote a value (serde's own messages
/// would, and the value may be a private key); `null` is an empty map.
fn secret_values<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    struct Values;
    struct Value;
    fn refuse<E: de::Error, T>(what: &str) -> Result<T, E> {
        Err(E::custom(format!("{what} (values not shown)")))
    }
    impl<'de> Visitor<'de> for Value {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
            Ok(v)
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<String, E> {
            refuse("expected a string, found a boolean")
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<String, E> {
            refuse("expected a string, found a number")
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<String, E> {
            refuse("expected a string, found a number")
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<String, E> {
            refuse("expected a string, found a number")
        }
        fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<String, A::Error> {
            refuse("expected a string, found a map")
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<String, A::Error> {
            refuse("expected a string, found a list")
        }
    }
    impl<'de> Deserialize<'de> for StringValue {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(Value).map(StringValue)
        }
    }
    struct StringValue(String);
    impl<'de> Visitor<'de> for Values {
        type Value = BTreeMap<String, String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a map of key to string")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(BTreeMap::new())
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(BTreeMap::new())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((k, StringValue(v))) = map.next_entry::<String, StringValue>()? {
                out.insert(k, v);
            }
            Ok(out)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            refuse("expected a map of key to string, found a string")
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            refuse("expected a map of key to string, found a boolean")
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            refuse("expected a map of key to string, found a number")
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            refuse("expected a map of key to string, found a number")
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            refuse("expected a map of key to string, found a number")
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
            refuse("expected a map of key to string, found a list")
        }
    }
    d.deserialize_any(Values)
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
    fn type_errors_do_not_quote_values() {
        for yaml in [
            "data: '-----BEGIN PRIVATE KEY----- c2VjcmV0'\n",
            "data:\n  tls.key: [c2VjcmV0]\n",
            "stringData:\n  tls.key: {inner: c2VjcmV0}\n",
        ] {
            let e = crate::yaml::from_str_with_path::<Secret>(yaml)
                .expect_err(yaml)
                .reason;
            assert!(e.contains("values not shown"), "{e}");
            assert!(!e.contains("c2VjcmV0"), "{e}");
        }
        let ok: Secret =
            crate::yaml::from_str_with_path("data: null\nstringData:\n  a: b\n").unwrap();
        assert!(ok.data.is_empty());
        assert_eq!(ok.string_data["a"], "b");
    }

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
