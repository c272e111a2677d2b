//! Training end to end on small synthetic data: it learns, it records, it caches.

use burn::tensor::Device;
use landscape_data::{DatasetName, SyntheticConfig};
use landscape_train::*;
use std::collections::BTreeMap;

fn dataset() -> landscape_data::Dataset {
    let synthetic = SyntheticConfig {
        seed: 1,
        train: 1024,
        test: 512,
    };
    let locations = landscape_data::DataLocations::from_env("/nonexistent");
    landscape_data::load(&DatasetName::Synthetic, &locations, &synthetic).unwrap()
}

fn config(batch: usize, epochs: u32) -> TrainConfig {
    let text = format!(
        r#"
        model = "resnet20"
        width = 0.25
        optimizer = "sgd"
        nesterov = true
        lr = 0.05
        epochs = {epochs}
        batch_size = {batch}
        weight_decay = 5e-4
        seed = 3
        save_every = 2
        max_micro_batch = 128
        schedule = {{ kind = "step", fractions = [0.5], gamma = 0.1 }}
        "#
    );
    toml::from_str(&text).unwrap()
}

fn record(train: TrainConfig, data: &landscape_data::Dataset, n: usize) -> RunRecord {
    let identity = DataIdentity {
        name: data.name.clone(),
        fingerprint: data.fingerprint.clone(),
        classes: data.classes,
    };
    let config = RunConfig::resolve(train, identity, n).unwrap();
    RunRecord {
        id: config.id(),
        experiment: "test".into(),
        sweep: BTreeMap::new(),
        substituted_for: None,
        device: "cpu".into(),
        config,
    }
}

#[test]
fn trains_records_checkpoints_and_caches() {
    let device = Device::flex();
    let data = dataset();
    let run_data = RunData::prepare(&data, 0, 0, &device).unwrap();
    let work = tempfile::tempdir().unwrap();
    let rec = record(config(64, 4), &data, data.train.len());
    let status = train_run(work.path(), &rec, &run_data, &device, "test").unwrap();
    assert_eq!(status.state, RunState::Complete);
    assert_eq!(status.epochs_done, 4);
    let dir = RunDir::new(work.path(), &rec.id);
    assert_eq!(dir.checkpoint_epochs().unwrap(), vec![0, 2, 4]);
    let rows = metrics::read(&dir.metrics_path()).unwrap();
    assert_eq!(rows.len(), 5);
    assert!(rows[0].train_loss.is_none());
    let first = rows[1].train_loss.unwrap();
    let last = rows[4].train_loss.unwrap();
    assert!(
        last < first,
        "training loss did not fall: {first} -> {last}"
    );
    assert!(
        rows[4].test_acc > 20.0,
        "test accuracy {}",
        rows[4].test_acc
    );
    // The rate decays by 10 after epoch 2 of 4.
    assert!((rows[3].lr - 0.005).abs() < 1e-12 && (rows[2].lr - 0.05).abs() < 1e-12);
    assert!(rows.iter().all(|r| r.weight_l2 > r.weight_l2_no_biasbn));
    // A second call is a cache hit: same status, nothing retrained.
    let before = std::fs::metadata(dir.metrics_path())
        .unwrap()
        .modified()
        .unwrap();
    let again = train_run(work.path(), &rec, &run_data, &device, "test").unwrap();
    assert_eq!(again, status);
    assert_eq!(
        std::fs::metadata(dir.metrics_path())
            .unwrap()
            .modified()
            .unwrap(),
        before
    );
    // A changed value is a different run.
    let mut other = config(64, 4);
    other.lr = 0.04;
    assert_ne!(record(other, &data, data.train.len()).id, rec.id);
}

#[test]
fn same_seed_gives_the_same_weights() {
    let device = Device::flex();
    let data = dataset();
    let run_data = RunData::prepare(&data, 512, 256, &device).unwrap();
    let rec = record(config(100, 3), &data, 512);
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    train_run(a.path(), &rec, &run_data, &device, "a").unwrap();
    train_run(b.path(), &rec, &run_data, &device, "b").unwrap();
    let read = |dir: &std::path::Path, e| {
        landscape_core::tensor_file::TensorFile::read(&RunDir::new(dir, &rec.id).checkpoint_path(e))
            .unwrap()
            .tensors
    };
    assert_eq!(
        read(a.path(), 3),
        read(b.path(), 3),
        "same seed, different weights"
    );
}
