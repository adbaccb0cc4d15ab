//! Identity in Kubernetes (issue 7, item 4): leader election on a Lease (`lease`), the CA's
//! signing material persisted in Secrets as istiod keeps it (`ca_secret`), the root
//! certificate published in every namespace (`root_configmap`, leader only), and callers
//! authenticated with ServiceAccount tokens through TokenReview (`token_review`); a changed
//! `cacerts` Secret applied while meshd runs (`ca_reload`).

pub mod ca_link;
pub mod ca_reload;
pub mod ca_secret;
pub mod lease;
pub mod root_configmap;
pub mod runtime;
pub mod token_review;

/// True when `error` is an API status answer for which `check` holds.
fn api_error_is(error: &kube::Error, check: impl Fn(&kube::core::Status) -> bool) -> bool {
    matches!(error, kube::Error::Api(status) if check(status))
}
