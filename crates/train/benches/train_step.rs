//! Training throughput: one SGD step (forward, backward, Nesterov momentum with weight decay) on
//! a batch of 128 images, on landscape's CPU kernels and on burn's autodiff, for ResNet-20 and
//! VGG-9 at the quick scale's width (0.25) and at full width (burn's only at 0.25: a step takes
//! seconds there). Criterion's "elem/s" is training images per second. Run with `just bench`.

use burn::tensor::{Device, Distribution, Tensor};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use landscape_models::{Network, NetworkSpec};
use landscape_train::optimizer::Optimizer;
use landscape_train::{MicroBatch, TrainConfig, TrainEngine};
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
    let images: Vec<f32> =
        Tensor::<4>::random([BATCH, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device)
            .into_data()
            .try_into_vec()
            .unwrap();
    let micro = MicroBatch {
        images,
        labels: (0..BATCH as u16).map(|i| i % 10).collect(),
    };
    for (model, width, burn) in [
        ("resnet20", 0.25, true),
        ("vgg9", 0.25, true),
        ("resnet20", 1.0, false),
        ("vgg9", 1.0, false),
        ("resnet56", 1.0, false),
    ] {
        let cfg = config(model, width);
        let net = Network::new(NetworkSpec {
            arch: cfg.model,
            width,
            classes: 10,
        })
        .unwrap();
        let engines = [
            Some(TrainEngine::new(&net, &device)),
            burn.then(|| TrainEngine::autodiff(&device)),
        ];
        for mut engine in engines.into_iter().flatten() {
            let mut params = net.init(0, &device);
            let mut optimizer = Optimizer::new(&cfg, net.layout());
            let id = BenchmarkId::new(
                format!("{model}/{}", engine.name()),
                format!("w{width}_b{BATCH}"),
            );
            group.bench_function(id, |b| {
                b.iter(|| {
                    let (next, stats) = engine.step(
                        &net,
                        &params,
                        &mut optimizer,
                        std::iter::once(micro.clone()),
                        BATCH,
                        0.1,
                    );
                    params = next;
                    stats
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, train_steps);
criterion_main!(benches);
