//! Training on landscape's own CPU kernels: the forward pass with BatchNorm on batch
//! statistics, the softmax cross-entropy, and the backward pass to the gradient of every
//! learnable tensor, for the layer graphs of the paper's networks.
//!
//! Why a native training path and not custom operations inside burn's autodiff: a step here is
//! one pass over the graph forward and one backward with every activation of the micro-batch in
//! NHWC buffers the kernels keep between steps, image stages running the images in parallel
//! (each image through a run of layers while its activations are in cache), and no tensor
//! allocation, layout conversion or graph bookkeeping per operation. burn's flex autodiff spends
//! most of a step in those (im2col, conv_transpose and NCHW/NHWC conversions: about 65 % of a
//! ResNet-20 step by `perf`), and a custom operation would still pay them at its boundaries.
//! The parameters, their gradients, the optimizer and everything written to disk stay burn's
//! and landscape's own ([`crate::ParamSet`], the trainer's optimizer and checkpoints).
//!
//! The convolutions run on the inference kernels ([`super::CpuNet`]'s direct and Winograd
//! kernels): the input gradient of a convolution is a convolution of the output gradient with
//! the transposed, flipped kernel (after spreading a strided one's gradient over the input
//! grid), and the weight gradient has its own register-blocked reduction (`wgrad.rs`). Every
//! reduction over the batch sums the images in their order, so a step gives the same bits for
//! any number of threads.
//!
//! ```
//! use landscape_models::cpu::CpuTrainer;
//! use landscape_models::{Network, NetworkSpec};
//! use burn::tensor::Device;
//!
//! let net = Network::new(NetworkSpec { arch: "resnet20".parse().unwrap(), width: 0.25, classes: 10 }).unwrap();
//! let trainer = CpuTrainer::new(net.layers(), net.layout(), [3, 32, 32]).unwrap();
//! let mut params = net.init(0, &Device::flex()).to_host();
//! let mut grads: Vec<Vec<f32>> = params.iter().map(|p| vec![0.0; p.len()]).collect();
//! let mut workspace = trainer.workspace();
//! trainer.load(&mut workspace, &params);
//! let images = vec![0.5f32; 2 * 3 * 32 * 32]; // two images, NCHW
//! let (loss, _correct) = trainer.accumulate(&mut workspace, &mut params, &images, &[3, 7], 0.5, &mut grads);
//! assert!(loss > 0.0 && grads.iter().flatten().all(|g| g.is_finite()));
//! ```

mod exec;
mod kernels;
mod plan;
mod wgrad;
mod winograd_grad;

use super::isa::Isa;
use super::plan::Kernels;
use crate::forward::Gates;
use crate::graph::Layer;
use crate::params::ParamLayout;
use anyhow::Result;
use exec::TrainBuffers;
use plan::TrainPlan;

/// Input channels from which a 3x3 stride-1 convolution (and its input gradient) trains by
/// Winograd's F(2x2, 3x3). Higher than inference's 16: with the BatchNorm passes between
/// them, training runs one image per call, and at 16 and 32 channels the transforms cost
/// about what they save (ResNet-20, batch 128: 668 images/s from 16 channels, 689 from 32,
/// 712 from 64, 667 never; VGG-9 236, 237, 242 and 197).
const TRAIN_WINOGRAD_MIN_CHANNELS: usize = 64;

/// A layer graph compiled for training on the CPU kernels.
#[derive(Clone, Debug)]
pub struct CpuTrainer {
    plan: TrainPlan,
}

/// The activations, gradients and packed weights a [`CpuTrainer`] works in, kept between
/// steps.
#[derive(Debug)]
pub struct TrainWorkspace {
    buffers: TrainBuffers,
}

impl CpuTrainer {
    /// Compiles `layers` (whose tensors `layout` describes) for images of shape `[c, h, w]`,
    /// with the fastest kernels this CPU has. Fails on graphs the kernels do not cover.
    pub fn new(layers: &[Layer], layout: &ParamLayout, input: [usize; 3]) -> Result<Self> {
        Self::with_kernels(layers, layout, input, Isa::best(), true)
    }

    /// [`CpuTrainer::new`] with a choice of kernels: those of `isa` (an error where this CPU
    /// does not run it); `winograd` for the 3x3 stride-1 convolutions with 64 or more input
    /// channels (forward and input gradient), else the direct kernel everywhere.
    pub fn with_kernels(
        layers: &[Layer],
        layout: &ParamLayout,
        input: [usize; 3],
        isa: Isa,
        winograd: bool,
    ) -> Result<Self> {
        let kernels = Kernels::choose(isa, winograd, TRAIN_WINOGRAD_MIN_CHANNELS)?;
        Ok(Self {
            plan: TrainPlan::compile(layers, layout, input, kernels)?,
        })
    }

    /// Fresh working memory (it grows to the largest micro-batch it is given).
    pub fn workspace(&self) -> TrainWorkspace {
        TrainWorkspace {
            buffers: self.plan.buffers(),
        }
    }

    /// Packs the weights of the parameter point `params` (one vector per layout entry) for the
    /// micro-batches that follow.
    pub fn load(&self, workspace: &mut TrainWorkspace, params: &[Vec<f32>]) {
        self.plan.pack(&mut workspace.buffers, params);
    }

    /// Forward and backward of one micro-batch at the loaded point: `images` are
    /// `labels.len()` images in NCHW, normalized. Adds `scale` times the gradient of the
    /// micro-batch's summed cross-entropy to `grads` (one vector per layout entry, as long as
    /// the tensor for the learnable ones; the others are not touched), updates the BatchNorm
    /// running statistics in `params` as PyTorch does (momentum 0.1, unbiased variance), and
    /// returns the summed loss and the number of correct predictions.
    pub fn accumulate(
        &self,
        workspace: &mut TrainWorkspace,
        params: &mut [Vec<f32>],
        images: &[f32],
        labels: &[u16],
        scale: f32,
        grads: &mut [Vec<f32>],
    ) -> (f64, usize) {
        self.plan
            .step(&mut workspace.buffers, params, images, labels, scale, grads)
    }

    /// The piecewise-linear choices of the last micro-batch (which ReLU units were off, which
    /// element each max-pool window took), as burn's interpreter records them, so it can replay
    /// them ([`crate::forward::Forward::replaying`]) and compute the same piecewise-linear
    /// function.
    pub fn gates(&self, workspace: &TrainWorkspace, device: &burn::tensor::Device) -> Gates {
        let (relus, pools) = self.plan.gates(&workspace.buffers);
        Gates::from_host(relus, pools, device)
    }

    /// The instruction set of the kernels.
    pub fn isa(&self) -> Isa {
        self.plan.kernels.isa
    }
}
