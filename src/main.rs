//! The `meshd` binary: command-line dispatch only.

fn main() -> std::process::ExitCode {
    meshd::cli::run()
}
