//! Finding the data a spec names, and standing in for it (loudly) when it cannot be had.

use anyhow::Result;
use landscape_data::{DataLocations, Dataset, DatasetName, Missing, SyntheticConfig};

/// The data an experiment uses, and what it stands in for.
pub struct ResolvedData {
    /// The data set used.
    pub dataset: Dataset,
    /// The data set the spec named, when another one is used instead.
    pub substituted_for: Option<DatasetName>,
}

/// The stand-ins tried, in order, when the named data set is missing: the best real data set
/// available offline, then the synthetic one.
const STAND_INS: [DatasetName; 2] = [DatasetName::FashionMnist, DatasetName::Synthetic];

/// Loads `named`. When it is absent (found nowhere and not downloaded: [`Missing`]) and
/// `allow_stand_in` is set, uses the first of Fashion-MNIST and the synthetic set that is
/// present, and says so on stderr. A data set that is there but damaged is an error, never
/// replaced: its numbers would silently belong to other data.
pub fn resolve(
    named: &DatasetName,
    locations: &DataLocations,
    allow_stand_in: bool,
) -> Result<ResolvedData> {
    match load(named, locations) {
        Ok(dataset) => Ok(ResolvedData {
            dataset,
            substituted_for: None,
        }),
        Err(error) if allow_stand_in && Missing::in_chain(&error) => {
            for stand_in in STAND_INS.iter().filter(|s| *s != named) {
                match load(stand_in, locations) {
                    Ok(dataset) => {
                        announce(named, stand_in, &error);
                        return Ok(ResolvedData {
                            dataset,
                            substituted_for: Some(named.clone()),
                        });
                    }
                    Err(e) if Missing::in_chain(&e) => continue,
                    Err(e) => {
                        return Err(e.context(format!(
                            "`{named}` is not available and its stand-in `{stand_in}` is damaged"
                        )));
                    }
                }
            }
            Err(error)
        }
        Err(error) => Err(error),
    }
}

/// Loads a data set by name (the synthetic one at its default size and seed).
pub fn load(name: &DatasetName, locations: &DataLocations) -> Result<Dataset> {
    landscape_data::load(name, locations, &SyntheticConfig::default())
}

fn announce(named: &DatasetName, stand_in: &DatasetName, error: &anyhow::Error) {
    let rule = "=".repeat(78);
    eprintln!("{rule}");
    eprintln!("DATA SET SUBSTITUTED: the spec names `{named}`, which is not available:");
    eprintln!("  {}", format!("{error:#}").replace('\n', "\n  "));
    eprintln!("Using `{stand_in}` instead. Results record the substitution; numbers are not");
    eprintln!("comparable with the paper's. Pass --dataset to choose explicitly.");
    eprintln!("{rule}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use landscape_data::Mirrors;
    use std::path::Path;

    /// Locations that search `root` only, never download.
    fn offline(root: &Path) -> DataLocations {
        DataLocations {
            cache_dir: root.join("cache"),
            system_dirs: vec![root.to_path_buf()],
            allow_download: false,
            mirrors: Mirrors::official(),
        }
    }

    /// A CIFAR-10 directory whose first training file is cut short.
    fn truncated_cifar10(root: &Path) {
        let dir = root.join("cifar-10-batches-bin");
        std::fs::create_dir_all(&dir).unwrap();
        let names = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n";
        std::fs::write(dir.join("batches.meta.txt"), names).unwrap();
        for file in [
            "data_batch_1",
            "data_batch_2",
            "data_batch_3",
            "data_batch_4",
        ] {
            std::fs::write(dir.join(format!("{file}.bin")), [0u8; 3073]).unwrap();
        }
        for file in ["data_batch_5", "test_batch"] {
            std::fs::write(dir.join(format!("{file}.bin")), [0u8; 100]).unwrap();
        }
    }

    #[test]
    fn a_missing_data_set_is_stood_in_for() {
        let root = tempfile::tempdir().unwrap();
        let mut locations = offline(root.path());
        // Fashion-MNIST missing too: the synthetic set stands in.
        locations.system_dirs = vec![root.path().join("nothing")];
        let data = resolve(&DatasetName::Cifar10, &locations, true).unwrap();
        assert_eq!(data.substituted_for, Some(DatasetName::Cifar10));
        assert_eq!(data.dataset.name, DatasetName::Synthetic);
    }

    #[test]
    fn a_damaged_data_set_is_an_error_never_a_substitution() {
        let root = tempfile::tempdir().unwrap();
        truncated_cifar10(root.path());
        let err = resolve(&DatasetName::Cifar10, &offline(root.path()), true)
            .err()
            .expect("a truncated CIFAR-10 was replaced");
        let text = format!("{err:#}");
        assert!(
            text.contains("data_batch_1.bin") && text.contains("truncated"),
            "{text}"
        );
    }

    #[test]
    fn a_damaged_stand_in_is_an_error_too() {
        let root = tempfile::tempdir().unwrap();
        let fashion = root.path().join("fashion-mnist");
        std::fs::create_dir_all(&fashion).unwrap();
        for file in [
            "train-images-idx3-ubyte.gz",
            "train-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
        ] {
            std::fs::write(fashion.join(file), b"not gzip").unwrap();
        }
        let err = resolve(&DatasetName::Cifar10, &offline(root.path()), true)
            .err()
            .expect("a damaged Fashion-MNIST was replaced by the synthetic set");
        assert!(
            format!("{err:#}").contains("stand-in `fashion-mnist` is damaged"),
            "{err:#}"
        );
    }
}
