//! `landscape submit`: the command to run on the cluster, parsed as the binary parses it (so a
//! mistake is found before anything is queued), cut into the steps of a Slurm plan
//! (`landscape-slurm` writes and submits them).

use crate::args::{Cli, Command, SubmitArgs};
use anyhow::{Result, anyhow, bail};
use clap::Parser;
use landscape_core::atomic::write_atomic;
use landscape_core::device::DeviceKind;
use landscape_core::hash::ContentHash;
use landscape_job::shard::Shard;
use landscape_pipeline::runs::OpenRun;
use landscape_slurm::{Plan, Resources, Step, submission};
use landscape_spec::{Spec, SpecSource};
use std::fmt::Write as _;

/// Global options, which go before `submit` (every task gets them from there).
const GLOBALS: [&str; 4] = ["--workdir", "--device", "--threads", "--offline"];

/// Writes the scripts of `args.command` and submits them (or only writes them, with
/// `--dry-run`); what the command prints.
pub fn submit(cli: &Cli, args: &SubmitArgs) -> Result<String> {
    let command = &args.command;
    if args.shards == 0 {
        bail!("--shards: expected at least 1");
    }
    if !args.local_gpus.is_empty() && cli.device != DeviceKind::Cuda(0) {
        bail!(
            "--local-gpus: each task sees only its own GPU, as the first; give --device cuda, not {}",
            cli.device
        );
    }
    if let Some(global) = command.iter().find(|a| {
        GLOBALS
            .iter()
            .any(|g| a.as_str() == *g || a.starts_with(&format!("{g}=")))
    }) {
        bail!(
            "submit: put {global} before `submit` (every task gets the global options from there)"
        );
    }
    let inner =
        Cli::try_parse_from(std::iter::once("landscape").chain(command.iter().map(String::as_str)))
            .map_err(|e| {
                anyhow!(
                    "submit: {}",
                    crate::args::one_line(&e).trim_start_matches("error: ")
                )
            })?;
    let grid = |shard: Shard, run: &str| -> Result<(Vec<Step>, Resources)> {
        // The tasks would each fail on a run that is not there, or not trained: say it now.
        OpenRun::open(&cli.workdir, run)?;
        if shard != Shard::WHOLE {
            bail!(
                "submit: leave out --shard; submit cuts the grid into --shards {} itself",
                args.shards
            );
        }
        Ok((
            vec![
                step("shards", command.clone(), Some(args.shards)),
                step("finish", command.clone(), None),
            ],
            Resources::default(),
        ))
    };
    let (steps, spec_resources) = match &inner.command {
        Command::Surface(c) => grid(c.shard, &c.run)?,
        Command::EigenRatio(c) => grid(c.shard, &c.run)?,
        Command::Trajectory(c) => grid(c.shard, &c.run)?,
        Command::Train(t) => {
            if t.shard != Shard::WHOLE {
                bail!("submit: leave out --shard; submit trains one run per task itself");
            }
            let spec = Spec::load(&t.spec.spec, t.spec.scale, &t.spec.sets)?;
            (
                vec![step("train", command.clone(), Some(spec.runs.len()))],
                spec.slurm,
            )
        }
        Command::Run(a) => {
            let spec = Spec::load(&a.spec, a.scale, &a.sets)?;
            let train: Vec<String> = std::iter::once("train".to_string())
                .chain(command[1..].iter().cloned())
                .collect();
            (
                vec![
                    step("train", train, Some(spec.runs.len())),
                    step("finish", command.clone(), None),
                ],
                spec.slurm,
            )
        }
        Command::Reproduce(r) => {
            let source = SpecSource::find(r.specs.as_deref(), &r.figure)?;
            let spec = source.load(r.scale, &r.sets)?;
            // The training tasks read a file: a built-in spec is written out for them, named by
            // its content (the last step finds the same built-in spec).
            let path = if source.is_built_in() {
                let path = cli.workdir.join("slurm").join("specs").join(format!(
                    "{}-{}.toml",
                    r.figure,
                    ContentHash::of_bytes(source.text.as_bytes()).short()
                ));
                std::fs::create_dir_all(path.parent().expect("a folder"))?;
                write_atomic(&path, source.text.as_bytes())?;
                std::path::absolute(path)?
            } else {
                source.path.clone()
            };
            landscape_results::Figure::of(&spec)?;
            let mut train = vec![
                "train".to_string(),
                path.display().to_string(),
                "--scale".into(),
                r.scale.name().into(),
            ];
            for set in &r.sets {
                train.extend(["--set".to_string(), set.clone()]);
            }
            if let Some(d) = &r.dataset {
                train.extend(["--dataset".to_string(), d.to_string()]);
            }
            (
                vec![
                    step("train", train, Some(spec.runs.len())),
                    step("finish", command.clone(), None),
                ],
                spec.slurm,
            )
        }
        _ => bail!(
            "submit: runs surface, eigen-ratio, trajectory, train, run and reproduce, not `{}`",
            command[0]
        ),
    };
    let resources = args.resources.or(&spec_resources);
    let mut globals = vec![
        "--workdir".to_string(),
        std::path::absolute(&cli.workdir)?.display().to_string(),
        "--device".to_string(),
        cli.device.to_string(),
    ];
    if let Some(threads) = cli.threads.or(resources.cpus_per_task.map(|c| c as usize)) {
        globals.extend(["--threads".to_string(), threads.to_string()]);
    }
    if cli.offline {
        globals.push("--offline".into());
    }
    let plan = Plan {
        command: command.clone(),
        globals,
        steps,
    };
    let mut written = submission::write(
        &cli.workdir,
        &plan,
        &resources,
        &std::env::current_exe()?,
        &std::env::current_dir()?,
    )?;
    let mut out = String::new();
    if args.dry_run {
        for script in written.scripts() {
            let _ = writeln!(out, "{}", script.display());
        }
        let _ = writeln!(
            out,
            "written, not submitted: review them, then run the same command without --dry-run"
        );
        return Ok(out);
    }
    if args.local {
        landscape_slurm::local::run_here(&mut written, &args.local_gpus)?;
        out += &landscape_slurm::status::render(&written.dir)?;
        return Ok(out);
    }
    let (ids, cancelled) = written.submit()?;
    for id in cancelled {
        let _ = writeln!(
            out,
            "cancelled job {id} of the last submission: what it waited for had failed"
        );
    }
    for (s, id) in plan.steps.iter().zip(&ids) {
        let _ = writeln!(
            out,
            "{}: job {id} ({} task{})",
            s.name,
            s.tasks(),
            if s.tasks() == 1 { "" } else { "s" }
        );
    }
    let _ = writeln!(out, "status: landscape status {}", written.dir.display());
    Ok(out)
}

fn step(name: &str, args: Vec<String>, shards: Option<usize>) -> Step {
    Step {
        name: name.into(),
        args,
        shards,
    }
}
