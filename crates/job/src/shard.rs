//! Shards: part `index` of `count` of a job's points (`--shard 2/4`), computed anywhere and
//! joined by [`crate::grid::merge`].

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Part `index` of `count` (1-based, `--shard 2/4`): the points `k` with `k % count ==
/// index - 1`, interleaved so every shard gets a fair share of the expensive and cheap regions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// This shard, from 1.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

impl Shard {
    /// The whole grid as one shard.
    pub const WHOLE: Shard = Shard { index: 1, count: 1 };

    /// Whether point `k` belongs to this shard.
    pub fn owns(&self, k: usize) -> bool {
        k % self.count == self.index - 1
    }

    /// How many of the points `0..total` belong to this shard.
    pub fn share(&self, total: usize) -> usize {
        (total + self.count - self.index) / self.count
    }

    /// The points of `0..total` that belong to this shard, in order (never materialized).
    pub fn points(&self, total: usize) -> impl Iterator<Item = usize> + use<> {
        (self.index - 1..total).step_by(self.count)
    }
}

impl FromStr for Shard {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        let parsed = s
            .split_once('/')
            .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)));
        match parsed {
            Some((index, count)) if count >= 1 && (1..=count).contains(&index) => {
                Ok(Self { index, count })
            }
            _ => bail!("expected a shard k/n with 1 <= k <= n, such as 2/4, got `{s}`"),
        }
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_grid() {
        let shards: Vec<Shard> = (1..=3).map(|i| format!("{i}/3").parse().unwrap()).collect();
        for total in [0, 1, 2, 3, 20] {
            for k in 0..total {
                assert_eq!(shards.iter().filter(|s| s.owns(k)).count(), 1);
            }
            for s in &shards {
                let listed: Vec<usize> = s.points(total).collect();
                assert_eq!(
                    listed,
                    (0..total).filter(|&k| s.owns(k)).collect::<Vec<_>>()
                );
                assert_eq!(s.share(total), listed.len(), "{s} of {total}");
            }
        }
        assert!("0/3".parse::<Shard>().is_err() && "4/3".parse::<Shard>().is_err());
    }
}
