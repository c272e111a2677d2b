//! `metrics.csv`: one row per epoch, rewritten atomically after each epoch.

use anyhow::{Context, Result, bail};
use landscape_core::atomic::write_atomic_with;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One epoch's numbers. Epoch 0 is the initialization: its train columns are empty (no
/// training happened), its test columns and norms are measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// Epochs completed (0 = initialization).
    pub epoch: u32,
    /// Learning rate used during this epoch.
    pub lr: f64,
    /// Mean training loss over the epoch's steps (augmented data, training mode), as the
    /// reference trainer reports it.
    pub train_loss: Option<f64>,
    /// Training accuracy over the epoch's steps, percent.
    pub train_acc: Option<f64>,
    /// Test loss after the epoch, inference mode, no augmentation.
    pub test_loss: f64,
    /// Test accuracy after the epoch, percent.
    pub test_acc: f64,
    /// L2 norm of all learnable parameters.
    pub weight_l2: f64,
    /// L2 norm of the convolution and linear weights only (biases and BatchNorm excluded).
    pub weight_l2_no_biasbn: f64,
    /// Wall seconds this epoch took (training and measurement).
    pub seconds: f64,
}

/// Reads `metrics.csv`.
pub fn read(path: &Path) -> Result<Vec<EpochMetrics>> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    let mut rows = Vec::new();
    for (i, row) in reader.deserialize().enumerate() {
        let row: EpochMetrics =
            row.with_context(|| format!("{}: row {}", path.display(), i + 2))?;
        if row.epoch as usize != i {
            bail!(
                "{}: row {} is epoch {}, expected {i}",
                path.display(),
                i + 2,
                row.epoch
            );
        }
        rows.push(row);
    }
    Ok(rows)
}

/// Writes `metrics.csv` atomically.
pub fn write(path: &Path, rows: &[EpochMetrics]) -> Result<()> {
    write_atomic_with(path, |w| {
        let mut writer = csv::Writer::from_writer(w);
        for row in rows {
            writer.serialize(row)?;
        }
        writer.flush()?;
        Ok(())
    })
}
