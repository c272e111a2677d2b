//! The parameter view every stage shares: each tensor of a network with its name, shape and
//! kind, in a stable order, held on the device as one flat `Tensor<1>` per tensor.
//!
//! Storing parameters flat (and reshaping inside the forward pass, which is free) is what lets
//! the landscape code treat a model as a vector: perturb it, fold it, replay it, save it.

use anyhow::{Result, bail};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What a parameter tensor is; decides how directions are normalized and which tensors a
/// "weights" or "states" view covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamKind {
    /// A convolution kernel `[out, in, kh, kw]`.
    ConvWeight,
    /// A fully connected weight `[out, in]`.
    LinearWeight,
    /// The bias of a convolution or linear layer `[out]`.
    Bias,
    /// BatchNorm scale (gamma) `[channels]`.
    BnWeight,
    /// BatchNorm shift (beta) `[channels]`.
    BnBias,
    /// BatchNorm running mean: a state, not learned by gradient descent.
    BnRunningMean,
    /// BatchNorm running variance: a state, not learned by gradient descent.
    BnRunningVar,
}

impl ParamKind {
    /// Learned by the optimizer (everything but BatchNorm running statistics).
    pub fn is_learnable(self) -> bool {
        !matches!(self, ParamKind::BnRunningMean | ParamKind::BnRunningVar)
    }

    /// Biases and BatchNorm tensors: the 1-D tensors the paper's `ignore = biasbn` zeroes.
    pub fn is_bias_or_bn(self) -> bool {
        !matches!(self, ParamKind::ConvWeight | ParamKind::LinearWeight)
    }
}

/// Which tensors a parameter vector covers.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default, clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum ParamScope {
    /// The learnable parameters only.
    #[default]
    Weights,
    /// The learnable parameters and the BatchNorm running statistics.
    States,
}

impl ParamScope {
    /// Whether a tensor of this kind belongs to the scope.
    pub fn includes(self, kind: ParamKind) -> bool {
        match self {
            ParamScope::Weights => kind.is_learnable(),
            ParamScope::States => true,
        }
    }

    /// The name used in specs and metadata (`weights` or `states`).
    pub fn name(self) -> &'static str {
        match self {
            ParamScope::Weights => "weights",
            ParamScope::States => "states",
        }
    }
}

/// The index of a tensor in its [`ParamLayout`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ParamId(pub usize);

/// One tensor of the layout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamInfo {
    /// Dotted name as PyTorch would write it, e.g. `layer2.0.shortcut.0.weight`.
    pub name: String,
    /// PyTorch shape conventions (`[out, in, kh, kw]`, `[out, in]`, `[channels]`).
    pub shape: Vec<usize>,
    /// What the tensor is.
    pub kind: ParamKind,
}

impl ParamInfo {
    /// Number of values.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// The ordered list of a network's tensors.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamLayout {
    entries: Vec<ParamInfo>,
}

impl ParamLayout {
    /// Appends a tensor and returns its id.
    pub fn push(&mut self, name: impl Into<String>, shape: Vec<usize>, kind: ParamKind) -> ParamId {
        self.entries.push(ParamInfo {
            name: name.into(),
            shape,
            kind,
        });
        ParamId(self.entries.len() - 1)
    }

    /// All tensors in order.
    pub fn entries(&self) -> &[ParamInfo] {
        &self.entries
    }

    /// The tensor with this id.
    pub fn get(&self, id: ParamId) -> &ParamInfo {
        &self.entries[id.0]
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the layout has no tensors.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of values in the tensors of `scope`.
    pub fn numel(&self, scope: ParamScope) -> usize {
        self.entries
            .iter()
            .filter(|e| scope.includes(e.kind))
            .map(ParamInfo::numel)
            .sum()
    }
}

/// A network's tensors on a device, in layout order, each stored flat.
#[derive(Clone, Debug)]
pub struct ParamSet {
    layout: Arc<ParamLayout>,
    tensors: Vec<Tensor<1>>,
}

impl ParamSet {
    /// Pairs tensors with their layout, checking count and sizes.
    pub fn new(layout: Arc<ParamLayout>, tensors: Vec<Tensor<1>>) -> Result<Self> {
        if layout.len() != tensors.len() {
            bail!("{} tensors for a layout of {}", tensors.len(), layout.len());
        }
        for (info, t) in layout.entries().iter().zip(&tensors) {
            if t.dims()[0] != info.numel() {
                bail!(
                    "`{}`: {} values, expected {} for shape {:?}",
                    info.name,
                    t.dims()[0],
                    info.numel(),
                    info.shape
                );
            }
        }
        Ok(Self { layout, tensors })
    }

    /// Uploads host values (one `Vec<f32>` per tensor, layout order) to `device`.
    pub fn from_host(
        layout: Arc<ParamLayout>,
        values: Vec<Vec<f32>>,
        device: &Device,
    ) -> Result<Self> {
        let tensors = values
            .into_iter()
            .map(|v| {
                let n = v.len();
                Tensor::<1>::from_data(TensorData::new(v, [n]), device)
            })
            .collect();
        Self::new(layout, tensors)
    }

    /// The layout.
    pub fn layout(&self) -> &Arc<ParamLayout> {
        &self.layout
    }

    /// The flat tensors, in layout order.
    pub fn tensors(&self) -> &[Tensor<1>] {
        &self.tensors
    }

    /// The flat tensors, consuming the set.
    pub fn into_tensors(self) -> Vec<Tensor<1>> {
        self.tensors
    }

    /// The device the tensors live on.
    pub fn device(&self) -> Device {
        self.tensors
            .first()
            .map(|t| t.device())
            .expect("a network has tensors")
    }

    /// Downloads every tensor (layout order).
    pub fn to_host(&self) -> Vec<Vec<f32>> {
        self.tensors
            .iter()
            .map(|t| {
                t.to_data()
                    .convert::<f32>()
                    .try_into_vec::<f32>()
                    .expect("f32 tensor")
            })
            .collect()
    }

    /// The tensors of `scope` concatenated into one vector, in layout order.
    pub fn flatten(&self, scope: ParamScope) -> Tensor<1> {
        let parts: Vec<Tensor<1>> = self
            .layout
            .entries()
            .iter()
            .zip(&self.tensors)
            .filter(|(info, _)| scope.includes(info.kind))
            .map(|(_, t)| t.clone())
            .collect();
        Tensor::cat(parts, 0)
    }

    /// The inverse of [`ParamSet::flatten`]: replaces the tensors of `scope` by consecutive
    /// slices of `flat`, keeping the others.
    pub fn with_flat(&self, scope: ParamScope, flat: Tensor<1>) -> Result<Self> {
        let expected = self.layout.numel(scope);
        if flat.dims()[0] != expected {
            bail!(
                "flat vector of {} values for a {} view of {expected}",
                flat.dims()[0],
                scope.name()
            );
        }
        let mut offset = 0;
        let tensors = self
            .layout
            .entries()
            .iter()
            .zip(&self.tensors)
            .map(|(info, t)| {
                if !scope.includes(info.kind) {
                    return t.clone();
                }
                let n = info.numel();
                let slice = flat.clone().narrow(0, offset, n);
                offset += n;
                slice
            })
            .collect();
        Self::new(self.layout.clone(), tensors)
    }

    /// A new set with `f(info, tensor)` applied to every tensor.
    pub fn map(&self, mut f: impl FnMut(&ParamInfo, &Tensor<1>) -> Tensor<1>) -> Self {
        let tensors = self
            .layout
            .entries()
            .iter()
            .zip(&self.tensors)
            .map(|(i, t)| f(i, t))
            .collect();
        Self {
            layout: self.layout.clone(),
            tensors,
        }
    }

    /// The L2 norm over the tensors whose kind passes `select`, computed on the device.
    pub fn l2_norm(&self, select: impl Fn(ParamKind) -> bool) -> f64 {
        let squares: Vec<Tensor<1>> = self
            .layout
            .entries()
            .iter()
            .zip(&self.tensors)
            .filter(|(info, _)| select(info.kind))
            .map(|(_, t)| t.clone().square().sum())
            .collect();
        if squares.is_empty() {
            return 0.0;
        }
        let total: f32 = Tensor::cat(squares, 0).sum().into_scalar::<f32>();
        (total as f64).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> ParamSet {
        let mut layout = ParamLayout::default();
        layout.push("conv.weight", vec![2, 1, 1, 2], ParamKind::ConvWeight);
        layout.push("bn.running_mean", vec![2], ParamKind::BnRunningMean);
        layout.push("bn.weight", vec![2], ParamKind::BnWeight);
        let values = vec![vec![1.0, 2.0, 3.0, 4.0], vec![5.0, 6.0], vec![7.0, 8.0]];
        ParamSet::from_host(Arc::new(layout), values, &Device::flex()).unwrap()
    }

    #[test]
    fn flatten_and_back_is_exact_and_respects_scope() {
        let p = small();
        let w = p.flatten(ParamScope::Weights);
        assert_eq!(
            w.to_data().try_into_vec::<f32>().unwrap(),
            vec![1.0, 2.0, 3.0, 4.0, 7.0, 8.0]
        );
        let s = p.flatten(ParamScope::States);
        assert_eq!(s.dims(), [8]);
        let doubled = p.with_flat(ParamScope::Weights, w.mul_scalar(2.0)).unwrap();
        assert_eq!(
            doubled.to_host(),
            vec![vec![2.0, 4.0, 6.0, 8.0], vec![5.0, 6.0], vec![14.0, 16.0]]
        );
        assert!(
            p.with_flat(ParamScope::States, p.flatten(ParamScope::Weights))
                .is_err()
        );
    }

    #[test]
    fn norms_select_kinds() {
        let p = small();
        let all = p.l2_norm(|_| true);
        let learnable = p.l2_norm(ParamKind::is_learnable);
        let expect_learn = (1.0f64 + 4.0 + 9.0 + 16.0 + 49.0 + 64.0).sqrt();
        assert!((learnable - expect_learn).abs() < 1e-5);
        assert!((all - (expect_learn.powi(2) + 25.0 + 36.0).sqrt()).abs() < 1e-5);
    }
}
