//! The runs of a spec: planned (resolved and keyed), trained (or found), and reopened later by
//! id for analyses.

use crate::Context;
use crate::data::ResolvedData;
use anyhow::{Context as _, Result, bail};
use burn::tensor::Device;
use landscape_core::hash::ContentHash;
use landscape_core::tensor_file::TensorFile;
use landscape_models::{Arch, Network, NetworkSpec, ParamSet, checkpoint};
use landscape_spec::{Spec, SweepRun};
use landscape_surface::surface::PointRef;
use landscape_train::data::fixed_subset;
use landscape_train::run::RunState;
use landscape_train::{DataIdentity, RunConfig, RunData, RunDir, RunRecord, RunStatus, train_run};
use std::collections::HashMap;
use std::path::Path;

/// A run of a spec with its identity resolved.
#[derive(Clone, Debug)]
pub struct PlannedRun {
    /// The sweep entry it comes from.
    pub sweep: SweepRun,
    /// What `run.toml` records.
    pub record: RunRecord,
}

/// Resolves every run of `spec` against the data.
pub fn plan(ctx: &Context, spec: &Spec, data: &ResolvedData) -> Result<Vec<PlannedRun>> {
    let ds = &data.dataset;
    let identity = DataIdentity {
        name: ds.name.clone(),
        fingerprint: ds.fingerprint.clone(),
        classes: ds.classes,
    };
    spec.runs
        .iter()
        .map(|sweep| {
            for (key, asked, have) in [
                ("train_subset", sweep.config.train_subset, ds.train.len()),
                ("test_subset", sweep.config.test_subset, ds.test.len()),
            ] {
                if asked > have {
                    bail!(
                        "{}: train.{key}: {asked} is more than the {have} examples of `{}`",
                        spec.path.display(),
                        ds.name
                    );
                }
            }
            let n = fixed_subset(&ds.train, sweep.config.train_subset).len();
            let config = RunConfig::resolve(sweep.config.clone(), identity.clone(), n)
                .map_err(|e| anyhow::anyhow!("{}: train.{e:#}", spec.path.display()))?;
            for warning in config.warnings(n) {
                eprintln!(
                    "warning: {}: run {}: train.{warning}",
                    spec.path.display(),
                    sweep.label()
                );
            }
            let record = RunRecord {
                id: config.id(),
                experiment: spec.experiment.name.clone(),
                sweep: sweep
                    .sweep
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_string()))
                    .collect(),
                substituted_for: data.substituted_for.clone(),
                device: ctx.device_kind.name().into(),
                config,
            };
            Ok(PlannedRun {
                sweep: sweep.clone(),
                record,
            })
        })
        .collect()
}

/// A planned run after training.
#[derive(Clone, Debug)]
pub struct TrainedRun {
    /// The plan.
    pub planned: PlannedRun,
    /// How it ended.
    pub status: RunStatus,
}

/// Trains every planned run in order (finished runs are cache hits); a diverged run is
/// reported and the sweep goes on.
pub fn train_all(
    ctx: &Context,
    spec: &Spec,
    data: &ResolvedData,
    planned: &[PlannedRun],
) -> Result<Vec<TrainedRun>> {
    let mut prepared: HashMap<(usize, usize), RunData> = HashMap::new();
    let mut trained = Vec::new();
    for (i, run) in planned.iter().enumerate() {
        let train = &run.record.config.train;
        let key = (train.train_subset, train.test_subset);
        if let std::collections::hash_map::Entry::Vacant(e) = prepared.entry(key) {
            e.insert(RunData::prepare(&data.dataset, key.0, key.1, &ctx.device)?);
        }
        let label = format!(
            "[{}/{}] {} {} {}",
            i + 1,
            planned.len(),
            spec.experiment.name,
            train.model,
            run.sweep.label()
        );
        let status = train_run(
            &ctx.workdir,
            &run.record,
            &prepared[&key],
            &ctx.device,
            &label,
        )
        .with_context(|| format!("training run {} ({})", run.record.id, run.sweep.label()))?;
        eprintln!(
            "{} {}: {:?} after {} epochs, test accuracy {}",
            run.record.id,
            run.sweep.label(),
            status.state,
            status.epochs_done,
            status.test_acc.map_or("-".into(), |a| format!("{a:.2}%"))
        );
        trained.push(TrainedRun {
            planned: run.clone(),
            status,
        });
    }
    Ok(trained)
}

/// A finished run reopened by id: its record, network and directory.
pub struct OpenRun {
    /// `run.toml`.
    pub record: RunRecord,
    /// The network it trained.
    pub network: Network,
    /// Its files.
    pub dir: RunDir,
    /// Epochs completed.
    pub epochs_done: u32,
}

impl OpenRun {
    /// Opens run `id` under `workdir`; it must have finished training.
    pub fn open(workdir: &Path, id: &str) -> Result<Self> {
        let dir = RunDir::new(workdir, id);
        if !dir.record_path().exists() {
            bail!(
                "no run `{id}` in {} (`landscape runs` lists them)",
                workdir.display()
            );
        }
        let record = dir.read_record()?;
        let status = dir
            .read_status()?
            .with_context(|| format!("run {id} never started training"))?;
        match status.state {
            RunState::Complete => {}
            RunState::Running => bail!(
                "run {id} has not finished training ({} epochs done): rerun its training first",
                status.epochs_done
            ),
            RunState::Diverged => bail!(
                "run {id} diverged ({}); there is no minimum to analyse",
                status.message
            ),
        }
        let network = match record.config.train.model {
            Arch::Imported => Network::load_graph(&dir.graph_path())?,
            arch => Network::new(NetworkSpec {
                arch,
                width: record.config.train.width,
                classes: record.config.data.classes,
            })?,
        };
        Ok(Self {
            record,
            network,
            dir,
            epochs_done: status.epochs_done,
        })
    }

    /// SHA-256 of the checkpoint of `epoch`.
    pub fn checkpoint_hash(&self, epoch: u32) -> Result<ContentHash> {
        ContentHash::of_file(&self.dir.checkpoint_path(epoch))
    }

    /// The point after `epoch` (default: the last): its name and content hash, and its
    /// parameters. The checkpoint must say it is this run's, at this epoch.
    pub fn point(&self, epoch: Option<u32>, device: &Device) -> Result<(PointRef, ParamSet)> {
        let epoch = epoch.unwrap_or(self.epochs_done);
        let path = self.dir.checkpoint_path(epoch);
        if !path.exists() {
            let kept = self.dir.checkpoint_epochs()?;
            bail!(
                "run {} has no checkpoint for epoch {epoch} (kept: {kept:?})",
                self.record.id
            );
        }
        let (file, hash) = TensorFile::read_hashed(&path)?;
        let (run, at) = (file.meta("run", &path)?, file.meta("epoch", &path)?);
        if run != self.record.id || at != epoch.to_string() {
            bail!(
                "{}: holds run {run} at epoch {at}, not run {} at epoch {epoch} (copied by hand?); move it away",
                path.display(),
                self.record.id
            );
        }
        let params = checkpoint::from_tensor_file(&file, self.network.layout(), device, &path)?;
        let point = PointRef {
            run: self.record.id.clone(),
            epoch,
            checkpoint: hash,
        };
        Ok((point, params))
    }
}
