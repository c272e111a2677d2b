//! Where a submission stands: every task's state from its own record (`<step>-<k>.state`,
//! written by its script) joined with `squeue` (pending and running tasks). Accounting
//! (`sacct`) is not needed: a task that left the queue without recording its end was killed.

use crate::submission::{Record, read_record};
use anyhow::Result;
use serde::Deserialize;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

/// One task's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskState {
    /// Queued and waiting (Slurm's reason, such as `Dependency` or `Resources`).
    Pending(String),
    /// In the queue and started (Slurm's state, such as `running` or `completing`).
    Running(String),
    /// Finished with exit 0.
    Done,
    /// Finished with this exit code.
    Failed(i64),
    /// Started, then left the queue without recording its end (scancel, a time limit, a node
    /// lost).
    Killed,
    /// Never started: not queued, no record (cancelled while pending, or its dependency
    /// failed).
    NotStarted,
    /// Not submitted yet (`--dry-run`).
    NotSubmitted,
    /// What its record (or the lack of one) allows, with no `squeue` here to decide it.
    Unknown(String),
}

impl TaskState {
    /// Whether the task still has to run (again) for the step to finish: submitting again
    /// reruns it.
    pub fn needs_rerun(&self) -> bool {
        matches!(
            self,
            TaskState::Failed(_) | TaskState::Killed | TaskState::NotStarted
        )
    }
}

impl std::fmt::Display for TaskState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TaskState::Pending(reason) => write!(f, "pending ({reason})"),
            TaskState::Running(state) => write!(f, "{state}"),
            TaskState::Done => write!(f, "done"),
            TaskState::Failed(code) => write!(f, "failed (exit {code})"),
            TaskState::Killed => write!(f, "killed (left the queue unfinished)"),
            TaskState::NotStarted => {
                write!(f, "not started (cancelled, or what it waited for failed)")
            }
            TaskState::NotSubmitted => write!(f, "not submitted"),
            TaskState::Unknown(what) => write!(f, "{what} (no squeue here to tell)"),
        }
    }
}

/// A task's own record, written by its script.
#[derive(Deserialize)]
struct StateFile {
    state: String,
    submitted_as: String,
    host: String,
    #[serde(default)]
    exit: Option<i64>,
}

/// The tasks of job `id` in the queue as (task id, state, reason), or `None` when `squeue`
/// cannot be run here. A job that left the queue is an empty list.
pub fn queued(id: &str) -> Option<Vec<(String, String, String)>> {
    let out = Command::new("squeue")
        .args(["-h", "-r", "-o", "%i|%T|%r", "-j", id])
        .output()
        .ok()?;
    if !out.status.success() {
        // squeue refuses the ids of jobs it has already forgotten.
        let err = String::from_utf8_lossy(&out.stderr);
        return err.contains("Invalid job id").then(Vec::new);
    }
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let mut parts = l.split('|');
                Some((
                    parts.next()?.trim().to_string(),
                    parts.next()?.trim().to_string(),
                    parts.next()?.trim().to_string(),
                ))
            })
            .collect(),
    )
}

/// One step of a submission as it stands.
#[derive(Clone, Debug)]
pub struct StepState {
    /// The step's name.
    pub name: String,
    /// Its job id in the last round (`None`: never submitted).
    pub job: Option<String>,
    /// Its tasks' states, in order.
    pub tasks: Vec<TaskState>,
}

/// The submission in `dir`: its record and the state of every task of its last round.
pub fn states(dir: &Path) -> Result<(Record, Vec<StepState>)> {
    let record = read_record(dir)?;
    let last = record.rounds.last();
    let mut steps = Vec::new();
    for (i, step) in record.plan.steps.iter().enumerate() {
        let job = last.and_then(|ids| ids.get(i)).cloned();
        let queue = job.as_deref().and_then(queued);
        let tasks = (1..=step.tasks())
            .map(|k| {
                let Some(job) = &job else {
                    return TaskState::NotSubmitted;
                };
                let task_id = match step.shards {
                    Some(_) => format!("{job}_{k}"),
                    None => job.clone(),
                };
                if let Some((_, state, reason)) =
                    queue.iter().flatten().find(|(id, _, _)| *id == task_id)
                {
                    return match state.as_str() {
                        "PENDING" => TaskState::Pending(reason.clone()),
                        _ => TaskState::Running(state.to_lowercase()),
                    };
                }
                let file = dir.join(format!("{}-{k}.state", step.name));
                let recorded = std::fs::read_to_string(&file)
                    .ok()
                    .and_then(|t| toml::from_str::<StateFile>(&t).ok())
                    .filter(|s| &s.submitted_as == job);
                match (recorded, &queue) {
                    (Some(s), _) if s.state == "done" => TaskState::Done,
                    (Some(s), _) if s.state == "failed" => TaskState::Failed(s.exit.unwrap_or(-1)),
                    (Some(s), None) => {
                        TaskState::Unknown(format!("running on {}, or killed", s.host))
                    }
                    (Some(_), Some(_)) => TaskState::Killed,
                    (None, Some(_)) => TaskState::NotStarted,
                    (None, None) => TaskState::Unknown("pending, or never started".into()),
                }
            })
            .collect();
        steps.push(StepState {
            name: step.name.clone(),
            job,
            tasks,
        });
    }
    Ok((record, steps))
}

/// What `landscape status` prints for the submission in `dir`.
pub fn render(dir: &Path) -> Result<String> {
    let (record, steps) = states(dir)?;
    let mut out = format!(
        "{}\n  landscape {}\n  submitted {} time(s)\n",
        dir.display(),
        record.plan.command.join(" "),
        record.rounds.len()
    );
    let mut rerun = false;
    for StepState { name, job, tasks } in &steps {
        let n = tasks.len();
        let _ = writeln!(
            out,
            "{name} ({}{}):",
            if n > 1 {
                format!("{n} tasks")
            } else {
                "1 task".into()
            },
            job.as_ref().map_or(String::new(), |j| format!(", job {j}"))
        );
        for (k, state) in tasks.iter().enumerate() {
            rerun |= state.needs_rerun();
            let _ = writeln!(out, "  {}/{n}  {state}", k + 1);
        }
    }
    if rerun {
        out += "some tasks did not finish: submit the same command again to rerun them (finished work is kept)\n";
    }
    Ok(out)
}
