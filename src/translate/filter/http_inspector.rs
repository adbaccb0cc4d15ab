//! `envoy.filters.listener.http_inspector`: reads the first bytes of a plaintext connection
//! and, when they are HTTP/1.x or the HTTP/2 preface, sets the connection's application
//! protocol (`http/1.0`, `http/1.1`, `h2c`), so that filter chains can send HTTP to the
//! connection manager and everything else to tcp_proxy (protocol sniffing).

use envoy_types::pb::envoy::config::listener::v3::{
    listener_filter, listener_filter_chain_match_predicate::MatchSet,
    listener_filter_chain_match_predicate::Rule, ListenerFilter, ListenerFilterChainMatchPredicate,
};
use envoy_types::pb::envoy::extensions::filters::listener::http_inspector::v3::HttpInspector;
use envoy_types::pb::envoy::r#type::v3::Int32Range;

pub const NAME: &str = "envoy.filters.listener.http_inspector";

/// Application protocols the inspector sets for plaintext HTTP that sniffed chains match
/// (istiod's list without HTTP/1.0, which it matches only when told to accept it: Envoy
/// would refuse HTTP/1.0 requests, while unmatched they still pass as TCP).
pub const PLAINTEXT_HTTP_ALPNS: [&str; 2] = ["http/1.1", "h2c"];

/// The inspector on every connection of the listener.
pub fn http_inspector_filter() -> ListenerFilter {
    ListenerFilter {
        name: NAME.to_string(),
        config_type: Some(listener_filter::ConfigType::TypedConfig(super::any(
            &HttpInspector::default(),
        ))),
        ..Default::default()
    }
}

/// The inspector only on connections to `ports` (original destination ports, as restored by
/// `original_dst` before it), so that server-first protocols on any other port are not held
/// waiting for a client byte that never comes. `ports` must not be empty.
pub fn http_inspector_filter_on_ports(ports: &[u16]) -> ListenerFilter {
    ListenerFilter {
        filter_disabled: Some(disabled_but_on(ports)),
        ..http_inspector_filter()
    }
}

/// A `filter_disabled` predicate that leaves a listener filter on for `ports` only.
pub fn disabled_but_on(ports: &[u16]) -> ListenerFilterChainMatchPredicate {
    not(any_port(ports))
}

fn port_rule(port: u16) -> ListenerFilterChainMatchPredicate {
    ListenerFilterChainMatchPredicate {
        rule: Some(Rule::DestinationPortRange(Int32Range {
            start: i32::from(port),
            // The range's end is exclusive.
            end: i32::from(port) + 1,
        })),
    }
}

fn any_port(ports: &[u16]) -> ListenerFilterChainMatchPredicate {
    match ports {
        [one] => port_rule(*one),
        _ => ListenerFilterChainMatchPredicate {
            rule: Some(Rule::OrMatch(MatchSet {
                rules: ports.iter().map(|p| port_rule(*p)).collect(),
            })),
        },
    }
}

fn not(p: ListenerFilterChainMatchPredicate) -> ListenerFilterChainMatchPredicate {
    ListenerFilterChainMatchPredicate {
        rule: Some(Rule::NotMatch(Box::new(p))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_everywhere_but_the_given_ports() {
        let one = http_inspector_filter_on_ports(&[8080]);
        let Some(Rule::NotMatch(inner)) = one.filter_disabled.unwrap().rule else {
            panic!("expected a negation");
        };
        assert_eq!(
            inner.rule,
            Some(Rule::DestinationPortRange(Int32Range {
                start: 8080,
                end: 8081
            }))
        );
        let two = http_inspector_filter_on_ports(&[8080, 9000]);
        let Some(Rule::NotMatch(inner)) = two.filter_disabled.unwrap().rule else {
            panic!("expected a negation");
        };
        let Some(Rule::OrMatch(set)) = inner.rule else {
            panic!("expected an OR of ports");
        };
        assert_eq!(set.rules.len(), 2);
        assert!(http_inspector_filter().filter_disabled.is_none());
    }
}
