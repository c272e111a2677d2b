//! The CPU kernels ([`landscape_models::cpu`]) against burn's interpreter on the folded graphs,
//! and the evaluator's two paths against each other.

use burn::tensor::{Device, Distribution, Tensor};
use landscape_models::cpu::{CpuNet, Isa, nchw_to_nhwc};
use landscape_models::eval::{DeviceBatches, Evaluator, Precision};
use landscape_models::fold::FoldedGraph;
use landscape_models::forward::{BatchNormMode, Forward};
use landscape_models::{Network, NetworkSpec, ParamKind, ParamSet};

fn net(name: &str, width: f64) -> Network {
    Network::new(NetworkSpec {
        arch: name.parse().unwrap(),
        width,
        classes: 10,
    })
    .unwrap()
}

/// Non-trivial BatchNorm statistics and affine parameters, so folding (and DenseNet's unfolded
/// BatchNorms) have something to do.
fn perturbed_states(n: &Network, seed: u64) -> ParamSet {
    perturbed_with_variances(n, seed, (0.5, 2.0))
}

/// [`perturbed_states`] with running variances uniform in `var` (negative ones are what an
/// extrapolated surface produces; inference clamps them to 0).
fn perturbed_with_variances(n: &Network, seed: u64, var: (f64, f64)) -> ParamSet {
    let device = Device::flex();
    device.seed(seed);
    let p = n.init(seed, &device);
    p.map(|info, t| match info.kind {
        ParamKind::BnRunningVar => t.clone().random_like(Distribution::Uniform(var.0, var.1)),
        ParamKind::BnRunningMean | ParamKind::BnBias | ParamKind::Bias => {
            t.clone().random_like(Distribution::Normal(0.0, 0.3))
        }
        ParamKind::BnWeight => t.clone().random_like(Distribution::Uniform(0.5, 1.5)),
        // Larger linear weights than the 1e-3 initialization, so the logits differ visibly.
        ParamKind::LinearWeight => t.clone().random_like(Distribution::Normal(0.0, 0.05)),
        _ => t.clone(),
    })
}

fn images(n: usize, seed: u64) -> Vec<f32> {
    let device = Device::flex();
    device.seed(seed);
    Tensor::<4>::random([n, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device)
        .into_data()
        .try_into_vec::<f32>()
        .unwrap()
}

/// Largest difference between the kernels' logits and burn's, relative to the largest logit.
fn relative_difference(name: &str, width: f64, count: usize, isa: Isa) -> f32 {
    relative_difference_at(name, width, count, isa, (0.5, 2.0))
}

fn relative_difference_at(name: &str, width: f64, count: usize, isa: Isa, var: (f64, f64)) -> f32 {
    relative_difference_with(name, width, count, isa, true, var)
}

fn relative_difference_with(
    name: &str,
    width: f64,
    count: usize,
    isa: Isa,
    winograd: bool,
    var: (f64, f64),
) -> f32 {
    let device = Device::flex();
    let n = net(name, width);
    let p = perturbed_with_variances(&n, 5, var);
    let folded = FoldedGraph::plan(n.layers());
    let tensors = folded.tensors(p.tensors());
    let x = images(count, 2);
    let burn_logits: Vec<f32> = Forward::new(&tensors, BatchNormMode::Running)
        .logits(
            folded.layers(),
            Tensor::<4>::from_data(
                burn::tensor::TensorData::new(x.clone(), [count, 3, 32, 32]),
                &device,
            ),
        )
        .into_data()
        .try_into_vec::<f32>()
        .unwrap();
    let cpu = CpuNet::with_kernels(folded.layers(), [3, 32, 32], isa, winograd).unwrap();
    if winograd && width >= 0.5 {
        let (wino, all) = cpu.winograd_convolutions();
        assert!(
            wino > 0 && wino < all,
            "{name}: {wino} of {all} convolutions by Winograd"
        );
    }
    let mut point = cpu.point();
    cpu.load(&mut point, &tensors);
    let mut logits = vec![f32::NAN; count * cpu.classes()];
    cpu.logits(&point, &nchw_to_nhwc(&x, 3, 32, 32), &mut logits);
    assert_eq!(logits.len(), burn_logits.len());
    let scale = burn_logits.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(
        scale > 1e-2,
        "{name}: logits too small to compare ({scale})"
    );
    let diff = logits
        .iter()
        .zip(&burn_logits)
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    diff / scale.max(1.0)
}

#[test]
fn kernels_match_burn_on_the_paper_networks() {
    for (name, width) in [
        ("vgg9", 0.25),
        ("vgg9", 0.5),
        ("resnet20", 0.25),
        ("resnet20", 1.0),
        ("resnet20-noshort", 0.5),
        ("densenet121", 0.25),
    ] {
        let d = relative_difference(name, width, 7, Isa::best());
        assert!(d <= 1e-4, "{name} x{width}: differs from burn by {d}");
    }
}

#[test]
fn direct_kernels_alone_match_burn() {
    for (name, width) in [("vgg9", 0.5), ("resnet20", 1.0), ("densenet121", 0.25)] {
        let d = relative_difference_with(name, width, 5, Isa::best(), false, (0.5, 2.0));
        assert!(
            d <= 1e-4,
            "{name} x{width} (direct only): differs from burn by {d}"
        );
    }
}

#[test]
fn negative_running_variances_are_clamped_like_burn() {
    // DenseNet's pre-activation BatchNorms stay unfolded and run in the kernels' own affine
    // pass; the others are folded into the convolutions.
    for (name, width) in [("densenet121", 0.25), ("resnet20", 0.25)] {
        let d = relative_difference_at(name, width, 5, Isa::best(), (-0.02, 3.0));
        assert!(d <= 1e-4, "{name} x{width}: differs from burn by {d}");
    }
}

/// Every instruction set this CPU runs (AVX-512, AVX2 and the portable loops on this x86-64
/// machine; NEON and the portable loops in CI's emulated aarch64 build).
#[test]
fn every_instruction_set_matches_burn() {
    for isa in Isa::available_all() {
        for (name, width) in [("vgg9", 0.5), ("resnet20", 0.5), ("densenet121", 0.25)] {
            let d = relative_difference(name, width, 3, isa);
            assert!(
                d <= 1e-4,
                "{name} x{width} ({isa}): differs from burn by {d}"
            );
        }
    }
    eprintln!("instruction sets: {:?}", Isa::available_all());
}

#[test]
fn evaluator_on_the_cpu_agrees_with_burn() {
    let device = Device::flex();
    let count = 37;
    let x = images(count, 9);
    let labels: Vec<u16> = (0..count).map(|i| ((i * 7) % 10) as u16).collect();
    let data = DeviceBatches::upload(&x, &labels, 8, &device).unwrap();
    for (name, width) in [
        ("vgg9", 0.25),
        ("resnet20", 0.5),
        ("resnet20-noshort", 0.25),
        ("densenet121", 0.25),
    ] {
        let n = net(name, width);
        let p = perturbed_states(&n, 11);
        let fast = Evaluator::new(n.layers());
        if std::env::var("LANDSCAPE_CPU_KERNELS").is_err() {
            assert!(
                fast.uses_cpu_kernels(&data),
                "{name}: the CPU kernels are not used"
            );
        }
        let plain = Evaluator::new(n.layers()).without_cpu_kernels();
        assert!(!plain.uses_cpu_kernels(&data));
        let a = fast.evaluate(p.tensors(), &data);
        let b = plain.evaluate(p.tensors(), &data);
        assert!(
            (a.loss - b.loss).abs() <= 1e-4 * b.loss.abs().max(1e-3),
            "{name}: loss {} vs burn {}",
            a.loss,
            b.loss
        );
        // A sample may flip only if two logits tie to float precision.
        assert!(
            (a.accuracy - b.accuracy).abs() <= 100.0 / count as f64 + 1e-9,
            "{name}: accuracy {} vs burn {}",
            a.accuracy,
            b.accuracy
        );
        // Evaluating again (reusing the packed point and buffers) gives the same numbers, and a
        // different point gives different ones.
        assert_eq!(fast.evaluate(p.tensors(), &data), a);
        let q = perturbed_states(&n, 12);
        let c = fast.evaluate(q.tensors(), &data);
        let d = plain.evaluate(q.tensors(), &data);
        assert_ne!(c.loss, a.loss);
        assert!(
            (c.loss - d.loss).abs() <= 1e-4 * d.loss.abs().max(1e-3),
            "{name}: loss {} vs burn {} at a second point",
            c.loss,
            d.loss
        );
    }
}

#[test]
fn the_kernels_compile_every_paper_network() {
    for arch in landscape_models::Arch::paper_models() {
        let n = Network::new(NetworkSpec {
            arch,
            width: 1.0,
            classes: 10,
        })
        .unwrap();
        let folded = FoldedGraph::plan(n.layers());
        let cpu = CpuNet::new(folded.layers(), [3, 32, 32]).unwrap();
        assert_eq!(cpu.classes(), 10, "{arch}");
    }
}

/// bf16 inference (`Precision::Bf16`) runs burn's operations in bfloat16: the loss moves by the
/// rounding (about 2^-8 relative per operation), not by more, and accuracy barely changes.
#[test]
fn bf16_evaluation_rounds_like_bfloat16() {
    let device = Device::flex();
    let count = 24;
    let x = images(count, 5);
    let labels: Vec<u16> = (0..count).map(|i| ((i * 3) % 10) as u16).collect();
    let data = DeviceBatches::upload(&x, &labels, 10, &device).unwrap();
    for (name, width) in [("vgg9", 0.25), ("resnet20", 0.25)] {
        let n = net(name, width);
        let p = perturbed_states(&n, 3);
        let exact = Evaluator::new(n.layers()).evaluate(p.tensors(), &data);
        let bf16 = Evaluator::new(n.layers()).with_precision(Precision::Bf16);
        assert!(
            !bf16.uses_cpu_kernels(&data),
            "{name}: bf16 ran the f32 kernels"
        );
        let rounded = bf16.evaluate(p.tensors(), &data);
        let rel = (rounded.loss - exact.loss).abs() / exact.loss.abs();
        assert!(
            rel > 1e-6 && rel < 0.05,
            "{name}: bf16 loss {} vs f32 {} (relative {rel:e})",
            rounded.loss,
            exact.loss
        );
        assert!(
            (rounded.accuracy - exact.accuracy).abs() <= 3.0 * 100.0 / count as f64,
            "{name}: bf16 accuracy {} vs f32 {}",
            rounded.accuracy,
            exact.accuracy
        );
    }
}
