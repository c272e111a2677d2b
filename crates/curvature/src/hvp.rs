//! The loss of a network over a data set as a function of its learnable parameters, its
//! gradient, and its Hessian-vector products.
//!
//! burn has first-order autodiff only, so `H v` comes from central differences of gradients:
//!
//! ```text
//! H v  ~  (g(theta + e v^) - g(theta - e v^)) / (2 e) * ||v||,      v^ = v / ||v||
//! ```
//!
//! On a ReLU network plain differences are ruined by the kinks: a step of `e` flips the units
//! whose pre-activation is within `e` of zero, which adds an `O(1)` jump to the gradient and
//! makes the estimate grow like `e^-1/2` and lose its symmetry. Here the ReLU masks and max-pool
//! choices are recorded at `theta` ([`Forward::recording`]) and replayed at `theta +- e v^`
//! ([`Forward::replaying`]). The replayed network is smooth, agrees with the real one at
//! `theta`, and has the same first and second derivatives there wherever they exist (ReLU'' = 0
//! almost everywhere): the result is the HVP that double backward gives, Gauss-Newton part and
//! curvature part together, up to the `O(e^2)` truncation of the difference and f32 rounding.
//!
//! Measured (tests/hvp.rs: a conv-ReLU-maxpool-linear-ReLU-linear net on 64 examples, a unit
//! Gaussian `v`, f32, against the same replayed difference in f64 at e = 1e-5):
//!
//! | e | 1e-4 | 1e-3 | 1e-2 | 3e-2 | 1e-1 |
//! |---|---|---|---|---|---|
//! | replayed, relative error | 2.3e-3 | 2.3e-4 | 2.3e-5 | 1.5e-4 | 1.7e-3 |
//! | free (no replay) | 2.3e-3 | 2.3e-4 | 3.2 | 1.4 | 1.2 |
//!
//! f32 rounding dominates below e = 1e-2 (error ~ 2e-7 / e) and the `O(e^2)` truncation above,
//! so the default is e = 1e-2 ([`HvpOptions::default`]); the free difference is exact only
//! while no unit flips (here below e = 1e-3) and wrong by O(1) beyond. On softmax regression
//! (no kinks) the error against the analytic Hessian is 2-4e-5 at e = 1e-2.
//!
//! The loss is the MEAN cross-entropy over every example of the data (BatchNorm in inference
//! mode, running statistics fixed): each batch's summed loss is divided by the total count, so
//! the result does not depend on how the data is batched. (The reference code sums batch means,
//! which multiplies every eigenvalue by the number of batches.)

use crate::vector::{ParamVec, VecShape};
use anyhow::{Result, bail};
use burn::tensor::{Int, Tensor};
use landscape_core::progress::Progress;
use landscape_models::eval::{DeviceBatches, Evaluator};
use landscape_models::forward::{BatchNormMode, Forward, Gates, per_sample_loss};
use landscape_models::graph::Layer;
use landscape_models::{ParamKind, ParamSet};
use serde::{Deserialize, Serialize};
use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Examples on the device in batches, as [`landscape_models::eval::DeviceBatches::batches`]
/// holds them: images `[n, c, h, w]` and labels `[n]`.
pub type Batch = (Tensor<4>, Tensor<1, Int>);

/// Which learnable tensors curvature and sharpness are measured over.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum CurvatureScope {
    /// Every learnable tensor: convolution and linear weights, biases, BatchNorm scale and
    /// shift (the paper's "weights" view).
    #[default]
    Weights,
    /// Convolution and linear weights only; biases and BatchNorm parameters held fixed (the
    /// tensors a filter-normalized direction with `ignore = biasbn` moves).
    WeightsNoBiasbn,
}

impl CurvatureScope {
    /// Whether a tensor of this kind varies.
    pub fn includes(self, kind: ParamKind) -> bool {
        match self {
            CurvatureScope::Weights => kind.is_learnable(),
            CurvatureScope::WeightsNoBiasbn => !kind.is_bias_or_bn(),
        }
    }

    /// The name in files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            CurvatureScope::Weights => "weights",
            CurvatureScope::WeightsNoBiasbn => "weights-no-biasbn",
        }
    }
}

/// Mean loss and error of a parameter point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossError {
    /// Mean cross-entropy (nats).
    pub loss: f64,
    /// Fraction of examples misclassified (0..1).
    pub error: f64,
}

/// A network's mean training loss as a function of the tensors in a [`CurvatureScope`], the
/// others (BatchNorm running statistics, excluded tensors) fixed at a base point.
pub struct LossModel {
    layers: Vec<Layer>,
    base: ParamSet,
    selected: Vec<usize>,
    batches: Vec<Batch>,
    /// The batches again, as inference reads them (and the example count).
    data: DeviceBatches,
    evaluator: Evaluator,
    meter: WorkMeter,
}

/// Work done by a [`LossModel`], in passes over its data (an inference pass counts 1, a
/// gradient 3: forward and two backward products), reported to an optional progress bar.
#[derive(Default)]
struct WorkMeter {
    passes: AtomicU64,
    /// The reporter and the position it had when this model started.
    progress: Option<(Arc<Progress>, u64)>,
}

impl WorkMeter {
    fn add(&self, passes: u64) {
        let done = self.passes.fetch_add(passes, Ordering::Relaxed) + passes;
        if let Some((progress, start)) = &self.progress {
            progress.update(start + done, "passes over the data");
        }
    }
}

/// Passes over the data a gradient costs, in the units of [`LossModel::passes`].
pub const GRADIENT_PASSES: u64 = 3;

impl LossModel {
    /// The loss of the graph `layers` over `batches`, varying the tensors of `scope` around
    /// `base`. Batches larger than `micro_batch` are cut (the gradient graphs of a batch are
    /// held in memory at once); the result does not depend on the cut.
    pub fn new(
        layers: &[Layer],
        base: ParamSet,
        scope: CurvatureScope,
        batches: &[Batch],
        micro_batch: usize,
    ) -> Result<Self> {
        if micro_batch == 0 {
            bail!("micro batch size must be positive");
        }
        let selected: Vec<usize> = base
            .layout()
            .entries()
            .iter()
            .enumerate()
            .filter(|(_, info)| scope.includes(info.kind))
            .map(|(i, _)| i)
            .collect();
        if selected.is_empty() {
            bail!("the network has no tensors in the `{}` scope", scope.name());
        }
        let mut cut = Vec::new();
        for (x, y) in batches {
            let n = y.dims()[0];
            let mut start = 0;
            while start < n {
                let len = micro_batch.min(n - start);
                cut.push((
                    x.clone().narrow(0, start, len),
                    y.clone().narrow(0, start, len),
                ));
                start += len;
            }
        }
        if cut.iter().all(|(_, y)| y.dims()[0] == 0) {
            bail!("curvature needs at least one example");
        }
        Ok(Self {
            layers: layers.to_vec(),
            base,
            selected,
            data: DeviceBatches::from_batches(batches.to_vec())?,
            evaluator: Evaluator::new(layers),
            batches: cut,
            meter: WorkMeter::default(),
        })
    }

    /// The same model reporting its work to `progress`, whose position is `start` now (in
    /// passes over the data: see [`LossModel::passes`]).
    pub fn reporting_to(mut self, progress: Arc<Progress>, start: u64) -> Self {
        self.meter = WorkMeter {
            passes: AtomicU64::new(0),
            progress: Some((progress, start)),
        };
        self
    }

    /// Passes over the data made so far: an evaluation or a recording of the gates counts 1,
    /// a gradient [`GRADIENT_PASSES`].
    pub fn passes(&self) -> u64 {
        self.meter.passes.load(Ordering::Relaxed)
    }

    /// The same loss around another base point (same network, scope and data).
    pub fn at(&self, base: ParamSet) -> Self {
        Self {
            layers: self.layers.clone(),
            base,
            selected: self.selected.clone(),
            batches: self.batches.clone(),
            data: self.data.clone(),
            evaluator: self.evaluator.clone(),
            meter: WorkMeter::default(),
        }
    }

    /// The shape of parameter vectors: one part per varying tensor.
    pub fn shape(&self) -> VecShape {
        let t = &self.base.tensors()[self.selected[0]];
        VecShape {
            sizes: self
                .selected
                .iter()
                .map(|&i| self.base.tensors()[i].dims()[0])
                .collect(),
            device: t.device(),
            dtype: t.dtype(),
        }
    }

    /// The varying tensors at the base point.
    pub fn point(&self) -> ParamVec {
        ParamVec::new(
            self.selected
                .iter()
                .map(|&i| self.base.tensors()[i].clone())
                .collect(),
        )
    }

    /// The base point (every tensor).
    pub fn base(&self) -> &ParamSet {
        &self.base
    }

    /// Layout indices of the varying tensors, in the order of a vector's parts.
    pub fn selected(&self) -> &[usize] {
        &self.selected
    }

    /// Number of examples.
    pub fn examples(&self) -> usize {
        self.data.len()
    }

    /// Number of batches after cutting.
    pub fn batch_count(&self) -> usize {
        self.batches.len()
    }

    /// Every tensor of the point whose varying tensors are `w`.
    pub fn full(&self, w: &ParamVec) -> Vec<Tensor<1>> {
        let mut tensors = self.base.tensors().to_vec();
        for (&i, t) in self.selected.iter().zip(w.parts()) {
            tensors[i] = t.clone();
        }
        tensors
    }

    /// Mean loss and error at `w` (BatchNorm folded, inference mode; on the CPU through the
    /// landscape engine's kernels).
    pub fn evaluate(&self, w: &ParamVec) -> LossError {
        let e = self.evaluator.evaluate(&self.full(w), &self.data);
        self.meter.add(1);
        LossError {
            loss: e.loss,
            error: 1.0 - e.accuracy / 100.0,
        }
    }

    /// The mean loss and its gradient at `w`, for the ordinary (free) network.
    pub fn loss_and_gradient(&self, w: &ParamVec) -> (f64, ParamVec) {
        self.gradient_with(w, None)
    }

    /// The gradient at `w` of the network with the switching pattern `gates` (recorded by
    /// [`LossModel::record_gates`], one per batch) replayed.
    pub fn replayed_gradient(&self, w: &ParamVec, gates: &[Gates]) -> ParamVec {
        assert_eq!(gates.len(), self.batches.len(), "one recording per batch");
        self.gradient_with(w, Some(GateSource::Cached(gates))).1
    }

    /// The ReLU masks and max-pool choices of every batch at `w`.
    pub fn record_gates(&self, w: &ParamVec) -> Vec<Gates> {
        let full = self.full(w);
        let gates = (0..self.batches.len())
            .map(|b| self.record_batch(&full, b))
            .collect();
        self.meter.add(1);
        gates
    }

    fn record_batch(&self, full: &[Tensor<1>], b: usize) -> Gates {
        let mut pass = Forward::recording(full, BatchNormMode::Running);
        pass.logits(&self.layers, self.batches[b].0.clone());
        pass.into_gates()
    }

    fn gradient_with(&self, w: &ParamVec, gates: Option<GateSource<'_>>) -> (f64, ParamVec) {
        let full = self.full(w);
        let recording_point = match &gates {
            Some(GateSource::Record(at)) => Some(self.full(at)),
            _ => None,
        };
        let mut total: Option<Vec<Tensor<1>>> = None;
        let mut loss: Option<Tensor<1>> = None;
        for b in 0..self.batches.len() {
            let recorded;
            let batch_gates = match &gates {
                None => None,
                Some(GateSource::Cached(g)) => Some(&g[b]),
                Some(GateSource::Record(_)) => {
                    recorded = self.record_batch(recording_point.as_ref().expect("point"), b);
                    Some(&recorded)
                }
            };
            let (l, g) = self.batch_gradient(&full, b, batch_gates);
            loss = Some(loss.map_or(l.clone(), |s| s + l));
            total = Some(match total {
                None => g,
                Some(acc) => acc.into_iter().zip(g).map(|(a, b)| a + b).collect(),
            });
        }
        let loss = loss
            .expect("data")
            .into_data()
            .convert::<f64>()
            .try_into_vec::<f64>()
            .expect("float")[0];
        let recorded = matches!(gates, Some(GateSource::Record(_))) as u64;
        self.meter.add(GRADIENT_PASSES + recorded);
        (loss, ParamVec::new(total.expect("data")))
    }

    /// The summed loss of batch `b` divided by the total count (so batch contributions add up
    /// to the mean) and its gradient with respect to the varying tensors.
    fn batch_gradient(
        &self,
        full: &[Tensor<1>],
        b: usize,
        gates: Option<&Gates>,
    ) -> (Tensor<1>, Vec<Tensor<1>>) {
        let mut leaves = full.to_vec();
        for &i in &self.selected {
            leaves[i] = leaves[i].clone().autodiff().require_grad();
        }
        let (x, y) = &self.batches[b];
        let logits = match gates {
            Some(g) => Forward::replaying(&leaves, BatchNormMode::Running, g)
                .logits(&self.layers, x.clone()),
            None => Forward::new(&leaves, BatchNormMode::Running).logits(&self.layers, x.clone()),
        };
        let loss = per_sample_loss(logits, y.clone())
            .sum()
            .div_scalar(self.data.len() as f64);
        let grads = loss.backward();
        let g = self
            .selected
            .iter()
            .map(|&i| {
                leaves[i]
                    .grad(&grads)
                    .unwrap_or_else(|| full[i].zeros_like())
            })
            .collect();
        (loss.inner(), g)
    }
}

enum GateSource<'a> {
    /// Recorded already, one per batch.
    Cached(&'a [Gates]),
    /// Recorded batch by batch at this point, when needed (saves memory).
    Record(ParamVec),
}

/// Settings of the Hessian-vector products.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct HvpOptions {
    /// Step `e` of the central difference along the unit vector `v / ||v||` (parameter units).
    pub eps: f64,
    /// Replay the ReLU masks and max-pool choices of the base point (exact HVPs); `false`
    /// gives plain differences of the free network (kept only to show why replay is needed).
    pub replay: bool,
    /// Recorded values (mask entries and pool indices) kept in memory at most; above it the
    /// recording is redone batch by batch at each product (one more forward pass per batch).
    pub gate_budget: usize,
}

impl Default for HvpOptions {
    fn default() -> Self {
        Self {
            eps: 1e-2,
            replay: true,
            gate_budget: 1 << 28,
        }
    }
}

/// The Hessian of a [`LossModel`]'s mean loss at a point, as an operator.
pub struct LossHessian<'m> {
    model: &'m LossModel,
    point: ParamVec,
    gates: Option<Vec<Gates>>,
    options: HvpOptions,
    products: Cell<usize>,
}

impl<'m> LossHessian<'m> {
    /// The Hessian at the model's base point.
    pub fn new(model: &'m LossModel, options: HvpOptions) -> Result<Self> {
        Self::at(model, model.point(), options)
    }

    /// The Hessian at `point` (the varying tensors; the rest as in the model's base).
    pub fn at(model: &'m LossModel, point: ParamVec, options: HvpOptions) -> Result<Self> {
        if !(options.eps > 0.0 && options.eps.is_finite()) {
            bail!(
                "the HVP step must be a positive number, got {}",
                options.eps
            );
        }
        let gates = if options.replay {
            let full = model.full(&point);
            let first = model.record_batch(&full, 0);
            if first.numel().saturating_mul(model.batch_count()) <= options.gate_budget {
                let mut all = vec![first];
                all.extend((1..model.batch_count()).map(|b| model.record_batch(&full, b)));
                Some(all)
            } else {
                None
            }
        } else {
            None
        };
        Ok(Self {
            model,
            point,
            gates,
            options,
            products: Cell::new(0),
        })
    }

    /// Products computed so far.
    pub fn products(&self) -> usize {
        self.products.get()
    }

    /// The point.
    pub fn point(&self) -> &ParamVec {
        &self.point
    }

    fn gradient(&self, w: &ParamVec) -> ParamVec {
        let source = match (&self.gates, self.options.replay) {
            (_, false) => None,
            (Some(g), true) => Some(GateSource::Cached(g)),
            (None, true) => Some(GateSource::Record(self.point.clone())),
        };
        self.model.gradient_with(w, source).1
    }
}

impl crate::operator::HessianOperator for LossHessian<'_> {
    fn shape(&self) -> VecShape {
        self.model.shape()
    }

    fn apply(&self, v: &ParamVec) -> ParamVec {
        self.products.set(self.products.get() + 1);
        let norm = v.norm();
        if norm == 0.0 {
            return v.zeros_like();
        }
        let e = self.options.eps;
        let step = v.scale(e / norm);
        let plus = self.gradient(&self.point.add(&step));
        let minus = self.gradient(&self.point.sub(&step));
        plus.sub(&minus).scale(norm / (2.0 * e))
    }
}
