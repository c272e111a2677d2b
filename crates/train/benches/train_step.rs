//! Training throughput: one SGD step (forward, backward, Nesterov momentum with weight decay) on
//! a batch of 128 images, for ResNet-20 and VGG-9 at the quick scale's width (0.25) and at full
//! width. Criterion's "elem/s" is training images per second. Run with `just bench`.

use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use landscape_models::{Network, NetworkSpec};
use landscape_train::optimizer::Optimizer;
use landscape_train::{TrainConfig, train_step};
use std::time::Duration;

const BATCH: usize = 128;

fn config(model: &str, width: f64) -> TrainConfig {
    toml::from_str(&format!(
        "model = \"{model}\"\nwidth = {width}\noptimizer = \"sgd\"\nnesterov = true\nlr = 0.1\nepochs = 1\nbatch_size = {BATCH}\nweight_decay = 5e-4"
    ))
    .unwrap()
}

fn train_steps(c: &mut Criterion) {
    let device = Device::flex();
    device.seed(0);
    let mut group = c.benchmark_group("train_step");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(15))
        .warm_up_time(Duration::from_secs(2));
    group.throughput(Throughput::Elements(BATCH as u64));
    let x = Tensor::<4>::random([BATCH, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
    let labels: Vec<i64> = (0..BATCH as i64).map(|i| i % 10).collect();
    let y = Tensor::<1, Int>::from_data(TensorData::new(labels, [BATCH]), &device);
    for (model, width) in [
        ("resnet20", 0.25),
        ("vgg9", 0.25),
        ("resnet20", 1.0),
        ("vgg9", 1.0),
    ] {
        let cfg = config(model, width);
        let net = Network::new(NetworkSpec {
            arch: cfg.model,
            width,
            classes: 10,
        })
        .unwrap();
        let mut params = net.init(0, &device);
        let mut optimizer = Optimizer::new(&cfg, net.layout());
        group.bench_function(BenchmarkId::new(model, format!("w{width}_b{BATCH}")), |b| {
            b.iter(|| {
                let (next, stats) = train_step(
                    &net,
                    &params,
                    &mut optimizer,
                    std::iter::once((x.clone(), y.clone())),
                    BATCH,
                    0.1,
                );
                params = next;
                stats
            })
        });
    }
    group.finish();
}

criterion_group!(benches, train_steps);
criterion_main!(benches);
