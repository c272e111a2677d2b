//! A network as a small layer graph: a sequence of layers, where a residual block and a dense
//! (concatenating) block hold sequences of their own.
//!
//! One interpreter ([`crate::forward`]) runs every graph in every mode, and graph rewrites
//! (folding BatchNorm into the convolution before it, [`crate::fold`]) work on the same type.

use crate::params::ParamId;
use serde::{Deserialize, Serialize};

/// A 2-D convolution, square kernel, `padding` on every side, no dilation or groups.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conv {
    /// Kernel `[cout, cin, kernel, kernel]`.
    pub weight: ParamId,
    /// Optional bias `[cout]`.
    pub bias: Option<ParamId>,
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Kernel height and width.
    pub kernel: usize,
    /// Stride in both directions.
    pub stride: usize,
    /// Zero padding on each side.
    pub padding: usize,
}

/// BatchNorm over channels (of a `[n, c, h, w]` or a `[n, c]` activation), eps 1e-5,
/// momentum 0.1 as PyTorch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchNorm {
    /// Scale (gamma).
    pub weight: ParamId,
    /// Shift (beta).
    pub bias: ParamId,
    /// Running mean.
    pub running_mean: ParamId,
    /// Running variance (unbiased batch variances are averaged in, as PyTorch does).
    pub running_var: ParamId,
    /// Number of channels.
    pub channels: usize,
}

/// A fully connected layer `y = x W^T + b`, weight `[output, input]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Linear {
    /// Weight `[output, input]`.
    pub weight: ParamId,
    /// Bias `[output]`.
    pub bias: ParamId,
    /// Input features.
    pub input: usize,
    /// Output features.
    pub output: usize,
}

/// One layer of the graph.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Layer {
    /// A convolution.
    Conv(Conv),
    /// A BatchNorm.
    BatchNorm(BatchNorm),
    /// Elementwise max(x, 0).
    Relu,
    /// Max pooling with a square window.
    MaxPool {
        /// Window size.
        kernel: usize,
        /// Stride.
        stride: usize,
    },
    /// Average pooling with a square window.
    AvgPool {
        /// Window size.
        kernel: usize,
        /// Stride.
        stride: usize,
    },
    /// Mean over the spatial dimensions: `[n, c, h, w]` to `[n, c]`.
    GlobalAvgPool,
    /// `[n, c, h, w]` to `[n, c * h * w]` in channel-major order (PyTorch's `view(n, -1)`).
    Flatten,
    /// A fully connected layer.
    Linear(Linear),
    /// `body(x) + shortcut(x)`; an empty shortcut is the identity. No activation after the
    /// sum: the graph says so with a following [`Layer::Relu`].
    Residual {
        /// The main branch.
        body: Vec<Layer>,
        /// The shortcut branch (empty: identity).
        shortcut: Vec<Layer>,
    },
    /// `cat(body(x), x)` along channels, DenseNet's connection.
    Concat {
        /// The branch whose output is prepended.
        body: Vec<Layer>,
    },
}

/// Visits every layer of a graph depth first, in execution order.
pub fn for_each_layer<'a>(layers: &'a [Layer], f: &mut impl FnMut(&'a Layer)) {
    for layer in layers {
        f(layer);
        match layer {
            Layer::Residual { body, shortcut } => {
                for_each_layer(body, f);
                for_each_layer(shortcut, f);
            }
            Layer::Concat { body } => for_each_layer(body, f),
            _ => {}
        }
    }
}
