//! The job engine: every artifact of landscape that takes long to compute (a surface, an
//! eigen-ratio map, a Hessian report, a sharpness table, a trajectory, a training run) goes
//! through these pieces, written once:
//!
//! - [`job`]: the directory `<workdir>/<kind>-<hash>/`, keyed by a content hash of its
//!   [`job::JobMeta`] (the content of every input: checkpoint bytes, direction files, data
//!   fingerprint, settings, code version), with `meta.toml`;
//! - [`lock`]: one process per job (or per shard); a second one says who holds it and waits;
//! - [`journal`]: append-only journals of finished points, resumed after a kill;
//! - [`shard`] and [`grid`]: a job's points split into shards computed anywhere, and one merge
//!   that refuses shards of another job;
//! - [`toml_file`]: TOML files read with errors naming them, written atomically.
//!
//! ```
//! use landscape_job::shard::Shard;
//! let shard: Shard = "2/4".parse().unwrap();
//! assert_eq!(shard.points(10).collect::<Vec<_>>(), vec![1, 5, 9]);
//! ```

pub mod grid;
pub mod job;
pub mod journal;
pub mod lock;
pub mod shard;
pub mod toml_file;

#[cfg(test)]
mod tests;
