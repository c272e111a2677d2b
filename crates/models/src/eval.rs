//! Inference over a data set held on the device: mean cross-entropy and accuracy of a parameter
//! point, with BatchNorm folded into the convolutions and no host round trip until the end.
//!
//! On the CPU (burn's flex device) the evaluator runs the folded graph through the kernels of
//! [`crate::cpu`] instead of burn's operations: the images are converted to NHWC once per data
//! set and kept beside the device tensors, the folded tensors are downloaded and packed once
//! per point, and the loss and accuracy are summed on the host in f64. Setting the environment
//! variable `LANDSCAPE_CPU_KERNELS=off` (or [`Evaluator::without_cpu_kernels`]) keeps burn's
//! path everywhere.
//!
//! [`Precision::Bf16`] runs the network in bfloat16 the way mixed-precision inference does on a
//! GPU: weights, images and every layer's output stored in bf16, products accumulated in f32,
//! the loss computed in f32 from the bf16 logits. It runs through burn's operations on every
//! device. On the CPU burn computes each bf16 operation in f32 and rounds its result to bf16:
//! every intermediate is rounded, an upper bound on the rounding of a GPU's fused kernels
//! (which may keep bias, residual and ReLU in f32 registers), and slow.

use crate::cpu::{CpuNet, CpuPoint, nchw_to_nhwc};
use crate::fold::FoldedGraph;
use crate::forward::{BatchNormMode, Forward, correct_count, per_sample_loss};
use crate::graph::Layer;
use anyhow::{Result, bail};
use burn::tensor::{Device, FloatDType, Int, Tensor, TensorData};
use std::sync::{Arc, Mutex, OnceLock};

/// The image shape of the data sets [`DeviceBatches::upload`] takes, and the one the CPU
/// kernels are compiled for.
const IMAGE_SHAPE: [usize; 3] = [3, 32, 32];

/// Images and labels on the device, cut into batches of one fixed size (the last batch may be
/// smaller) so every point of a landscape reuses the same tensors.
#[derive(Clone, Debug)]
pub struct DeviceBatches {
    batches: Vec<(Tensor<4>, Tensor<1, Int>)>,
    count: usize,
    /// `[c, h, w]` of every image.
    image: [usize; 3],
    /// Whether the tensors live on the CPU (flex) device.
    on_cpu: bool,
    /// The images in NHWC and the labels on the host, made on first use by the CPU kernels and
    /// shared by clones.
    host: Arc<OnceLock<HostData>>,
    /// The images cast to bf16 on the device, made on first use by a bf16 evaluation (so the
    /// cast is done once per data set, not at every grid point) and shared by clones.
    bf16_images: Arc<OnceLock<Vec<Tensor<4>>>>,
}

/// A data set on the host, as the CPU kernels read it.
struct HostData {
    /// `n x h x w x c`.
    images: Vec<f32>,
    labels: Vec<usize>,
}

impl std::fmt::Debug for HostData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HostData({} images)", self.labels.len())
    }
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
            image: IMAGE_SHAPE,
            on_cpu: device.clone().without_autodiff() == Device::flex(),
            host: Arc::default(),
            bf16_images: Arc::default(),
        })
    }

    /// Batches already on one device (images `[n, c, h, w]`, the same `c, h, w` in all, and
    /// labels `[n]`).
    pub fn from_batches(batches: Vec<(Tensor<4>, Tensor<1, Int>)>) -> Result<Self> {
        let Some((first, _)) = batches.first() else {
            bail!("no batches");
        };
        let [_, c, h, w] = first.dims();
        let mut count = 0;
        for (x, y) in &batches {
            let [n, bc, bh, bw] = x.dims();
            if [bc, bh, bw] != [c, h, w] || y.dims() != [n] {
                bail!(
                    "batches of images {:?} and labels {:?} after images [_, {c}, {h}, {w}]",
                    x.dims(),
                    y.dims()
                );
            }
            count += n;
        }
        let on_cpu = first.device().without_autodiff() == Device::flex();
        Ok(Self {
            batches,
            count,
            image: [c, h, w],
            on_cpu,
            host: Arc::default(),
            bf16_images: Arc::default(),
        })
    }

    /// The data on the host in NHWC (downloaded and converted on first use).
    fn host(&self) -> &HostData {
        self.host.get_or_init(|| {
            let [c, h, w] = self.image;
            let mut images = Vec::with_capacity(self.count * c * h * w);
            let mut labels = Vec::with_capacity(self.count);
            for (x, y) in &self.batches {
                let x = x
                    .to_data()
                    .convert::<f32>()
                    .try_into_vec::<f32>()
                    .expect("float images");
                images.extend(nchw_to_nhwc(&x, c, h, w));
                let y = y
                    .to_data()
                    .convert::<i64>()
                    .try_into_vec::<i64>()
                    .expect("integer labels");
                labels.extend(y.iter().map(|&l| l as usize));
            }
            HostData { images, labels }
        })
    }

    /// The image batches in bf16 (cast on first use).
    fn bf16_images(&self) -> &[Tensor<4>] {
        self.bf16_images.get_or_init(|| {
            self.batches
                .iter()
                .map(|(x, _)| x.clone().cast(FloatDType::BF16))
                .collect()
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

/// The number format inference runs in.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit floats throughout.
    #[default]
    F32,
    /// bfloat16 storage with f32 accumulation (mixed-precision inference).
    Bf16,
}

impl Precision {
    /// Whether this is the default, f32 (which meta files leave out, so their hashes stay).
    pub fn is_f32(&self) -> bool {
        *self == Precision::F32
    }

    /// The name used on the command line and in specs.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        }
    }
}

/// Evaluates parameter points of one graph: the BatchNorm folding is planned once, and so is
/// the CPU kernels' plan.
#[derive(Clone, Debug)]
pub struct Evaluator {
    folded: FoldedGraph,
    precision: Precision,
    /// The folded graph compiled for the CPU kernels (None: burn's operations everywhere).
    cpu: Option<Arc<CpuNet>>,
    /// Packed points and activation buffers to reuse, one per evaluation in flight.
    points: Arc<Mutex<Vec<CpuPoint>>>,
}

impl Evaluator {
    /// An evaluator for the graph `layers`.
    pub fn new(layers: &[Layer]) -> Self {
        let folded = FoldedGraph::plan(layers);
        let cpu = crate::cpu::kernel_isa()
            .and_then(|isa| CpuNet::with_kernels(folded.layers(), IMAGE_SHAPE, isa, true).ok())
            .map(Arc::new);
        Self {
            folded,
            precision: Precision::F32,
            cpu,
            points: Arc::default(),
        }
    }

    /// The same evaluator computing in `precision` (bf16 runs burn's operations on every
    /// device; the CPU kernels compute in f32 only).
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }

    /// The same evaluator running burn's operations on every device.
    pub fn without_cpu_kernels(mut self) -> Self {
        self.cpu = None;
        self
    }

    /// Whether [`Evaluator::evaluate`] on `data` runs the CPU kernels.
    pub fn uses_cpu_kernels(&self, data: &DeviceBatches) -> bool {
        self.cpu.is_some()
            && self.precision == Precision::F32
            && data.on_cpu
            && data.image == IMAGE_SHAPE
    }

    /// What [`Evaluator::evaluate`] on `data` runs on: `cpu-kernels-<isa>`
    /// ([`crate::cpu::Isa::engine`]) or `burn`.
    pub fn engine(&self, data: &DeviceBatches) -> &'static str {
        match &self.cpu {
            Some(cpu) if self.uses_cpu_kernels(data) => cpu.isa().engine(),
            _ => "burn",
        }
    }

    /// Loss and accuracy of the point `params` (one flat tensor per layout entry, running
    /// statistics included) over `data`, BatchNorm in inference mode.
    pub fn evaluate(&self, params: &[Tensor<1>], data: &DeviceBatches) -> Evaluation {
        if let Some(cpu) = &self.cpu
            && self.uses_cpu_kernels(data)
        {
            return self.evaluate_cpu(cpu, params, data);
        }
        let mut tensors = self.folded.tensors(params);
        let bf16 = self.precision == Precision::Bf16;
        if bf16 {
            tensors = tensors
                .into_iter()
                .map(|t| t.cast(FloatDType::BF16))
                .collect();
        }
        // Per-batch sums stay on the device; one read at the end (loss sum, correct count).
        let mut sums: Option<Tensor<1>> = None;
        for (i, (x, y)) in data.batches().iter().enumerate() {
            let x = if bf16 {
                data.bf16_images()[i].clone()
            } else {
                x.clone()
            };
            let mut logits =
                Forward::new(&tensors, BatchNormMode::Running).logits(self.folded.layers(), x);
            if bf16 {
                logits = logits.cast(FloatDType::F32);
            }
            let batch_loss = per_sample_loss(logits.clone(), y.clone()).sum();
            let batch_correct = correct_count(logits, y.clone())
                .float()
                .cast(batch_loss.dtype());
            let batch = Tensor::cat(vec![batch_loss, batch_correct], 0);
            sums = Some(match sums {
                Some(s) => s + batch,
                None => batch,
            });
        }
        let n = data.len().max(1) as f64;
        // Read in the tensors' own precision (f64 networks keep theirs).
        let (loss, correct) = sums.map_or((f64::NAN, 0.0), |s| {
            let v = s
                .into_data()
                .convert::<f64>()
                .try_into_vec::<f64>()
                .expect("float sums");
            (v[0], v[1])
        });
        Evaluation {
            loss: loss / n,
            accuracy: 100.0 * correct / n,
        }
    }

    /// [`Evaluator::evaluate`] through the CPU kernels.
    fn evaluate_cpu(&self, cpu: &CpuNet, params: &[Tensor<1>], data: &DeviceBatches) -> Evaluation {
        let host = data.host();
        let taken = self.points.lock().expect("point pool").pop();
        let mut point = taken.unwrap_or_else(|| cpu.point());
        cpu.load(&mut point, &self.folded.tensors(params));
        let classes = cpu.classes();
        let mut logits = vec![0.0f32; host.labels.len() * classes];
        cpu.logits(&point, &host.images, &mut logits);
        self.points.lock().expect("point pool").push(point);
        let (mut loss, mut correct) = (0.0f64, 0usize);
        for (row, &label) in logits.chunks_exact(classes).zip(&host.labels) {
            assert!(label < classes, "label {label} of {classes} classes");
            let (l, right, _, _) = crate::cpu::softmax_loss(row, label);
            loss += l;
            correct += right as usize;
        }
        let n = data.len().max(1) as f64;
        Evaluation {
            loss: if data.is_empty() { f64::NAN } else { loss / n },
            accuracy: 100.0 * correct as f64 / n,
        }
    }
}
