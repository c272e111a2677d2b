//! Content hashes: every artifact (a run, a surface, a direction) is named by a hash of
//! everything that determines it, so the same inputs find the cached result and any change
//! computes a new one.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt;

/// A SHA-256 over the canonical JSON form of a value (object keys sorted, shortest
/// round-trip floats), written as 64 hex digits.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct ContentHash(String);

impl ContentHash {
    /// The first 12 hex digits: the id used in directory names.
    pub fn short(&self) -> &str {
        &self.0[..12]
    }

    /// All 64 hex digits.
    pub fn full(&self) -> &str {
        &self.0
    }

    /// The hash of raw bytes (for data files and tensors).
    pub fn of_bytes(bytes: &[u8]) -> Self {
        Self(hex::encode(Sha256::digest(bytes)))
    }

    /// The hash of a file's bytes (checkpoints, direction files), errors naming the file.
    pub fn of_file(path: &std::path::Path) -> anyhow::Result<Self> {
        use anyhow::Context;
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        Ok(Self::of_bytes(&bytes))
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Hashes any serializable value by its canonical JSON text.
///
/// Field order in structs and key order in maps do not matter; values do, including the
/// difference between `1` and `1.0`.
pub fn content_hash<T: Serialize + ?Sized>(value: &T) -> ContentHash {
    let value = serde_json::to_value(value).expect("hashed values serialize to JSON");
    ContentHash::of_bytes(canonical_json(&value).as_bytes())
}

/// The canonical text of a JSON value: objects with sorted keys, no whitespace.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_does_not_matter_but_values_do() {
        let a = json!({"lr": 0.1, "model": {"name": "vgg9", "width": 1.0}});
        let b = json!({"model": {"width": 1.0, "name": "vgg9"}, "lr": 0.1});
        let c = json!({"model": {"width": 1.0, "name": "vgg9"}, "lr": 0.05});
        assert_eq!(content_hash(&a), content_hash(&b));
        assert_ne!(content_hash(&a), content_hash(&c));
        assert_eq!(
            canonical_json(&a),
            r#"{"lr":0.1,"model":{"name":"vgg9","width":1.0}}"#
        );
    }
}
