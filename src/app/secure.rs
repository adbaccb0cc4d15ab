//! Wiring of the CA for `meshd serve`: the authority (from `--ca-dir` or in memory), the
//! token signer, the SDS issuer, and the TLS configuration of the secure xDS port; and the
//! `meshd token` command.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tracing::{info, warn};

use crate::ca::args::{CaArgs, SecureAddr, TokenArgs};
use crate::ca::certificate_service::CertificateService;
use crate::ca::serving::{ServingCert, SERVING_TTL};
use crate::ca::{Authority, Identity, SdsIssuer, SdsOptions, TokenSigner};
use crate::identity::ca_link::authority_from_secrets;
use crate::identity::ca_secret::CaOrigin;
use crate::identity::runtime::IdentityRuntime;
use crate::xds::CallerAuth;

/// What the secure port is served with.
pub struct SecurePort {
    pub listener: TcpListener,
    pub tls: Arc<tokio_rustls::rustls::ServerConfig>,
    pub auth: Arc<dyn CallerAuth>,
    /// Istio's CA API, served beside ADS.
    pub certificates: CertificateService,
    /// Kept alive: dropping it stops the renewal of the serving certificate.
    pub serving: Arc<ServingCert>,
    /// With `--kubernetes`: the leader election and root ConfigMap publishing.
    pub identity: Option<IdentityRuntime>,
}

/// The cluster, with `--kubernetes`: the CA, callers and root publishing live there.
pub struct KubeIdentity {
    pub client: kube::Client,
    pub root_namespace: String,
}

/// Binds the secure port (unless it is off) and loads or makes the CA.
pub async fn prepare(
    args: &CaArgs,
    kube: Option<KubeIdentity>,
) -> anyhow::Result<Option<SecurePort>> {
    let SecureAddr::On(addr) = args.secure_xds_addr else {
        info!("secure xds port off (--secure-xds-addr off): no workload secrets are served");
        return Ok(None);
    };
    let listener =
        crate::xds::listen(addr).with_context(|| format!("binding secure xds address {addr}"))?;
    let dir = args.ca_dir.clone();
    let (authority, signer) = tokio::task::spawn_blocking(move || match &dir {
        Some(dir) => Ok::<_, crate::ca::CaError>((
            Authority::load_or_create(dir)?,
            TokenSigner::load_or_create(dir)?,
        )),
        None => Ok((Authority::in_memory()?, TokenSigner::in_memory()?)),
    })
    .await?
    .context("loading the certificate authority")?;
    // With a cluster and no --ca-dir the root lives in the root namespace's Secrets.
    let (authority, origin) = match (&kube, &args.ca_dir) {
        (Some(kube), None) => {
            let (authority, origin) =
                authority_from_secrets(kube.client.clone(), &kube.root_namespace).await?;
            (authority, Some(origin))
        }
        _ => (authority, None),
    };
    if args.ca_dir.is_none() && kube.is_none() {
        warn!(
            "no --ca-dir: the root CA and the token key live in memory only; a restart \
             changes the root, so every proxy must be re-bootstrapped with the new one"
        );
    }
    info!(ca = %authority.origin, trust_domain = %args.trust_domain, "certificate authority ready");
    let authority = match &kube {
        // A plug-in CA from Secret `cacerts` is reloaded from there (istiod needs it mounted).
        Some(kube) if origin == Some(CaOrigin::PlugIn) => {
            let (live, tx) = crate::ca::LiveAuthority::new(Arc::new(authority));
            tokio::spawn(crate::identity::ca_reload::run(
                kube.client.clone(),
                kube.root_namespace.clone(),
                args.ca_reload_interval,
                tx,
            ));
            live
        }
        _ => crate::ca::reload::live(Arc::new(authority), args),
    };
    let serving = ServingCert::start(authority.clone(), args.server_names.clone(), SERVING_TTL)
        .context("issuing meshd's serving certificate")?;
    let tls = serving.server_config()?;
    let signer = Arc::new(signer);
    let (authenticator, identity) = match kube {
        Some(kube) => (
            crate::identity::ca_link::authenticator(kube.client.clone(), signer),
            Some(IdentityRuntime::start(
                kube.client,
                &kube.root_namespace,
                authority.current().trust_bundle().to_string(),
            )),
        ),
        None => (signer as Arc<dyn crate::ca::Authenticator>, None),
    };
    if let Some(identity) = &identity {
        identity.follow_bundle(authority.clone());
    }
    let certificates = CertificateService::new(
        authority.clone(),
        authenticator.clone(),
        args.trust_domain.clone(),
        args.workload_cert_ttl,
    );
    let issuer = SdsIssuer::new(
        authority,
        authenticator,
        SdsOptions {
            trust_domain: args.trust_domain.clone(),
            workload_cert_ttl: args.workload_cert_ttl,
            reissue_window: args.ca_reissue_window,
        },
    );
    Ok(Some(SecurePort {
        listener,
        tls,
        auth: Arc::new(issuer),
        certificates,
        serving,
        identity,
    }))
}

/// `meshd token`: prints a token for a service account, signed with the CA directory's
/// token key.
pub fn token(args: &TokenArgs) -> anyhow::Result<ExitCode> {
    let signer = TokenSigner::load_or_create(&args.ca_dir)?;
    let identity = Identity {
        namespace: args.namespace.clone(),
        service_account: args.service_account.clone(),
    };
    for (flag, value) in [
        ("--namespace", &identity.namespace),
        ("--service-account", &identity.service_account),
    ] {
        if !crate::mesh::build::names::is_dns_label(value) && !value.contains('.') {
            anyhow::bail!("{flag} {value:?} is not a Kubernetes name");
        }
    }
    // No final newline: `meshd token > FILE` makes a file Envoy can send as it is.
    print!("{}", signer.mint(&identity, args.ttl)?);
    Ok(ExitCode::SUCCESS)
}
