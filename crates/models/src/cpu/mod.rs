//! A fast CPU inference path for folded graphs ([`crate::fold::FoldedGraph`]): what a loss
//! landscape runs thousands of times.
//!
//! burn's flex backend spends most of an inference pass converting layouts and making passes
//! over memory around its matrix products. This path keeps every activation of an image in
//! NHWC with a one-pixel zero border, in a few buffers reused from layer to layer, runs each
//! convolution as a direct register-blocked kernel (written once over [`simd`]'s vector types
//! and compiled for AVX-512, AVX2, NEON and plain loops, the best the CPU runs chosen at run
//! time; see `conv.rs` and [`Isa`]) with the bias, the residual addition and the ReLU fused into
//! the store, and runs the images of a data set in parallel (rayon), each image through the
//! whole network while its activations stay in the core's cache.
//!
//! [`CpuNet`] is the graph compiled once; a [`CpuPoint`] holds the tensors of one parameter
//! point packed for the kernels (re-packed at each point, never re-planned) and the reusable
//! activation buffers.
//!
//! ```
//! use landscape_models::cpu::CpuNet;
//! use landscape_models::fold::FoldedGraph;
//! use landscape_models::{Network, NetworkSpec};
//! use burn::tensor::Device;
//!
//! let net = Network::new(NetworkSpec { arch: "resnet20".parse().unwrap(), width: 0.25, classes: 10 }).unwrap();
//! let folded = FoldedGraph::plan(net.layers());
//! let cpu = CpuNet::new(folded.layers(), [3, 32, 32]).unwrap();
//! let mut point = cpu.point();
//! cpu.load(&mut point, &folded.tensors(net.init(0, &Device::flex()).tensors()));
//! let images = vec![0.5f32; 2 * 32 * 32 * 3]; // two images, NHWC
//! let mut logits = vec![0.0f32; 2 * cpu.classes()];
//! cpu.logits(&point, &images, &mut logits);
//! assert!(logits.iter().all(|v| v.is_finite()));
//! ```

mod buffer;
mod conv;
mod exec;
mod isa;
mod plan;
mod simd;
mod train;
mod winograd;

use crate::graph::Layer;
use crate::params::ParamId;
use anyhow::Result;
use burn::tensor::Tensor;
use exec::{Weights, Workspace};
use plan::{ConvKernel, Kernels, Plan};
use rayon::prelude::*;
use std::sync::Mutex;

pub use isa::{Isa, KERNELS_VAR, kernel_isa, requested_isa};
pub use train::{CpuTrainer, TrainWorkspace};

/// Input channels from which a 3x3 stride-1 convolution runs by Winograd's F(2x2, 3x3): below,
/// its matrix products are too short to gain on the direct kernel.
const WINOGRAD_MIN_CHANNELS: usize = 16;

/// A folded graph compiled for the CPU kernels.
#[derive(Clone, Debug)]
pub struct CpuNet {
    plan: Plan,
    input: [usize; 3],
}

/// The tensors of one parameter point packed for a [`CpuNet`], with reusable activation
/// buffers.
#[derive(Debug, Default)]
pub struct CpuPoint {
    weights: Weights,
    workspaces: Mutex<Vec<Workspace>>,
}

impl CpuNet {
    /// Compiles `layers` (a folded graph: its parameter ids index the folded tensors) for
    /// images of shape `[c, h, w]`. Fails on graphs the kernels do not cover (convolution
    /// padding above 1) and malformed ones.
    pub fn new(layers: &[Layer], input: [usize; 3]) -> Result<Self> {
        Self::with_kernels(layers, input, Isa::best(), true)
    }

    /// [`CpuNet::new`] with a choice of kernels: those of `isa` (an error where this CPU does
    /// not run it); `winograd`: Winograd's F(2x2, 3x3) for the 3x3 stride-1 convolutions
    /// with 16 or more input channels, else the direct kernel everywhere.
    pub fn with_kernels(
        layers: &[Layer],
        input: [usize; 3],
        isa: Isa,
        winograd: bool,
    ) -> Result<Self> {
        let kernels = Kernels::choose(isa, winograd, WINOGRAD_MIN_CHANNELS)?;
        Ok(Self {
            plan: Plan::compile(layers, input, kernels)?,
            input,
        })
    }

    /// The instruction set of the kernels.
    pub fn isa(&self) -> Isa {
        self.plan.isa
    }

    /// Number of convolutions run by Winograd's F(2x2, 3x3), and in all.
    pub fn winograd_convolutions(&self) -> (usize, usize) {
        let wino = self
            .plan
            .convs
            .iter()
            .filter(|c| matches!(c.kernel, ConvKernel::Winograd(_)))
            .count();
        (wino, self.plan.convs.len())
    }

    /// Outputs per image.
    pub fn classes(&self) -> usize {
        self.plan.classes()
    }

    /// Floats per input image (`c * h * w`).
    pub fn image_len(&self) -> usize {
        self.input.iter().product()
    }

    /// An empty parameter point (load it before use).
    pub fn point(&self) -> CpuPoint {
        CpuPoint::default()
    }

    /// Packs the folded tensors `tensors` (as [`crate::fold::FoldedGraph::tensors`] returns
    /// them) into `point`, downloading each once.
    pub fn load(&self, point: &mut CpuPoint, tensors: &[Tensor<1>]) {
        self.load_with(point, |id| {
            let data = tensors[id.0].to_data();
            match data.as_slice::<f32>() {
                Ok(v) => v.to_vec(),
                Err(_) => data
                    .convert::<f32>()
                    .try_into_vec::<f32>()
                    .expect("a float tensor"),
            }
        });
    }

    /// Packs the tensors that `tensor` returns for each parameter id of the folded graph.
    pub fn load_with(&self, point: &mut CpuPoint, mut tensor: impl FnMut(ParamId) -> Vec<f32>) {
        let plan = &self.plan;
        let w = &mut point.weights;
        w.convs.truncate(plan.convs.len());
        for (i, layer) in plan.convs.iter().enumerate() {
            let bias = layer.bias.map(&mut tensor);
            let weight = tensor(layer.weight);
            if w.convs.len() == i {
                w.convs.push(layer.kernel.packed());
            }
            layer.kernel.pack(&weight, bias.as_deref(), &mut w.convs[i]);
        }
        w.denses.resize_with(plan.denses.len(), Default::default);
        for (layer, packed) in plan.denses.iter().zip(&mut w.denses) {
            let bias = tensor(layer.bias);
            layer.plan.pack(&tensor(layer.weight), Some(&bias), packed);
        }
        w.bns = plan
            .bns
            .iter()
            .map(|bn| {
                let (gamma, beta) = (tensor(bn.weight), tensor(bn.bias));
                let (mean, var) = (tensor(bn.mean), tensor(bn.var));
                for t in [&gamma, &beta, &mean, &var] {
                    assert_eq!(t.len(), bn.channels, "BatchNorm tensor size");
                }
                // As `forward::running_affine`, in f32.
                let scale: Vec<f32> = gamma
                    .iter()
                    .zip(&var)
                    .map(|(g, v)| g / (v.max(0.0) + crate::forward::BN_EPS as f32).sqrt())
                    .collect();
                let shift = beta
                    .iter()
                    .zip(&mean)
                    .zip(&scale)
                    .map(|((b, m), s)| b - m * s)
                    .collect();
                (scale, shift)
            })
            .collect();
    }

    /// Logits of the images `images` (`n x h x w x c`, NHWC, unpadded) into `out`
    /// (`n x classes`), on rayon's thread pool.
    pub fn logits(&self, point: &CpuPoint, images: &[f32], out: &mut [f32]) {
        let (len, classes, group) = (self.image_len(), self.classes(), self.plan.group);
        assert_eq!(images.len() % len, 0, "whole images");
        assert_eq!(
            out.len(),
            images.len() / len * classes,
            "one row of logits per image"
        );
        out.par_chunks_mut(group * classes)
            .zip(images.par_chunks(group * len))
            .for_each(|(out, images)| {
                let taken = point.workspaces.lock().expect("workspace pool").pop();
                let mut ws = taken.unwrap_or_else(|| Workspace::new(&self.plan));
                self.plan.forward(&point.weights, &mut ws, images, out);
                point.workspaces.lock().expect("workspace pool").push(ws);
            });
    }
}

/// The cross-entropy of one row of logits against `label`, in f64, and whether the row's
/// first largest logit is the label; also the row's largest logit and the sum of
/// `exp(logit - max)`, from which the softmax follows.
pub(crate) fn softmax_loss(row: &[f32], label: usize) -> (f64, bool, f64, f64) {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
    let sum: f64 = row.iter().map(|&v| (v as f64 - max).exp()).sum();
    let best = row
        .iter()
        .enumerate()
        .fold(0, |b, (i, &v)| if v > row[b] { i } else { b });
    (max + sum.ln() - row[label] as f64, best == label, max, sum)
}

/// `[n, c, h, w]` to `[n, h, w, c]`.
pub fn nchw_to_nhwc(x: &[f32], c: usize, h: usize, w: usize) -> Vec<f32> {
    let image = c * h * w;
    let mut out = vec![0.0; x.len()];
    for (src, dst) in x.chunks_exact(image).zip(out.chunks_exact_mut(image)) {
        for ch in 0..c {
            for p in 0..h * w {
                dst[p * c + ch] = src[ch * h * w + p];
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
