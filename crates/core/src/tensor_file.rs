//! Named f32 tensors on disk in the safetensors format, so checkpoints, optimizer states and
//! directions open in Python (`safetensors.torch.load_file`) as well as here.

use crate::atomic::write_atomic;
use anyhow::{Context, Result, bail};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::BTreeMap;
use std::path::Path;

/// One tensor in host memory: its name, shape and values (row-major).
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    /// The tensor's name in the file, e.g. `layer1.0.conv1.weight`.
    pub name: String,
    /// The shape, outermost dimension first (PyTorch's conventions).
    pub shape: Vec<usize>,
    /// The values, row-major; `values.len()` is the product of `shape`.
    pub values: Vec<f32>,
}

/// The tensors of one file in file order, plus its string metadata.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TensorFile {
    /// The tensors. Files store them sorted by name (safetensors' own order), so read order is
    /// by name; look tensors up with [`TensorFile::get`].
    pub tensors: Vec<HostTensor>,
    /// Free-form metadata (seed, normalization, model hash, ...).
    pub metadata: BTreeMap<String, String>,
}

impl TensorFile {
    /// The tensor called `name`, or an error naming `path` and the missing tensor.
    pub fn get(&self, name: &str, path: &Path) -> Result<&HostTensor> {
        self.tensors
            .iter()
            .find(|t| t.name == name)
            .with_context(|| format!("{}: no tensor named `{name}`", path.display()))
    }

    /// The metadata value for `key`, or an error naming `path` and the key.
    pub fn meta(&self, key: &str, path: &Path) -> Result<&str> {
        self.metadata
            .get(key)
            .map(String::as_str)
            .with_context(|| format!("{}: metadata has no `{key}`", path.display()))
    }

    /// Writes the file atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        for t in &self.tensors {
            if t.values.len() != t.shape.iter().product::<usize>() {
                bail!(
                    "{}: tensor `{}` has {} values for shape {:?}",
                    path.display(),
                    t.name,
                    t.values.len(),
                    t.shape
                );
            }
        }
        let views = self
            .tensors
            .iter()
            .map(|t| {
                let view = TensorView::new(Dtype::F32, t.shape.clone(), bytemuck::cast_slice(&t.values))
                    .with_context(|| format!("{}: tensor `{}`", path.display(), t.name))?;
                Ok((t.name.clone(), view))
            })
            .collect::<Result<Vec<_>>>()?;
        let metadata: std::collections::HashMap<String, String> =
            self.metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let bytes = safetensors::tensor::serialize(views, Some(metadata))
            .with_context(|| format!("serializing {}", path.display()))?;
        write_atomic(path, &bytes)
    }

    /// Reads a file written by [`TensorFile::write`] (or by Python, as long as every tensor is
    /// f32). Tensors come back sorted by name.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let (_, header) = SafeTensors::read_metadata(&bytes)
            .with_context(|| format!("{}: not a safetensors file (truncated or corrupt)", path.display()))?;
        let parsed = SafeTensors::deserialize(&bytes)
            .with_context(|| format!("{}: not a safetensors file (truncated or corrupt)", path.display()))?;
        let metadata = header.metadata().clone().unwrap_or_default().into_iter().collect();
        let mut named: Vec<(String, TensorView<'_>)> = parsed.tensors().into_iter().collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let tensors = named
            .into_iter()
            .map(|(name, view)| {
                if view.dtype() != Dtype::F32 {
                    bail!("{}: tensor `{name}` is {:?}, expected F32", path.display(), view.dtype());
                }
                let values = view
                    .data()
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                Ok(HostTensor { name, shape: view.shape().to_vec(), values })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { tensors, metadata })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_values_and_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.safetensors");
        let file = TensorFile {
            tensors: vec![
                HostTensor { name: "z.weight".into(), shape: vec![2, 3], values: (0..6).map(|v| v as f32).collect() },
                HostTensor { name: "a.bias".into(), shape: vec![2], values: vec![-1.5, 2.5] },
            ],
            metadata: [("seed".to_string(), "7".to_string())].into(),
        };
        file.write(&path).unwrap();
        let back = TensorFile::read(&path).unwrap();
        let mut sorted = file.clone();
        sorted.tensors.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(back, sorted);
        assert_eq!(back.get("z.weight", &path).unwrap().values[5], 5.0);
        assert_eq!(back.meta("seed", &path).unwrap(), "7");
    }

    #[test]
    fn truncated_file_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.safetensors");
        let file = TensorFile {
            tensors: vec![HostTensor { name: "w".into(), shape: vec![4], values: vec![1.0; 4] }],
            metadata: Default::default(),
        };
        file.write(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        let err = format!("{:#}", TensorFile::read(&path).unwrap_err());
        assert!(err.contains("t.safetensors") && err.contains("truncated"), "{err}");
    }
}
