//! `landscape bench`: throughput of the three things landscape spends its time on, on any
//! device: inference (images/s, the cost of a landscape), a training step (images/s), and grid
//! points of a surface (points/s over N images, with a fresh parameter point each time).
//! Each measurement is warmed up first (GPU kernels compile and autotune on first use of a
//! shape) and synchronized by reading a scalar back.

use anyhow::Result;
use burn::tensor::{Device, Distribution, Tensor};
use landscape_models::eval::{DeviceBatches, Evaluator, Precision};
use landscape_models::{Arch, Network, NetworkSpec, ParamScope};
use landscape_surface::direction::{DirNorm, Direction, Ignore, displaced};
use landscape_train::optimizer::Optimizer;
use landscape_train::{MicroBatch, TrainConfig, TrainEngine};
use serde::Serialize;
use std::time::Instant;

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchPlan {
    /// The networks.
    pub models: Vec<Arch>,
    /// Their width multiplier.
    pub width: f64,
    /// Images per grid point (and per inference measurement).
    pub images: usize,
    /// Inference batch sizes to try (none: no inference or grid-point measurement).
    pub eval_batches: Vec<usize>,
    /// Training batch sizes (none: no training-step measurement).
    pub train_batches: Vec<usize>,
    /// Timed repetitions of each measurement (after one warm-up).
    pub repeats: usize,
    /// Number format of the inference and grid-point measurements (training stays f32).
    pub precision: Precision,
}

/// One measured number.
#[derive(Clone, Debug, Serialize)]
pub struct BenchResult {
    /// The network.
    pub model: String,
    /// Its width multiplier.
    pub width: f64,
    /// `eval` (folded inference), `train_step` or `grid_point`.
    pub measure: String,
    /// Batch size used.
    pub batch: usize,
    /// Number format (`f32` or `bf16`; training steps are f32).
    pub precision: Precision,
    /// Images per second.
    pub images_per_s: f64,
    /// Grid points per second over `images` images (for `grid_point`).
    pub points_per_s: Option<f64>,
    /// Multiply-adds per second of the forward pass, in units of 1e9.
    pub gmacs_per_s: f64,
    /// What ran it: `cpu-kernels-<isa>` (`cpu-kernels-avx2`, ...) or `burn`.
    pub engine: &'static str,
}

fn random_images(n: usize, device: &Device) -> DeviceBatchesSource {
    device.seed(0);
    let x = Tensor::<4>::random([n, 3, 32, 32], Distribution::Normal(0.0, 1.0), device);
    let images: Vec<f32> = x
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 images");
    let labels: Vec<u16> = (0..n).map(|i| (i % 10) as u16).collect();
    DeviceBatchesSource { images, labels }
}

struct DeviceBatchesSource {
    images: Vec<f32>,
    labels: Vec<u16>,
}

/// Median seconds of `repeats` timed calls of `f`, after one untimed warm-up call.
fn time<T>(repeats: usize, mut f: impl FnMut() -> T) -> f64 {
    std::hint::black_box(f());
    let mut times: Vec<f64> = (0..repeats.max(1))
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(f());
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Runs the plan on `device`, printing each result as it comes.
pub fn run(plan: &BenchPlan, device: &Device) -> Result<Vec<BenchResult>> {
    let source = random_images(plan.images, device);
    let mut results = Vec::new();
    for &arch in &plan.models {
        let net = Network::new(NetworkSpec {
            arch,
            width: plan.width,
            classes: 10,
        })?;
        let macs = net.macs_per_image() as f64;
        let base = net.init(0, device);
        let evaluator = Evaluator::new(net.layers()).with_precision(plan.precision);
        let mut record = |measure: &str,
                          precision: Precision,
                          batch: usize,
                          images_per_s: f64,
                          points_per_s: Option<f64>,
                          engine: &'static str| {
            let r = BenchResult {
                model: arch.to_string(),
                width: plan.width,
                measure: measure.into(),
                batch,
                precision,
                images_per_s,
                points_per_s,
                gmacs_per_s: images_per_s * macs / 1e9,
                engine,
            };
            eprintln!(
                "{:<18} {:<11} {:<4} batch {:>5}: {:>10.0} images/s{} ({engine})",
                r.model,
                r.measure,
                r.precision.name(),
                batch,
                images_per_s,
                points_per_s.map_or(String::new(), |p| format!(
                    ", {p:.3} grid points/s over {} images",
                    plan.images
                ))
            );
            results.push(r);
        };
        for &batch in &plan.eval_batches {
            let data = DeviceBatches::upload(&source.images, &source.labels, batch, device)?;
            let seconds = time(plan.repeats, || evaluator.evaluate(base.tensors(), &data));
            record(
                "eval",
                plan.precision,
                batch,
                plan.images as f64 / seconds,
                None,
                evaluator.engine(&data),
            );
        }
        if let Some(&batch) = plan.eval_batches.last() {
            let data = DeviceBatches::upload(&source.images, &source.labels, batch, device)?;
            let dirs = Direction::random(
                &base,
                ParamScope::Weights,
                DirNorm::Filter,
                Ignore::Biasbn,
                1,
                2,
            );
            let mut t = 0.0;
            let seconds = time(plan.repeats, || {
                t += 0.01;
                evaluator.evaluate(&displaced(&base, &dirs, &[t, -t]), &data)
            });
            record(
                "grid_point",
                plan.precision,
                batch,
                plan.images as f64 / seconds,
                Some(1.0 / seconds),
                evaluator.engine(&data),
            );
        }
        for &train_batch in &plan.train_batches {
            let config: TrainConfig = toml::from_str(&format!(
                "model = \"{arch}\"\nwidth = {}\noptimizer = \"sgd\"\nnesterov = true\nlr = 0.1\nepochs = 1\nbatch_size = {}\nweight_decay = 5e-4",
                plan.width, train_batch
            ))?;
            let b = train_batch.min(plan.images);
            let mut optimizer = Optimizer::new(&config, net.layout());
            let mut engine = TrainEngine::new(&net, device);
            let micro = MicroBatch {
                images: source.images[..b * 3072].to_vec(),
                labels: source.labels[..b].to_vec(),
            };
            let mut params = base.clone();
            // About 640 images per timed repetition.
            let steps = (640 / b).max(1);
            let seconds = time(plan.repeats, || {
                for _ in 0..steps {
                    let (next, stats) = engine.step(
                        &net,
                        &params,
                        &mut optimizer,
                        std::iter::once(micro.clone()),
                        b,
                        0.1,
                    );
                    params = next;
                    std::hint::black_box(stats);
                }
            });
            let engine_name = engine.name();
            record(
                "train_step",
                Precision::F32,
                b,
                (steps * b) as f64 / seconds,
                None,
                engine_name,
            );
        }
    }
    Ok(results)
}

/// How far a device's numbers are from the CPU's for one network.
#[derive(Clone, Debug, Serialize)]
pub struct DeviceAgreement {
    /// The network.
    pub model: String,
    /// Inference loss on the CPU and on the device, same parameters and images.
    pub loss: (f64, f64),
    /// Inference accuracy on both.
    pub accuracy: (f64, f64),
    /// Inference loss in bf16 on both (the CPU emulates bf16 by rounding each operation's
    /// result; a GPU may keep fused intermediates in f32).
    pub bf16_loss: (f64, f64),
    /// Largest relative difference of any parameter after one identical training step,
    /// relative to the parameter vector's largest magnitude.
    pub step_relative: f64,
}

impl DeviceAgreement {
    /// Whether the device agrees with the CPU within float tolerance: losses within 1e-3
    /// relative, bf16 losses within 1e-2 (a few bf16 roundings), accuracies within 0.5 points, a
    /// training step within 1e-3.
    pub fn agrees(&self) -> bool {
        (self.loss.0 - self.loss.1).abs() <= 1e-3 * self.loss.0.abs().max(1.0)
            && (self.bf16_loss.0 - self.bf16_loss.1).abs() <= 1e-2 * self.bf16_loss.0.abs().max(1.0)
            && (self.accuracy.0 - self.accuracy.1).abs() <= 0.5
            && self.step_relative <= 1e-3
    }
}

/// Evaluates and trains the same parameters on the same images on the CPU and on `device`.
pub fn compare_with_cpu(plan: &BenchPlan, device: &Device) -> Result<Vec<DeviceAgreement>> {
    let cpu = Device::flex();
    let source = random_images(plan.images.min(2048), &cpu);
    let mut out = Vec::new();
    for &arch in &plan.models {
        let net = Network::new(NetworkSpec {
            arch,
            width: plan.width,
            classes: 10,
        })?;
        let host = net.init(0, &cpu).to_host();
        let on = |d: &Device| {
            landscape_models::ParamSet::from_host(net.layout().clone(), host.clone(), d)
        };
        let (p_cpu, p_dev) = (on(&cpu)?, on(device)?);
        let evaluator = Evaluator::new(net.layers());
        let bf16 = evaluator.clone().with_precision(Precision::Bf16);
        let batch = *plan.eval_batches.last().unwrap_or(&500);
        let (data_cpu, data_dev) = (
            DeviceBatches::upload(&source.images, &source.labels, batch, &cpu)?,
            DeviceBatches::upload(&source.images, &source.labels, batch, device)?,
        );
        let e_cpu = evaluator.evaluate(p_cpu.tensors(), &data_cpu);
        let e_dev = evaluator.evaluate(p_dev.tensors(), &data_dev);
        let bf16_loss = (
            bf16.evaluate(p_cpu.tensors(), &data_cpu).loss,
            bf16.evaluate(p_dev.tensors(), &data_dev).loss,
        );
        let config: TrainConfig = toml::from_str(&format!(
            "model = \"{arch}\"\nwidth = {}\noptimizer = \"sgd\"\nnesterov = true\nlr = 0.1\nepochs = 1\nbatch_size = 64\nweight_decay = 5e-4",
            plan.width
        ))?;
        let step = |p: &landscape_models::ParamSet, d: &Device| {
            let micro = MicroBatch {
                images: source.images[..64 * 3072].to_vec(),
                labels: source.labels[..64].to_vec(),
            };
            let mut optimizer = Optimizer::new(&config, net.layout());
            TrainEngine::new(&net, d)
                .step(&net, p, &mut optimizer, std::iter::once(micro), 64, 0.1)
                .0
                .to_host()
        };
        let (a, b) = (step(&p_cpu, &cpu), step(&p_dev, device));
        let scale = a.iter().flatten().fold(0.0f32, |m, v| m.max(v.abs())) as f64;
        let diff = a
            .iter()
            .flatten()
            .zip(b.iter().flatten())
            .fold(0.0f32, |m, (x, y)| m.max((x - y).abs())) as f64;
        let agreement = DeviceAgreement {
            model: arch.to_string(),
            loss: (e_cpu.loss, e_dev.loss),
            accuracy: (e_cpu.accuracy, e_dev.accuracy),
            bf16_loss,
            step_relative: diff / scale.max(f64::MIN_POSITIVE),
        };
        eprintln!(
            "{:<18} loss cpu {:.6} / device {:.6}; bf16 {:.6} / {:.6}; accuracy {:.2} / {:.2}; training step max rel. diff {:.2e}: {}",
            agreement.model,
            agreement.loss.0,
            agreement.loss.1,
            agreement.bf16_loss.0,
            agreement.bf16_loss.1,
            agreement.accuracy.0,
            agreement.accuracy.1,
            agreement.step_relative,
            if agreement.agrees() {
                "agrees"
            } else {
                "DIFFERS"
            }
        );
        out.push(agreement);
    }
    Ok(out)
}
