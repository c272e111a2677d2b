//! The `landscape` binary: parses the command line into plain decisions and hands them to the
//! libraries (see `args.rs` for the commands, `commands.rs` for what each does).

mod args;
mod commands;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(error) => {
            // One line: the context chain joined, as every error here names its file and key.
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
