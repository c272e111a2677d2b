//! What the import tests share: the fixtures PyTorch wrote (tests/fixtures), the images it was
//! fed, and the comparison of landscape's logits with PyTorch's.
#![allow(dead_code)]

use burn::tensor::{Device, Tensor, TensorData};
use landscape_core::tensor_file::TensorFile;
use landscape_models::forward::{BatchNormMode, Forward};
use landscape_models::{Network, ParamSet};
use std::path::PathBuf;

/// `tests/fixtures/<path>` of the workspace.
pub fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(path)
}

/// The images the fixtures' scripts feed PyTorch (`images()` in pytorch/make.py).
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

/// Checks that `net` with the parameters `file` computes, in inference mode, the logits
/// PyTorch recorded under `key` in the fixture `expected` (a JSON file), to 1e-4 of their
/// largest magnitude.
pub fn agrees_with_pytorch(net: &Network, file: TensorFile, expected: &str, key: &str) {
    let device = Device::flex();
    let values = file.tensors.into_iter().map(|t| t.values).collect();
    let params = ParamSet::from_host(net.layout().clone(), values, &device).unwrap();
    let logits = Forward::new(params.tensors(), BatchNormMode::Running)
        .logits(net.layers(), images(&device));
    let got: Vec<f32> = logits.into_data().try_to_vec().unwrap();
    let recorded: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture(expected)).unwrap()).unwrap();
    let recorded: Vec<f64> = recorded[key]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()))
        .collect();
    assert_eq!(got.len(), recorded.len());
    let scale = recorded.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (k, (g, e)) in got.iter().zip(&recorded).enumerate() {
        assert!(
            (*g as f64 - e).abs() <= 1e-4 * scale,
            "{key}: logit {k}: landscape {g}, PyTorch {e}"
        );
    }
}
