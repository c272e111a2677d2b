//! The `landscape` binary: parses the command line into plain decisions and hands them to the
//! libraries (see `args.rs` for the commands, `commands.rs` for what each does).

mod args;
mod commands;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Behave like other command-line tools when the reader of stdout goes away
    // (`landscape runs | head`): end quietly instead of panicking on a broken pipe.
    // SAFETY: called first thing, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // Usage mistakes get one line like every other error; --help has the rest.
            let text = e.render().to_string();
            eprintln!(
                "{}",
                text.lines().next().unwrap_or("error: invalid arguments")
            );
            return ExitCode::from(2);
        }
    };
    match commands::run(cli) {
        Ok(code) => code,
        Err(error) => {
            // One line: the context chain joined, as every error here names its file and key.
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
