//! The names of the data sets, as typed on the command line and stored in run specs.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A data set landscape can train on: a built-in one, or the user's own files.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DatasetName {
    /// CIFAR-10: 50000 + 10000 colour images, 10 classes.
    Cifar10,
    /// CIFAR-100: 50000 + 10000 colour images, 100 fine classes.
    Cifar100,
    /// Fashion-MNIST: 60000 + 10000 grey 28x28 images, 10 classes, made CIFAR-style.
    FashionMnist,
    /// Synthetic CIFAR-style images generated from a seed: no files, no network.
    Synthetic,
    /// The user's image folder (`folder:PATH`): `PATH/train/<class>/*.png|jpg` and
    /// `PATH/test/<class>/...`, as torchvision's `ImageFolder` reads one split.
    Folder(PathBuf),
    /// The user's NumPy arrays (`npy:PATH`): `PATH/{train,test}_{images,labels}.npy`.
    Npy(PathBuf),
}

/// The prefixes of the user's own data sets, with what follows them.
const OWN: [(&str, &str); 2] = [("folder", "folder:PATH"), ("npy", "npy:PATH")];

impl DatasetName {
    /// The built-in data sets, in the order help texts list them.
    pub const BUILT_IN: [DatasetName; 4] = [
        Self::Cifar10,
        Self::Cifar100,
        Self::FashionMnist,
        Self::Synthetic,
    ];

    /// What kind of data set this is, without a path: `cifar10`, ..., `folder` or `npy`. It
    /// names the data set inside fingerprints and run ids, so moving one's own files changes
    /// neither.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Cifar10 => "cifar10",
            Self::Cifar100 => "cifar100",
            Self::FashionMnist => "fashion-mnist",
            Self::Synthetic => "synthetic",
            Self::Folder(_) => "folder",
            Self::Npy(_) => "npy",
        }
    }

    /// Where the user's own data set lies (`None` for the built-in ones).
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::Folder(path) | Self::Npy(path) => Some(path),
            _ => None,
        }
    }

    /// The same data set with the path of one's own data made absolute: a relative path is
    /// read from `base` (a spec's folder; empty for the current directory). Built-in sets are
    /// returned as they are.
    pub fn anchored(&self, base: &Path) -> DatasetName {
        let absolute = |path: &Path| {
            let joined = base.join(path);
            std::path::absolute(&joined).unwrap_or(joined)
        };
        match self {
            Self::Folder(path) => Self::Folder(absolute(path)),
            Self::Npy(path) => Self::Npy(absolute(path)),
            other => other.clone(),
        }
    }

    /// The data set as it is identified by content: one's own data without its path (the
    /// fingerprint says what the files hold; where they lie does not matter).
    pub fn by_content(&self) -> DatasetName {
        match self {
            Self::Folder(_) => Self::Folder(PathBuf::new()),
            Self::Npy(_) => Self::Npy(PathBuf::new()),
            other => other.clone(),
        }
    }
}

impl fmt::Display for DatasetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.path() {
            Some(path) => write!(f, "{}:{}", self.kind(), path.display()),
            None => f.write_str(self.kind()),
        }
    }
}

impl FromStr for DatasetName {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        if let Some((prefix, path)) = s.split_once(':')
            && OWN.iter().any(|(own, _)| *own == prefix)
        {
            anyhow::ensure!(
                !path.is_empty(),
                "data set '{s}' names no path after '{prefix}:'"
            );
            let path = PathBuf::from(path);
            return Ok(match prefix {
                "folder" => Self::Folder(path),
                _ => Self::Npy(path),
            });
        }
        Self::BUILT_IN
            .into_iter()
            .find(|name| name.kind() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = Self::BUILT_IN
                    .iter()
                    .map(|n| n.kind())
                    .chain(OWN.iter().map(|(_, form)| *form))
                    .collect();
                anyhow::anyhow!("unknown data set '{s}' (known: {})", known.join(", "))
            })
    }
}

impl Serialize for DatasetName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DatasetName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_agree_between_display_parse_and_serde() {
        let own = [
            DatasetName::Folder("data/pets".into()),
            DatasetName::Npy("/tmp/arrays".into()),
        ];
        for name in DatasetName::BUILT_IN.into_iter().chain(own) {
            assert_eq!(name.to_string().parse::<DatasetName>().unwrap(), name);
            let json = serde_json::to_string(&name).unwrap();
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<DatasetName>(&json).unwrap(), name);
        }
        assert_eq!(DatasetName::FashionMnist.to_string(), "fashion-mnist");
        assert_eq!(
            "folder:a:b".parse::<DatasetName>().unwrap(),
            DatasetName::Folder("a:b".into())
        );
        let err = "cifar".parse::<DatasetName>().unwrap_err().to_string();
        assert!(
            err.contains("unknown data set 'cifar'")
                && err.contains("fashion-mnist")
                && err.contains("folder:PATH"),
            "{err}"
        );
        let err = "npy:".parse::<DatasetName>().unwrap_err().to_string();
        assert!(err.contains("no path after 'npy:'"), "{err}");
    }

    #[test]
    fn own_paths_are_read_from_a_base_and_left_out_by_content() {
        let rel = DatasetName::Folder("pets".into());
        assert_eq!(
            rel.anchored(Path::new("/specs")),
            DatasetName::Folder("/specs/pets".into())
        );
        let here = std::env::current_dir().unwrap().join("pets");
        assert_eq!(rel.anchored(Path::new("")), DatasetName::Folder(here));
        let abs = DatasetName::Npy("/data/x".into());
        assert_eq!(abs.anchored(Path::new("/specs")), abs);
        assert_eq!(
            DatasetName::Folder("/a".into()).by_content(),
            DatasetName::Folder("/b".into()).by_content()
        );
        assert_ne!(
            DatasetName::Folder("/a".into()).by_content(),
            DatasetName::Npy("/a".into()).by_content()
        );
        assert_eq!(DatasetName::Cifar10.by_content(), DatasetName::Cifar10);
    }
}
