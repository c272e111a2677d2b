//! The names of the data sets, as typed on the command line and stored in run specs.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A data set landscape can train on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DatasetName {
    /// CIFAR-10: 50000 + 10000 colour images, 10 classes.
    #[serde(rename = "cifar10")]
    Cifar10,
    /// CIFAR-100: 50000 + 10000 colour images, 100 fine classes.
    #[serde(rename = "cifar100")]
    Cifar100,
    /// Fashion-MNIST: 60000 + 10000 grey 28x28 images, 10 classes, made CIFAR-style.
    #[serde(rename = "fashion-mnist")]
    FashionMnist,
    /// Synthetic CIFAR-style images generated from a seed: no files, no network.
    #[serde(rename = "synthetic")]
    Synthetic,
}

impl DatasetName {
    /// Every data set, in the order help texts list them.
    pub const ALL: [DatasetName; 4] = [
        Self::Cifar10,
        Self::Cifar100,
        Self::FashionMnist,
        Self::Synthetic,
    ];

    /// The spelling used on the command line, in specs and in serde.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cifar10 => "cifar10",
            Self::Cifar100 => "cifar100",
            Self::FashionMnist => "fashion-mnist",
            Self::Synthetic => "synthetic",
        }
    }
}

impl fmt::Display for DatasetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DatasetName {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        Self::ALL
            .into_iter()
            .find(|name| name.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = Self::ALL.iter().map(|n| n.as_str()).collect();
                anyhow::anyhow!("unknown data set '{s}' (known: {})", known.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_agree_between_display_parse_and_serde() {
        for name in DatasetName::ALL {
            assert_eq!(name.to_string().parse::<DatasetName>().unwrap(), name);
            let json = serde_json::to_string(&name).unwrap();
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<DatasetName>(&json).unwrap(), name);
        }
        assert_eq!(DatasetName::FashionMnist.to_string(), "fashion-mnist");
        let err = "cifar".parse::<DatasetName>().unwrap_err().to_string();
        assert!(
            err.contains("unknown data set 'cifar'") && err.contains("fashion-mnist"),
            "{err}"
        );
    }
}
