//! Grid points per second of the landscape engine: one point is a full inference pass over N
//! images at a perturbed parameter point. `engine` is what `landscape surface` does (BatchNorm
//! folded into the convolutions, batches of 500 resident on the device, run by the CPU kernels
//! of `landscape_models::cpu`); `folded_burn` is the same folded graph through burn's
//! operations (what the kernels buy); `plain_b128` is the
//! reference code's method on the same backend (unfolded inference-mode forward at batch 128),
//! the baseline measured in the same run. Run with `just bench`; criterion's "elem/s" is grid
//! points per second.

use burn::tensor::{Device, Distribution, Tensor};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use landscape_models::eval::{DeviceBatches, Evaluator};
use landscape_models::forward::{BatchNormMode, Forward, per_sample_loss};
use landscape_models::{Network, NetworkSpec, ParamScope};
use landscape_surface::direction::{DirNorm, Direction, Ignore, displaced};
use std::time::Duration;

/// Images per grid point.
const IMAGES: usize = 1000;

fn batches(batch: usize) -> DeviceBatches {
    let device = Device::flex();
    device.seed(0);
    let x = Tensor::<4>::random([IMAGES, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
    let images: Vec<f32> = x.into_data().try_into_vec::<f32>().unwrap();
    let labels: Vec<u16> = (0..IMAGES).map(|i| (i % 10) as u16).collect();
    DeviceBatches::upload(&images, &labels, batch, &device).unwrap()
}

fn grid_points(c: &mut Criterion) {
    let device = Device::flex();
    let mut group = c.benchmark_group("grid_point");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .warm_up_time(Duration::from_secs(2));
    group.throughput(Throughput::Elements(1));
    let (engine_data, plain_data) = (batches(500), batches(128));
    for (model, width) in [
        ("resnet20", 1.0),
        ("vgg9", 1.0),
        ("resnet20", 0.25),
        ("vgg9", 0.25),
    ] {
        let net = Network::new(NetworkSpec {
            arch: model.parse().unwrap(),
            width,
            classes: 10,
        })
        .unwrap();
        let base = net.init(0, &device);
        let dirs = Direction::random(
            &base,
            ParamScope::Weights,
            DirNorm::Filter,
            Ignore::Biasbn,
            1,
            2,
        );
        let label = format!("{model}_w{width}_{IMAGES}img");
        let evaluator = Evaluator::new(net.layers());
        group.bench_function(BenchmarkId::new("engine", &label), |b| {
            let mut t = 0.0;
            b.iter(|| {
                t += 0.01;
                evaluator.evaluate(&displaced(&base, &dirs, &[t, -t]), &engine_data)
            })
        });
        let burn_ops = evaluator.clone().without_cpu_kernels();
        group.bench_function(BenchmarkId::new("folded_burn", &label), |b| {
            let mut t = 0.0;
            b.iter(|| {
                t += 0.01;
                burn_ops.evaluate(&displaced(&base, &dirs, &[t, -t]), &engine_data)
            })
        });
        group.bench_function(BenchmarkId::new("plain_b128", &label), |b| {
            let mut t = 0.0;
            b.iter(|| {
                t += 0.01;
                let params = displaced(&base, &dirs, &[t, -t]);
                let mut total = 0.0f32;
                for (x, y) in plain_data.batches() {
                    let logits = Forward::new(&params, BatchNormMode::Running)
                        .logits(net.layers(), x.clone());
                    total += per_sample_loss(logits, y.clone())
                        .sum()
                        .into_scalar::<f32>();
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group!(benches, grid_points);
criterion_main!(benches);
