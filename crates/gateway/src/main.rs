//! `keysteward`: the gateway daemon and its command-line interface.
//!
//! `keysteward check FILE` loads a VRP configuration (the language of `crates/vrp`, reference
//! `vrp-cli.md`) and prints every error and warning, one per line, in the
//! `file:line:column: error: message` form editors understand. It exits 1 when the file has an
//! error, so that scripts can gate a deployment on it, and 0 otherwise.
//!
//! `keysteward run --config FILE` starts the daemon (IKE only so far, see `daemon.rs`);
//! `keysteward display …` asks a running daemon over its control socket.
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
    /// Run the gateway daemon.
    Run {
        /// The VRP configuration file.
        #[arg(long)]
        config: PathBuf,
        /// The control socket.
        #[arg(long, default_value = keysteward::control::DEFAULT_CONTROL_PATH)]
        control: PathBuf,
        /// Log filter (error, warn, info, debug, trace, or a tracing filter).
        #[arg(long, default_value = "info")]
        log_level: String,
    },
    /// Show state of a running daemon.
    Display {
        #[command(subcommand)]
        what: Display,
        /// The daemon's control socket.
        #[arg(long, global = true, default_value = keysteward::control::DEFAULT_CONTROL_PATH)]
        control: PathBuf,
        /// Print JSON with the same facts instead of the device's text.
        #[arg(long, global = true)]
        json: bool,
    },
}

/// `display` subcommands.
#[derive(Debug, Subcommand)]
enum Display {
    /// IKE and IPsec SAs (`display ike sa`).
    Ike {
        #[command(subcommand)]
        what: DisplayIke,
    },
}

/// `display ike …`.
#[derive(Debug, Subcommand)]
enum DisplayIke {
    /// `display ike sa`.
    Sa,
    /// `display ike error-info`.
    ErrorInfo,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { file } => check(&file),
        Command::Run { config, control, log_level } => {
            let filter = tracing_subscriber::EnvFilter::try_new(&log_level)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
            use std::io::IsTerminal;
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_target(false)
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal())
                .init();
            match keysteward::daemon::run(keysteward::daemon::RunOptions { config, control }) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("keysteward: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Display { what, control, json } => {
            let request = match what {
                Display::Ike { what: DisplayIke::Sa } => keysteward::control::Request::DisplayIkeSa,
                Display::Ike { what: DisplayIke::ErrorInfo } => {
                    keysteward::control::Request::DisplayIkeErrorInfo
                }
            };
            match keysteward::control::call(&control, &request) {
                Ok(keysteward::control::Response::Ok { text, json: facts }) => {
                    if json {
                        println!("{facts}");
                    } else {
                        print!("{text}");
                    }
                    ExitCode::SUCCESS
                }
                Ok(keysteward::control::Response::Error(e)) | Err(e) => {
                    eprintln!("keysteward: {e}");
                    ExitCode::FAILURE
                }
            }
        }
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
