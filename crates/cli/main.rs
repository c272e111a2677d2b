//! The `landscape` binary: parses the command line into plain decisions and hands them to the
//! libraries (see `args.rs` for the commands, `commands.rs` for what each does).

mod args;
mod commands;
mod submit;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Behave like other command-line tools when the reader of stdout goes away
    // (`landscape runs | head`): end quietly instead of panicking on a broken pipe.
    // SAFETY: called first thing, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    keep_freed_memory();
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // Usage mistakes get one line like every other error; --help has the rest.
            eprintln!("{}", args::one_line(&e));
            return ExitCode::from(2);
        }
    };
    // A mistyped or impossible kernel choice stops here, before any work, in one line.
    if let Err(message) = landscape_models::cpu::requested_isa() {
        eprintln!("error: {message}");
        return ExitCode::from(2);
    }
    match commands::run(cli) {
        Ok(code) => code,
        Err(error) => {
            // One line: the context chain joined, as every error here names its file and key.
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Keeps memory that training frees for the next step instead of handing it back to the kernel.
/// By default glibc unmaps every freed block over its (adaptive) mmap threshold and trims the
/// heap top, so each training step page-faults and zeroes its activations afresh. Keeping blocks
/// up to 32 MiB on the heap and trimming only above 1 GiB raised a ResNet-20 training step from
/// 165 to 204-217 images/s on 2 cores, with the same peak memory (`landscape bench --models
/// resnet20,vgg9 --train-batch 128`). VGG-9 is unchanged, also with thresholds of 128 and
/// 512 MiB; jemalloc and mimalloc, preloaded, were slower than glibc's default.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}
