//! A plan run on this machine instead of a cluster, for a workstation with several GPUs: the
//! same scripts through bash, a step's tasks side by side with one task per GPU (each sees only
//! its GPU, through `CUDA_VISIBLE_DEVICES`, as Slurm binds them), or one after another without
//! GPUs; a step starts when every task of the one before succeeded. The tasks record their
//! states as under Slurm, so `landscape status` reads a local round the same way.

use crate::submission::Submission;
use anyhow::{Context, Result, bail};
use std::collections::VecDeque;
use std::fs::File;
use std::process::{Child, Command};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Runs every step of `submission` here, at most one task per GPU of `gpus` at a time (one task
/// at a time when `gpus` is empty), and records the round; returns its ids (`local-<time>-<step>`).
pub fn run_here(submission: &mut Submission, gpus: &[u32]) -> Result<Vec<String>> {
    let stamp = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let steps = submission.record.plan.steps.clone();
    let ids: Vec<String> = (1..=steps.len())
        .map(|i| format!("local-{stamp}-{i}"))
        .collect();
    submission.record_round(ids.clone())?;
    let slots: Vec<Option<u32>> = if gpus.is_empty() {
        vec![None]
    } else {
        gpus.iter().copied().map(Some).collect()
    };
    for ((step, script), id) in steps.iter().zip(submission.scripts()).zip(&ids) {
        let mut waiting: VecDeque<usize> = (1..=step.tasks()).collect();
        let mut running: Vec<(usize, Option<u32>, Child)> = Vec::new();
        let mut failed = Vec::new();
        while !waiting.is_empty() || !running.is_empty() {
            while let Some(slot) = slots
                .iter()
                .find(|s| !running.iter().any(|(_, busy, _)| busy == *s))
                .copied()
                && let Some(k) = waiting.pop_front()
            {
                let log = submission.dir.join(format!("{}-{k}.log", step.name));
                let out = File::create(&log).with_context(|| format!("{}", log.display()))?;
                let mut task = Command::new("bash");
                task.arg(&script).stdout(out.try_clone()?).stderr(out);
                if step.shards.is_some() {
                    task.env("SLURM_ARRAY_JOB_ID", id)
                        .env("SLURM_ARRAY_TASK_ID", k.to_string())
                        .env("SLURM_JOB_ID", format!("{id}_{k}"));
                } else {
                    task.env("SLURM_JOB_ID", id)
                        .env_remove("SLURM_ARRAY_JOB_ID")
                        .env_remove("SLURM_ARRAY_TASK_ID");
                }
                if let Some(gpu) = slot {
                    task.env("CUDA_VISIBLE_DEVICES", gpu.to_string());
                }
                running.push((k, slot, task.spawn().context("starting bash")?));
            }
            std::thread::sleep(Duration::from_millis(50));
            let mut still = Vec::new();
            for (k, slot, mut child) in running {
                match child.try_wait()? {
                    Some(status) if !status.success() => failed.push(k),
                    Some(_) => {}
                    None => still.push((k, slot, child)),
                }
            }
            running = still;
        }
        if !failed.is_empty() {
            failed.sort();
            bail!(
                "step {}: task(s) {} failed (logs: {}); run the same command again to rerun them",
                step.name,
                failed
                    .iter()
                    .map(|k| k.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                submission
                    .dir
                    .join(format!("{}-<k>.log", step.name))
                    .display()
            );
        }
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::submission::write;
    use crate::{Plan, Resources, Step};

    fn plan(shards: usize) -> Plan {
        Plan {
            command: vec!["surface".into()],
            globals: vec![],
            steps: vec![
                Step {
                    name: "shards".into(),
                    args: vec!["surface".into()],
                    shards: Some(shards),
                },
                Step {
                    name: "finish".into(),
                    args: vec!["surface".into()],
                    shards: None,
                },
            ],
        }
    }

    fn state(dir: &std::path::Path, name: &str) -> toml::Table {
        toml::from_str(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap()
    }

    #[test]
    fn each_task_gets_one_gpu_and_every_step_runs() {
        let dir = tempfile::tempdir().unwrap();
        // A stand-in for the binary that holds its GPU for a while and fails when another task
        // holds it too.
        let locks = dir.path().join("locks");
        std::fs::create_dir(&locks).unwrap();
        let stand_in = dir.path().join("stand-in.sh");
        let gpu = format!("{}/gpu-$CUDA_VISIBLE_DEVICES", locks.display());
        std::fs::write(
            &stand_in,
            format!("#!/bin/sh\nmkdir \"{gpu}\" || exit 3\nsleep 0.3\nrmdir \"{gpu}\"\n"),
        )
        .unwrap();
        let mut perms = std::fs::metadata(&stand_in).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&stand_in, perms).unwrap();
        let mut s = write(
            dir.path(),
            &plan(4),
            &Resources::default(),
            &stand_in,
            dir.path(),
        )
        .unwrap();
        let ids = run_here(&mut s, &[2, 5]).unwrap();
        let mut gpus = Vec::new();
        for k in 1..=4 {
            let t = state(&s.dir, &format!("shards-{k}.state"));
            assert_eq!(t["state"].as_str(), Some("done"));
            assert_eq!(t["submitted_as"].as_str(), Some(ids[0].as_str()));
            gpus.push(t["gpus"].as_str().unwrap().to_string());
        }
        gpus.sort();
        gpus.dedup();
        assert_eq!(gpus, ["2", "5"], "every task on one of the GPUs, both used");
        assert_eq!(
            state(&s.dir, "finish-1.state")["state"].as_str(),
            Some("done")
        );
        let (_, steps) = crate::status::states(&s.dir).unwrap();
        assert!(steps.iter().all(|st| {
            st.tasks
                .iter()
                .all(|t| *t == crate::status::TaskState::Done)
        }));
    }

    #[test]
    fn a_failed_task_stops_before_the_next_step() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = write(
            dir.path(),
            &plan(2),
            &Resources::default(),
            "/bin/false".as_ref(),
            dir.path(),
        )
        .unwrap();
        let err = run_here(&mut s, &[]).unwrap_err().to_string();
        assert!(err.contains("step shards: task(s) 1, 2 failed"), "{err}");
        assert!(
            !s.dir.join("finish-1.state").exists(),
            "the finish step ran"
        );
    }
}
