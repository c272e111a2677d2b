//! A submission: the sbatch script of each step of a [`Plan`] in `<workdir>/slurm/<name>/`, its
//! record (`submission.toml`: the command, the steps, the job ids of every round), and `sbatch`.

use crate::Resources;
use crate::status::{StepState, TaskState};
use anyhow::{Context, Result, bail};
use landscape_core::atomic::write_atomic;
use landscape_core::hash::content_hash;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The record's file name in a submission's directory.
pub const RECORD: &str = "submission.toml";

/// One step of a plan: one task, or an array of shards.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Its name: the script is `<name>.sbatch`, task k logs to `<name>-k.log` and records its
    /// state in `<name>-k.state`.
    pub name: String,
    /// The landscape arguments of its tasks (after the binary and the global options).
    pub args: Vec<String>,
    /// `Some(n)`: an array of n tasks, task k running `args` and `--shard k/n`; `None`: one
    /// task running `args`.
    pub shards: Option<usize>,
}

impl Step {
    /// How many tasks it has.
    pub fn tasks(&self) -> usize {
        self.shards.unwrap_or(1)
    }
}

/// A landscape command cut into steps, each started when the one before has succeeded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The command as the user gave it (`surface --run ... --x ...`): the submission's name and
    /// the scripts' headers.
    pub command: Vec<String>,
    /// Global options every task gets before its arguments (`--workdir`, `--device`, ...).
    pub globals: Vec<String>,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

/// `submission.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// What was planned.
    pub plan: Plan,
    /// The resources every task asks for.
    pub resources: Resources,
    /// Every round of `sbatch`: the job id of each step, in order.
    #[serde(default)]
    pub rounds: Vec<Vec<String>>,
}

/// A submission's directory and record.
#[derive(Debug)]
pub struct Submission {
    /// `<workdir>/slurm/<command>-<hash>/`.
    pub dir: PathBuf,
    /// Its record.
    pub record: Record,
}

/// Writes the scripts of `plan` (tasks run `binary` in `cwd`, asking for `resources`) into its
/// submission's directory under `workdir`, keeping the record of earlier rounds of the same
/// plan. Nothing is submitted.
pub fn write(
    workdir: &Path,
    plan: &Plan,
    resources: &Resources,
    binary: &Path,
    cwd: &Path,
) -> Result<Submission> {
    let name = format!(
        "{}-{}",
        plan.command.first().map_or("command", String::as_str),
        content_hash(&(plan, resources, cwd)).short()
    );
    let dir = std::path::absolute(workdir.join("slurm").join(name))?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let record = match read_record(&dir) {
        Ok(old) if old.plan == *plan && old.resources == *resources => old,
        _ => Record {
            plan: plan.clone(),
            resources: resources.clone(),
            rounds: Vec::new(),
        },
    };
    for (i, step) in plan.steps.iter().enumerate() {
        let script = script(&dir, plan, i, resources, binary, cwd);
        write_atomic(
            &dir.join(format!("{}.sbatch", step.name)),
            script.as_bytes(),
        )?;
    }
    let submission = Submission { dir, record };
    submission.save()?;
    Ok(submission)
}

/// The record in submission directory `dir`.
pub fn read_record(dir: &Path) -> Result<Record> {
    let path = dir.join(RECORD);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{}: not a submission (no {RECORD})", dir.display()))?;
    toml::from_str(&text).with_context(|| format!("{}: damaged", path.display()))
}

impl Submission {
    /// The scripts, in step order.
    pub fn scripts(&self) -> Vec<PathBuf> {
        self.record
            .plan
            .steps
            .iter()
            .map(|s| self.dir.join(format!("{}.sbatch", s.name)))
            .collect()
    }

    /// Submits every step with `sbatch`, each after the one before succeeded
    /// (`--dependency=afterok`), and records the job ids; returns them, and the jobs of the
    /// previous round it cancelled because they could never start (their dependency failed).
    /// Refused while other jobs of the previous round are still queued (`squeue`), so two
    /// rounds never run side by side.
    pub fn submit(&mut self) -> Result<(Vec<String>, Vec<String>)> {
        let mut cancelled = Vec::new();
        if !self.record.rounds.is_empty() {
            let mut queued = Vec::new();
            // A step waiting on a step that failed or was killed can never start: it goes, so
            // the new round can take its place.
            let mut broken_before = false;
            for StepState { job, tasks, .. } in crate::status::states(&self.dir)?.1 {
                let Some(job) = job else { continue };
                let in_queue = tasks
                    .iter()
                    .any(|t| matches!(t, TaskState::Pending(_) | TaskState::Running(_)));
                let stuck = tasks.iter().all(|t| match t {
                    TaskState::Pending(why) => {
                        why == "DependencyNeverSatisfied" || (broken_before && why == "Dependency")
                    }
                    _ => false,
                });
                if in_queue && stuck {
                    run(Command::new("scancel").arg(&job))?;
                    cancelled.push(job);
                } else if in_queue {
                    queued.push(job);
                }
                broken_before |= stuck || tasks.iter().any(TaskState::needs_rerun);
            }
            if !queued.is_empty() {
                bail!(
                    "{}: job(s) {} of the last submission are still queued (squeue); wait for them or scancel them, then submit again",
                    self.dir.display(),
                    queued.join(", ")
                );
            }
        }
        let mut ids: Vec<String> = Vec::new();
        let mut failure = None;
        for script in self.scripts() {
            let mut sbatch = Command::new("sbatch");
            sbatch.arg("--parsable");
            if let Some(previous) = ids.last() {
                sbatch.arg(format!("--dependency=afterok:{previous}"));
            }
            match run(sbatch.arg(&script)) {
                Ok(out) => ids.push(out.split(';').next().unwrap_or_default().trim().into()),
                Err(e) => {
                    failure = Some(e.context(format!("sbatch {}", script.display())));
                    break;
                }
            }
        }
        if !ids.is_empty() {
            self.record_round(ids.clone())?;
        }
        match failure {
            Some(e) if ids.is_empty() => Err(e),
            Some(e) => Err(e.context(format!(
                "submitted only job(s) {} of {} steps",
                ids.join(", "),
                self.record.plan.steps.len()
            ))),
            None => Ok((ids, cancelled)),
        }
    }

    /// Records a round of job ids, one per step.
    pub fn record_round(&mut self, ids: Vec<String>) -> Result<()> {
        self.record.rounds.push(ids);
        self.save()
    }

    fn save(&self) -> Result<()> {
        write_atomic(
            &self.dir.join(RECORD),
            toml::to_string_pretty(&self.record)?.as_bytes(),
        )
    }
}

/// Runs `command` and returns its standard output, or an error with its standard error's first
/// line.
pub(crate) fn run(command: &mut Command) -> Result<String> {
    let program = command.get_program().to_string_lossy().into_owned();
    let out = command
        .output()
        .with_context(|| format!("running {program} (is Slurm installed here?)"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        bail!(
            "{program} failed ({}): {}",
            out.status,
            err.lines().next().unwrap_or("no message").trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `text` quoted for bash: single quotes, with each `'` closed, escaped and reopened.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The sbatch script of step `i` of `plan`.
fn script(
    dir: &Path,
    plan: &Plan,
    i: usize,
    resources: &Resources,
    binary: &Path,
    cwd: &Path,
) -> String {
    let step = &plan.steps[i];
    let at = |name: String| quote(&dir.join(name).display().to_string());
    let mut lines = vec![
        "#!/bin/bash".to_string(),
        format!(
            "# Written by `landscape submit` for: landscape {}",
            plan.command.join(" ")
        ),
        format!(
            "# Step {} of {}: {}. Submitting the same command again reruns what failed; finished work is found, not recomputed.",
            i + 1,
            plan.steps.len(),
            step.name
        ),
        format!("#SBATCH --job-name=landscape-{}", step.name),
        format!("#SBATCH --chdir={}", cwd.display()),
    ];
    match step.shards {
        Some(n) => {
            lines.push(format!("#SBATCH --array=1-{n}"));
            lines.push(format!(
                "#SBATCH --output={}",
                dir.join(format!("{}-%a.log", step.name)).display()
            ));
        }
        None => lines.push(format!(
            "#SBATCH --output={}",
            dir.join(format!("{}-1.log", step.name)).display()
        )),
    }
    lines.extend(resources.directives());
    let mut command: Vec<String> = std::iter::once(binary.display().to_string())
        .chain(plan.globals.iter().cloned())
        .chain(step.args.iter().cloned())
        .map(|a| quote(&a))
        .collect();
    if let Some(n) = step.shards {
        command.push("--shard".into());
        command.push(format!("\"$task/{n}\""));
    }
    lines.extend([
        "set -u".to_string(),
        "task=${SLURM_ARRAY_TASK_ID:-1}".to_string(),
        format!("state={}\"-$task.state\"", at(step.name.clone())),
        // Each task says what it is doing in a file of its own, replaced whole.
        "record() {".to_string(),
        "    printf 'state = \"%s\"\\nsubmitted_as = \"%s\"\\njob = \"%s\"\\nhost = \"%s\"\\ngpus = \"%s\"\\n%s' \"$1\" \"${SLURM_ARRAY_JOB_ID:-${SLURM_JOB_ID:-}}\" \"${SLURM_JOB_ID:-}\" \"$(hostname)\" \"${CUDA_VISIBLE_DEVICES:-}\" \"${2:-}\" > \"$state.tmp\" && mv -f \"$state.tmp\" \"$state\"".to_string(),
        "}".to_string(),
        "record running".to_string(),
        command.join(" "),
        "code=$?".to_string(),
        "if [ \"$code\" = 0 ]; then record done; else record failed \"exit = $code\"; fi".to_string(),
        "exit \"$code\"".to_string(),
    ]);
    lines.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan {
            command: vec!["surface".into(), "--run".into(), "it's".into()],
            globals: vec!["--workdir".into(), "/shared/runs".into()],
            steps: vec![
                Step {
                    name: "shards".into(),
                    args: vec!["surface".into(), "--run".into(), "it's".into()],
                    shards: Some(4),
                },
                Step {
                    name: "finish".into(),
                    args: vec!["surface".into(), "--run".into(), "it's".into()],
                    shards: None,
                },
            ],
        }
    }

    #[test]
    fn scripts_run_each_shard_and_record_its_state() {
        let dir = tempfile::tempdir().unwrap();
        let resources = Resources {
            time: Some("1:00:00".into()),
            ..Resources::default()
        };
        let s = write(
            dir.path(),
            &plan(),
            &resources,
            "/opt/landscape".as_ref(),
            "/home/me".as_ref(),
        )
        .unwrap();
        let scripts = s.scripts();
        let array = std::fs::read_to_string(&scripts[0]).unwrap();
        assert!(array.contains("#SBATCH --array=1-4\n"), "{array}");
        assert!(array.contains("#SBATCH --time=1:00:00\n"), "{array}");
        assert!(array.contains("#SBATCH --chdir=/home/me\n"), "{array}");
        assert!(
            array.contains(
                "'/opt/landscape' '--workdir' '/shared/runs' 'surface' '--run' 'it'\\''s' --shard \"$task/4\"\n"
            ),
            "{array}"
        );
        let finish = std::fs::read_to_string(&scripts[1]).unwrap();
        assert!(
            !finish.contains("--array") && !finish.contains("--shard"),
            "{finish}"
        );
        // The same plan is the same submission, its record kept; another is another.
        let again = write(
            dir.path(),
            &plan(),
            &resources,
            "/opt/landscape".as_ref(),
            "/home/me".as_ref(),
        )
        .unwrap();
        assert_eq!(again.dir, s.dir);
        assert_eq!(read_record(&s.dir).unwrap().plan, plan());
        let other = write(
            dir.path(),
            &plan(),
            &Resources::default(),
            "/opt/landscape".as_ref(),
            "/home/me".as_ref(),
        )
        .unwrap();
        assert_ne!(other.dir, s.dir);
    }

    #[test]
    fn a_script_records_running_then_done_or_failed() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = plan();
        p.steps.truncate(1);
        p.globals.clear();
        for (program, expect) in [("/bin/true", "done"), ("/bin/false", "failed")] {
            let s = write(
                dir.path(),
                &p,
                &Resources::default(),
                program.as_ref(),
                dir.path(),
            )
            .unwrap();
            let out = Command::new("bash")
                .arg(&s.scripts()[0])
                .env("SLURM_ARRAY_TASK_ID", "3")
                .env("SLURM_ARRAY_JOB_ID", "41")
                .env("SLURM_JOB_ID", "44")
                .status()
                .unwrap();
            assert_eq!(out.success(), expect == "done");
            let state = std::fs::read_to_string(s.dir.join("shards-3.state")).unwrap();
            let state: toml::Table = toml::from_str(&state).unwrap();
            assert_eq!(state["state"].as_str(), Some(expect));
            assert_eq!(state["submitted_as"].as_str(), Some("41"));
            assert_eq!(state["job"].as_str(), Some("44"));
            if expect == "failed" {
                assert_eq!(state["exit"].as_integer(), Some(1));
            }
        }
    }
}
