//! PeerAuthentication checks, as Istio's validation makes them: modes are Istio's four,
//! `portLevelMtls` needs a selector and names ports in 1-65535.

use super::invalid;
use super::istio_fields::Checked;
use super::names::object_key;
use crate::mesh::peer_authentication::{MtlsMode, PeerAuthentication};
use crate::source::objects::{networking::IstioObject, PeerAuthenticationSpec, PeerMtls};

fn mode(mtls: Option<&PeerMtls>, field: &str) -> Checked<MtlsMode> {
    match mtls.and_then(|m| m.mode.as_deref()) {
        None | Some("UNSET") => Ok(MtlsMode::Unset),
        Some("DISABLE") => Ok(MtlsMode::Disable),
        Some("PERMISSIVE") => Ok(MtlsMode::Permissive),
        Some("STRICT") => Ok(MtlsMode::Strict),
        Some(other) => Err(invalid(
            format!("{field}.mode"),
            format!("{other:?} is not one of UNSET, DISABLE, PERMISSIVE, STRICT"),
        )),
    }
}

pub fn check(p: &IstioObject<PeerAuthenticationSpec>) -> Checked<PeerAuthentication> {
    let key = object_key(&p.metadata, false)?;
    let spec = &p.spec;
    let selector = spec
        .selector
        .as_ref()
        .map(|s| s.match_labels.clone())
        .filter(|labels| !labels.is_empty());
    if selector.is_none() && !spec.port_level_mtls.is_empty() {
        return Err(invalid(
            "spec.portLevelMtls",
            "portLevelMtls requires a selector with matchLabels",
        ));
    }
    let mut port_level = std::collections::BTreeMap::new();
    for (port, mtls) in &spec.port_level_mtls {
        let field = format!("spec.portLevelMtls[{}]", port.0);
        let number = port
            .0
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| invalid(&field, format!("{:?} is not a port in 1-65535", port.0)))?;
        port_level.insert(number, mode(Some(mtls), &field)?);
    }
    Ok(PeerAuthentication {
        key,
        selector,
        mode: mode(spec.mtls.as_ref(), "spec.mtls")?,
        port_level,
        created: p.metadata.creation_timestamp.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::build::istio_test_support::istio;

    fn checked(spec: &str) -> Checked<PeerAuthentication> {
        check(&istio("p", "shop", spec))
    }

    #[test]
    fn modes_selector_and_ports() {
        let p = checked(
            "selector: {matchLabels: {app: web}}\nmtls: {mode: STRICT}\nportLevelMtls:\n  8080: {mode: DISABLE}\n  \"9090\": {}\n",
        )
        .unwrap();
        assert_eq!(p.mode, MtlsMode::Strict);
        assert_eq!(p.selector.unwrap()["app"], "web");
        assert_eq!(
            p.port_level.into_iter().collect::<Vec<_>>(),
            [(8080, MtlsMode::Disable), (9090, MtlsMode::Unset)]
        );
        let empty = checked("{}").unwrap();
        assert_eq!(empty.mode, MtlsMode::Unset);
        assert!(empty.selector.is_none());
    }

    #[test]
    fn bad_objects_name_the_field() {
        for (spec, field, reason) in [
            ("mtls: {mode: SOMETIMES}", "spec.mtls.mode", "is not one of"),
            (
                "portLevelMtls: {8080: {mode: STRICT}}",
                "spec.portLevelMtls",
                "requires a selector",
            ),
            (
                "selector: {matchLabels: {app: web}}\nportLevelMtls: {0: {mode: STRICT}}",
                "spec.portLevelMtls[0]",
                "1-65535",
            ),
            (
                "selector: {matchLabels: {app: web}}\nportLevelMtls: {80: {mode: strict}}",
                "spec.portLevelMtls[80].mode",
                "is not one of",
            ),
        ] {
            let e = checked(spec).unwrap_err();
            assert_eq!(e.field, field, "{spec}");
            assert!(e.reason.contains(reason), "{spec}: {}", e.reason);
        }
    }
}
