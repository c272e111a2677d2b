//! What each command does, in terms of the library crates.

use crate::args::{Cli, Command, DataCommand, SpecArgs};
use anyhow::Result;
use clap::CommandFactory;
use landscape_core::device::set_cpu_threads;
use landscape_data::DataLocations;
use landscape_job::shard::Shard;
use landscape_models::{Arch, Network, NetworkSpec};
use landscape_pipeline::bench::BenchPlan;
use landscape_pipeline::{Context, data, run_spec};
use landscape_results::compare;
use landscape_results::diff::{self, Tolerance};
use landscape_results::{ReproduceOptions, reproduce};
use landscape_spec::Spec;
use std::process::ExitCode;

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    set_cpu_threads(cli.threads)?;
    let mut locations = DataLocations::from_env(landscape_data::default_cache());
    locations.allow_download &= !cli.offline;
    let context = || -> Result<Context> {
        Ok(Context {
            workdir: cli.workdir.clone(),
            device: cli.device.device()?,
            device_kind: cli.device,
            locations: locations.clone(),
        })
    };
    match &cli.command {
        Command::Models => models(),
        Command::Data(DataCommand::Info { dataset }) => {
            // A question about a data set never starts a download of it.
            let here = DataLocations {
                allow_download: false,
                ..locations.clone()
            };
            let ds = data::load(dataset, &here).map_err(|e| {
                if landscape_data::Missing::in_chain(&e) {
                    e.context(
                        "data info never downloads (a command that trains on it does, online)",
                    )
                } else {
                    e
                }
            })?;
            print!("{}", ds.info());
            Ok(ExitCode::SUCCESS)
        }
        Command::Train(args) => spec_command(&context()?, &args.spec, false, args.shard),
        Command::Run(args) => spec_command(&context()?, args, true, Shard::WHOLE),
        Command::Runs => runs(&cli.workdir),
        Command::Import(args) => {
            let outcome = landscape_pipeline::import::import(
                &context()?,
                &landscape_pipeline::import::ImportRequest {
                    file: &args.file,
                    model: args.model,
                    width: args.width,
                    dataset: args.dataset.clone(),
                },
            )?;
            let status = &outcome.status;
            println!(
                "{} ({}): test accuracy {:.2}%, test loss {:.4}",
                outcome.id,
                if outcome.found { "found" } else { "imported" },
                status.test_acc.unwrap_or(f64::NAN),
                status.test_loss.unwrap_or(f64::NAN)
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Surface(command) => print(command.run(&context()?)?),
        Command::Interpolate(command) => print(command.run(&context()?)?),
        Command::Trajectory(command) => print(command.run(&context()?)?),
        Command::Hessian(command) => print(command.run(&context()?)?),
        Command::Sharpness(command) => print(command.run(&context()?)?),
        Command::EigenRatio(command) => print(command.run(&context()?)?),
        Command::Reproduce(args) => {
            let mut options = ReproduceOptions::new(&args.figure, args.scale);
            options.dataset = args.dataset.clone();
            options.specs = args.specs.clone();
            options.sets = args.sets.clone();
            options.binary = crate::args::VERSION.to_string();
            if let Some(dir) = &args.results {
                options.results = dir.clone();
            }
            let dir = reproduce(&context()?, &options)?;
            print!(
                "{}",
                std::fs::read_to_string(dir.join("findings.md")).unwrap_or_default()
            );
            println!("\nresults: {}", dir.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Plot(args) => {
            for file in landscape_results::plot::plot(&args.dir, &args.options)? {
                println!("{}", file.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Export(args) => export(args),
        Command::CompareSurfaces(args) => {
            let levels = if args.levels.is_empty() {
                landscape_figures::paper_levels()
            } else {
                args.levels.clone()
            };
            let comparison = compare::compare(&args.a, &args.b, &levels)?;
            print!("{}", compare::render(&comparison));
            if let Some(path) = &args.csv {
                compare::table(&comparison).write(path)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Diff(args) => {
            let changes = diff::diff(
                &args.a,
                &args.b,
                Tolerance {
                    rtol: args.rtol,
                    atol: args.atol,
                },
            )?;
            if changes.is_empty() {
                println!(
                    "no differences beyond rtol {} / atol {}",
                    args.rtol, args.atol
                );
                Ok(ExitCode::SUCCESS)
            } else {
                print!("{}", diff::render(&changes));
                println!(
                    "{} cell(s) differ beyond rtol {} / atol {}",
                    changes.len(),
                    args.rtol,
                    args.atol
                );
                Ok(ExitCode::FAILURE)
            }
        }
        Command::Bench(args) => {
            let plan = BenchPlan {
                models: args.models.clone(),
                width: args.width,
                images: args.images,
                eval_batches: args.eval_batch.iter().copied().filter(|&b| b > 0).collect(),
                train_batches: args
                    .train_batch
                    .iter()
                    .copied()
                    .filter(|&b| b > 0)
                    .collect(),
                repeats: args.repeats,
                precision: args.precision,
            };
            let device = cli.device.device()?;
            if args.compare_cpu {
                let agreements = landscape_pipeline::bench::compare_with_cpu(&plan, &device)?;
                if let Some(path) = &args.json {
                    landscape_core::atomic::write_atomic(
                        path,
                        serde_json::to_string_pretty(&agreements)?.as_bytes(),
                    )?;
                }
                let all = agreements.iter().all(|a| a.agrees());
                println!(
                    "{}",
                    if all {
                        "the device agrees with the CPU"
                    } else {
                        "the device DIFFERS from the CPU"
                    }
                );
                return Ok(if all {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                });
            }
            let results = landscape_pipeline::bench::run(&plan, &device)?;
            if let Some(path) = &args.json {
                landscape_core::atomic::write_atomic(
                    path,
                    serde_json::to_string_pretty(&results)?.as_bytes(),
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions { shell } => {
            let mut command = Cli::command();
            clap_complete::generate(*shell, &mut command, "landscape", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => {
            clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Submit(args) => print(crate::submit::submit(&cli, args)?),
        Command::Status { dir } if dir.join(landscape_slurm::submission::RECORD).exists() => {
            print(landscape_slurm::status::render(dir)?)
        }
        Command::Status { dir } => print(landscape_pipeline::jobs::shard_status(dir)?),
        Command::Merge(args) => {
            let outcome = landscape_pipeline::jobs::merge(&args.into, &args.others)?;
            println!(
                "{}: {} points{}",
                args.into.display(),
                outcome.points_done,
                if outcome.complete {
                    format!(", complete: {} written", outcome.table)
                } else {
                    ", incomplete".to_string()
                }
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn models() -> Result<ExitCode> {
    println!(
        "{:<20} {:>12} {:>14}",
        "model", "parameters", "macs_per_image"
    );
    for arch in Arch::paper_models() {
        let net = Network::new(NetworkSpec {
            arch,
            width: 1.0,
            classes: 10,
        })?;
        println!(
            "{:<20} {:>12} {:>14}",
            arch.to_string(),
            net.parameter_count(),
            net.macs_per_image()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn spec_command(ctx: &Context, args: &SpecArgs, analyse: bool, share: Shard) -> Result<ExitCode> {
    let spec = Spec::load(&args.spec, args.scale, &args.sets)?;
    let outcome = run_spec(ctx, &spec, args.dataset.clone(), analyse, share)?;
    println!(
        "{:<30} {:<34} {:>9} {:>7} {:>9}",
        "run", "sweep", "state", "epochs", "test_acc"
    );
    for run in &outcome.runs {
        println!(
            "{:<30} {:<34} {:>9} {:>7} {:>9}",
            run.planned.record.id,
            run.planned.sweep.label(),
            format!("{:?}", run.status.state).to_lowercase(),
            run.status.epochs_done,
            run.status
                .test_acc
                .map_or("-".into(), |a| format!("{a:.2}"))
        );
    }
    for a in &outcome.analyses {
        println!(
            "{:<10} {:<40} {}",
            a.analysis,
            a.runs.join(" -> "),
            a.dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn runs(workdir: &std::path::Path) -> Result<ExitCode> {
    println!(
        "{:<30} {:<10} {:<18} {:<16} {:>9}  about",
        "id", "kind", "state", "progress", "test_acc"
    );
    for line in landscape_pipeline::jobs::list(workdir)? {
        println!(
            "{:<30} {:<10} {:<18} {:<16} {:>9}  {}",
            line.id,
            line.kind,
            line.state,
            line.progress,
            line.test_acc.map_or("-".into(), |a| format!("{a:.2}")),
            line.about
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(feature = "hdf5")]
fn export(args: &crate::args::ExportArgs) -> Result<ExitCode> {
    let datasets = landscape_export::write_h5(&args.dir, &args.h5)?;
    println!("{}: {}", args.h5.display(), datasets.join(", "));
    Ok(ExitCode::SUCCESS)
}

#[cfg(not(feature = "hdf5"))]
fn export(_: &crate::args::ExportArgs) -> Result<ExitCode> {
    anyhow::bail!(
        "--h5: this landscape was built without HDF5; build it with `cargo install --path . --features hdf5` (needs Debian's libhdf5-dev)"
    )
}

fn print(text: String) -> Result<ExitCode> {
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}
