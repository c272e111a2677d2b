//! Where a named spec comes from: a folder the user names, `./experiments` in a checkout (its
//! edits win), or the paper's specs built into the binary, so `landscape reproduce figure3` runs
//! in any directory.

use crate::{Scale, Spec};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// The paper's specs as this binary was built with them (`experiments/*.toml`).
pub const BUILT_IN: [(&str, &str); 10] = [
    ("figure1", include_str!("../../../experiments/figure1.toml")),
    ("figure2", include_str!("../../../experiments/figure2.toml")),
    ("figure3", include_str!("../../../experiments/figure3.toml")),
    ("figure4", include_str!("../../../experiments/figure4.toml")),
    ("figure5", include_str!("../../../experiments/figure5.toml")),
    ("figure6", include_str!("../../../experiments/figure6.toml")),
    ("figure7", include_str!("../../../experiments/figure7.toml")),
    ("figure8", include_str!("../../../experiments/figure8.toml")),
    ("figure9", include_str!("../../../experiments/figure9.toml")),
    (
        "repeatability",
        include_str!("../../../experiments/repeatability.toml"),
    ),
];

/// The folder a checkout keeps its specs in, looked in first.
pub const CHECKOUT_SPECS: &str = "experiments";

/// The prefix of a built-in spec's path in errors and records.
pub const BUILT_IN_PREFIX: &str = "<built-in>";

/// A spec's text and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecSource {
    /// Its file, or `<built-in>/<name>.toml`.
    pub path: PathBuf,
    /// Its text.
    pub text: String,
}

impl SpecSource {
    /// The spec `name` from `folder`; without one, from `./experiments` when it holds it, else
    /// built in.
    pub fn find(folder: Option<&Path>, name: &str) -> Result<Self> {
        let file = format!("{name}.toml");
        let path = match folder {
            Some(folder) => folder.join(&file),
            None => Path::new(CHECKOUT_SPECS).join(&file),
        };
        if path.exists() {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            return Ok(Self { path, text });
        }
        match (folder, BUILT_IN.iter().find(|(n, _)| *n == name)) {
            (None, Some((_, text))) => Ok(Self {
                path: Path::new(BUILT_IN_PREFIX).join(&file),
                text: text.to_string(),
            }),
            _ => {
                let known: Vec<&str> = BUILT_IN.iter().map(|(n, _)| *n).collect();
                bail!(
                    "no spec for `{name}`: {} does not exist (built in: {})",
                    path.display(),
                    known.join(", ")
                )
            }
        }
    }

    /// Whether it is one of the binary's own.
    pub fn is_built_in(&self) -> bool {
        self.path.starts_with(BUILT_IN_PREFIX)
    }

    /// The spec at `scale` with `sets` applied; errors name [`SpecSource::path`].
    pub fn load(&self, scale: Scale, sets: &[String]) -> Result<Spec> {
        Spec::parse(&self.text, &self.path, scale, sets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_folder_wins_then_the_checkout_then_the_built_in_specs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("figure3.toml"), "edited").unwrap();
        let mine = SpecSource::find(Some(dir.path()), "figure3").unwrap();
        assert_eq!((mine.text.as_str(), mine.is_built_in()), ("edited", false));
        assert!(SpecSource::find(Some(dir.path()), "figure5").is_err());
        let err = SpecSource::find(None, "figure10").unwrap_err().to_string();
        assert!(err.contains("figure10") && err.contains("figure9"), "{err}");
        // Every built-in spec parses at every scale it has.
        for (name, text) in BUILT_IN {
            let spec = Spec::parse(text, name.as_ref(), Scale::Smoke, &[]).unwrap();
            assert!(!spec.runs.is_empty(), "{name}");
        }
    }
}
