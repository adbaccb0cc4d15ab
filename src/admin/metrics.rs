//! `/metrics`: the xDS server's metrics (Istio's `pilot_*` names) and meshd's own.

use std::fmt::Write;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AdminState;

pub async fn metrics(State(state): State<AdminState>) -> impl IntoResponse {
    let mut out = state.xds.render_metrics();
    let status = state.generator.status();
    let _ = writeln!(
        out,
        "# HELP meshd_config_generation Configuration generations built since start."
    );
    let _ = writeln!(out, "# TYPE meshd_config_generation gauge");
    let _ = writeln!(out, "meshd_config_generation {}", status.generation);
    let _ = writeln!(out, "# HELP meshd_config_problems Problems found in the current input (rejected files, documents or objects).");
    let _ = writeln!(out, "# TYPE meshd_config_problems gauge");
    let _ = writeln!(
        out,
        "meshd_config_problems {}",
        status.problem_messages.len()
    );
    let _ = writeln!(
        out,
        "# HELP meshd_services Services in the current mesh model."
    );
    let _ = writeln!(out, "# TYPE meshd_services gauge");
    let _ = writeln!(out, "meshd_services {}", status.services);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
