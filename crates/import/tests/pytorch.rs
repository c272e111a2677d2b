//! Checkpoints written by PyTorch (tests/fixtures/pytorch/make.py) read into landscape's
//! networks compute PyTorch's logits: every tensor in its place, BatchNorm statistics included.

use burn::tensor::{Device, Tensor, TensorData};
use landscape_import::pytorch;
use landscape_models::forward::{BatchNormMode, Forward};
use landscape_models::{Arch, Network, NetworkSpec, ParamSet};
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/pytorch")
        .join(name)
}

/// The images make.py feeds PyTorch, made the same way.
fn images(device: &Device) -> Tensor<4> {
    let mut x = Vec::with_capacity(3 * 3 * 32 * 32);
    for n in 0..3 {
        for c in 0..3 {
            for h in 0..32 {
                for w in 0..32 {
                    let (n, c, h, w) = (n as f64, c as f64, h as f64, w as f64);
                    let v = (0.37 * n + 0.11 * c + 0.05 * h - 0.07 * w + 0.3 * (0.2 * h * w).sin())
                        .sin();
                    x.push(v as f32);
                }
            }
        }
    }
    Tensor::from_data(TensorData::new(x, [3, 3, 32, 32]), device)
}

fn network(arch: Arch, width: f64) -> Network {
    Network::new(NetworkSpec {
        arch,
        width,
        classes: 10,
    })
    .unwrap()
}

/// The logits of the checkpoint `name` read into `net`, against PyTorch's.
fn agrees_with_pytorch(name: &str, net: &Network) {
    let device = Device::flex();
    let file = pytorch::read(&fixture(name), net).unwrap();
    let values = file.tensors.into_iter().map(|t| t.values).collect();
    let params = ParamSet::from_host(net.layout().clone(), values, &device).unwrap();
    let logits = Forward::new(params.tensors(), BatchNormMode::Running)
        .logits(net.layers(), images(&device));
    let got: Vec<f32> = logits.into_data().try_to_vec().unwrap();
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("expected.json")).unwrap()).unwrap();
    let expected: Vec<f64> = expected[name]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()))
        .collect();
    assert_eq!(got.len(), expected.len());
    let scale = expected.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (k, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert!(
            (*g as f64 - e).abs() <= 1e-4 * scale,
            "{name}: logit {k}: landscape {g}, PyTorch {e}"
        );
    }
}

#[test]
fn a_reference_resnet20_t7_computes_pytorchs_logits() {
    let arch = Arch::ResNet {
        depth: 20,
        skips: true,
        widen: 1,
    };
    agrees_with_pytorch("resnet20-w0.25.t7", &network(arch, 0.25));
}

#[test]
fn a_data_parallel_vgg9_state_dict_computes_pytorchs_logits() {
    agrees_with_pytorch("vgg9-w0.125.pth", &network(Arch::Vgg9, 0.125));
}

#[test]
fn another_architecture_or_width_is_one_line_naming_the_tensor() {
    let noshort = Arch::ResNet {
        depth: 20,
        skips: false,
        widen: 1,
    };
    let err = pytorch::read(&fixture("resnet20-w0.25.t7"), &network(noshort, 0.25))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("tensor(s) a resnet20-noshort does not have") && err.contains("shortcut"),
        "{err}"
    );
    let resnet20 = Arch::ResNet {
        depth: 20,
        skips: true,
        widen: 1,
    };
    let err = format!(
        "{:#}",
        pytorch::read(&fixture("resnet20-w0.25.t7"), &network(resnet20, 0.5)).unwrap_err()
    );
    assert!(
        err.contains("`state_dict.conv1.weight` has shape [4, 3, 3, 3]")
            && err.contains("another width"),
        "{err}"
    );
    let err = format!(
        "{:#}",
        pytorch::read(&fixture("vgg9-w0.125.pth"), &network(resnet20, 0.25)).unwrap_err()
    );
    assert!(err.contains("no tensor `conv1.weight`"), "{err}");
    let err = format!(
        "{:#}",
        pytorch::read(&fixture("expected.json"), &network(resnet20, 0.25)).unwrap_err()
    );
    assert!(err.contains("not a PyTorch checkpoint"), "{err}");
}
