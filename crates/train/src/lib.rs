//! Training runs as the paper trained them.
//!
//! A run is a resolved [`TrainConfig`] plus the identity of its data ([`RunConfig`]); its id
//! is a content hash, its directory holds `run.toml`, `status.toml`, `metrics.csv`,
//! `checkpoints/epoch_NNNN.safetensors` and the resumable `last.safetensors`.
//! [`train_run`] trains, resumes after a kill, or returns a finished run's status at once.
//!
//! ```no_run
//! # use landscape_train::*;
//! # fn demo(record: RunRecord, data: RunData, device: burn::tensor::Device) -> anyhow::Result<()> {
//! let status = train_run(std::path::Path::new("runs"), &record, &data, &device, "vgg9 bs=128")?;
//! println!("{:?} after {} epochs", status.state, status.epochs_done);
//! # Ok(()) }
//! ```

pub mod config;
pub mod data;
pub mod engine;
pub mod metrics;
pub mod optimizer;
pub mod run;
pub mod trainer;

pub use config::{BatchSize, OptimizerKind, Schedule, TrainConfig};
pub use data::RunData;
pub use engine::{MicroBatch, TrainEngine};
pub use run::{DataIdentity, RunConfig, RunDir, RunRecord, RunState, RunStatus};
pub use trainer::train_run;
