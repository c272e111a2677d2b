//! How a training step gets its gradients: landscape's CPU kernels
//! ([`landscape_models::cpu::CpuTrainer`]) on the CPU, burn's autodiff through the
//! interpreter on any other device (or on the CPU with `LANDSCAPE_CPU_KERNELS=off`). Both
//! feed the same optimizer, so the parameters, the optimizer state and every file a run writes
//! are the same whichever computed them.

use crate::optimizer::Optimizer;
use burn::tensor::{Device, Int, Tensor, TensorData};
use landscape_models::cpu::{CpuTrainer, TrainWorkspace, kernel_isa};
use landscape_models::forward::{BatchNormMode, Forward, correct_count, per_sample_loss};
use landscape_models::{Network, ParamSet};

/// One micro-batch: normalized images (`labels.len() x 3 x 32 x 32`, NCHW) and their labels.
#[derive(Clone, Debug, Default)]
pub struct MicroBatch {
    /// The images.
    pub images: Vec<f32>,
    /// Their classes.
    pub labels: Vec<u16>,
}

/// The gradients of one network's training steps, on one device.
pub struct TrainEngine {
    kind: Kind,
}

enum Kind {
    Kernels {
        trainer: Box<CpuTrainer>,
        workspace: Box<TrainWorkspace>,
    },
    Autodiff {
        device: Device,
    },
}

impl TrainEngine {
    /// The CPU kernels where `device` is the CPU and they cover the network, of the
    /// instruction set `LANDSCAPE_CPU_KERNELS` names (the best this CPU runs by default) unless
    /// it turns them off; burn's autodiff on `device` otherwise.
    pub fn new(network: &Network, device: &Device) -> Self {
        let on_cpu = device.clone().without_autodiff() == Device::flex();
        if on_cpu
            && let Some(isa) = kernel_isa()
            && let Ok(trainer) =
                CpuTrainer::with_kernels(network.layers(), network.layout(), IMAGE, isa, true)
        {
            let workspace = Box::new(trainer.workspace());
            return Self {
                kind: Kind::Kernels {
                    trainer: Box::new(trainer),
                    workspace,
                },
            };
        }
        Self::autodiff(device)
    }

    /// burn's autodiff on `device`, whatever the device.
    pub fn autodiff(device: &Device) -> Self {
        Self {
            kind: Kind::Autodiff {
                device: device.clone(),
            },
        }
    }

    /// What computes the gradients, for logs and records: `cpu-kernels-<isa>`
    /// ([`landscape_models::cpu::Isa::engine`]) or `burn` (its autodiff).
    pub fn name(&self) -> &'static str {
        match &self.kind {
            Kind::Kernels { trainer, .. } => trainer.isa().engine(),
            Kind::Autodiff { .. } => "burn",
        }
    }

    /// One optimizer step on a logical batch of `batch_len` examples given as micro-batches:
    /// each micro-batch runs forward (BatchNorm on its own statistics, the running statistics
    /// updated after it, as PyTorch does) and backward, the gradients accumulate to the gradient
    /// of the logical batch's mean loss, then one update with learning rate `lr`. Returns the
    /// new parameters, the batch's mean loss and its number of correct predictions.
    pub fn step(
        &mut self,
        network: &Network,
        params: &ParamSet,
        optimizer: &mut Optimizer,
        micro_batches: impl IntoIterator<Item = MicroBatch>,
        batch_len: usize,
        lr: f64,
    ) -> (ParamSet, (f64, i64)) {
        let (params, grads, loss, correct) = match &mut self.kind {
            Kind::Kernels { trainer, workspace } => {
                kernel_gradients(trainer, workspace, params, micro_batches, batch_len)
            }
            Kind::Autodiff { device } => {
                autodiff_gradients(network, device, params, micro_batches, batch_len)
            }
        };
        let params = optimizer.step(&params, grads, lr);
        (params, (loss / batch_len as f64, correct))
    }
}

/// The image shape the networks take.
const IMAGE: [usize; 3] = [3, 32, 32];

/// What the micro-batches of a step leave: the parameters with the running statistics
/// updated, the gradient of each learnable tensor, the summed loss, the correct predictions.
type Accumulated = (ParamSet, Vec<Option<Tensor<1>>>, f64, i64);

fn kernel_gradients(
    trainer: &CpuTrainer,
    workspace: &mut TrainWorkspace,
    params: &ParamSet,
    micro_batches: impl IntoIterator<Item = MicroBatch>,
    batch_len: usize,
) -> Accumulated {
    let layout = params.layout().clone();
    let mut host = params.to_host();
    let mut grads: Vec<Vec<f32>> = layout
        .entries()
        .iter()
        .map(|info| {
            if info.kind.is_learnable() {
                vec![0.0; info.numel()]
            } else {
                Vec::new()
            }
        })
        .collect();
    trainer.load(workspace, &host);
    let (mut loss, mut correct) = (0.0, 0);
    for micro in micro_batches {
        let (l, c) = trainer.accumulate(
            workspace,
            &mut host,
            &micro.images,
            &micro.labels,
            1.0 / batch_len as f32,
            &mut grads,
        );
        loss += l;
        correct += c as i64;
    }
    let device = params.device();
    let grads = layout
        .entries()
        .iter()
        .zip(grads)
        .map(|(info, g)| {
            info.kind.is_learnable().then(|| {
                let n = g.len();
                Tensor::<1>::from_data(TensorData::new(g, [n]), &device)
            })
        })
        .collect();
    let params = ParamSet::from_host(layout, host, &device).expect("the same layout");
    (params, grads, loss, correct)
}

fn autodiff_gradients(
    network: &Network,
    device: &Device,
    params: &ParamSet,
    micro_batches: impl IntoIterator<Item = MicroBatch>,
    batch_len: usize,
) -> Accumulated {
    let layout = network.layout().clone();
    let mut params = params.clone();
    let mut grads: Vec<Option<Tensor<1>>> = vec![None; layout.len()];
    let mut loss_total: Option<Tensor<1>> = None;
    let mut correct_total: Option<Tensor<1, Int>> = None;
    for micro in micro_batches {
        let m = micro.labels.len();
        let x = Tensor::<4>::from_data(TensorData::new(micro.images, [m, 3, 32, 32]), device);
        let labels: Vec<i64> = micro.labels.iter().map(|&l| l as i64).collect();
        let y = Tensor::<1, Int>::from_data(TensorData::new(labels, [m]), device);
        let leaves: Vec<Tensor<1>> = layout
            .entries()
            .iter()
            .zip(params.tensors())
            .map(|(info, t)| {
                if info.kind.is_learnable() {
                    t.clone().autodiff().require_grad()
                } else {
                    t.clone()
                }
            })
            .collect();
        let mut pass = Forward::new(&leaves, BatchNormMode::Batch);
        let logits = pass.logits(network.layers(), x);
        let updates = pass.into_running_updates();
        let losses = per_sample_loss(logits.clone(), y.clone());
        // Sum over the micro-batch divided by the logical batch: the accumulated gradient is
        // the gradient of the logical batch's mean loss.
        let backward = losses.clone().sum().div_scalar(batch_len as f64).backward();
        for (i, leaf) in leaves.iter().enumerate() {
            if let Some(g) = leaf.grad(&backward) {
                grads[i] = Some(match grads[i].take() {
                    Some(acc) => acc + g,
                    None => g,
                });
            }
        }
        let mut tensors = params.tensors().to_vec();
        for (id, value) in updates {
            tensors[id.0] = value;
        }
        params = ParamSet::new(layout.clone(), tensors).expect("same layout");
        let micro_loss = losses.inner().sum();
        let micro_correct = correct_count(logits.inner(), y);
        loss_total = Some(match loss_total {
            Some(t) => t + micro_loss,
            None => micro_loss,
        });
        correct_total = Some(match correct_total {
            Some(c) => c + micro_correct,
            None => micro_correct,
        });
    }
    let loss = loss_total
        .expect("a batch has examples")
        .into_scalar::<f32>() as f64;
    let correct = correct_total
        .expect("a batch has examples")
        .into_scalar::<i64>();
    (params, grads, loss, correct)
}
