//! Command-line definitions and the code that runs each command.

mod inspect;
pub(crate) mod output;
mod request_json;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::classify::cli::{EvalArgs, TrainArgs, run_eval, run_train};

/// A per-pod sidecar that picks the LLM model for each request.
///
/// Every flag can also be set with the TRIAGE_* environment variable named
/// in its help; a flag on the command line wins.
#[derive(Debug, Parser)]
#[command(name = "triage", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve routing decisions over gRPC (Unix socket and loopback TCP).
    Serve(serve::ServeArgs),
    /// Check a policy file and print its errors and warnings.
    Check(inspect::CheckArgs),
    /// Decide one request read from a JSON file and print the decision.
    Explain(inspect::ExplainArgs),
    /// Decide one prompt and print the decision, for trying policies out.
    Route(inspect::RouteArgs),
    /// Inject the triage sidecar into pods: the admission webhook, or an
    /// offline pass over Kubernetes YAML with --manifest.
    Inject(crate::inject::InjectArgs),
    /// Measure latency and throughput of every transport against a
    /// baseline server that does no routing work.
    Bench(crate::bench::BenchArgs),
    /// Fit the prompt classifier and write a weights file.
    Train(TrainArgs),
    /// Score the prompt classifier on labelled prompts or routing outcomes.
    Eval(EvalArgs),
}

/// Runs one command and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Inject(args) => return crate::inject::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Check(args) => inspect::check(&args),
        Command::Explain(args) => inspect::explain(&args),
        Command::Route(args) => inspect::route(&args),
        Command::Bench(args) => crate::bench::run(&args),
        Command::Train(args) => run_train(&args)
            .map(|()| ExitCode::SUCCESS)
            .map_err(anyhow::Error::from),
        Command::Eval(args) => run_eval(&args)
            .map(|()| ExitCode::SUCCESS)
            .map_err(anyhow::Error::from),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            output::errln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
