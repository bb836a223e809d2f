//! Command-line definitions and the code that runs each command.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::classify::cli::{EvalArgs, TrainArgs, run_eval, run_train};

/// A per-pod sidecar that picks the LLM model for each request.
#[derive(Debug, Parser)]
#[command(name = "triage", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fit the prompt classifier and write a weights file.
    Train(TrainArgs),
    /// Score the prompt classifier on labelled prompts or routing outcomes.
    Eval(EvalArgs),
}

/// Runs one command and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    let result = match &cli.command {
        Command::Train(args) => run_train(args),
        Command::Eval(args) => run_eval(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}
