//! The paper's architectures, built as layer graphs with PyTorch-style parameter names.

use crate::graph::{BatchNorm, Conv, Layer, Linear};
use crate::params::{ParamKind, ParamLayout};
use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Which architecture, as the specs write it: `vgg9`, `resnet20` (any depth 6n+2),
/// `resnet56-noshort`, `wrn56-4` (Wide-ResNet-56-4), `wrn56-4-noshort`, `densenet121`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Arch {
    /// VGG-9 with BatchNorm (7 convolutions, 2 fully connected layers).
    Vgg9,
    /// A CIFAR ResNet of depth 6n+2 with basic blocks at 16/32/64 channels times `widen`.
    ResNet {
        /// Total depth (20, 56, 110, ...).
        depth: usize,
        /// Skip connections on (`false`: the paper's `-noshort` variant).
        skips: bool,
        /// Width factor k of Wide-ResNet (1 for plain ResNets).
        widen: usize,
    },
    /// DenseNet-121 for 32x32 inputs (growth 32, blocks 6/12/24/16, reduction 0.5).
    DenseNet121,
    /// A network read from a file (`landscape import` of an ONNX model): its graph is kept
    /// with its run ([`crate::Network::load_graph`]), not built from a name.
    Imported,
}

impl Arch {
    /// Every architecture the paper uses, by spec name.
    pub fn paper_models() -> Vec<Arch> {
        let mut all = vec![Arch::Vgg9];
        for skips in [true, false] {
            for depth in [20, 56, 110] {
                all.push(Arch::ResNet {
                    depth,
                    skips,
                    widen: 1,
                });
            }
            for widen in [2, 4, 8] {
                all.push(Arch::ResNet {
                    depth: 56,
                    skips,
                    widen,
                });
            }
        }
        all.push(Arch::DenseNet121);
        all
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Arch::Vgg9 => write!(f, "vgg9"),
            Arch::DenseNet121 => write!(f, "densenet121"),
            Arch::Imported => write!(f, "imported"),
            Arch::ResNet {
                depth,
                skips,
                widen,
            } => {
                if widen == 1 {
                    write!(f, "resnet{depth}")?;
                } else {
                    write!(f, "wrn{depth}-{widen}")?;
                }
                if !skips {
                    write!(f, "-noshort")?;
                }
                Ok(())
            }
        }
    }
}

impl FromStr for Arch {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let expected =
            "expected vgg9, resnet<6n+2>[-noshort], wrn<6n+2>-<k>[-noshort] or densenet121";
        match s {
            "vgg9" => return Ok(Arch::Vgg9),
            "densenet121" => return Ok(Arch::DenseNet121),
            "imported" => return Ok(Arch::Imported),
            _ => {}
        }
        let (body, skips) = match s.strip_suffix("-noshort") {
            Some(body) => (body, false),
            None => (s, true),
        };
        let (depth, widen) = if let Some(depth) = body.strip_prefix("resnet") {
            (depth, "1")
        } else if let Some(rest) = body.strip_prefix("wrn") {
            match rest.split_once('-') {
                Some(parts) => parts,
                None => bail!("unknown model `{s}`: {expected}"),
            }
        } else {
            bail!("unknown model `{s}`: {expected}")
        };
        let (Ok(depth), Ok(widen)) = (depth.parse::<usize>(), widen.parse::<usize>()) else {
            bail!("unknown model `{s}`: {expected}");
        };
        if depth < 8 || (depth - 2) % 6 != 0 {
            bail!(
                "model `{s}`: ResNet depth must be 6n+2 with n >= 1 (20, 56, 110, ...), got {depth}"
            );
        }
        if widen == 0 {
            bail!("model `{s}`: width factor must be at least 1");
        }
        Ok(Arch::ResNet {
            depth,
            skips,
            widen,
        })
    }
}

impl TryFrom<String> for Arch {
    type Error = anyhow::Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<Arch> for String {
    fn from(a: Arch) -> String {
        a.to_string()
    }
}

/// Collects the parameter layout while a graph is built.
struct Builder {
    layout: ParamLayout,
    width: f64,
}

impl Builder {
    /// Channels scaled by the width multiplier, at least 1.
    fn scale(&self, channels: usize) -> usize {
        ((channels as f64 * self.width).round() as usize).max(1)
    }

    fn conv(
        &mut self,
        name: &str,
        cin: usize,
        cout: usize,
        kernel: usize,
        stride: usize,
        bias: bool,
    ) -> Layer {
        let weight = self.layout.push(
            format!("{name}.weight"),
            vec![cout, cin, kernel, kernel],
            ParamKind::ConvWeight,
        );
        let bias = bias.then(|| {
            self.layout
                .push(format!("{name}.bias"), vec![cout], ParamKind::Bias)
        });
        Layer::Conv(Conv {
            weight,
            bias,
            cin,
            cout,
            kernel,
            stride,
            padding: kernel / 2,
        })
    }

    fn bn(&mut self, name: &str, channels: usize) -> Layer {
        let c = vec![channels];
        Layer::BatchNorm(BatchNorm {
            weight: self
                .layout
                .push(format!("{name}.weight"), c.clone(), ParamKind::BnWeight),
            bias: self
                .layout
                .push(format!("{name}.bias"), c.clone(), ParamKind::BnBias),
            running_mean: self.layout.push(
                format!("{name}.running_mean"),
                c.clone(),
                ParamKind::BnRunningMean,
            ),
            running_var: self.layout.push(
                format!("{name}.running_var"),
                c,
                ParamKind::BnRunningVar,
            ),
            channels,
        })
    }

    fn linear(&mut self, name: &str, input: usize, output: usize) -> Layer {
        Layer::Linear(Linear {
            weight: self.layout.push(
                format!("{name}.weight"),
                vec![output, input],
                ParamKind::LinearWeight,
            ),
            bias: self
                .layout
                .push(format!("{name}.bias"), vec![output], ParamKind::Bias),
            input,
            output,
        })
    }
}

/// Builds the graph and parameter layout of `arch` at `width` for `classes` outputs (`None`
/// for [`Arch::Imported`], whose graph comes from its file).
pub fn build(arch: Arch, width: f64, classes: usize) -> Option<(Vec<Layer>, ParamLayout)> {
    let mut b = Builder {
        layout: ParamLayout::default(),
        width,
    };
    let layers = match arch {
        Arch::Vgg9 => vgg9(&mut b, classes),
        Arch::ResNet {
            depth,
            skips,
            widen,
        } => resnet(&mut b, depth, skips, widen, classes),
        Arch::DenseNet121 => densenet121(&mut b, classes),
        Arch::Imported => return None,
    };
    Some((layers, b.layout))
}

/// VGG-9's plan, as the reference's `cfg['VGG9']`: the channels of each convolution (at width
/// 1), `None` for a 2x2 max pool.
pub const VGG9_PLAN: [Option<usize>; 10] = [
    Some(64),
    Some(64),
    None,
    Some(128),
    Some(128),
    None,
    Some(256),
    Some(256),
    Some(256),
    None,
];

/// VGG-9: 3x3 convs with bias, each followed by BatchNorm and ReLU, max pools to 4x4, then
/// Linear-BatchNorm1d-ReLU-Linear.
fn vgg9(b: &mut Builder, classes: usize) -> Vec<Layer> {
    let mut layers = Vec::new();
    let (mut cin, mut i) = (3, 1);
    for step in VGG9_PLAN {
        match step {
            Some(c) => {
                let c = b.scale(c);
                layers.push(b.conv(&format!("conv{i}"), cin, c, 3, 1, true));
                layers.push(b.bn(&format!("bn{i}"), c));
                layers.push(Layer::Relu);
                cin = c;
                i += 1;
            }
            None => layers.push(Layer::MaxPool {
                kernel: 2,
                stride: 2,
            }),
        }
    }
    let hidden = b.scale(256);
    layers.push(Layer::Flatten);
    layers.push(b.linear("fc1", cin * 4 * 4, hidden));
    layers.push(b.bn("bn_fc1", hidden));
    layers.push(Layer::Relu);
    layers.push(b.linear("fc2", hidden, classes));
    layers
}

/// CIFAR ResNet: stem conv-BN-ReLU, three stages of basic blocks, global pool, linear.
/// Projection shortcuts (1x1 conv + BN) where the shape changes; `-noshort` drops every
/// shortcut (no addition, no projection).
fn resnet(b: &mut Builder, depth: usize, skips: bool, widen: usize, classes: usize) -> Vec<Layer> {
    let blocks = (depth - 2) / 6;
    let stem = b.scale(16 * widen);
    let mut layers = vec![
        b.conv("conv1", 3, stem, 3, 1, false),
        b.bn("bn1", stem),
        Layer::Relu,
    ];
    let mut cin = stem;
    for (stage, planes) in [16, 32, 64].into_iter().enumerate() {
        let planes = b.scale(planes * widen);
        for block in 0..blocks {
            let stride = if stage > 0 && block == 0 { 2 } else { 1 };
            let name = format!("layer{}.{block}", stage + 1);
            let body = vec![
                b.conv(&format!("{name}.conv1"), cin, planes, 3, stride, false),
                b.bn(&format!("{name}.bn1"), planes),
                Layer::Relu,
                b.conv(&format!("{name}.conv2"), planes, planes, 3, 1, false),
                b.bn(&format!("{name}.bn2"), planes),
            ];
            if skips {
                let shortcut = if stride != 1 || cin != planes {
                    vec![
                        b.conv(&format!("{name}.shortcut.0"), cin, planes, 1, stride, false),
                        b.bn(&format!("{name}.shortcut.1"), planes),
                    ]
                } else {
                    Vec::new()
                };
                layers.push(Layer::Residual { body, shortcut });
            } else {
                layers.extend(body);
            }
            layers.push(Layer::Relu);
            cin = planes;
        }
    }
    layers.push(Layer::GlobalAvgPool);
    layers.push(b.linear("linear", cin, classes));
    layers
}

/// DenseNet-121 for CIFAR: 3x3 stem to 2*growth channels, dense blocks of 6/12/24/16
/// bottlenecks (BN-ReLU-1x1 conv to 4*growth, BN-ReLU-3x3 conv to growth, concatenated),
/// transitions (BN-ReLU-1x1 conv halving channels, 2x2 average pool), final BN-ReLU, 4x4 pool.
fn densenet121(b: &mut Builder, classes: usize) -> Vec<Layer> {
    let growth = b.scale(32);
    let mut planes = 2 * growth;
    let mut layers = vec![b.conv("conv1", 3, planes, 3, 1, false)];
    for (block, count) in [6usize, 12, 24, 16].into_iter().enumerate() {
        for i in 0..count {
            let name = format!("dense{}.{i}", block + 1);
            let body = vec![
                b.bn(&format!("{name}.bn1"), planes),
                Layer::Relu,
                b.conv(&format!("{name}.conv1"), planes, 4 * growth, 1, 1, false),
                b.bn(&format!("{name}.bn2"), 4 * growth),
                Layer::Relu,
                b.conv(&format!("{name}.conv2"), 4 * growth, growth, 3, 1, false),
            ];
            layers.push(Layer::Concat { body });
            planes += growth;
        }
        if block < 3 {
            let out = planes / 2;
            let name = format!("trans{}", block + 1);
            layers.push(b.bn(&format!("{name}.bn"), planes));
            layers.push(Layer::Relu);
            layers.push(b.conv(&format!("{name}.conv"), planes, out, 1, 1, false));
            layers.push(Layer::AvgPool {
                kernel: 2,
                stride: 2,
            });
            planes = out;
        }
    }
    layers.push(b.bn("bn", planes));
    layers.push(Layer::Relu);
    layers.push(Layer::AvgPool {
        kernel: 4,
        stride: 4,
    });
    layers.push(Layer::Flatten);
    layers.push(b.linear("linear", planes, classes));
    layers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for arch in Arch::paper_models() {
            assert_eq!(arch.to_string().parse::<Arch>().unwrap(), arch);
        }
        assert_eq!(
            "resnet32".parse::<Arch>().unwrap(),
            Arch::ResNet {
                depth: 32,
                skips: true,
                widen: 1
            }
        );
        for bad in [
            "resnet21",
            "resnet2",
            "wrn56",
            "wrn56-0",
            "vgg16",
            "resnet56-short",
        ] {
            assert!(bad.parse::<Arch>().is_err(), "{bad} parsed");
        }
    }
}
