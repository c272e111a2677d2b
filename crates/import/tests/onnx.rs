//! An ONNX model exported by PyTorch (tests/fixtures/onnx/make.py), every operator the import
//! maps in it, read into landscape's graph: the engine computes PyTorch's logits.
#![cfg(feature = "onnx")]

use burn::tensor::{Device, Tensor, TensorData};
use landscape_import::onnx;
use landscape_models::ParamSet;
use landscape_models::forward::{BatchNormMode, Forward};
use landscape_models::graph::Layer;
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
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

#[test]
fn an_exported_cnn_computes_pytorchs_logits() {
    let device = Device::flex();
    let (net, file) = onnx::read(&fixture("onnx/cnn.onnx"), 10).unwrap();
    // Two residual blocks and a dense block, found from where the branches join.
    let blocks = net
        .layers()
        .iter()
        .filter(|l| matches!(l, Layer::Residual { .. } | Layer::Concat { .. }))
        .count();
    assert_eq!(blocks, 3, "{:#?}", net.layers());
    let values = file.tensors.into_iter().map(|t| t.values).collect();
    let params = ParamSet::from_host(net.layout().clone(), values, &device).unwrap();
    let logits = Forward::new(params.tensors(), BatchNormMode::Running)
        .logits(net.layers(), images(&device));
    let got: Vec<f32> = logits.into_data().try_to_vec().unwrap();
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("onnx/expected.json")).unwrap())
            .unwrap();
    let expected: Vec<f64> = expected["cnn.onnx"]
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
            "logit {k}: landscape {g}, PyTorch {e}"
        );
    }
}

#[test]
fn a_wrong_class_count_or_file_is_one_line() {
    let err = format!(
        "{:#}",
        onnx::read(&fixture("onnx/cnn.onnx"), 100).unwrap_err()
    );
    assert!(
        err.contains("ends in 10 outputs; the data set has 100 classes"),
        "{err}"
    );
    let err = format!(
        "{:#}",
        onnx::read(&fixture("onnx/expected.json"), 10).unwrap_err()
    );
    assert!(err.contains("not an ONNX model"), "{err}");
}
