//! Parameter sets on disk as safetensors, named as PyTorch names them, so a checkpoint opens in
//! Python with `safetensors.torch.load_file` and maps onto the reference code's modules.

use crate::params::{ParamLayout, ParamSet};
use anyhow::{Result, bail};
use burn::tensor::Device;
use landscape_core::tensor_file::{HostTensor, TensorFile};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// The tensors of `params` (with their PyTorch shapes) and `metadata`, as a file.
pub fn to_tensor_file(params: &ParamSet, metadata: BTreeMap<String, String>) -> TensorFile {
    let tensors = params
        .layout()
        .entries()
        .iter()
        .zip(params.to_host())
        .map(|(info, values)| HostTensor {
            name: info.name.clone(),
            shape: info.shape.clone(),
            values,
        })
        .collect();
    TensorFile { tensors, metadata }
}

/// Reads the tensors of `layout` from a file read from `path`, checking every name and shape.
pub fn from_tensor_file(
    file: &TensorFile,
    layout: &Arc<ParamLayout>,
    device: &Device,
    path: &Path,
) -> Result<ParamSet> {
    let values = layout
        .entries()
        .iter()
        .map(|info| {
            let t = file.get(&info.name, path)?;
            if t.shape != info.shape {
                bail!(
                    "{}: tensor `{}` has shape {:?}, the model expects {:?} (a different model or width?)",
                    path.display(),
                    info.name,
                    t.shape,
                    info.shape
                );
            }
            Ok(t.values.clone())
        })
        .collect::<Result<Vec<_>>>()?;
    ParamSet::from_host(layout.clone(), values, device)
}

/// Saves `params` to `path` atomically.
pub fn save(path: &Path, params: &ParamSet, metadata: BTreeMap<String, String>) -> Result<()> {
    to_tensor_file(params, metadata).write(path)
}

/// Loads the tensors of `layout` from `path`.
pub fn load(
    path: &Path,
    layout: &Arc<ParamLayout>,
    device: &Device,
) -> Result<(ParamSet, BTreeMap<String, String>)> {
    let file = TensorFile::read(path)?;
    let params = from_tensor_file(&file, layout, device, path)?;
    Ok((params, file.metadata))
}
