//! What each task asks Slurm for: flags of `landscape submit` and the `[slurm]` table of a spec
//! (a flag wins).

use clap::Args;
use serde::{Deserialize, Serialize};

/// sbatch resources of every task of a submission; unset ones are left to the cluster's
/// defaults.
#[derive(Args, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Resources {
    /// Partition to run in (sbatch --partition).
    #[arg(long)]
    pub partition: Option<String>,
    /// Time limit of each task, as sbatch reads it (--time), e.g. 2:00:00.
    #[arg(long)]
    pub time: Option<String>,
    /// CPUs per task (sbatch --cpus-per-task); landscape then runs that many threads.
    #[arg(long)]
    pub cpus_per_task: Option<u32>,
    /// GPUs per task (sbatch --gpus-per-task); with --device cuda each task computes on the GPU
    /// Slurm gives it.
    #[arg(long)]
    pub gpus_per_task: Option<u32>,
    /// Memory per task's node, as sbatch reads it (--mem), e.g. 8G.
    #[arg(long)]
    pub mem: Option<String>,
    /// Account to charge (sbatch --account).
    #[arg(long)]
    pub account: Option<String>,
}

impl Resources {
    /// These resources, with `fallback`'s where these leave one unset.
    pub fn or(&self, fallback: &Resources) -> Resources {
        Resources {
            partition: self
                .partition
                .clone()
                .or_else(|| fallback.partition.clone()),
            time: self.time.clone().or_else(|| fallback.time.clone()),
            cpus_per_task: self.cpus_per_task.or(fallback.cpus_per_task),
            gpus_per_task: self.gpus_per_task.or(fallback.gpus_per_task),
            mem: self.mem.clone().or_else(|| fallback.mem.clone()),
            account: self.account.clone().or_else(|| fallback.account.clone()),
        }
    }

    /// The `#SBATCH` lines that ask for them.
    pub fn directives(&self) -> Vec<String> {
        let text = [
            ("partition", self.partition.clone()),
            ("time", self.time.clone()),
            ("cpus-per-task", self.cpus_per_task.map(|n| n.to_string())),
            ("gpus-per-task", self.gpus_per_task.map(|n| n.to_string())),
            ("mem", self.mem.clone()),
            ("account", self.account.clone()),
        ];
        text.into_iter()
            .filter_map(|(key, value)| Some(format!("#SBATCH --{key}={}", value?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_spec_and_unset_ones_ask_for_nothing() {
        let spec: Resources =
            toml::from_str("partition = \"gpu\"\ntime = \"1:00:00\"\ncpus_per_task = 8").unwrap();
        let flags = Resources {
            time: Some("4:00:00".into()),
            ..Resources::default()
        };
        assert_eq!(
            flags.or(&spec).directives(),
            [
                "#SBATCH --partition=gpu",
                "#SBATCH --time=4:00:00",
                "#SBATCH --cpus-per-task=8"
            ]
        );
        assert!(Resources::default().directives().is_empty());
        assert!(toml::from_str::<Resources>("gpus = 1").is_err());
    }
}
