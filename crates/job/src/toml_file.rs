//! TOML files of every artifact (`meta.toml`, `run.toml`, reports): read with errors that name
//! the file, written atomically.

use anyhow::{Context, Result};
use landscape_core::atomic::write_atomic;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::Path;

/// Reads a TOML file into `T`, errors naming the file.
pub fn read_toml<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("{}: unexpected content", path.display()))
}

/// Writes `value` as TOML atomically.
pub fn write_toml<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text =
        toml::to_string_pretty(value).with_context(|| format!("serializing {}", path.display()))?;
    write_atomic(path, text.as_bytes())
}
