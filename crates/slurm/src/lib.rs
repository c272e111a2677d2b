//! landscape on a Slurm cluster. A [`Plan`] is a landscape command cut into steps: an array of
//! tasks (one per shard of a grid, or one per training run), then the step that finishes it
//! (the whole grid's table, or a spec's analyses and figure). [`submission::write`] turns it
//! into sbatch scripts under `<workdir>/slurm/<name>/`, which [`submission::Submission::submit`]
//! hands to `sbatch`, each step `--dependency=afterok` on the one before; nothing else talks
//! to the nodes. Every task records its own state (running, done, failed) in the submission's
//! directory, and [`status`] joins those records with `squeue`.
//!
//! [`local::run_here`] runs the same plan on this machine instead, one task per GPU.
//!
//! The work directory must be on a file system every node shares. Submitting the same command
//! again is safe: finished shards and runs are found by the job engine (their content-keyed
//! journals and locks), so only what failed or was killed computes again.

pub mod local;
pub mod resources;
pub mod status;
pub mod submission;

pub use resources::Resources;
pub use submission::{Plan, Step, Submission};
