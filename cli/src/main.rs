//! `cutover`: parse flags, run one command, map the outcome to an exit code. Nothing else.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    cutover::run(cutover::Cli::parse()).await
}
