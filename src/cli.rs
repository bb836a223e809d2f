//! Command-line definitions and the code that runs each command.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A per-pod sidecar that picks the LLM model for each request.
#[derive(Debug, Parser)]
#[command(name = "triage", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inject the triage sidecar into pods: the admission webhook, or an
    /// offline pass over Kubernetes YAML with --manifest.
    Inject(crate::inject::InjectArgs),
}

/// Runs one command and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Inject(args) => crate::inject::run(args),
    }
}
