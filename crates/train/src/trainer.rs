//! The training loop: epochs of shuffled, augmented logical batches, each split into
//! micro-batches whose gradients are accumulated, one optimizer step per logical batch, and
//! after each epoch a measurement, a checkpoint when due, and a resumable state.
//!
//! burn-train's `Learner` is not used: it steps schedulers per iteration rather than per epoch,
//! has no gradient accumulation across micro-batches with per-micro-batch BatchNorm updates,
//! and its checkpoints do not restore the data order and augmentation stream mid-sweep. Here a
//! run killed at any moment resumes from the last complete epoch and ends bit-identical to an
//! uninterrupted run on the same backend and thread count: every random choice (init, order,
//! augmentation) is a function of (seed, epoch, example), and the optimizer state is saved.

use crate::data::RunData;
use crate::engine::{MicroBatch, TrainEngine};
use crate::metrics::{self, EpochMetrics};
use crate::optimizer::Optimizer;
use crate::run::{RunDir, RunRecord, RunState, RunStatus};
use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use landscape_core::atomic::remove_stale_temporaries;
use landscape_core::progress::Progress;
use landscape_core::tensor_file::TensorFile;
use landscape_data::{Augmentation, epoch_order, fill_batch};
use landscape_job::lock::{LOCK_FILE, Lock};
use landscape_models::checkpoint;
use landscape_models::eval::Evaluator;
use landscape_models::{Network, NetworkSpec, ParamKind, ParamSet};
use std::collections::BTreeMap;
use std::time::Instant;

/// Trains (or resumes, or finds finished) the run described by `record` under `workdir`.
///
/// Returns the final status; a finished or diverged run returns at once (cache hit).
pub fn train_run(
    workdir: &std::path::Path,
    record: &RunRecord,
    data: &RunData,
    device: &Device,
    label: &str,
) -> Result<RunStatus> {
    let dir = RunDir::new(workdir, &record.id);
    // One process trains a run at a time; a second one waits, then finds it finished.
    let _lock = Lock::acquire(dir.root(), LOCK_FILE, label)?;
    for sub in [dir.root().to_path_buf(), dir.root().join("checkpoints")] {
        remove_stale_temporaries(&sub)?;
    }
    if dir.record_path().exists() {
        let existing = dir.read_record()?;
        if existing.config.by_content() != record.config.by_content() {
            bail!(
                "{}: holds a different run than its id says (edited by hand?); move it away and rerun",
                dir.record_path().display()
            );
        }
        if existing.config != record.config {
            // One's own data moved: the record says where it lies now, for later analyses.
            dir.write_record(&RunRecord {
                config: record.config.clone(),
                ..existing
            })?;
        }
        if let Some(status) = dir.read_status()?
            && status.state != RunState::Running
        {
            return Ok(status);
        }
    } else {
        dir.write_record(record)?;
    }
    let mut session = Session::open(dir, record, data, device)?;
    session.run(label)
}

/// A run in progress: network, parameters, optimizer and the epochs measured so far.
struct Session<'a> {
    dir: RunDir,
    record: &'a RunRecord,
    data: &'a RunData,
    network: Network,
    engine: TrainEngine,
    evaluator: Evaluator,
    params: ParamSet,
    optimizer: Optimizer,
    metrics: Vec<EpochMetrics>,
}

impl<'a> Session<'a> {
    /// Starts fresh (epoch 0 measured and saved) or resumes from the last saved epoch.
    fn open(
        dir: RunDir,
        record: &'a RunRecord,
        data: &'a RunData,
        device: &Device,
    ) -> Result<Self> {
        let config = &record.config;
        let network = Network::new(NetworkSpec {
            arch: config.train.model,
            width: config.train.width,
            classes: config.data.classes,
        })?;
        let evaluator = Evaluator::new(network.layers());
        let engine = TrainEngine::new(&network, device);
        let mut optimizer = Optimizer::new(&config.train, network.layout());
        let resume = dir.resume_path();
        let (params, metrics) = if resume.exists() {
            let file = TensorFile::read(&resume)?;
            let owner = file.meta("run", &resume)?;
            if owner != record.id {
                bail!(
                    "{}: is the resumable state of run {owner}, not {}; move it away",
                    resume.display(),
                    record.id
                );
            }
            let params = checkpoint::from_tensor_file(&file, network.layout(), device, &resume)?;
            optimizer.restore(network.layout(), &file, &resume, device)?;
            let epoch: u32 = file
                .meta("epoch", &resume)?
                .parse()
                .with_context(|| format!("{}: epoch", resume.display()))?;
            let mut metrics = metrics::read(&dir.metrics_path())?;
            if metrics.len() <= epoch as usize {
                bail!(
                    "{}: has {} epochs but the resumable state is at epoch {epoch}",
                    dir.metrics_path().display(),
                    metrics.len()
                );
            }
            // Rows after the saved state belong to an epoch that will be trained again.
            metrics.truncate(epoch as usize + 1);
            (params, metrics)
        } else {
            (network.init(config.train.seed, device), Vec::new())
        };
        let mut session = Self {
            dir,
            record,
            data,
            engine,
            network,
            evaluator,
            params,
            optimizer,
            metrics,
        };
        if session.metrics.is_empty() {
            let row = session.measure(0, config.train.lr, None, 0.0);
            session.metrics.push(row);
            session.save_epoch(0)?;
        }
        Ok(session)
    }

    fn epochs_done(&self) -> u32 {
        self.metrics.len() as u32 - 1
    }

    fn run(&mut self, label: &str) -> Result<RunStatus> {
        let train = &self.record.config.train;
        let n = self.data.train.len();
        let batch = self.record.config.batch_size();
        let steps_per_epoch = n.div_ceil(batch) as u64;
        let progress = Progress::new(
            label,
            train.epochs as u64 * steps_per_epoch,
            self.epochs_done() as u64 * steps_per_epoch,
        );
        self.write_status(RunState::Running, "training")?;
        for epoch in self.epochs_done() + 1..=train.epochs {
            let start = Instant::now();
            let lr = train.schedule.lr_at(train.lr, epoch, train.epochs);
            let order = epoch_order(n, train.seed, epoch as u64);
            let augment = train
                .augment
                .then(|| Augmentation::standard(train.seed, epoch as u64));
            let (mut loss_sum, mut correct) = (0.0f64, 0i64);
            for (step, indices) in order.chunks(batch).enumerate() {
                let (loss, right) = self.step(indices, augment.as_ref(), lr);
                if !loss.is_finite() {
                    return self.diverged(epoch, step, loss, lr, start, &progress);
                }
                loss_sum += loss * indices.len() as f64;
                correct += right;
                let done = (epoch as u64 - 1) * steps_per_epoch + step as u64 + 1;
                progress.update(
                    done,
                    format!("epoch {epoch}/{} loss {:.3}", train.epochs, loss),
                );
            }
            let train_stats = (loss_sum / n as f64, 100.0 * correct as f64 / n as f64);
            let row = self.measure(epoch, lr, Some(train_stats), start.elapsed().as_secs_f64());
            if !row.test_loss.is_finite() {
                let message = format!("diverged after epoch {epoch}: test loss {}", row.test_loss);
                self.metrics.push(row);
                return self.stop_diverged(message, &progress);
            }
            progress.update(
                epoch as u64 * steps_per_epoch,
                format!(
                    "epoch {epoch}/{} loss {:.3} acc {:.1}% test {:.1}%",
                    train.epochs,
                    row.train_loss.unwrap_or(f64::NAN),
                    row.train_acc.unwrap_or(f64::NAN),
                    row.test_acc
                ),
            );
            self.metrics.push(row);
            self.save_epoch(epoch)?;
            // Live progress for `landscape runs`.
            self.write_status(RunState::Running, "training")?;
        }
        let last = self.metrics.last().expect("epoch rows").clone();
        progress.finish(format!("test accuracy {:.2}%", last.test_acc));
        self.write_status(RunState::Complete, "complete")
    }

    /// One logical batch, cut into near-equal micro-batches of at most `max_micro_batch`
    /// examples. Returns the batch's mean loss and number of correct predictions.
    fn step(&mut self, indices: &[usize], augment: Option<&Augmentation>, lr: f64) -> (f64, i64) {
        let micro_count = indices
            .len()
            .div_ceil(self.record.config.train.max_micro_batch);
        let micro_size = indices.len().div_ceil(micro_count);
        let data = self.data;
        let micro_batches = indices.chunks(micro_size).map(|micro| {
            let mut images = Vec::new();
            fill_batch(
                &data.train,
                micro,
                &data.normalization,
                augment,
                &mut images,
            );
            let labels = micro.iter().map(|&i| data.train.labels[i]).collect();
            MicroBatch { images, labels }
        });
        let (params, stats) = self.engine.step(
            &self.network,
            &self.params,
            &mut self.optimizer,
            micro_batches,
            indices.len(),
            lr,
        );
        self.params = params;
        stats
    }

    /// Test metrics and weight norms after `epoch`.
    fn measure(
        &self,
        epoch: u32,
        lr: f64,
        train: Option<(f64, f64)>,
        seconds: f64,
    ) -> EpochMetrics {
        let start = Instant::now();
        let test = self
            .evaluator
            .evaluate(self.params.tensors(), &self.data.test);
        EpochMetrics {
            epoch,
            lr,
            train_loss: train.map(|t| t.0),
            train_acc: train.map(|t| t.1),
            test_loss: test.loss,
            test_acc: test.accuracy,
            weight_l2: self.params.l2_norm(ParamKind::is_learnable),
            weight_l2_no_biasbn: self
                .params
                .l2_norm(|k| k.is_learnable() && !k.is_bias_or_bn()),
            seconds: seconds + start.elapsed().as_secs_f64(),
        }
    }

    fn metadata(&self, epoch: u32) -> BTreeMap<String, String> {
        let train = &self.record.config.train;
        BTreeMap::from([
            ("run".into(), self.record.id.clone()),
            ("epoch".into(), epoch.to_string()),
            ("model".into(), train.model.to_string()),
            ("width".into(), train.width.to_string()),
            (
                "classes".into(),
                self.record.config.data.classes.to_string(),
            ),
            ("format".into(), "landscape-checkpoint-1".into()),
        ])
    }

    /// Saves what epoch `epoch` leaves: the checkpoint when due, the metrics, then the resumable
    /// state. The order makes a kill at any point safe: the resumable state is written last,
    /// and on resume metrics rows past it are dropped.
    fn save_epoch(&mut self, epoch: u32) -> Result<()> {
        let train = &self.record.config.train;
        if epoch.is_multiple_of(train.save_every) || epoch == train.epochs {
            checkpoint::save(
                &self.dir.checkpoint_path(epoch),
                &self.params,
                self.metadata(epoch),
            )?;
        }
        metrics::write(&self.dir.metrics_path(), &self.metrics)?;
        let mut file = checkpoint::to_tensor_file(&self.params, self.metadata(epoch));
        self.optimizer.to_tensors(self.network.layout(), &mut file);
        file.write(&self.dir.resume_path())
    }

    fn diverged(
        &mut self,
        epoch: u32,
        step: usize,
        loss: f64,
        lr: f64,
        start: Instant,
        progress: &Progress,
    ) -> Result<RunStatus> {
        let mut row = self.measure(
            epoch,
            lr,
            Some((loss, f64::NAN)),
            start.elapsed().as_secs_f64(),
        );
        row.train_loss = Some(loss);
        self.metrics.push(row);
        let message = format!(
            "diverged at epoch {epoch}, step {}: training loss {loss}",
            step + 1
        );
        self.stop_diverged(message, progress)
    }

    /// Marks the run diverged after the epoch row just pushed: `message` says where.
    fn stop_diverged(&mut self, message: String, progress: &Progress) -> Result<RunStatus> {
        metrics::write(&self.dir.metrics_path(), &self.metrics)?;
        progress.finish(message.clone());
        eprintln!(
            "warning: run {} {message}; marked diverged, the sweep goes on",
            self.record.id
        );
        self.write_status(RunState::Diverged, &message)
    }

    fn write_status(&self, state: RunState, message: &str) -> Result<RunStatus> {
        let last = self.metrics.last();
        let status = RunStatus {
            state,
            epochs_done: self.epochs_done(),
            test_acc: last.map(|m| m.test_acc),
            test_loss: last.map(|m| m.test_loss),
            train_loss: last.and_then(|m| m.train_loss),
            message: message.to_string(),
            engine: self.engine.name().to_string(),
        };
        self.dir.write_status(&status)?;
        Ok(status)
    }
}
