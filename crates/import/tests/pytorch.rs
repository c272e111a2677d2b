//! Checkpoints written by PyTorch (tests/fixtures/pytorch/make.py) read into landscape's
//! networks compute PyTorch's logits: every tensor in its place, BatchNorm statistics included.

mod common;

use common::{agrees_with_pytorch, fixture};
use landscape_import::pytorch;
use landscape_models::{Arch, Network, NetworkSpec};

fn network(arch: Arch, width: f64) -> Network {
    Network::new(NetworkSpec {
        arch,
        width,
        classes: 10,
    })
    .unwrap()
}

/// The checkpoint `name` read into `net` computes PyTorch's logits.
fn reads_like_pytorch(name: &str, net: &Network) {
    let file = pytorch::read(&fixture(&format!("pytorch/{name}")), net).unwrap();
    agrees_with_pytorch(net, file, "pytorch/expected.json", name);
}

#[test]
fn a_reference_resnet20_t7_computes_pytorchs_logits() {
    let arch = Arch::ResNet {
        depth: 20,
        skips: true,
        widen: 1,
    };
    reads_like_pytorch("resnet20-w0.25.t7", &network(arch, 0.25));
}

#[test]
fn a_data_parallel_vgg9_state_dict_computes_pytorchs_logits() {
    reads_like_pytorch("vgg9-w0.125.pth", &network(Arch::Vgg9, 0.125));
}

#[test]
fn another_architecture_or_width_is_one_line_naming_the_tensor() {
    let noshort = Arch::ResNet {
        depth: 20,
        skips: false,
        widen: 1,
    };
    let err = pytorch::read(
        &fixture("pytorch/resnet20-w0.25.t7"),
        &network(noshort, 0.25),
    )
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
        pytorch::read(
            &fixture("pytorch/resnet20-w0.25.t7"),
            &network(resnet20, 0.5)
        )
        .unwrap_err()
    );
    assert!(
        err.contains("`state_dict.conv1.weight` has shape [4, 3, 3, 3]")
            && err.contains("another width"),
        "{err}"
    );
    let err = format!(
        "{:#}",
        pytorch::read(
            &fixture("pytorch/vgg9-w0.125.pth"),
            &network(resnet20, 0.25)
        )
        .unwrap_err()
    );
    assert!(err.contains("no tensor `conv1.weight`"), "{err}");
    let err = format!(
        "{:#}",
        pytorch::read(&fixture("pytorch/expected.json"), &network(resnet20, 0.25)).unwrap_err()
    );
    assert!(err.contains("not a PyTorch checkpoint"), "{err}");
}
