//! Experiment specs: TOML files users edit and rerun.
//!
//! A spec has an `[experiment]` table (name, title, paper figure, dataset), a `[train]` table
//! whose list values are swept (their cartesian product is the set of runs), `[[analysis]]`
//! blocks (surfaces, interpolations, ...; their settings are read by the kinds in
//! `landscape-pipeline`), and `[scale.smoke]`, `[scale.quick]`,
//! `[scale.paper]` tables that override keys, and an optional `[slurm]` table of cluster
//! resources for `landscape submit`. Every key is checked: an unknown key, a wrong
//! type or an out-of-range value is one line naming the file and the key path, and nothing
//! starts.
//!
//! ```
//! let text = r#"
//! [experiment]
//! name = "demo"
//! title = "Two batch sizes"
//! dataset = "synthetic"
//! [train]
//! model = "resnet20"
//! optimizer = "sgd"
//! lr = 0.1
//! epochs = 10
//! batch_size = [128, "16.4%"]
//! weight_decay = [0.0, 5e-4]
//! [scale.smoke.train]
//! epochs = 1
//! "#;
//! let spec = landscape_spec::Spec::parse(text, "demo.toml".as_ref(), landscape_spec::Scale::Smoke, &[]).unwrap();
//! assert_eq!(spec.runs.len(), 4);
//! assert_eq!(spec.runs[0].config.epochs, 1);
//! ```

pub mod analysis;
mod overrides;
pub mod source;
mod sweep;

pub use analysis::AnalysisBlock;
pub use source::SpecSource;

use anyhow::{Context, Result, bail};
use landscape_data::DatasetName;
use landscape_slurm::Resources;
use landscape_train::TrainConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml::{Table, Value};

/// Which size of an experiment to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    /// Seconds: tiny networks and data, for tests and CI.
    Smoke,
    /// Minutes on a 2-core CPU, keeping the paper's ratios (the default).
    #[default]
    Quick,
    /// The paper's recipe.
    Paper,
}

impl Scale {
    /// The name in specs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Scale::Smoke => "smoke",
            Scale::Quick => "quick",
            Scale::Paper => "paper",
        }
    }
}

impl std::str::FromStr for Scale {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "smoke" => Ok(Scale::Smoke),
            "quick" => Ok(Scale::Quick),
            "paper" => Ok(Scale::Paper),
            _ => bail!("unknown scale `{s}`: expected smoke, quick or paper"),
        }
    }
}

/// The `[experiment]` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// Short name, used in result paths (`results/<name>/`).
    pub name: String,
    /// One line saying what the experiment shows.
    pub title: String,
    /// The paper's figure it reproduces (`figure3`), if any.
    #[serde(default)]
    pub figure: Option<String>,
    /// The data set it names (a stand-in may be used where a built-in one is missing; see
    /// README). The relative path of one's own data (`folder:pets`) is read from the spec's
    /// folder.
    pub dataset: DatasetName,
}

/// One training run of the sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepRun {
    /// Its settings.
    pub config: TrainConfig,
    /// The values of the swept keys for this run, e.g. `batch_size = 128`.
    pub sweep: BTreeMap<String, Value>,
}

impl SweepRun {
    /// The swept values as `key=value` text, for labels.
    pub fn label(&self) -> String {
        self.sweep
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A parsed, validated spec at one scale.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    /// The file it came from.
    pub path: PathBuf,
    /// The scale it was resolved at.
    pub scale: Scale,
    /// The `[experiment]` table.
    pub experiment: Experiment,
    /// The runs, in sweep order.
    pub runs: Vec<SweepRun>,
    /// The swept keys, in order.
    pub swept: Vec<String>,
    /// The analyses, in file order (their settings are read by `landscape-pipeline`).
    pub analyses: Vec<AnalysisBlock>,
    /// What each task asks a Slurm cluster for (`[slurm]`; `landscape submit` flags win).
    pub slurm: Resources,
}

impl Spec {
    /// Reads and resolves the spec at `path` at `scale`, then applies `sets` (`key.path=value`).
    pub fn load(path: &Path, scale: Scale, sets: &[String]) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text, path, scale, sets)
    }

    /// Like [`Spec::load`] from text already read; `path` names it in errors.
    pub fn parse(text: &str, path: &Path, scale: Scale, sets: &[String]) -> Result<Self> {
        let mut spec = Self::resolve(text, scale, sets)
            .map_err(|e| anyhow::anyhow!("{}: {e:#}", path.display()))?;
        spec.path = path.to_path_buf();
        let folder = path.parent().unwrap_or(Path::new(""));
        spec.experiment.dataset = spec.experiment.dataset.anchored(folder);
        Ok(spec)
    }

    fn resolve(text: &str, scale: Scale, sets: &[String]) -> Result<Self> {
        let mut root: Table = text.parse::<Table>().map_err(|e| {
            let message = e
                .to_string()
                .lines()
                .filter(|l| !l.trim().is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            anyhow::anyhow!(
                "not valid TOML: {}",
                message.split_whitespace().collect::<Vec<_>>().join(" ")
            )
        })?;
        for key in root.keys() {
            if !["experiment", "train", "analysis", "scale", "slurm"].contains(&key.as_str()) {
                bail!("{key}: unknown table, expected experiment, train, analysis, scale or slurm");
            }
        }
        let scales = match root.remove("scale") {
            Some(Value::Table(t)) => t,
            Some(_) => bail!("scale: expected tables [scale.smoke], [scale.quick], [scale.paper]"),
            None => Table::new(),
        };
        for name in scales.keys() {
            name.parse::<Scale>()
                .map_err(|e| anyhow::anyhow!("scale.{name}: {e}"))?;
        }
        let mut analyses = analysis::analyses_by_name(root.remove("analysis"))?;
        if let Some(over) = scales.get(scale.name()) {
            overrides::apply_scale(&mut root, &mut analyses, over, scale.name())?;
        } else if scale != Scale::Paper {
            bail!(
                "scale.{}: the spec has no [scale.{}] table (it has: {})",
                scale.name(),
                scale.name(),
                names(&scales)
            );
        }
        for set in sets {
            overrides::apply_set(&mut root, &mut analyses, set)?;
        }
        let experiment: Experiment = deserialize_at(
            root.remove("experiment")
                .context("experiment: missing table")?,
            "experiment",
        )?;
        let train = match root.remove("train") {
            Some(Value::Table(t)) => t,
            _ => bail!("train: missing table"),
        };
        let slurm = match root.remove("slurm") {
            Some(value) => deserialize_at(value, "slurm")?,
            None => Resources::default(),
        };
        let (runs, swept) = sweep::expand(train)?;
        let analyses = analyses
            .into_iter()
            .map(|(name, table)| AnalysisBlock::from_table(&name, table, &swept))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            path: PathBuf::new(),
            scale,
            experiment,
            runs,
            swept,
            analyses,
            slurm,
        })
    }
}

fn names(t: &Table) -> String {
    if t.is_empty() {
        "none".into()
    } else {
        t.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}

/// Deserializes `value` into `T`, reporting errors with the key path under `prefix`.
pub fn deserialize_at<T: serde::de::DeserializeOwned>(value: Value, prefix: &str) -> Result<T> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let path = if inner == "." || inner.is_empty() {
            prefix.to_string()
        } else {
            format!("{prefix}.{inner}")
        };
        // toml appends "\nin `key`" to its messages; the path already says where.
        let message = e.into_inner().to_string();
        anyhow::anyhow!(
            "{path}: {}",
            message.lines().next().unwrap_or_default().trim()
        )
    })
}
