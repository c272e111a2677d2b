//! The data one run sees: its fixed training subset on the host (augmented batch by batch) and
//! its test subset resident on the device.

use anyhow::Result;
use burn::tensor::Device;
use landscape_data::{Dataset, ImageSet, Normalization, fill_batch};
use landscape_models::eval::DeviceBatches;

/// Seed of the fixed train and test subsets. Not the run's seed: every run of a sweep must see
/// the same examples for their comparison to mean anything.
pub const SUBSET_SEED: u64 = 0;

/// The fixed subset of `n` examples of `set` (`0`: all of them, in order).
pub fn fixed_subset(set: &ImageSet, n: usize) -> ImageSet {
    if n == 0 {
        set.clone()
    } else {
        set.subset(n, SUBSET_SEED)
    }
}

/// Uploads `set`, normalized and without augmentation, in batches of
/// [`landscape_core::device::eval_batch`] images.
pub fn upload(
    set: &ImageSet,
    normalization: &Normalization,
    device: &Device,
) -> Result<DeviceBatches> {
    let indices: Vec<usize> = (0..set.len()).collect();
    let mut values = Vec::new();
    fill_batch(set, &indices, normalization, None, &mut values);
    DeviceBatches::upload(
        &values,
        &set.labels,
        landscape_core::device::eval_batch(device),
        device,
    )
}

/// A run's data: training subset on the host, test subset on the device.
pub struct RunData {
    /// Training examples (the fixed subset).
    pub train: ImageSet,
    /// Per-channel normalization of the data set.
    pub normalization: Normalization,
    /// Test examples (the fixed subset) on the device.
    pub test: DeviceBatches,
}

impl RunData {
    /// The subsets `train_subset` / `test_subset` of `dataset` (0: all).
    pub fn prepare(
        dataset: &Dataset,
        train_subset: usize,
        test_subset: usize,
        device: &Device,
    ) -> Result<Self> {
        let train = fixed_subset(&dataset.train, train_subset);
        let test = upload(
            &fixed_subset(&dataset.test, test_subset),
            &dataset.normalization,
            device,
        )?;
        Ok(Self {
            train,
            normalization: dataset.normalization,
            test,
        })
    }
}
