//! Routes answered by the proxy itself: `redirect` and `directResponse`.

use envoy_types::pb::envoy::config::core::v3::{data_source, DataSource};
use envoy_types::pb::envoy::config::route::v3::{
    redirect_action::{PathRewriteSpecifier, RedirectResponseCode, SchemeRewriteSpecifier},
    DirectResponseAction, RedirectAction,
};

use crate::mesh::traffic::{Redirect, RedirectPort};

/// A redirect on a route served on `port` (sidecar routes are plain HTTP). Istio's
/// `FROM_REQUEST_PORT` is that port, since routes are built per port; the default port of
/// the scheme is left out of the location.
pub(super) fn redirect_action(r: &Redirect, port: u16) -> RedirectAction {
    let mut out = RedirectAction {
        host_redirect: r.authority.clone().unwrap_or_default(),
        path_rewrite_specifier: r.uri.clone().map(PathRewriteSpecifier::PathRedirect),
        scheme_rewrite_specifier: r.scheme.clone().map(SchemeRewriteSpecifier::SchemeRedirect),
        response_code: match r.code {
            302 => RedirectResponseCode::Found,
            303 => RedirectResponseCode::SeeOther,
            307 => RedirectResponseCode::TemporaryRedirect,
            308 => RedirectResponseCode::PermanentRedirect,
            _ => RedirectResponseCode::MovedPermanently,
        } as i32,
        ..Default::default()
    };
    if let Some(p) = &r.port {
        out.port_redirect = match p {
            RedirectPort::Number(n) => u32::from(*n),
            RedirectPort::FromRequestPort => u32::from(port),
            RedirectPort::FromProtocolDefault => 0,
        };
        let scheme = r.scheme.as_deref().unwrap_or("http");
        if (out.port_redirect == 80 && scheme == "http")
            || (out.port_redirect == 443 && scheme == "https")
        {
            out.port_redirect = 0;
        }
    }
    out
}

pub(super) fn direct_response(status: u16, body: Option<&str>) -> DirectResponseAction {
    DirectResponseAction {
        status: u32::from(status),
        body: body.map(|b| DataSource {
            specifier: Some(data_source::Specifier::InlineString(b.to_string())),
            ..Default::default()
        }),
        ..Default::default()
    }
}
