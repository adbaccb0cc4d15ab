//! Istio's mesh config as meshd reads it: the `mesh` key of ConfigMap `istio` in istiod's
//! namespace (YAML of `MeshConfig`). Of its fields meshd reads those that map onto its
//! options: `outboundTrafficPolicy.mode`, `rootNamespace` and `enableAutoMtls`. The rest (`trustDomain`,
//! `defaultConfig`, ...) is ignored for now.
//!
//! The flags (`--outbound-traffic-policy`, `--root-namespace`, `--auto-mtls`) give the defaults; a field the
//! ConfigMap sets overrides its flag. istiod has no such flags: its built-in defaults are
//! overlaid by the mesh config, and so are meshd's.

use serde::Deserialize;

use crate::mesh::traffic::OutboundPolicy;
use crate::translate::scope::TranslateOptions;

/// The ConfigMap's name and the key that holds the mesh config.
pub const CONFIG_MAP: &str = "istio";
pub const MESH_KEY: &str = "mesh";

/// The fields of the mesh config meshd reads, each `None` when the ConfigMap leaves it out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MeshConfig {
    pub outbound_traffic_policy: Option<OutboundPolicy>,
    pub root_namespace: Option<String>,
    pub enable_auto_mtls: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Wire {
    outbound_traffic_policy: Option<WirePolicy>,
    root_namespace: Option<String>,
    enable_auto_mtls: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WirePolicy {
    mode: Option<String>,
}

/// Why a mesh config was refused: the field (under the `mesh` key) and the reason.
#[derive(Debug, Clone, PartialEq)]
pub struct MeshConfigError {
    pub field: Option<String>,
    pub reason: String,
}

impl MeshConfig {
    /// Parses the YAML text of the `mesh` key.
    pub fn parse(text: &str) -> Result<MeshConfig, MeshConfigError> {
        let wire: Wire = if text.trim().is_empty() {
            Wire::default()
        } else {
            crate::yaml::from_str_with_path(text).map_err(|e| MeshConfigError {
                field: e.field,
                reason: e.reason,
            })?
        };
        let invalid = |field: &str, reason: String| MeshConfigError {
            field: Some(field.to_string()),
            reason,
        };
        let outbound_traffic_policy = match wire.outbound_traffic_policy.and_then(|p| p.mode) {
            None => None,
            Some(mode) => Some(match mode.as_str() {
                "ALLOW_ANY" => OutboundPolicy::AllowAny,
                "REGISTRY_ONLY" => OutboundPolicy::RegistryOnly,
                other => {
                    return Err(invalid(
                        "outboundTrafficPolicy.mode",
                        format!("{other:?} is not ALLOW_ANY or REGISTRY_ONLY"),
                    ))
                }
            }),
        };
        if let Some(namespace) = &wire.root_namespace {
            if !crate::mesh::build::names::is_dns_label(namespace) {
                return Err(invalid(
                    "rootNamespace",
                    format!("{namespace:?} is not a namespace name (a DNS label)"),
                ));
            }
        }
        Ok(MeshConfig {
            outbound_traffic_policy,
            root_namespace: wire.root_namespace,
            enable_auto_mtls: wire.enable_auto_mtls,
        })
    }

    /// `flags` with the fields this config sets overriding theirs.
    pub fn overlay(&self, flags: &TranslateOptions) -> TranslateOptions {
        TranslateOptions {
            root_namespace: self
                .root_namespace
                .clone()
                .unwrap_or_else(|| flags.root_namespace.clone()),
            outbound_traffic_policy: self
                .outbound_traffic_policy
                .clone()
                .unwrap_or_else(|| flags.outbound_traffic_policy.clone()),
            auto_mtls: self.enable_auto_mtls.unwrap_or(flags.auto_mtls),
            ..flags.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_fields_meshd_maps_and_ignores_the_rest() {
        let config = MeshConfig::parse(
            "outboundTrafficPolicy:\n  mode: REGISTRY_ONLY\nrootNamespace: mesh-root\n\
             trustDomain: cluster.local\ndefaultConfig:\n  discoveryAddress: istiod:15012\n\
             enableAutoMtls: false\n",
        )
        .unwrap();
        assert_eq!(
            config,
            MeshConfig {
                outbound_traffic_policy: Some(OutboundPolicy::RegistryOnly),
                root_namespace: Some("mesh-root".into()),
                enable_auto_mtls: Some(false),
            }
        );
        assert!(!config.overlay(&TranslateOptions::default()).auto_mtls);
        assert_eq!(MeshConfig::parse("").unwrap(), MeshConfig::default());
    }

    #[test]
    fn the_configmap_overrides_the_flags_only_where_it_says_something() {
        let flags = TranslateOptions {
            root_namespace: "flag-root".into(),
            outbound_traffic_policy: OutboundPolicy::AllowAny,
            serve_gateway_secrets: true,
            ..Default::default()
        };
        assert_eq!(MeshConfig::default().overlay(&flags), flags);
        let registry_only = MeshConfig {
            outbound_traffic_policy: Some(OutboundPolicy::RegistryOnly),
            root_namespace: None,
            enable_auto_mtls: None,
        };
        let options = registry_only.overlay(&flags);
        assert_eq!(
            options.outbound_traffic_policy,
            OutboundPolicy::RegistryOnly
        );
        assert_eq!(options.root_namespace, "flag-root");
        assert!(options.serve_gateway_secrets);
    }

    #[test]
    fn a_bad_field_is_named() {
        let error = MeshConfig::parse("outboundTrafficPolicy:\n  mode: SOMETIMES\n").unwrap_err();
        assert_eq!(error.field.as_deref(), Some("outboundTrafficPolicy.mode"));
        assert!(error.reason.contains("SOMETIMES"), "{error:?}");
        let error = MeshConfig::parse("rootNamespace: [a]\n").unwrap_err();
        assert_eq!(error.field.as_deref(), Some("rootNamespace"), "{error:?}");
        assert!(MeshConfig::parse("rootNamespace: Not_A_Label\n").is_err());
    }
}
