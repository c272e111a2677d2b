//! The two training engines against each other: a step of the CPU kernels equals a step of
//! burn's autodiff (gradients through micro-batches, running statistics chained across them,
//! the optimizer applied), and a few hundred steps of both follow the same loss curve.

use burn::tensor::Device;
use landscape_data::{DatasetName, SyntheticConfig, fill_batch};
use landscape_models::{Network, NetworkSpec, ParamKind, ParamSet};
use landscape_train::optimizer::Optimizer;
use landscape_train::{MicroBatch, TrainConfig, TrainEngine};

fn dataset() -> landscape_data::Dataset {
    let synthetic = SyntheticConfig {
        seed: 7,
        train: 2048,
        test: 64,
    };
    let locations = landscape_data::DataLocations::from_env("/nonexistent");
    landscape_data::load(&DatasetName::Synthetic, &locations, &synthetic).unwrap()
}

fn micro(data: &landscape_data::Dataset, indices: &[usize]) -> MicroBatch {
    let mut images = Vec::new();
    fill_batch(&data.train, indices, &data.normalization, None, &mut images);
    MicroBatch {
        images,
        labels: indices.iter().map(|&i| data.train.labels[i]).collect(),
    }
}

fn config(model: &str, width: f64, optimizer: &str, lr: f64) -> TrainConfig {
    toml::from_str(&format!(
        "model = \"{model}\"\nwidth = {width}\noptimizer = \"{optimizer}\"\nnesterov = true\nlr = {lr}\nepochs = 1\nbatch_size = 16\nweight_decay = 5e-4"
    ))
    .unwrap()
}

fn network(cfg: &TrainConfig) -> Network {
    Network::new(NetworkSpec {
        arch: cfg.model,
        width: cfg.width,
        classes: 10,
    })
    .unwrap()
}

/// Largest difference of any tensor relative to the larger of that tensor's largest magnitude
/// and 1e-3 of the largest over all tensors (a bias before a BatchNorm gets only float noise
/// for a gradient, and stays near zero).
fn relative(a: &ParamSet, b: &ParamSet) -> (f32, String) {
    let mut worst = (0.0f32, String::new());
    let b_host = b.to_host();
    let global = b_host.iter().flatten().fold(0.0f32, |m, v| m.max(v.abs()));
    for ((info, x), y) in a.layout().entries().iter().zip(a.to_host()).zip(b_host) {
        let scale = y.iter().fold(1e-3 * global, |m, v| m.max(v.abs()));
        let d = x
            .iter()
            .zip(&y)
            .fold(0.0f32, |m, (p, q)| m.max((p - q).abs()))
            / scale;
        if d > worst.0 {
            worst = (d, info.name.clone());
        }
    }
    worst
}

/// `|(a - start) - (b - start)| / |b - start|` over the learnable tensors or over the others.
fn update_error(start: &ParamSet, a: &ParamSet, b: &ParamSet, learnable: bool) -> f64 {
    let (mut diff, mut norm) = (0.0f64, 0.0f64);
    for (((info, s), x), y) in start
        .layout()
        .entries()
        .iter()
        .zip(start.to_host())
        .zip(a.to_host())
        .zip(b.to_host())
    {
        if info.kind.is_learnable() != learnable {
            continue;
        }
        for ((s, x), y) in s.iter().zip(&x).zip(&y) {
            diff += ((x - y) as f64).powi(2);
            norm += ((y - s) as f64).powi(2);
        }
    }
    (diff / norm.max(f64::MIN_POSITIVE)).sqrt()
}

#[test]
fn a_kernel_step_is_a_burn_step() {
    let data = dataset();
    let device = Device::flex();
    for (model, width, optimizer, lr) in [
        ("resnet20", 0.25, "sgd", 0.1),
        ("resnet20", 0.25, "adam", 1e-3),
        ("vgg9", 0.125, "sgd", 0.1),
    ] {
        let cfg = config(model, width, optimizer, lr);
        let net = network(&cfg);
        let mut kernels = TrainEngine::new(&net, &device);
        assert!(
            kernels.name().starts_with("cpu-kernels"),
            "{model}: the CPU engine is {}",
            kernels.name()
        );
        let mut burn = TrainEngine::autodiff(&device);
        let start = net.init(3, &device);
        // Two logical batches of 16, each as micro-batches of 8: gradients accumulate, the
        // running statistics chain, the optimizer state carries over.
        let (mut opt_a, mut opt_b) = (
            Optimizer::new(&cfg, net.layout()),
            Optimizer::new(&cfg, net.layout()),
        );
        let (mut a, mut b) = (start.clone(), start);
        for step in 0..2 {
            let batch = |k: usize| {
                micro(
                    &data,
                    &(step * 16 + 8 * k..step * 16 + 8 * k + 8).collect::<Vec<_>>(),
                )
            };
            let (next_a, stats_a) =
                kernels.step(&net, &a, &mut opt_a, [batch(0), batch(1)], 16, lr);
            let (next_b, stats_b) = burn.step(&net, &b, &mut opt_b, [batch(0), batch(1)], 16, lr);
            let what = format!("{model} {optimizer} step {step}");
            assert!(
                (stats_a.0 - stats_b.0).abs() <= 1e-4 * stats_b.0,
                "{what}: loss {} vs burn {}",
                stats_a.0,
                stats_b.0
            );
            assert_eq!(stats_a.1, stats_b.1, "{what}: correct predictions");
            let moved = relative(&next_b, &b);
            assert!(moved.0 > 1e-4, "{what}: the step moved nothing ({moved:?})");
            // The updates of the learnable tensors and the running statistics, as vectors:
            // a ReLU unit within rounding of its kink may decide differently in the two
            // engines and move a few entries; a fault in the step moves the whole.
            for learnable in [true, false] {
                let e = update_error(&b, &next_a, &next_b, learnable);
                assert!(
                    e <= 1e-3,
                    "{what}: the update (learnable {learnable}) differs by {e:e} (relative L2)"
                );
            }
            // Nor may a single tensor stray far.
            let (d, tensor) = relative(&next_a, &next_b);
            assert!(
                d <= 3e-2,
                "{what}: {tensor} differs by {d:e} after the step"
            );
            (a, b) = (next_a, next_b);
        }
        // The running statistics were updated, in both alike.
        let running: Vec<bool> = net
            .layout()
            .entries()
            .iter()
            .map(|i| i.kind == ParamKind::BnRunningMean)
            .collect();
        let changed = a
            .to_host()
            .iter()
            .zip(&running)
            .filter(|(_, r)| **r)
            .any(|(v, _)| v.iter().any(|m| *m != 0.0));
        assert!(changed, "{model}: running means never moved");
    }
}

#[test]
fn kernel_training_tracks_burn_over_many_steps() {
    let data = dataset();
    let device = Device::flex();
    let cfg = config("resnet20", 0.25, "sgd", 0.05);
    let net = network(&cfg);
    let curve = |mut engine: TrainEngine| {
        let mut params = net.init(5, &device);
        let mut optimizer = Optimizer::new(&cfg, net.layout());
        let mut losses = Vec::new();
        for step in 0..160 {
            let indices: Vec<usize> = (0..32)
                .map(|i| (step * 32 + i) % data.train.len())
                .collect();
            let (next, (loss, _)) = engine.step(
                &net,
                &params,
                &mut optimizer,
                [micro(&data, &indices)],
                32,
                0.05,
            );
            params = next;
            losses.push(loss);
        }
        // Mean loss over windows of 32 steps.
        losses
            .chunks(32)
            .map(|w| w.iter().sum::<f64>() / w.len() as f64)
            .collect::<Vec<_>>()
    };
    let ours = curve(TrainEngine::new(&net, &device));
    let reference = curve(TrainEngine::autodiff(&device));
    for (i, (a, b)) in ours.iter().zip(&reference).enumerate() {
        assert!(
            (a - b).abs() <= 0.05 * b,
            "window {i}: mean loss {a} vs burn {b} (curves {ours:?} and {reference:?})"
        );
    }
    assert!(
        ours[ours.len() - 1] < 0.8 * ours[0],
        "the kernels do not learn: {ours:?}"
    );
}
