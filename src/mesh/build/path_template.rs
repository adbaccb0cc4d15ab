//! Istio's path templates in AuthorizationPolicy `paths` / `notPaths`: `{*}` matches one
//! path segment, `{**}` any number of them (and must be the last operator), every other
//! segment of a templated path a literal of RFC 3986 `pchar`s. Istio's rules, plus what
//! Envoy's `envoy.path.match.uri_template` demands and istiod leaves to Envoy to refuse (a
//! leading `/`, at most 256 characters), since a template Envoy refuses would make it
//! reject the whole listener, not just this policy.

/// Istio's operators, and Envoy's spelling of them.
const MATCH_ONE: &str = "{*}";
const MATCH_ANY: &str = "{**}";

/// Envoy's bound on `path_template`.
const MAX_LEN: usize = 256;

/// Whether `path` uses Istio's template syntax (then it is matched as a template).
pub fn is_template(path: &str) -> bool {
    path.contains(MATCH_ONE) || path.contains(MATCH_ANY)
}

/// Envoy's `path_template` for an Istio template: `{*}` -> `*`, `{**}` -> `**`.
pub fn to_envoy(path: &str) -> String {
    path.replace(MATCH_ANY, "**").replace(MATCH_ONE, "*")
}

/// An RFC 3986 `pchar`, unencoded, as Istio's `validLiteral` allows them.
fn literal_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~%!$&'()+,;:@=".contains(c)
}

/// Checks a `paths` value: braces only in `{*}` / `{**}` segments, and for a template the
/// rules above. A path without braces is left to the `*` rules of plain paths.
pub fn check(path: &str) -> Result<(), String> {
    let template = is_template(path);
    let mut seen_any = false;
    for segment in path.trim_matches('/').split('/') {
        match segment {
            MATCH_ONE | MATCH_ANY if seen_any => {
                return Err(format!(
                    "{path:?}: {{**}} must be the last operator of a path template"
                ))
            }
            MATCH_ONE => continue,
            MATCH_ANY => {
                seen_any = true;
                continue;
            }
            _ => {}
        }
        if segment.contains(['{', '}']) {
            return Err(format!(
                "{path:?}: `{{` and `}}` are allowed only as whole segments {{*}} or {{**}}"
            ));
        }
        if template && (segment.is_empty() || !segment.chars().all(literal_char)) {
            return Err(format!(
                "{path:?}: segment {segment:?} of a path template must be a non-empty literal \
                 of letters, digits and -._~%!$&'()+,;:@="
            ));
        }
    }
    if template && !path.starts_with('/') {
        return Err(format!("{path:?}: a path template must start with `/`"));
    }
    if template && path.len() > MAX_LEN {
        return Err(format!(
            "{path:?}: a path template is at most {MAX_LEN} characters"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_istio_operators_to_envoy_ones() {
        assert!(is_template("/a/{*}/b"));
        assert!(is_template("/{**}"));
        assert!(!is_template("/a/*"));
        assert_eq!(to_envoy("/path/template/{*}"), "/path/template/*");
        assert_eq!(to_envoy("/{**}/path/template"), "/**/path/template");
        assert_eq!(to_envoy("/a/{*}/{*}/c/{**}"), "/a/*/*/c/**");
        assert_eq!(to_envoy("/plain"), "/plain");
    }

    #[test]
    fn accepts_istio_templates() {
        for p in [
            "/path/template/{*}",
            "/{**}/path/template",
            "/a/{*}/b/{**}",
            "/{*}/{*}",
            "/v1/{*}/items:get",
            "/{**}",
            "/a/b/",
            "/exact",
            "/prefix/*",
        ] {
            assert_eq!(check(p), Ok(()), "{p}");
        }
    }

    #[test]
    fn refuses_bad_templates_with_the_reason() {
        let cases = [
            ("/{**}/{*}", "last operator"),
            ("/{**}/a/{**}", "last operator"),
            ("/a{*}", "whole segments"),
            ("/{name}", "whole segments"),
            ("/a}", "whole segments"),
            ("/a/*/{*}", "literal"),
            ("/a//{*}", "literal"),
            ("/a b/{*}", "literal"),
            ("{*}/a", "start with `/`"),
        ];
        for (p, reason) in cases {
            let e = check(p).unwrap_err();
            assert!(e.contains(reason), "{p}: {e}");
        }
        let long = format!("/{}/{{*}}", "a".repeat(MAX_LEN));
        assert!(check(&long).unwrap_err().contains("at most"));
    }
}
