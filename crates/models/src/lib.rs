//! The paper's networks over one shared parameter view.
//!
//! A [`Network`] is an architecture ([`Arch`]: VGG-9, ResNet-20/56/110 and any 6n+2 depth, their
//! `-noshort` versions, Wide-ResNet-56-k, DenseNet-121) at a width multiplier, built as a small
//! layer graph ([`graph::Layer`]). Its tensors live in a [`ParamSet`]: every tensor with its
//! PyTorch name, shape and [`ParamKind`], stored flat on the device, flattening to one vector.
//! One interpreter ([`forward::Forward`]) runs any graph in training or inference mode on any
//! device; [`fold::FoldedGraph`] folds BatchNorm into the layer before it for fast inference.
//!
//! ```
//! use landscape_models::{Arch, Network, NetworkSpec};
//! let net = Network::new(NetworkSpec { arch: "resnet20".parse().unwrap(), width: 1.0, classes: 10 }).unwrap();
//! assert_eq!(net.parameter_count(), 272_474);
//! ```

pub mod arch;
pub mod checkpoint;
pub mod cpu;
pub mod eval;
pub mod fold;
pub mod forward;
pub mod graph;
pub mod network;
pub mod params;

pub use arch::Arch;
pub use network::{DEFINITION_VERSION, Network, NetworkSpec};
pub use params::{ParamId, ParamInfo, ParamKind, ParamLayout, ParamScope, ParamSet};
