//! The `triage` command line: parses flags and hands off to the library.

use std::process::ExitCode;

use clap::Parser;

/// The process allocator, mimalloc rather than the system one. A decision's
/// wire message is a few dozen small strings, and the hot_path benchmark
/// builds it in about 20% less time with mimalloc (`decide/*`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = triage::cli::Cli::parse();
    triage::cli::run(cli)
}
