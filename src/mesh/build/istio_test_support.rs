//! Fixtures shared by the tests of the Istio kinds' checks.

use serde::de::DeserializeOwned;

use super::Invalid;
use crate::source::objects::networking::IstioObject;
use crate::source::objects::ObjectMeta;

/// An Istio object `namespace/name` whose spec is the given YAML.
pub fn istio<S: DeserializeOwned>(name: &str, namespace: &str, yaml_spec: &str) -> IstioObject<S> {
    IstioObject {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            ..Default::default()
        },
        spec: crate::yaml::from_str_with_path(yaml_spec).expect("test spec decodes"),
    }
}

/// Each `(spec, field, reason)` is refused by `check` naming that field, with a reason
/// containing that text.
pub fn assert_rejects<T: std::fmt::Debug>(
    cases: &[(&str, &str, &str)],
    check: impl Fn(&str) -> Result<T, Invalid>,
) {
    for (spec, field, reason) in cases {
        let e = check(spec).expect_err(spec);
        assert_eq!(e.field, *field, "{spec}");
        assert!(e.reason.contains(reason), "{spec}: {}", e.reason);
    }
}
