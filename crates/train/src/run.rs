//! A training run's identity and its directory: `<workdir>/<model>-<hash>/`, where the hash
//! covers everything that determines the run, so the same settings find the same directory
//! and any change trains anew.

use crate::config::{BatchSize, TrainConfig};
use anyhow::{Context, Result};
use landscape_core::hash::{ContentHash, content_hash};
use landscape_data::DatasetName;
use landscape_job::toml_file::{read_toml, write_toml};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Bumped whenever the training loop changes what it computes.
pub const TRAINER_VERSION: u32 = 1;

/// The data a run trains on, by content.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataIdentity {
    /// Which data set.
    pub name: DatasetName,
    /// Hash of every image and label of the full data set.
    pub fingerprint: ContentHash,
    /// Number of classes.
    pub classes: usize,
}

/// Everything that determines a run: resolved settings (batch size in examples, schedule in
/// epochs), the data, and the versions of the model definitions and of the trainer. The device
/// is recorded beside it, not hashed, so analyses on another device find the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// The resolved training settings.
    pub train: TrainConfig,
    /// The data.
    pub data: DataIdentity,
    /// [`landscape_models::DEFINITION_VERSION`] at training time.
    pub model_definition: u32,
    /// [`TRAINER_VERSION`] at training time.
    pub trainer: u32,
    /// For a network trained elsewhere (`landscape import`): the file its parameters came
    /// from, by content. Its `train` then says only the architecture (no epochs, no training
    /// settings). Left out of trained runs' records, so their ids are what they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported: Option<Imported>,
}

/// Where an imported network's parameters came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Imported {
    /// The file's format (`pytorch`).
    pub format: String,
    /// SHA-256 of the file's bytes.
    pub sha256: ContentHash,
}

impl DataIdentity {
    /// The data by content: one's own files without where they lie (see
    /// [`DatasetName::by_content`]), so two records of the same files moved compare equal.
    pub fn by_content(&self) -> DataIdentity {
        DataIdentity {
            name: self.name.by_content(),
            ..self.clone()
        }
    }
}

impl RunConfig {
    /// Resolves `train` against a training set of `train_examples` (after the subset).
    pub fn resolve(
        mut train: TrainConfig,
        data: DataIdentity,
        train_examples: usize,
    ) -> Result<Self> {
        train.validate()?;
        landscape_models::Network::new(landscape_models::NetworkSpec {
            arch: train.model,
            width: train.width,
            classes: data.classes,
        })
        .map_err(|e| anyhow::anyhow!("width: {e:#}"))?;
        let batch = train.batch_size.resolve(train_examples)?;
        if batch > train_examples {
            anyhow::bail!(
                "batch_size: {batch} is more than the {train_examples} training examples"
            );
        }
        train.batch_size = BatchSize::Examples(batch);
        train.schedule = train.schedule.resolved(train.epochs);
        Ok(Self {
            train,
            data,
            model_definition: landscape_models::DEFINITION_VERSION,
            trainer: TRAINER_VERSION,
            imported: None,
        })
    }

    /// The identity of a network of `train`'s architecture (see [`TrainConfig::architecture`])
    /// whose parameters were trained elsewhere and imported from a file.
    pub fn imported(train: TrainConfig, data: DataIdentity, imported: Imported) -> Self {
        Self {
            train,
            data,
            model_definition: landscape_models::DEFINITION_VERSION,
            trainer: TRAINER_VERSION,
            imported: Some(imported),
        }
    }

    /// What is legal but probably not meant (one sentence each): a batch that leaves fewer than
    /// two steps an epoch on `train_examples`, a learning rate far above the usual ones.
    pub fn warnings(&self, train_examples: usize) -> Vec<String> {
        let mut out = Vec::new();
        let batch = self.batch_size();
        if 2 * batch > train_examples {
            out.push(format!(
                "batch_size {batch} leaves {} step(s) an epoch on {train_examples} training examples",
                train_examples.div_ceil(batch)
            ));
        }
        let (usual, optimizer) = match self.train.optimizer {
            crate::config::OptimizerKind::Sgd => (1.0, "SGD"),
            crate::config::OptimizerKind::Adam => (0.01, "Adam"),
        };
        if self.train.lr > usual {
            out.push(format!(
                "lr {} is above {usual}, beyond what {optimizer} usually trains with: expect divergence",
                self.train.lr
            ));
        }
        out
    }

    /// The logical batch size in examples.
    pub fn batch_size(&self) -> usize {
        match self.train.batch_size {
            BatchSize::Examples(b) => b,
            BatchSize::Share(_) => unreachable!("resolved in RunConfig::resolve"),
        }
    }

    /// The run's id: model name and 12 hex digits of the content hash. One's own data enters
    /// by its fingerprint, not its path, so moving the files finds the same run.
    pub fn id(&self) -> String {
        format!(
            "{}-{}",
            self.train.model,
            content_hash(&self.by_content()).short()
        )
    }

    /// The identity without where one's own data lies (see [`DataIdentity::by_content`]).
    pub fn by_content(&self) -> RunConfig {
        RunConfig {
            data: self.data.by_content(),
            ..self.clone()
        }
    }
}

/// What `run.toml` records: the identity plus labels for people (not hashed).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunRecord {
    /// The run id.
    pub id: String,
    /// The experiment that asked for it first.
    pub experiment: String,
    /// The values of the swept keys for this run (`batch_size = "128"`, ...).
    pub sweep: BTreeMap<String, String>,
    /// The data set the spec named, when another one was used instead.
    pub substituted_for: Option<DatasetName>,
    /// Where it trained (`cpu` or `cuda`).
    pub device: String,
    /// Everything that determines the run.
    pub config: RunConfig,
}

/// Where a run is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// Started, not finished (or killed): rerunning resumes it.
    Running,
    /// All epochs done.
    Complete,
    /// The loss became NaN or infinite; the run stopped there.
    Diverged,
}

/// `status.toml`: the state and the final numbers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunStatus {
    /// The state.
    pub state: RunState,
    /// Epochs completed.
    pub epochs_done: u32,
    /// Final test accuracy, percent (of the last completed epoch).
    pub test_acc: Option<f64>,
    /// Final test loss.
    pub test_loss: Option<f64>,
    /// Final mean training loss.
    pub train_loss: Option<f64>,
    /// A sentence for people (why it diverged, ...).
    pub message: String,
    /// What computed the gradients of the last session (`cpu-kernels-avx512`, `burn`, ...;
    /// see [`crate::TrainEngine::name`]); empty in runs recorded before it was kept.
    #[serde(default)]
    pub engine: String,
}

/// The files of one run.
#[derive(Clone, Debug)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    /// The directory of run `id` under `workdir`.
    pub fn new(workdir: &Path, id: &str) -> Self {
        Self {
            root: workdir.join(id),
        }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `run.toml`.
    pub fn record_path(&self) -> PathBuf {
        self.root.join("run.toml")
    }

    /// `status.toml`.
    pub fn status_path(&self) -> PathBuf {
        self.root.join("status.toml")
    }

    /// `network.json`: the graph of an imported network that is not built by name (ONNX).
    pub fn graph_path(&self) -> PathBuf {
        self.root.join("network.json")
    }

    /// `metrics.csv`.
    pub fn metrics_path(&self) -> PathBuf {
        self.root.join("metrics.csv")
    }

    /// The parameters after `epoch` (kept every `save_every` epochs, at 0 and at the end).
    pub fn checkpoint_path(&self, epoch: u32) -> PathBuf {
        self.root
            .join("checkpoints")
            .join(format!("epoch_{epoch:04}.safetensors"))
    }

    /// The latest parameters and optimizer state, from which a killed run resumes.
    pub fn resume_path(&self) -> PathBuf {
        self.root.join("last.safetensors")
    }

    /// Epochs that have a checkpoint, ascending.
    pub fn checkpoint_epochs(&self) -> Result<Vec<u32>> {
        let dir = self.root.join("checkpoints");
        let mut epochs = Vec::new();
        if dir.exists() {
            for entry in
                std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))?
            {
                let name = entry?.file_name().to_string_lossy().into_owned();
                if let Some(e) = name
                    .strip_prefix("epoch_")
                    .and_then(|s| s.strip_suffix(".safetensors"))
                    && let Ok(e) = e.parse()
                {
                    epochs.push(e);
                }
            }
        }
        epochs.sort_unstable();
        Ok(epochs)
    }

    /// Reads `run.toml`.
    pub fn read_record(&self) -> Result<RunRecord> {
        read_toml(&self.record_path())
    }

    /// Writes `run.toml`.
    pub fn write_record(&self, record: &RunRecord) -> Result<()> {
        write_toml(&self.record_path(), record)
    }

    /// Reads `status.toml` (`None` when the run never started).
    pub fn read_status(&self) -> Result<Option<RunStatus>> {
        let path = self.status_path();
        if !path.exists() {
            return Ok(None);
        }
        read_toml(&path).map(Some)
    }

    /// Writes `status.toml`.
    pub fn write_status(&self, status: &RunStatus) -> Result<()> {
        write_toml(&self.status_path(), status)
    }
}
