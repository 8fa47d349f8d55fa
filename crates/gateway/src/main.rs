//! `keysteward`: the gateway daemon and its command-line interface.
//!
//! For now only `keysteward check FILE` exists: it loads a VRP configuration (the language of
//! `crates/vrp`, reference `vrp-cli.md`) and prints every error and warning, one per line, in
//! the `file:line:column: error: message` form editors understand. It exits 1 when the file has
//! an error, so that scripts can gate a deployment on it, and 0 otherwise.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The keysteward IKEv1/IPsec gateway.
#[derive(Debug, Parser)]
#[command(name = "keysteward", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Check a configuration file: print its errors and warnings, exit 1 on any error.
    Check {
        /// The VRP configuration file.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { file } => check(&file),
    }
}

fn check(file: &std::path::Path) -> ExitCode {
    // Host addresses are not looked up yet: the interface-address warning needs the daemon's
    // view of the host, which arrives with the daemon.
    match vrp::load_file(file, None) {
        Err(e) => {
            eprintln!("{}: error: cannot read: {e}", file.display());
            ExitCode::FAILURE
        }
        Ok(checked) => {
            for d in &checked.diagnostics {
                println!("{d}");
            }
            if checked.has_errors() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
    }
}
