//! The one-shot commands: `bootstrap`, `translate`, `validate`. They run the same pipeline
//! as `serve`, once, without the network.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use crate::cli::{BootstrapArgs, OutputType, TranslateArgs, ValidateArgs};
use crate::envoy::json::resources_to_json;
use crate::envoy::type_url;
use crate::mesh::build::build_model;
use crate::mesh::ProxyId;
use crate::source::file::load_dir;
use crate::translate::bootstrap::{render_bootstrap, BootstrapOptions, SecureXds};
use crate::translate::Translator;

pub fn bootstrap(args: &BootstrapArgs) -> anyhow::Result<ExitCode> {
    let options = BootstrapOptions {
        node_id: args.node_id.clone(),
        xds_address: args.xds_address.clone(),
        delta: args.delta,
        admin_port: args.admin_port,
        labels: args.labels.iter().cloned().collect(),
        service_account: args.service_account.clone(),
        workload_name: args.workload_name.clone(),
        cluster_id: args.cluster_id.clone(),
        secure: secure_xds(args)?,
    };
    let bootstrap = render_bootstrap(&options).context("building the bootstrap")?;
    print!(
        "{}",
        crate::yaml::to_string(&bootstrap).context("rendering the bootstrap as yaml")?
    );
    Ok(ExitCode::SUCCESS)
}

/// With `--root-cert` and `--token-file`: the secure connection to meshd, the token read now.
fn secure_xds(args: &BootstrapArgs) -> anyhow::Result<Option<SecureXds>> {
    let (Some(root), Some(token_file)) = (&args.root_cert, &args.token_file) else {
        return Ok(None);
    };
    let root =
        std::path::absolute(root).with_context(|| format!("--root-cert {}", root.display()))?;
    let pem = std::fs::read_to_string(&root)
        .with_context(|| format!("--root-cert {}", root.display()))?;
    if crate::ca::certs_in(&pem).is_empty() {
        anyhow::bail!("--root-cert {}: holds no PEM certificate", root.display());
    }
    let token_file = std::path::absolute(token_file)
        .with_context(|| format!("--token-file {}", token_file.display()))?;
    let token = std::fs::read_to_string(&token_file)
        .with_context(|| format!("--token-file {}", token_file.display()))?;
    let raw_len = token.len();
    let token = token.trim().to_string();
    // Envoy's file-based credentials send the file as it is: a final newline is not a
    // valid header value and fails every stream (gRPC status INTERNAL).
    if args.watch_token_file && token.len() != raw_len {
        anyhow::bail!(
            "--token-file {}: remove the whitespace around the token (Envoy sends the file \
             as it is, and a newline makes every stream fail)",
            token_file.display()
        );
    }
    if token.is_empty() || token.contains(char::is_whitespace) {
        anyhow::bail!(
            "--token-file {}: expected one token on one line",
            token_file.display()
        );
    }
    Ok(Some(SecureXds {
        root_cert: root,
        token,
        server_name: args.xds_server_name.clone(),
        watch_token_file: args.watch_token_file.then_some(token_file),
    }))
}

pub fn translate(args: &TranslateArgs) -> anyhow::Result<ExitCode> {
    let mut proxy = ProxyId::parse(&args.node_id)?;
    for (k, v) in &args.labels {
        proxy.metadata.insert(
            format!("{}.{k}", crate::translate::node::LABELS_KEY),
            v.clone(),
        );
    }
    let input = load_dir(&args.config_dir)?;
    let built = build_model(&input);
    for problem in built.all_problems(&input) {
        eprintln!("warning: {problem}");
    }
    let options = crate::config::check_mesh(&args.mesh)?.translate_options(false);
    let translator = Translator::with_options(Arc::new(built.model), Arc::new(options));
    proxy.identity = args.identity.clone();
    for problem in translator.identity_problems(&proxy) {
        eprintln!("warning: {problem}");
    }
    let resources = translator.proxy_resources(&proxy);
    let type_urls: &[&str] = match args.output_type {
        OutputType::Clusters => &[type_url::CLUSTER],
        OutputType::Endpoints => &[type_url::ENDPOINT],
        OutputType::Listeners => &[type_url::LISTENER],
        OutputType::Routes => &[type_url::ROUTE],
        OutputType::All => &[
            type_url::CLUSTER,
            type_url::ENDPOINT,
            type_url::LISTENER,
            type_url::ROUTE,
        ],
    };
    let out = resources_to_json(&resources, type_urls)?;
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::Value::Object(out))?
    );
    Ok(ExitCode::SUCCESS)
}

pub fn validate(args: &ValidateArgs) -> anyhow::Result<ExitCode> {
    let input = load_dir(&args.dir)?;
    let built = build_model(&input);
    let mut problems: Vec<_> = built.all_problems(&input).collect();
    problems.sort();
    problems.dedup();
    for problem in &problems {
        println!("{problem}");
    }
    if problems.is_empty() {
        println!(
            "{}: {} objects, no problems",
            args.dir.display(),
            input.objects.len()
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{} problem(s)", problems.len());
        Ok(ExitCode::FAILURE)
    }
}
