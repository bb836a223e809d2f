//! The `triage` command line: parses flags and hands off to the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = triage::cli::Cli::parse();
    triage::cli::run(cli)
}
