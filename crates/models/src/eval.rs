//! Inference over a data set held on the device: mean cross-entropy and accuracy of a parameter
//! point, with BatchNorm folded into the convolutions and no host round trip until the end.

use crate::fold::FoldedGraph;
use crate::forward::{BatchNormMode, Forward, correct_count, per_sample_loss};
use crate::graph::Layer;
use anyhow::{Result, bail};
use burn::tensor::{Device, Int, Tensor, TensorData};

/// Images and labels on the device, cut into batches of one fixed size (the last batch may be
/// smaller) so every point of a landscape reuses the same tensors.
#[derive(Clone, Debug)]
pub struct DeviceBatches {
    batches: Vec<(Tensor<4>, Tensor<1, Int>)>,
    count: usize,
}

impl DeviceBatches {
    /// Uploads `images` (normalized f32, `labels.len() x 3 x 32 x 32`) in batches of at most
    /// `batch` images.
    pub fn upload(images: &[f32], labels: &[u16], batch: usize, device: &Device) -> Result<Self> {
        const IMAGE: usize = 3 * 32 * 32;
        if images.len() != labels.len() * IMAGE {
            bail!(
                "{} image values for {} labels (expected {} each)",
                images.len(),
                labels.len(),
                IMAGE
            );
        }
        if batch == 0 {
            bail!("evaluation batch size must be positive");
        }
        let batches = images
            .chunks(batch * IMAGE)
            .zip(labels.chunks(batch))
            .map(|(x, y)| {
                let n = y.len();
                let x = Tensor::<4>::from_data(TensorData::new(x.to_vec(), [n, 3, 32, 32]), device);
                let y: Vec<i64> = y.iter().map(|&l| l as i64).collect();
                (
                    x,
                    Tensor::<1, Int>::from_data(TensorData::new(y, [n]), device),
                )
            })
            .collect();
        Ok(Self {
            batches,
            count: labels.len(),
        })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The batches, in order.
    pub fn batches(&self) -> &[(Tensor<4>, Tensor<1, Int>)] {
        &self.batches
    }
}

/// Mean loss and accuracy of one parameter point on one data set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation {
    /// Mean cross-entropy over all samples (NaN or infinite when the network blew up).
    pub loss: f64,
    /// Percentage of samples classified correctly.
    pub accuracy: f64,
}

/// Evaluates parameter points of one graph: the BatchNorm folding is planned once.
#[derive(Clone, Debug)]
pub struct Evaluator {
    folded: FoldedGraph,
}

impl Evaluator {
    /// An evaluator for the graph `layers`.
    pub fn new(layers: &[Layer]) -> Self {
        Self {
            folded: FoldedGraph::plan(layers),
        }
    }

    /// Loss and accuracy of the point `params` (one flat tensor per layout entry, running
    /// statistics included) over `data`, BatchNorm in inference mode.
    pub fn evaluate(&self, params: &[Tensor<1>], data: &DeviceBatches) -> Evaluation {
        let tensors = self.folded.tensors(params);
        let mut loss_sum: Option<Tensor<1>> = None;
        let mut correct: Option<Tensor<1, Int>> = None;
        for (x, y) in data.batches() {
            let logits = Forward::new(&tensors, BatchNormMode::Running)
                .logits(self.folded.layers(), x.clone());
            let batch_loss = per_sample_loss(logits.clone(), y.clone()).sum();
            let batch_correct = correct_count(logits, y.clone());
            loss_sum = Some(match loss_sum {
                Some(s) => s + batch_loss,
                None => batch_loss,
            });
            correct = Some(match correct {
                Some(c) => c + batch_correct,
                None => batch_correct,
            });
        }
        let n = data.len().max(1) as f64;
        let loss = loss_sum.map_or(f64::NAN, |s| s.into_scalar::<f32>() as f64);
        let correct = correct.map_or(0, |c| c.into_scalar::<i64>());
        Evaluation {
            loss: loss / n,
            accuracy: 100.0 * correct as f64 / n,
        }
    }
}
