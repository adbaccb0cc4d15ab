//! The `meshd` binary: command-line dispatch only.

use std::process::ExitCode;

use clap::Parser;
use meshd::cli::{Cli, Command};
use meshd::config::{init_logging, ServeConfig};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let result = match cli.command {
        Command::Serve(args) => ServeConfig::from_args(&args).and_then(meshd::app::serve),
        Command::Bootstrap(args) => meshd::app::commands::bootstrap(&args),
        Command::Translate(args) => meshd::app::commands::translate(&args),
        Command::Validate(args) => meshd::app::commands::validate(&args),
        Command::Token(args) => meshd::app::secure::token(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("meshd: {e:#}");
            ExitCode::FAILURE
        }
    }
}
