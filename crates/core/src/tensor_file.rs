//! Named f32 tensors on disk in the safetensors format, so checkpoints, optimizer states and
//! directions open in Python (`safetensors.torch.load_file`) as well as here.

use crate::atomic::write_atomic;
use crate::hash::ContentHash;
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
        write_atomic(path, &self.to_bytes())
    }

    /// The file's bytes: the safetensors layout (8-byte header length, JSON header, data) with
    /// the header written in a fixed order (metadata first, tensors by name, JSON keys sorted),
    /// so equal contents give equal bytes and equal content hashes.
    fn to_bytes(&self) -> Vec<u8> {
        let mut tensors: Vec<&HostTensor> = self.tensors.iter().collect();
        tensors.sort_by(|a, b| a.name.cmp(&b.name));
        let mut header = serde_json::Map::new();
        if !self.metadata.is_empty() {
            let meta: serde_json::Map<String, serde_json::Value> = self
                .metadata
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect();
            header.insert("__metadata__".into(), serde_json::Value::Object(meta));
        }
        let mut offset = 0usize;
        for t in &tensors {
            let end = offset + 4 * t.values.len();
            header.insert(
                t.name.clone(),
                serde_json::json!({ "data_offsets": [offset, end], "dtype": "F32", "shape": t.shape }),
            );
            offset = end;
        }
        let mut text = crate::hash::canonical_json(&serde_json::Value::Object(header)).into_bytes();
        // Pad with spaces so the data starts 8-byte aligned, as safetensors writers do.
        while !(8 + text.len()).is_multiple_of(8) {
            text.push(b' ');
        }
        let mut bytes = Vec::with_capacity(8 + text.len() + offset);
        bytes.extend_from_slice(&(text.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&text);
        for t in &tensors {
            bytes.extend_from_slice(bytemuck::cast_slice(&t.values));
        }
        bytes
    }

    /// Reads a file written by [`TensorFile::write`] (or by Python, as long as every tensor is
    /// f32). Tensors come back sorted by name.
    pub fn read(path: &Path) -> Result<Self> {
        Ok(Self::read_hashed(path)?.0)
    }

    /// [`TensorFile::read`], and the SHA-256 of the file's bytes (what keys the artifacts made
    /// from it), from one read.
    pub fn read_hashed(path: &Path) -> Result<(Self, ContentHash)> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let hash = ContentHash::of_bytes(&bytes);
        Ok((Self::parse(&bytes, path)?, hash))
    }

    fn parse(bytes: &[u8], path: &Path) -> Result<Self> {
        let (_, header) = SafeTensors::read_metadata(bytes).with_context(|| {
            format!(
                "{}: not a safetensors file (truncated or corrupt)",
                path.display()
            )
        })?;
        let parsed = SafeTensors::deserialize(bytes).with_context(|| {
            format!(
                "{}: not a safetensors file (truncated or corrupt)",
                path.display()
            )
        })?;
        let metadata = header
            .metadata()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        let mut named: Vec<(String, TensorView<'_>)> = parsed.tensors().into_iter().collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let tensors = named
            .into_iter()
            .map(|(name, view)| {
                if view.dtype() != Dtype::F32 {
                    bail!(
                        "{}: tensor `{name}` is {:?}, expected F32",
                        path.display(),
                        view.dtype()
                    );
                }
                let values = view
                    .data()
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                Ok(HostTensor {
                    name,
                    shape: view.shape().to_vec(),
                    values,
                })
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
                HostTensor {
                    name: "z.weight".into(),
                    shape: vec![2, 3],
                    values: (0..6).map(|v| v as f32).collect(),
                },
                HostTensor {
                    name: "a.bias".into(),
                    shape: vec![2],
                    values: vec![-1.5, 2.5],
                },
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
            tensors: vec![HostTensor {
                name: "w".into(),
                shape: vec![4],
                values: vec![1.0; 4],
            }],
            metadata: Default::default(),
        };
        file.write(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        let err = format!("{:#}", TensorFile::read(&path).unwrap_err());
        assert!(
            err.contains("t.safetensors") && err.contains("truncated"),
            "{err}"
        );
    }
}

/// Where each tensor of a safetensors file lies, read from its header alone, so parts of
/// tensors can be read from many large files without loading any of them whole (a PCA over
/// hundreds of checkpoints reads them slice by slice).
#[derive(Clone, Debug)]
pub struct TensorIndex {
    path: std::path::PathBuf,
    /// Byte offset of the data section.
    data_start: u64,
    /// Name to (shape, byte range within the data section).
    entries: BTreeMap<String, (Vec<usize>, (u64, u64))>,
}

impl TensorIndex {
    /// Reads the header of `path`.
    pub fn open(path: &Path) -> Result<Self> {
        use std::io::Read;
        let mut file =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let mut len = [0u8; 8];
        file.read_exact(&mut len)
            .with_context(|| format!("{}: truncated safetensors header", path.display()))?;
        let n = u64::from_le_bytes(len);
        if n > 100_000_000 {
            bail!(
                "{}: not a safetensors file (header of {n} bytes)",
                path.display()
            );
        }
        let mut header = vec![0u8; n as usize];
        file.read_exact(&mut header)
            .with_context(|| format!("{}: truncated safetensors header", path.display()))?;
        let json: serde_json::Value = serde_json::from_slice(&header)
            .with_context(|| format!("{}: corrupt safetensors header", path.display()))?;
        let mut entries = BTreeMap::new();
        for (name, info) in json.as_object().into_iter().flatten() {
            if name == "__metadata__" {
                continue;
            }
            let parse = || -> Option<(Vec<usize>, (u64, u64))> {
                if info.get("dtype")?.as_str()? != "F32" {
                    return None;
                }
                let shape = info
                    .get("shape")?
                    .as_array()?
                    .iter()
                    .map(|d| d.as_u64().map(|d| d as usize))
                    .collect::<Option<Vec<_>>>()?;
                let offsets = info.get("data_offsets")?.as_array()?;
                Some((
                    shape,
                    (offsets.first()?.as_u64()?, offsets.get(1)?.as_u64()?),
                ))
            };
            let entry = parse().with_context(|| {
                format!("{}: tensor `{name}` is not an f32 tensor", path.display())
            })?;
            entries.insert(name.clone(), entry);
        }
        Ok(Self {
            path: path.to_path_buf(),
            data_start: 8 + n,
            entries,
        })
    }

    /// The shape of tensor `name`.
    pub fn shape(&self, name: &str) -> Result<&[usize]> {
        self.entries
            .get(name)
            .map(|(s, _)| s.as_slice())
            .with_context(|| format!("{}: no tensor named `{name}`", self.path.display()))
    }

    /// Values `start..start + len` (row-major) of tensor `name`.
    pub fn read(&self, name: &str, start: usize, len: usize) -> Result<Vec<f32>> {
        use std::io::{Read, Seek, SeekFrom};
        let (shape, (begin, end)) = self
            .entries
            .get(name)
            .with_context(|| format!("{}: no tensor named `{name}`", self.path.display()))?;
        let numel: usize = shape.iter().product();
        if start + len > numel || (end - begin) as usize != numel * 4 {
            bail!(
                "{}: tensor `{name}`: values {start}..{} out of {numel}",
                self.path.display(),
                start + len
            );
        }
        let mut file = std::fs::File::open(&self.path)
            .with_context(|| format!("opening {}", self.path.display()))?;
        file.seek(SeekFrom::Start(self.data_start + begin + 4 * start as u64))?;
        let mut bytes = vec![0u8; 4 * len];
        file.read_exact(&mut bytes)
            .with_context(|| format!("{}: truncated data of `{name}`", self.path.display()))?;
        Ok(bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }
}

#[cfg(test)]
mod index_tests {
    use super::*;

    #[test]
    fn reads_slices_without_loading_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.safetensors");
        let file = TensorFile {
            tensors: vec![
                HostTensor {
                    name: "a".into(),
                    shape: vec![2, 3],
                    values: (0..6).map(|v| v as f32).collect(),
                },
                HostTensor {
                    name: "b".into(),
                    shape: vec![4],
                    values: vec![10.0, 11.0, 12.0, 13.0],
                },
            ],
            metadata: [("k".to_string(), "v".to_string())].into(),
        };
        file.write(&path).unwrap();
        let index = TensorIndex::open(&path).unwrap();
        assert_eq!(index.shape("a").unwrap(), &[2, 3]);
        assert_eq!(index.read("a", 2, 3).unwrap(), vec![2.0, 3.0, 4.0]);
        assert_eq!(index.read("b", 0, 4).unwrap(), vec![10.0, 11.0, 12.0, 13.0]);
        assert!(index.read("b", 2, 3).is_err());
        assert!(index.read("c", 0, 1).is_err());
    }
}

#[cfg(test)]
mod byte_tests {
    use super::*;

    #[test]
    fn equal_contents_give_equal_bytes() {
        let make = |order: &[&str]| TensorFile {
            tensors: order
                .iter()
                .map(|n| HostTensor {
                    name: n.to_string(),
                    shape: vec![1],
                    values: vec![1.5],
                })
                .collect(),
            metadata: [
                ("b".to_string(), "2".to_string()),
                ("a".to_string(), "1".to_string()),
            ]
            .into(),
        };
        assert_eq!(
            make(&["x", "y", "z"]).to_bytes(),
            make(&["z", "x", "y"]).to_bytes()
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.safetensors");
        make(&["x", "y"]).write(&path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap().len() % 8, (8 + 4 * 2) % 8);
    }
}
