//! Compiles a protobuf descriptor set for the Envoy types meshd emits, so resources can be
//! printed in Envoy's proto3 JSON form (`meshd translate`, golden files) through prost-reflect.
//! The .proto sources are the ones the envoy-types crate ships; nothing is vendored here.

use std::path::{Path, PathBuf};

/// Every message that can appear as a top-level resource or inside an `Any` we emit.
const ROOTS: &[&str] = &[
    "envoy/config/bootstrap/v3/bootstrap.proto",
    "envoy/config/grpc_credential/v3/file_based_metadata.proto",
    "envoy/config/cluster/v3/cluster.proto",
    "envoy/config/endpoint/v3/endpoint.proto",
    "envoy/config/listener/v3/listener.proto",
    "envoy/config/route/v3/route.proto",
    "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto",
    "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto",
    "envoy/extensions/filters/network/rbac/v3/rbac.proto",
    "envoy/extensions/filters/http/router/v3/router.proto",
    "envoy/extensions/filters/http/fault/v3/fault.proto",
    "envoy/extensions/filters/http/cors/v3/cors.proto",
    "envoy/extensions/filters/http/grpc_stats/v3/config.proto",
    "envoy/extensions/request_id/uuid/v3/uuid.proto",
    "envoy/extensions/filters/http/rbac/v3/rbac.proto",
    "envoy/extensions/filters/http/jwt_authn/v3/config.proto",
    "envoy/extensions/filters/listener/original_dst/v3/original_dst.proto",
    "envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto",
    "envoy/extensions/filters/listener/http_inspector/v3/http_inspector.proto",
    "envoy/extensions/transport_sockets/tls/v3/tls.proto",
    "envoy/extensions/transport_sockets/raw_buffer/v3/raw_buffer.proto",
    "envoy/extensions/upstreams/http/v3/http_protocol_options.proto",
    "envoy/extensions/upstreams/tcp/v3/tcp_protocol_options.proto",
    "envoy/extensions/retry/host/previous_hosts/v3/previous_hosts.proto",
    "envoy/extensions/retry/priority/previous_priorities/v3/previous_priorities_config.proto",
    "envoy/extensions/access_loggers/stream/v3/stream.proto",
    "envoy/extensions/access_loggers/file/v3/file.proto",
    "envoy/service/discovery/v3/discovery.proto",
    "envoy/extensions/resource_monitors/downstream_connections/v3/downstream_connections.proto",
    "envoy/extensions/network/dns_resolver/cares/v3/cares_dns_resolver.proto",
    "envoy/extensions/path/match/uri_template/v3/uri_template_match.proto",
];

/// Folders inside the envoy-types crate that hold the proto sources and their imports.
const INCLUDES: &[&str] = &[
    "data-plane-api",
    "xds",
    "protoc-gen-validate",
    "googleapis",
    "cel-spec/proto",
    "opentelemetry-proto",
    "client_model",
];

fn main() {
    let proto_root = envoy_types_proto_dir();
    let includes: Vec<PathBuf> = INCLUDES.iter().map(|d| proto_root.join(d)).collect();
    let descriptors = protox::compile(ROOTS, &includes)
        .unwrap_or_else(|e| panic!("compiling envoy protos from {}: {e}", proto_root.display()));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR set by cargo"));
    std::fs::write(
        out.join("envoy_descriptors.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )
    .expect("writing descriptor set");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=MESHD_ENVOY_PROTO_DIR");
}

/// Finds the `proto` folder of the envoy-types crate that Cargo.lock pins.
fn envoy_types_proto_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("MESHD_ENVOY_PROTO_DIR") {
        return PathBuf::from(dir);
    }
    let version = locked_version("envoy-types").expect("envoy-types in Cargo.lock");
    let cargo_home = std::env::var("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cargo"));
    let registry = cargo_home.join("registry").join("src");
    let wanted = format!("envoy-types-{version}");
    for index in std::fs::read_dir(&registry).expect("cargo registry sources") {
        let candidate = index
            .expect("registry entry")
            .path()
            .join(&wanted)
            .join("proto");
        if candidate.is_dir() {
            return candidate;
        }
    }
    panic!(
        "no {wanted}/proto under {}; set MESHD_ENVOY_PROTO_DIR",
        registry.display()
    );
}

fn locked_version(package: &str) -> Option<String> {
    let lock =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock")).ok()?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == format!("name = \"{package}\"") {
            let version = lines.next()?;
            return Some(
                version
                    .trim_start_matches("version = \"")
                    .trim_end_matches('"')
                    .to_string(),
            );
        }
    }
    None
}
