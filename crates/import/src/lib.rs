//! Networks trained elsewhere, brought into landscape as its own parameter sets.
//!
//! [`pytorch`] reads what `torch.save(model.state_dict())` writes (`.pt`, `.pth`, and the
//! reference zoo's `.t7`, which are PyTorch files too) with burn's own PyTorch reader, for the
//! paper's architectures as the reference code defines them. [`names`] maps the reference's
//! module names onto landscape's.

#![warn(missing_docs)]

pub mod names;
#[cfg(feature = "onnx")]
pub mod onnx;
pub mod pytorch;
