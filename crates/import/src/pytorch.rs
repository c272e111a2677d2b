//! PyTorch checkpoints of the paper's networks: a `state_dict` as `torch.save` writes it
//! (`.pt`, `.pth`, and the reference zoo's `.t7`), bare or inside a dictionary (the reference
//! saves `{'state_dict': ..., ...}`; `nn.DataParallel` adds `module.`), read with burn's
//! PyTorch reader, never unpickled by hand.
//!
//! Every tensor the network has must be there with its shape; `num_batches_tracked` counters
//! (which landscape's BatchNorm does not keep) are dropped; any other tensor is a mistake (a
//! different architecture or width) and named.

use crate::names::reference_name;
use anyhow::{Context, Result, bail};
use landscape_core::tensor_file::{HostTensor, TensorFile};
use landscape_models::Network;
use pytorch_reader::{DType, PytorchReader, Tensor};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// BatchNorm's step counter, kept by PyTorch beside the running statistics.
const COUNTER: &str = "num_batches_tracked";

/// The tensors of `network` read from the PyTorch checkpoint at `path`, under landscape's names
/// and in its layout order.
pub fn read(path: &Path, network: &Network) -> Result<TensorFile> {
    let file = path.display();
    let reader = PytorchReader::new(path)
        .map_err(|e| anyhow::anyhow!("{file}: not a PyTorch checkpoint ({e})"))?;
    let tensors = reader.into_tensors();
    let arch = network.spec().arch;
    let entries = network.layout().entries();
    let first = reference_name(arch, &entries[0].name);
    // The dictionaries around the state_dict (`state_dict.`, `module.`, ...), found from where
    // the network's first tensor is.
    let prefix = wrapping(&tensors, &first).with_context(|| {
        format!(
            "{file}: no tensor `{first}` (the first of a {arch}); it holds {}",
            some_names(tensors.keys())
        )
    })?;
    let mut used = Vec::with_capacity(entries.len());
    let mut out = Vec::with_capacity(entries.len());
    for info in entries {
        let name = format!("{prefix}{}", reference_name(arch, &info.name));
        let tensor = tensors.get(&name).with_context(|| {
            format!("{file}: no tensor `{name}`, which a {arch} has (another architecture?)")
        })?;
        if tensor.shape() != info.shape.as_slice() {
            bail!(
                "{file}: tensor `{name}` has shape {:?}, a {arch} of width {} has {:?} (another width?)",
                tensor.shape(),
                network.spec().width,
                info.shape
            );
        }
        out.push(HostTensor {
            name: info.name.clone(),
            shape: info.shape.clone(),
            values: values(tensor).with_context(|| format!("{file}: tensor `{name}`"))?,
        });
        used.push(name);
    }
    let extra: Vec<&String> = tensors
        .keys()
        .filter(|k| k.starts_with(&prefix) && !k.ends_with(COUNTER) && !used.contains(k))
        .collect();
    if !extra.is_empty() {
        bail!(
            "{file}: {} tensor(s) a {arch} does not have, such as `{}` (another architecture?)",
            extra.len(),
            extra.iter().min().expect("not empty")
        );
    }
    Ok(TensorFile {
        tensors: out,
        metadata: BTreeMap::new(),
    })
}

/// The prefix before `first` in the checkpoint's names: empty for a bare state_dict.
fn wrapping(tensors: &HashMap<String, Tensor>, first: &str) -> Option<String> {
    let mut prefixes: Vec<&str> = tensors
        .keys()
        .filter_map(|k| k.strip_suffix(first))
        .filter(|p| p.is_empty() || p.ends_with('.'))
        .collect();
    // The shortest: `layer1.0.conv1.weight` ends in `conv1.weight` too.
    prefixes.sort_by_key(|p| p.len());
    prefixes.first().map(|p| p.to_string())
}

/// Up to five of the checkpoint's names, for an error.
fn some_names<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let mut names: Vec<&String> = names.collect();
    names.sort();
    let shown: Vec<String> = names.iter().take(5).map(|n| format!("`{n}`")).collect();
    match names.len() {
        0 => "no tensors".to_string(),
        n if n > 5 => format!("{}, ... ({n} in all)", shown.join(", ")),
        _ => shown.join(", "),
    }
}

/// A floating-point tensor's values as f32.
fn values(tensor: &Tensor) -> Result<Vec<f32>> {
    let bytes = tensor.read()?;
    let chunks = |size: usize| bytes.chunks_exact(size);
    Ok(match tensor.dtype() {
        DType::F32 => chunks(4)
            .map(|b| f32::from_ne_bytes(b.try_into().expect("4 bytes")))
            .collect(),
        DType::F64 => chunks(8)
            .map(|b| f64::from_ne_bytes(b.try_into().expect("8 bytes")) as f32)
            .collect(),
        DType::F16 => chunks(2)
            .map(|b| half::f16::from_ne_bytes(b.try_into().expect("2 bytes")).to_f32())
            .collect(),
        DType::BF16 => chunks(2)
            .map(|b| half::bf16::from_ne_bytes(b.try_into().expect("2 bytes")).to_f32())
            .collect(),
        other => bail!("holds {other:?} values where parameters are floating point"),
    })
}
