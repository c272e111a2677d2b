//! The CPU training kernels layer by layer: one training step (forward, loss, backward) of a
//! graph holding one layer of each kind the paper's networks use, at their shapes, on a batch
//! of 32. Criterion's "elem/s" is images per second; the layer's share of a network's step is
//! its time against `train_step` (crates/train/benches). Run with `cargo bench -p
//! landscape-models`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use landscape_models::cpu::CpuTrainer;
use landscape_models::graph::{BatchNorm, Conv, Layer, Linear};
use landscape_models::{ParamKind, ParamLayout};
use std::time::Duration;

const BATCH: usize = 32;

struct Graph {
    layout: ParamLayout,
}

impl Graph {
    fn conv(&mut self, cin: usize, cout: usize, kernel: usize, stride: usize) -> Layer {
        let i = self.layout.len();
        Layer::Conv(Conv {
            weight: self.layout.push(
                format!("c{i}"),
                vec![cout, cin, kernel, kernel],
                ParamKind::ConvWeight,
            ),
            bias: None,
            cin,
            cout,
            kernel,
            stride,
            padding: kernel / 2,
        })
    }

    fn bn(&mut self, c: usize) -> Layer {
        let i = self.layout.len();
        let mut t = |s: &str, k| self.layout.push(format!("b{i}{s}"), vec![c], k);
        Layer::BatchNorm(BatchNorm {
            weight: t("w", ParamKind::BnWeight),
            bias: t("b", ParamKind::BnBias),
            running_mean: t("m", ParamKind::BnRunningMean),
            running_var: t("v", ParamKind::BnRunningVar),
            channels: c,
        })
    }

    fn head(&mut self, c: usize) -> [Layer; 2] {
        let i = self.layout.len();
        [
            Layer::GlobalAvgPool,
            Layer::Linear(Linear {
                weight: self
                    .layout
                    .push(format!("l{i}"), vec![10, c], ParamKind::LinearWeight),
                bias: self
                    .layout
                    .push(format!("l{i}b"), vec![10], ParamKind::Bias),
                input: c,
                output: 10,
            }),
        ]
    }
}

fn layers(c: &mut Criterion) {
    let mut group = c.benchmark_group("train_layer");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(BATCH as u64));
    // (name, input channels and side, layer builder, output channels)
    type Build = fn(&mut Graph, usize) -> Vec<Layer>;
    let cases: [(&str, usize, usize, Build); 6] = [
        ("conv3x3_bn_relu", 16, 32, |g, c| {
            vec![g.conv(c, c, 3, 1), g.bn(c), Layer::Relu]
        }),
        ("conv3x3_bn_relu", 64, 32, |g, c| {
            vec![g.conv(c, c, 3, 1), g.bn(c), Layer::Relu]
        }),
        ("conv3x3_bn_relu", 256, 8, |g, c| {
            vec![g.conv(c, c, 3, 1), g.bn(c), Layer::Relu]
        }),
        ("conv3x3_s2_bn", 32, 16, |g, c| {
            vec![g.conv(c, c, 3, 2), g.bn(c)]
        }),
        ("conv1x1_s2_bn", 32, 16, |g, c| {
            vec![g.conv(c, c, 1, 2), g.bn(c)]
        }),
        ("maxpool_bn_relu", 64, 32, |g, c| {
            vec![
                g.bn(c),
                Layer::Relu,
                Layer::MaxPool {
                    kernel: 2,
                    stride: 2,
                },
            ]
        }),
    ];
    for (name, ch, side, build) in cases {
        let mut g = Graph {
            layout: ParamLayout::default(),
        };
        // A 1x1 stem brings the 3 input channels to the layer's.
        let mut graph = vec![g.conv(3, ch, 1, 1)];
        graph.extend(build(&mut g, ch));
        graph.extend(g.head(ch));
        let trainer = CpuTrainer::new(&graph, &g.layout, [3, side, side]).unwrap();
        let mut params: Vec<Vec<f32>> = g
            .layout
            .entries()
            .iter()
            .enumerate()
            .map(|(k, info)| {
                (0..info.numel())
                    .map(|j| match info.kind {
                        ParamKind::BnWeight | ParamKind::BnRunningVar => 1.0,
                        _ => (((j * 7919 + k * 104729) % 1000) as f32 / 1000.0 - 0.5) * 0.2,
                    })
                    .collect()
            })
            .collect();
        let mut grads: Vec<Vec<f32>> = params.iter().map(|p| vec![0.0; p.len()]).collect();
        let images: Vec<f32> = (0..BATCH * 3 * side * side)
            .map(|i| ((i % 97) as f32 / 97.0) - 0.5)
            .collect();
        let labels: Vec<u16> = (0..BATCH as u16).map(|i| i % 10).collect();
        let mut ws = trainer.workspace();
        trainer.load(&mut ws, &params);
        group.bench_function(
            BenchmarkId::new(name, format!("c{ch}_{side}x{side}")),
            |b| {
                b.iter(|| {
                    trainer.accumulate(&mut ws, &mut params, &images, &labels, 1.0, &mut grads)
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, layers);
criterion_main!(benches);
