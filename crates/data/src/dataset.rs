//! A loaded data set: both splits, class names, normalization and a fingerprint of the data.

use crate::image_set::{CHANNELS, IMAGE_SIDE, ImageSet};
use crate::name::DatasetName;
use crate::normalization::Normalization;
use landscape_core::hash::ContentHash;
use rayon::prelude::*;
use sha2::{Digest, Sha256};

/// A data set ready for training: train and test splits in CIFAR shape, with what is needed
/// to normalize them and to key cached results by the exact data.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Which data set this is.
    pub name: DatasetName,
    /// Where it came from, for people: a directory, or "generated from seed 0".
    pub source: String,
    /// The number of classes; every label is below it.
    pub classes: usize,
    /// A name for each class, in label order.
    pub class_names: Vec<String>,
    /// The training split.
    pub train: ImageSet,
    /// The test split.
    pub test: ImageSet,
    /// The per-channel normalization a network's input uses.
    pub normalization: Normalization,
    /// A hash over the kind (not the path of one's own files) and every image and label of both splits: it keys cached training
    /// runs, so any change in the data gives a new fingerprint.
    pub fingerprint: ContentHash,
}

impl Dataset {
    /// Assembles a data set and computes its fingerprint.
    pub(crate) fn new(
        name: DatasetName,
        source: String,
        class_names: Vec<String>,
        train: ImageSet,
        test: ImageSet,
        normalization: Normalization,
    ) -> Dataset {
        let fingerprint = fingerprint(&name, &train, &test);
        Dataset {
            name,
            source,
            classes: class_names.len(),
            class_names,
            train,
            test,
            normalization,
            fingerprint,
        }
    }

    /// A readable multi-line report: source, sizes, shape, class balance of both splits and
    /// the normalization (what `landscape data info <dataset>` prints).
    pub fn info(&self) -> String {
        let n = &self.normalization;
        let width = self
            .class_names
            .iter()
            .map(|s| s.len())
            .max()
            .unwrap_or(0)
            .max(5);
        let mut lines = vec![
            format!("data set       {}", self.name),
            format!("source         {}", self.source),
            format!("fingerprint    {}", self.fingerprint.short()),
            format!(
                "images         {} train, {} test, each {CHANNELS}x{IMAGE_SIDE}x{IMAGE_SIDE} u8 (CHW)",
                self.train.len(),
                self.test.len()
            ),
            format!("classes        {}", self.classes),
            format!(
                "normalization  mean ({:.4}, {:.4}, {:.4}), std ({:.4}, {:.4}, {:.4})",
                n.mean[0], n.mean[1], n.mean[2], n.std[0], n.std[1], n.std[2]
            ),
            format!("  label  {:width$}  {:>6}  {:>6}", "class", "train", "test"),
        ];
        let train = self.train.class_counts(self.classes);
        let test = self.test.class_counts(self.classes);
        lines.extend(self.class_names.iter().enumerate().map(|(label, name)| {
            format!(
                "  {label:>5}  {name:width$}  {:>6}  {:>6}",
                train[label], test[label]
            )
        }));
        lines.push(String::new());
        lines.join("\n")
    }
}

/// The class names in the file at `path`, one a line (surrounding spaces and blank lines
/// ignored); callers check how many there must be.
pub(crate) fn read_class_names(path: &std::path::Path) -> anyhow::Result<Vec<String>> {
    use anyhow::Context;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

/// SHA-256 over the data set's kind (one's own files by content, not by path) and the SHA-256 of each of the four arrays (train images and
/// labels, test images and labels), the four hashed in parallel.
fn fingerprint(name: &DatasetName, train: &ImageSet, test: &ImageSet) -> ContentHash {
    let label_bytes =
        |set: &ImageSet| -> Vec<u8> { set.labels.iter().flat_map(|l| l.to_le_bytes()).collect() };
    let (train_labels, test_labels) = (label_bytes(train), label_bytes(test));
    let parts: [&[u8]; 4] = [&train.images, &train_labels, &test.images, &test_labels];
    let digests: Vec<_> = parts.par_iter().map(Sha256::digest).collect();
    let mut summary = format!("landscape-data/{}\n", name.kind()).into_bytes();
    for digest in digests {
        summary.extend_from_slice(&digest);
    }
    ContentHash::of_bytes(&summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image_set::tests::numbered;

    fn dataset(train: ImageSet) -> Dataset {
        let names = (0..10).map(|i| format!("class {i}")).collect();
        Dataset::new(
            DatasetName::Synthetic,
            "test".into(),
            names,
            train,
            numbered(5, 10),
            Normalization::CIFAR10,
        )
    }

    #[test]
    fn fingerprint_changes_with_any_pixel_or_label() {
        let base = dataset(numbered(30, 10));
        assert_eq!(base.fingerprint, dataset(numbered(30, 10)).fingerprint);
        let mut pixel = numbered(30, 10);
        pixel.images[12345] ^= 1;
        assert_ne!(base.fingerprint, dataset(pixel).fingerprint);
        let mut label = numbered(30, 10);
        label.labels[29] = 0;
        assert_ne!(base.fingerprint, dataset(label).fingerprint);
        let mut renamed = dataset(numbered(30, 10));
        renamed.fingerprint = fingerprint(&DatasetName::Cifar10, &renamed.train, &renamed.test);
        assert_ne!(base.fingerprint, renamed.fingerprint);
    }

    #[test]
    fn info_reports_counts_shape_and_normalization() {
        let info = dataset(numbered(30, 10)).info();
        assert!(info.contains("30 train, 5 test, each 3x32x32"), "{info}");
        assert!(info.contains("mean (0.4914, 0.4824, 0.4467)"), "{info}");
        assert!(
            info.lines()
                .any(|l| l.split_whitespace().eq(["9", "class", "9", "3", "0"]))
        );
    }
}
