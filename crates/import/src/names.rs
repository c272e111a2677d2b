//! The reference code's names of the paper's networks' tensors (its `cifar10/models/*.py`),
//! and landscape's.
//!
//! Its ResNets and DenseNet name their modules as landscape does. Its VGG-9 keeps the
//! convolutions in one `nn.Sequential` (`features.<index>`, ReLUs and max pools counted), the
//! hidden layer in another (`fc.0`, and its BatchNorm `fc.1`) and the last layer as
//! `classifier`, where landscape says `conv<i>`, `bn<i>`, `fc1`, `bn_fc1` and `fc2`.

use landscape_models::Arch;
use landscape_models::arch::VGG9_PLAN;

/// The reference's name of landscape's tensor `name` in a network of `arch`.
pub fn reference_name(arch: Arch, name: &str) -> String {
    match arch {
        Arch::Vgg9 => vgg9_reference_name(name),
        Arch::ResNet { .. } | Arch::DenseNet121 | Arch::Imported => name.to_string(),
    }
}

fn vgg9_reference_name(name: &str) -> String {
    let (module, tensor) = name.split_once('.').unwrap_or((name, ""));
    let renamed = match module {
        "fc1" => "fc.0".to_string(),
        "bn_fc1" => "fc.1".to_string(),
        "fc2" => "classifier".to_string(),
        _ => {
            // conv<i> and bn<i>: the i-th convolution's slot in `features`, and the next one.
            let (layer, offset) = match (module.strip_prefix("conv"), module.strip_prefix("bn")) {
                (Some(i), _) => (i, 0),
                (_, Some(i)) => (i, 1),
                _ => return name.to_string(),
            };
            let Ok(i) = layer.parse::<usize>() else {
                return name.to_string();
            };
            match features_index(i) {
                Some(index) => format!("features.{}", index + offset),
                None => return name.to_string(),
            }
        }
    };
    format!("{renamed}.{tensor}")
}

/// The index in the reference's `features` of VGG-9's `i`-th convolution (from 1): each
/// convolution is followed by a BatchNorm and a ReLU, and each pool takes one slot.
fn features_index(i: usize) -> Option<usize> {
    let mut index = 0;
    let mut convolutions = 0;
    for step in VGG9_PLAN {
        match step {
            Some(_) => {
                convolutions += 1;
                if convolutions == i {
                    return Some(index);
                }
                index += 3;
            }
            None => index += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vgg9_names_follow_the_references_sequentials() {
        let cases = [
            ("conv1.weight", "features.0.weight"),
            ("bn1.running_var", "features.1.running_var"),
            ("conv2.bias", "features.3.bias"),
            ("conv3.weight", "features.7.weight"),
            ("bn4.weight", "features.11.weight"),
            ("conv5.weight", "features.14.weight"),
            ("conv7.weight", "features.20.weight"),
            ("bn7.bias", "features.21.bias"),
            ("fc1.weight", "fc.0.weight"),
            ("bn_fc1.running_mean", "fc.1.running_mean"),
            ("fc2.bias", "classifier.bias"),
        ];
        for (ours, theirs) in cases {
            assert_eq!(reference_name(Arch::Vgg9, ours), theirs, "{ours}");
        }
    }

    #[test]
    fn every_vgg9_tensor_has_its_own_reference_name() {
        let net = landscape_models::Network::new(landscape_models::NetworkSpec {
            arch: Arch::Vgg9,
            width: 1.0,
            classes: 10,
        })
        .unwrap();
        let names: std::collections::BTreeSet<String> = net
            .layout()
            .entries()
            .iter()
            .map(|e| reference_name(Arch::Vgg9, &e.name))
            .collect();
        assert_eq!(names.len(), net.layout().entries().len());
        assert!(names.iter().all(|n| n.starts_with("features.")
            || n.starts_with("fc.")
            || n.starts_with("classifier.")));
    }

    #[test]
    fn resnet_names_are_the_references() {
        let arch = Arch::ResNet {
            depth: 20,
            skips: true,
            widen: 1,
        };
        assert_eq!(
            reference_name(arch, "layer2.0.shortcut.1.running_mean"),
            "layer2.0.shortcut.1.running_mean"
        );
    }
}
