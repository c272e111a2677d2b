//! Data sets and their device-resident evaluation sets, loaded once per process and shared by
//! every analysis of a spec.

use crate::Context;
use crate::data;
use crate::runs::OpenRun;
use anyhow::{Context as _, Result, bail};
use landscape_data::{Dataset, DatasetName};
use landscape_models::eval::DeviceBatches;
use landscape_train::data::{fixed_subset, upload};
use std::collections::HashMap;

/// Data sets and device-resident evaluation sets, loaded once per process.
#[derive(Default)]
pub struct DataCache {
    datasets: HashMap<DatasetName, Dataset>,
    batches: HashMap<(String, &'static str, usize, usize), DeviceBatches>,
}

impl DataCache {
    /// A cache that already holds `dataset`.
    pub fn with(dataset: Dataset) -> Self {
        let mut cache = Self::default();
        cache.datasets.insert(dataset.name.clone(), dataset);
        cache
    }

    fn dataset(&mut self, ctx: &Context, run: &OpenRun) -> Result<&Dataset> {
        let identity = &run.record.config.data;
        if !self.datasets.contains_key(&identity.name) {
            let mut loaded = data::load(&identity.name, &ctx.locations);
            if identity.name.path().is_some() {
                loaded = loaded.with_context(|| {
                    format!(
                        "run {} trained on `{}`; if the files moved, `landscape train` with \
                         --dataset naming their new place records it",
                        run.record.id, identity.name
                    )
                });
            }
            let dataset = loaded?;
            self.datasets.insert(identity.name.clone(), dataset);
        }
        let ds = &self.datasets[&identity.name];
        if ds.fingerprint != identity.fingerprint {
            bail!(
                "run {} trained on a different `{}` than the one found now ({}): the data changed",
                run.record.id,
                identity.name,
                ds.source
            );
        }
        Ok(ds)
    }

    /// The run's training examples (its fixed subset, then the first `subset` of them) and its
    /// test examples, on the device.
    pub(crate) fn batches(
        &mut self,
        ctx: &Context,
        run: &OpenRun,
        subset: usize,
        test: bool,
    ) -> Result<(DeviceBatches, Option<DeviceBatches>)> {
        let train_cfg = run.record.config.train.clone();
        let key_train = (
            run.record.config.data.fingerprint.to_string(),
            "train",
            train_cfg.train_subset,
            subset,
        );
        let key_test = (
            run.record.config.data.fingerprint.to_string(),
            "test",
            train_cfg.test_subset,
            0,
        );
        if !self.batches.contains_key(&key_train) || (test && !self.batches.contains_key(&key_test))
        {
            let ds = self.dataset(ctx, run)?.clone();
            let have = fixed_subset(&ds.train, train_cfg.train_subset).len();
            if subset > have {
                bail!(
                    "subset {subset}: run {} trained on {have} examples; ask for at most that many (0: all)",
                    run.record.id
                );
            }
            if !self.batches.contains_key(&key_train) {
                let train = fixed_subset(&fixed_subset(&ds.train, train_cfg.train_subset), subset);
                self.batches.insert(
                    key_train.clone(),
                    upload(&train, &ds.normalization, &ctx.device)?,
                );
            }
            if test && !self.batches.contains_key(&key_test) {
                let set = fixed_subset(&ds.test, train_cfg.test_subset);
                self.batches.insert(
                    key_test.clone(),
                    upload(&set, &ds.normalization, &ctx.device)?,
                );
            }
        }
        Ok((
            self.batches[&key_train].clone(),
            test.then(|| self.batches[&key_test].clone()),
        ))
    }
}
