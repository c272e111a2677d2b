//! Finding the data a spec names, and standing in for it (loudly) when it cannot be had.

use anyhow::Result;
use landscape_data::{DataLocations, Dataset, DatasetName, SyntheticConfig};

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

/// Loads `named`. When it cannot be found or downloaded and `allow_stand_in` is set, uses the
/// first of Fashion-MNIST and the synthetic set that loads, and says so on stderr.
pub fn resolve(
    named: DatasetName,
    locations: &DataLocations,
    allow_stand_in: bool,
) -> Result<ResolvedData> {
    match load(named, locations) {
        Ok(dataset) => Ok(ResolvedData {
            dataset,
            substituted_for: None,
        }),
        Err(error) if allow_stand_in => {
            for stand_in in STAND_INS.into_iter().filter(|s| *s != named) {
                if let Ok(dataset) = load(stand_in, locations) {
                    announce(named, stand_in, &error);
                    return Ok(ResolvedData {
                        dataset,
                        substituted_for: Some(named),
                    });
                }
            }
            Err(error)
        }
        Err(error) => Err(error),
    }
}

/// Loads a data set by name (the synthetic one at its default size and seed).
pub fn load(name: DatasetName, locations: &DataLocations) -> Result<Dataset> {
    landscape_data::load(name, locations, &SyntheticConfig::default())
}

fn announce(named: DatasetName, stand_in: DatasetName, error: &anyhow::Error) {
    let rule = "=".repeat(78);
    eprintln!("{rule}");
    eprintln!("DATA SET SUBSTITUTED: the spec names `{named}`, which is not available:");
    eprintln!("  {}", format!("{error:#}").replace('\n', "\n  "));
    eprintln!("Using `{stand_in}` instead. Results record the substitution; numbers are not");
    eprintln!("comparable with the paper's. Pass --dataset to choose explicitly.");
    eprintln!("{rule}");
}
