//! What one training run is: the `[train]` table of an experiment spec after sweeps and scales
//! are resolved, with PyTorch's defaults and the paper's recipe as documented values.

use anyhow::{Result, bail};
use landscape_models::Arch;
use serde::{Deserialize, Serialize};

/// The optimizer family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// SGD with momentum (dampening 0, as PyTorch), optionally Nesterov.
    Sgd,
    /// Adam (Kingma & Ba), weight decay coupled into the gradient as `torch.optim.Adam`.
    Adam,
}

/// How the learning rate changes over epochs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Schedule {
    /// The same rate every epoch.
    Constant,
    /// Multiply by `gamma` after each milestone. Milestones are epochs (`milestones`) or
    /// fractions of the run (`fractions`, e.g. `[0.5, 0.75, 0.9167]` is the paper's 150/225/275
    /// of 300 at any length); the resolved run always holds epochs.
    Step {
        /// Epochs after which the rate decays.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        milestones: Vec<u32>,
        /// Fractions of the run after which the rate decays (rounded to epochs).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        fractions: Vec<f64>,
        /// Decay factor.
        #[serde(default = "default_gamma")]
        gamma: f64,
    },
    /// Cosine annealing from `lr` to 0 over the run (per epoch).
    Cosine,
}

fn default_gamma() -> f64 {
    0.1
}

impl Schedule {
    /// The same schedule with fractions turned into epochs of a run of `epochs`.
    pub fn resolved(&self, epochs: u32) -> Schedule {
        match self {
            Schedule::Step {
                milestones,
                fractions,
                gamma,
            } => {
                let mut all: Vec<u32> = milestones.clone();
                all.extend(fractions.iter().map(|f| (f * epochs as f64).round() as u32));
                all.sort_unstable();
                all.dedup();
                Schedule::Step {
                    milestones: all,
                    fractions: Vec::new(),
                    gamma: *gamma,
                }
            }
            other => other.clone(),
        }
    }

    /// The rate for epoch `epoch` (1-based: the first epoch of training is 1) of a run of
    /// `epochs` starting from `lr`. Step milestones count completed epochs, as PyTorch's
    /// `MultiStepLR` stepped once per epoch: milestone 150 means epochs 151 on use `lr * gamma`.
    pub fn lr_at(&self, lr: f64, epoch: u32, epochs: u32) -> f64 {
        let done = epoch.saturating_sub(1);
        match self {
            Schedule::Constant => lr,
            Schedule::Step {
                milestones,
                fractions,
                gamma,
            } => {
                let passed = milestones.iter().filter(|&&m| done >= m).count()
                    + fractions
                        .iter()
                        .filter(|&&f| done as f64 >= (f * epochs as f64).round())
                        .count();
                lr * gamma.powi(passed as i32)
            }
            Schedule::Cosine => {
                let t = done as f64 / epochs.max(1) as f64;
                0.5 * lr * (1.0 + (std::f64::consts::PI * t).cos())
            }
        }
    }

    /// Epochs after which the rate drops (for marking decays on plots).
    pub fn decay_epochs(&self, epochs: u32) -> Vec<u32> {
        match self.resolved(epochs) {
            Schedule::Step { milestones, .. } => milestones,
            _ => Vec::new(),
        }
    }
}

/// A batch size: a number of examples, or a share of the training examples (`"16.4%"`, the
/// paper's 8192 of 50,000), resolved once the training set is known.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BatchSize {
    /// Examples per step.
    Examples(usize),
    /// A percentage of the training examples, written `"16.4%"`.
    Share(String),
}

impl BatchSize {
    /// Examples per step for a training set of `n` examples.
    pub fn resolve(&self, n: usize) -> Result<usize> {
        match self {
            BatchSize::Examples(b) => Ok(*b),
            BatchSize::Share(s) => {
                let percent: f64 = s
                    .strip_suffix('%')
                    .and_then(|p| p.trim().parse().ok())
                    .filter(|p: &f64| *p > 0.0 && *p <= 100.0)
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "expected a positive integer or a share like \"16.4%\", got \"{s}\""
                        )
                    })?;
                Ok(((percent / 100.0 * n as f64).round() as usize).max(1))
            }
        }
    }
}

fn default_width() -> f64 {
    1.0
}
fn default_momentum() -> f64 {
    0.9
}
fn default_beta1() -> f64 {
    0.9
}
fn default_beta2() -> f64 {
    0.999
}
fn default_adam_eps() -> f64 {
    1e-8
}
fn default_schedule() -> Schedule {
    Schedule::Constant
}
fn default_save_every() -> u32 {
    1
}
fn default_true() -> bool {
    true
}
fn default_micro_batch() -> usize {
    1024
}

/// One run's training settings, as the `[train]` table writes them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// The network (`vgg9`, `resnet56-noshort`, `wrn56-4`, ...).
    pub model: Arch,
    /// Channel multiplier (1.0 is the paper's network).
    #[serde(default = "default_width")]
    pub width: f64,
    /// `sgd` or `adam`.
    pub optimizer: OptimizerKind,
    /// SGD momentum.
    #[serde(default = "default_momentum")]
    pub momentum: f64,
    /// Nesterov momentum (SGD).
    #[serde(default)]
    pub nesterov: bool,
    /// Adam's beta1.
    #[serde(default = "default_beta1")]
    pub beta1: f64,
    /// Adam's beta2.
    #[serde(default = "default_beta2")]
    pub beta2: f64,
    /// Adam's epsilon.
    #[serde(default = "default_adam_eps")]
    pub adam_eps: f64,
    /// Initial learning rate.
    pub lr: f64,
    /// Learning-rate schedule.
    #[serde(default = "default_schedule")]
    pub schedule: Schedule,
    /// Number of epochs.
    pub epochs: u32,
    /// Logical batch size.
    pub batch_size: BatchSize,
    /// L2 weight decay added to the gradient of every learnable tensor.
    #[serde(default)]
    pub weight_decay: f64,
    /// Seed of initialization, data order and augmentation.
    #[serde(default)]
    pub seed: u64,
    /// Keep a checkpoint every this many epochs (epoch 0 and the last are always kept).
    #[serde(default = "default_save_every")]
    pub save_every: u32,
    /// Train on a fixed subset of this many examples (0: all).
    #[serde(default)]
    pub train_subset: usize,
    /// Measure test metrics on a fixed subset of this many examples (0: all).
    #[serde(default)]
    pub test_subset: usize,
    /// Random crop (padding 4) and horizontal flip while training.
    #[serde(default = "default_true")]
    pub augment: bool,
    /// Largest physical batch: larger logical batches are split into micro-batches whose
    /// gradients are accumulated (BatchNorm then normalizes each micro-batch by its own
    /// statistics, like "ghost batch norm").
    #[serde(default = "default_micro_batch")]
    pub max_micro_batch: usize,
}

impl TrainConfig {
    /// Only an architecture, for a network trained elsewhere: no epochs, no learning rate, the
    /// other settings at their defaults (an imported run's record; never trained with).
    pub fn architecture(model: Arch, width: f64) -> Self {
        let mut table = toml::Table::new();
        table.insert("model".into(), model.to_string().into());
        table.insert("width".into(), width.into());
        table.insert("optimizer".into(), "sgd".into());
        table.insert("lr".into(), 0.0.into());
        table.insert("epochs".into(), 0.into());
        table.insert("batch_size".into(), 128.into());
        table
            .try_into()
            .expect("the required keys of a training config, each of its type")
    }

    /// Checks ranges; errors name the key (`lr: expected a positive number, got -0.1`).
    pub fn validate(&self) -> Result<()> {
        fn check(ok: bool, key: &str, expected: &str, got: impl std::fmt::Display) -> Result<()> {
            if !ok {
                bail!("{key}: expected {expected}, got {got}");
            }
            Ok(())
        }
        check(
            self.model != Arch::Imported,
            "model",
            "a network `landscape models` lists (an imported one is not trained)",
            self.model,
        )?;
        check(
            self.width > 0.0 && self.width.is_finite(),
            "width",
            "a positive number",
            self.width,
        )?;
        check(
            self.lr > 0.0 && self.lr.is_finite(),
            "lr",
            "a positive number",
            self.lr,
        )?;
        check(
            (0.0..1.0).contains(&self.momentum),
            "momentum",
            "a number in [0, 1)",
            self.momentum,
        )?;
        check(
            (0.0..1.0).contains(&self.beta1),
            "beta1",
            "a number in [0, 1)",
            self.beta1,
        )?;
        check(
            (0.0..1.0).contains(&self.beta2),
            "beta2",
            "a number in [0, 1)",
            self.beta2,
        )?;
        check(
            self.adam_eps > 0.0,
            "adam_eps",
            "a positive number",
            self.adam_eps,
        )?;
        check(self.epochs >= 1, "epochs", "at least 1", self.epochs)?;
        check(
            self.weight_decay >= 0.0 && self.weight_decay.is_finite(),
            "weight_decay",
            "a non-negative number",
            self.weight_decay,
        )?;
        check(
            self.save_every >= 1,
            "save_every",
            "at least 1",
            self.save_every,
        )?;
        check(
            self.max_micro_batch >= 1,
            "max_micro_batch",
            "at least 1",
            self.max_micro_batch,
        )?;
        check(
            !self.nesterov || self.momentum > 0.0,
            "nesterov",
            "momentum > 0 with Nesterov",
            self.momentum,
        )?;
        match &self.batch_size {
            BatchSize::Examples(b) => check(*b >= 1, "batch_size", "at least 1", b)?,
            share @ BatchSize::Share(_) => {
                share
                    .resolve(100)
                    .map_err(|e| anyhow::anyhow!("batch_size: {e}"))?;
            }
        }
        if let Schedule::Step {
            milestones,
            fractions,
            gamma,
        } = &self.schedule
        {
            check(
                *gamma > 0.0 && *gamma <= 1.0,
                "schedule.gamma",
                "a number in (0, 1]",
                gamma,
            )?;
            for f in fractions {
                check(
                    *f > 0.0 && *f < 1.0,
                    "schedule.fractions",
                    "fractions in (0, 1)",
                    f,
                )?;
            }
            for m in milestones {
                check(
                    *m >= 1 && *m < self.epochs,
                    "schedule.milestones",
                    "epochs in [1, epochs)",
                    m,
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_imported_architecture_is_not_trained() {
        let mut config = TrainConfig::architecture(Arch::Imported, 1.0);
        (config.lr, config.epochs) = (0.1, 1);
        let err = config.validate().unwrap_err().to_string();
        assert!(
            err.starts_with("model: expected a network `landscape models` lists"),
            "{err}"
        );
        config.model = Arch::Vgg9;
        config.validate().unwrap();
    }

    #[test]
    fn step_schedule_decays_after_milestones_like_multisteplr() {
        let s = Schedule::Step {
            milestones: vec![150, 225, 275],
            fractions: vec![],
            gamma: 0.1,
        };
        assert_eq!(s.lr_at(0.1, 1, 300), 0.1);
        assert_eq!(s.lr_at(0.1, 150, 300), 0.1);
        assert!((s.lr_at(0.1, 151, 300) - 0.01).abs() < 1e-12);
        assert!((s.lr_at(0.1, 226, 300) - 0.001).abs() < 1e-12);
        assert!((s.lr_at(0.1, 300, 300) - 0.0001).abs() < 1e-12);
    }

    #[test]
    fn fractions_keep_the_papers_ratios_at_any_length() {
        let s = Schedule::Step {
            milestones: vec![],
            fractions: vec![0.5, 0.75, 0.9167],
            gamma: 0.1,
        };
        assert_eq!(s.resolved(300).decay_epochs(300), vec![150, 225, 275]);
        assert_eq!(s.resolved(24).decay_epochs(24), vec![12, 18, 22]);
        assert_eq!(s.lr_at(0.1, 13, 24), s.resolved(24).lr_at(0.1, 13, 24));
    }

    #[test]
    fn cosine_starts_at_lr_and_ends_near_zero() {
        assert_eq!(Schedule::Cosine.lr_at(0.1, 1, 10), 0.1);
        assert!(Schedule::Cosine.lr_at(0.1, 10, 10) < 0.003);
    }

    #[test]
    fn batch_shares_resolve_against_the_training_set() {
        assert_eq!(
            BatchSize::Share("16.4%".into()).resolve(50_000).unwrap(),
            8200
        );
        assert_eq!(
            BatchSize::Share("16.4%".into()).resolve(10_000).unwrap(),
            1640
        );
        assert_eq!(BatchSize::Examples(128).resolve(10).unwrap(), 128);
        assert!(BatchSize::Share("lots".into()).resolve(10).is_err());
        assert!(BatchSize::Share("0%".into()).resolve(10).is_err());
    }
}
