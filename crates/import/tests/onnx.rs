//! An ONNX model exported by PyTorch (tests/fixtures/onnx/make.py), every operator the import
//! maps in it, read into landscape's graph: the engine computes PyTorch's logits.
#![cfg(feature = "onnx")]

mod common;

use common::{agrees_with_pytorch, fixture};
use landscape_import::onnx;
use landscape_models::graph::Layer;

#[test]
fn an_exported_cnn_computes_pytorchs_logits() {
    let (net, file) = onnx::read(&fixture("onnx/cnn.onnx"), 10).unwrap();
    // Two residual blocks and a dense block, found from where the branches join.
    let blocks = net
        .layers()
        .iter()
        .filter(|l| matches!(l, Layer::Residual { .. } | Layer::Concat { .. }))
        .count();
    assert_eq!(blocks, 3, "{:#?}", net.layers());
    agrees_with_pytorch(&net, file, "onnx/expected.json", "cnn.onnx");
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
