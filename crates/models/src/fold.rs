//! Folding BatchNorm into the layer before it, for fast inference.
//!
//! In inference mode a BatchNorm after a convolution (or a linear layer) is an affine map per
//! output channel, so it folds into that layer's weights and bias: one pass over the
//! activations instead of three. A landscape evaluates thousands of parameter points of the same
//! graph, so the rewrite is planned once ([`FoldedGraph::plan`]) and only the tensors are
//! recomputed at each point ([`FoldedGraph::tensors`]), on the device.

use crate::forward::running_affine;
use crate::graph::{BatchNorm, Conv, Layer, Linear};
use crate::params::ParamId;
use burn::tensor::Tensor;

/// Where a tensor of the folded graph comes from.
#[derive(Clone, Debug)]
enum Source {
    /// An original tensor, unchanged.
    Original(ParamId),
    /// An original weight (`[out, ...]`, `out` rows) scaled per row by a BatchNorm.
    ScaledWeight {
        weight: ParamId,
        rows: usize,
        bn: BatchNorm,
    },
    /// A bias (or zero) passed through a BatchNorm's affine map.
    FoldedBias {
        bias: Option<ParamId>,
        bn: BatchNorm,
    },
}

/// A graph with every foldable BatchNorm folded away, and the recipe for its tensors.
#[derive(Clone, Debug)]
pub struct FoldedGraph {
    layers: Vec<Layer>,
    sources: Vec<Source>,
}

impl FoldedGraph {
    /// Plans the folding of `layers`: every Conv or Linear directly followed by a BatchNorm
    /// becomes one layer with a bias. Other BatchNorms (DenseNet's pre-activation ones) stay.
    pub fn plan(layers: &[Layer]) -> Self {
        let mut plan = Self {
            layers: Vec::new(),
            sources: Vec::new(),
        };
        plan.layers = plan.fold_sequence(layers);
        plan
    }

    /// The folded layers; their parameter ids index [`FoldedGraph::tensors`].
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// The tensors of the folded graph at the parameter point `params` (one flat tensor per
    /// original layout entry). BatchNorm uses running statistics, variance clamped at 0.
    pub fn tensors(&self, params: &[Tensor<1>]) -> Vec<Tensor<1>> {
        self.sources
            .iter()
            .map(|source| match source {
                Source::Original(id) => params[id.0].clone(),
                Source::ScaledWeight { weight, rows, bn } => {
                    let (scale, _) = affine(bn, params);
                    let w = params[weight.0].clone();
                    let n = w.dims()[0];
                    (w.reshape([*rows, n / rows]) * scale.reshape([*rows, 1])).reshape([n])
                }
                Source::FoldedBias { bias, bn } => {
                    let (scale, shift) = affine(bn, params);
                    match bias {
                        Some(b) => params[b.0].clone() * scale + shift,
                        None => shift,
                    }
                }
            })
            .collect()
    }

    fn push(&mut self, source: Source) -> ParamId {
        self.sources.push(source);
        ParamId(self.sources.len() - 1)
    }

    fn keep(&mut self, id: ParamId) -> ParamId {
        self.push(Source::Original(id))
    }

    fn fold_sequence(&mut self, layers: &[Layer]) -> Vec<Layer> {
        let mut out = Vec::with_capacity(layers.len());
        let mut i = 0;
        while i < layers.len() {
            let next_bn = match layers.get(i + 1) {
                Some(Layer::BatchNorm(bn)) => Some(bn.clone()),
                _ => None,
            };
            match (&layers[i], next_bn) {
                (Layer::Conv(c), Some(bn)) => {
                    let weight = self.push(Source::ScaledWeight {
                        weight: c.weight,
                        rows: c.cout,
                        bn: bn.clone(),
                    });
                    let bias = self.push(Source::FoldedBias { bias: c.bias, bn });
                    out.push(Layer::Conv(Conv {
                        weight,
                        bias: Some(bias),
                        ..c.clone()
                    }));
                    i += 2;
                }
                (Layer::Linear(l), Some(bn)) => {
                    let weight = self.push(Source::ScaledWeight {
                        weight: l.weight,
                        rows: l.output,
                        bn: bn.clone(),
                    });
                    let bias = self.push(Source::FoldedBias {
                        bias: Some(l.bias),
                        bn,
                    });
                    out.push(Layer::Linear(Linear {
                        weight,
                        bias,
                        ..l.clone()
                    }));
                    i += 2;
                }
                (layer, _) => {
                    out.push(self.remap(layer));
                    i += 1;
                }
            }
        }
        out
    }

    /// A layer that is not folded, with its tensors taken over unchanged.
    fn remap(&mut self, layer: &Layer) -> Layer {
        match layer {
            Layer::Conv(c) => Layer::Conv(Conv {
                weight: self.keep(c.weight),
                bias: c.bias.map(|b| self.keep(b)),
                ..c.clone()
            }),
            Layer::Linear(l) => Layer::Linear(Linear {
                weight: self.keep(l.weight),
                bias: self.keep(l.bias),
                ..l.clone()
            }),
            Layer::BatchNorm(bn) => Layer::BatchNorm(BatchNorm {
                weight: self.keep(bn.weight),
                bias: self.keep(bn.bias),
                running_mean: self.keep(bn.running_mean),
                running_var: self.keep(bn.running_var),
                channels: bn.channels,
            }),
            Layer::Residual { body, shortcut } => Layer::Residual {
                body: self.fold_sequence(body),
                shortcut: self.fold_sequence(shortcut),
            },
            Layer::Concat { body } => Layer::Concat {
                body: self.fold_sequence(body),
            },
            other => other.clone(),
        }
    }
}

fn affine(bn: &BatchNorm, params: &[Tensor<1>]) -> (Tensor<1>, Tensor<1>) {
    running_affine(
        params[bn.weight.0].clone(),
        params[bn.bias.0].clone(),
        params[bn.running_mean.0].clone(),
        params[bn.running_var.0].clone(),
    )
}
