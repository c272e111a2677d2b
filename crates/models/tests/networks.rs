//! The paper's networks: exact parameter counts, shapes, modes and folding.

use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use landscape_models::fold::FoldedGraph;
use landscape_models::forward::{BatchNormMode, Forward, cross_entropy};
use landscape_models::network::batch_norm_count;
use landscape_models::{Arch, Network, NetworkSpec, ParamKind, ParamScope};

fn net(name: &str, width: f64) -> Network {
    Network::new(NetworkSpec {
        arch: name.parse().unwrap(),
        width,
        classes: 10,
    })
    .unwrap()
}

#[test]
fn parameter_counts_match_the_paper() {
    let expected = [
        ("vgg9", 2_789_706),
        ("resnet20", 272_474),
        ("resnet56", 855_770),
        ("resnet110", 1_730_714),
        ("resnet20-noshort", 269_722),
        ("resnet56-noshort", 853_018),
        ("resnet110-noshort", 1_727_962),
        ("wrn56-2", 3_412_394),
        ("wrn56-4", 13_628_234),
        ("wrn56-8", 54_470_282),
        ("wrn56-2-noshort", 3_401_770),
        ("wrn56-4-noshort", 13_586_506),
        ("wrn56-8-noshort", 54_304_906),
        ("densenet121", 6_956_298),
    ];
    for (name, count) in expected {
        assert_eq!(net(name, 1.0).parameter_count(), count, "{name}");
    }
    // wrn56-1 is resnet56.
    assert_eq!(net("wrn56-1", 1.0).parameter_count(), 855_770);
}

#[test]
fn multiply_adds_of_resnet20_by_hand() {
    // stem + 6 convs at 32x32 + stage 2 + stage 3 (each with a 1x1 projection) + linear.
    let by_hand = 442_368
        + 14_155_776
        + 1_179_648
        + 11_796_480
        + 131_072
        + 1_179_648
        + 11_796_480
        + 131_072
        + 640;
    assert_eq!(net("resnet20", 1.0).macs_per_image(), by_hand);
    assert!(net("resnet20", 0.5).macs_per_image() < by_hand / 3);
}

#[test]
fn names_kinds_and_order_are_stable() {
    let n = net("resnet20", 1.0);
    let names: Vec<&str> = n
        .layout()
        .entries()
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(
        &names[..6],
        [
            "conv1.weight",
            "bn1.weight",
            "bn1.bias",
            "bn1.running_mean",
            "bn1.running_var",
            "layer1.0.conv1.weight"
        ]
    );
    assert!(names.contains(&"layer2.0.shortcut.0.weight"));
    assert!(
        !net("resnet20-noshort", 1.0)
            .layout()
            .entries()
            .iter()
            .any(|e| e.name.contains("shortcut"))
    );
    let last = n.layout().entries().last().unwrap();
    assert_eq!(
        (last.name.as_str(), last.kind, last.shape.clone()),
        ("linear.bias", ParamKind::Bias, vec![10])
    );
    let states = n.layout().numel(ParamScope::States) - n.layout().numel(ParamScope::Weights);
    assert_eq!(states, 2 * (16 + 6 * 16 + 6 * 32 + 32 + 6 * 64 + 64)); // running mean+var per BN channel
    assert_eq!(batch_norm_count(net("vgg9", 1.0).layers()), 8);
}

#[test]
fn initialization_follows_the_reference() {
    let device = Device::flex();
    let n = net("vgg9", 0.5);
    let p = n.init(3, &device);
    let host = p.to_host();
    for (info, v) in n.layout().entries().iter().zip(&host) {
        let mean = v.iter().map(|x| *x as f64).sum::<f64>() / v.len() as f64;
        let std =
            (v.iter().map(|x| (*x as f64 - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
        match info.kind {
            ParamKind::ConvWeight => {
                let fan_in: usize = info.shape[1..].iter().product();
                let want = (2.0 / fan_in as f64).sqrt();
                assert!(
                    (std / want - 1.0).abs() < 0.1,
                    "{}: std {std} want {want}",
                    info.name
                );
            }
            ParamKind::LinearWeight => {
                assert!((std / 1e-3 - 1.0).abs() < 0.1, "{}: {std}", info.name)
            }
            ParamKind::BnWeight | ParamKind::BnRunningVar => assert!(v.iter().all(|x| *x == 1.0)),
            _ => assert!(v.iter().all(|x| *x == 0.0), "{}", info.name),
        }
    }
    assert_eq!(
        n.init(3, &device).to_host(),
        host,
        "same seed, same weights"
    );
    assert_ne!(n.init(4, &device).to_host(), host);
}

fn images(n: usize, seed: u64) -> Tensor<4> {
    let device = Device::flex();
    device.seed(seed);
    Tensor::<4>::random([n, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device)
}

#[test]
fn every_paper_model_runs_forward() {
    let device = Device::flex();
    for arch in Arch::paper_models()
        .into_iter()
        .filter(|a| !matches!(a, Arch::ResNet { widen: 4 | 8, .. }))
    {
        let n = Network::new(NetworkSpec {
            arch,
            width: 0.25,
            classes: 10,
        })
        .unwrap();
        let p = n.init(0, &device);
        let logits = n.eval_logits(&p, images(2, 1));
        assert_eq!(logits.dims(), [2, 10], "{arch}");
    }
}

fn perturbed_states(n: &Network, seed: u64) -> landscape_models::ParamSet {
    // Non-trivial BatchNorm statistics and affine parameters so folding has something to do.
    let device = Device::flex();
    let p = n.init(seed, &device);
    p.map(|info, t| match info.kind {
        ParamKind::BnRunningVar => t.clone().random_like(Distribution::Uniform(0.5, 2.0)),
        ParamKind::BnRunningMean | ParamKind::BnBias | ParamKind::Bias => {
            t.clone().random_like(Distribution::Normal(0.0, 0.3))
        }
        ParamKind::BnWeight => t.clone().random_like(Distribution::Uniform(0.5, 1.5)),
        _ => t.clone(),
    })
}

#[test]
fn folding_batchnorm_preserves_inference() {
    for name in ["vgg9", "resnet20", "resnet20-noshort", "densenet121"] {
        let n = net(name, 0.25);
        let p = perturbed_states(&n, 5);
        let x = images(4, 2);
        let plain = n.eval_logits(&p, x.clone());
        let folded = FoldedGraph::plan(n.layers());
        let tensors = folded.tensors(p.tensors());
        let fast = Forward::new(&tensors, BatchNormMode::Running).logits(folded.layers(), x);
        let diff: f32 = (plain.clone() - fast).abs().max().into_scalar::<f32>();
        let scale: f32 = plain.abs().max().into_scalar::<f32>();
        assert!(
            diff <= 1e-4 * scale.max(1.0),
            "{name}: folded differs by {diff} (scale {scale})"
        );
        let bns_left = batch_norm_count(folded.layers());
        let expected_left = if name == "densenet121" { 58 + 3 + 1 } else { 0 };
        assert_eq!(bns_left, expected_left, "{name}");
    }
}

#[test]
fn training_mode_normalizes_by_batch_and_updates_running_statistics() {
    let device = Device::flex();
    let n = net("resnet20", 0.25);
    let p = n.init(0, &device);
    let x = images(8, 3).mul_scalar(3.0).add_scalar(2.0);
    let mut pass = Forward::new(p.tensors(), BatchNormMode::Batch);
    let logits = pass.logits(n.layers(), x.clone());
    assert_eq!(logits.dims(), [8, 10]);
    let updates = pass.into_running_updates();
    assert_eq!(updates.len(), 2 * batch_norm_count(n.layers()));
    // The first BN sees conv1(x): its new running mean is 0.9 * 0 + 0.1 * batch mean, and the
    // running var 0.9 * 1 + 0.1 * the unbiased batch variance.
    let conv1 = p.tensors()[0].clone().reshape([4, 3, 3, 3]);
    let h = burn::tensor::module::conv2d(
        x,
        conv1,
        None,
        burn::tensor::ops::ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
    );
    let ch0: Vec<f32> = h
        .narrow(1, 0, 1)
        .reshape([8 * 32 * 32])
        .to_data()
        .try_into_vec::<f32>()
        .unwrap();
    let m = ch0.iter().map(|v| *v as f64).sum::<f64>() / ch0.len() as f64;
    let var = ch0.iter().map(|v| (*v as f64 - m).powi(2)).sum::<f64>() / (ch0.len() - 1) as f64;
    let (id_mean, new_mean) = &updates[0];
    let (id_var, new_var) = &updates[1];
    assert_eq!(n.layout().get(*id_mean).name, "bn1.running_mean");
    assert_eq!(n.layout().get(*id_var).name, "bn1.running_var");
    let got_mean = new_mean.to_data().try_into_vec::<f32>().unwrap()[0] as f64;
    let got_var = new_var.to_data().try_into_vec::<f32>().unwrap()[0] as f64;
    assert!(
        (got_mean - 0.1 * m).abs() < 1e-3 * (1.0 + m.abs()),
        "{got_mean} vs {}",
        0.1 * m
    );
    assert!(
        (got_var - (0.9 + 0.1 * var)).abs() < 1e-3 * (1.0 + var),
        "{got_var} vs {}",
        0.9 + 0.1 * var
    );
}

#[test]
fn gradients_flow_to_every_learnable_tensor() {
    let device = Device::flex();
    let n = net("resnet20", 0.25);
    let p = n.init(1, &device);
    let leaves: Vec<Tensor<1>> = n
        .layout()
        .entries()
        .iter()
        .zip(p.tensors())
        .map(|(info, t)| {
            if info.kind.is_learnable() {
                t.clone().autodiff().require_grad()
            } else {
                t.clone()
            }
        })
        .collect();
    let labels = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 1, 2, 3], [4]), &device);
    let loss = cross_entropy(
        Forward::new(&leaves, BatchNormMode::Batch).logits(n.layers(), images(4, 9)),
        labels,
    );
    let grads = loss.backward();
    for (info, leaf) in n.layout().entries().iter().zip(&leaves) {
        let g = leaf.grad(&grads);
        assert_eq!(g.is_some(), info.kind.is_learnable(), "{}", info.name);
    }
}

#[test]
fn checkpoints_round_trip_and_refuse_other_models() {
    let device = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt.safetensors");
    let n = net("resnet20", 0.25);
    let p = perturbed_states(&n, 7);
    landscape_models::checkpoint::save(&path, &p, [("epoch".into(), "3".into())].into()).unwrap();
    let (back, meta) = landscape_models::checkpoint::load(&path, n.layout(), &device).unwrap();
    assert_eq!(back.to_host(), p.to_host());
    assert_eq!(meta["epoch"], "3");
    let other = net("resnet20", 0.5);
    let err = format!(
        "{:#}",
        landscape_models::checkpoint::load(&path, other.layout(), &device).unwrap_err()
    );
    assert!(
        err.contains("ckpt.safetensors") && err.contains("conv1.weight"),
        "{err}"
    );
}
