//! CIFAR-10 and CIFAR-100 in their binary format
//! (<https://www.cs.toronto.edu/~kriz/cifar.html>): fixed-size records of label byte(s)
//! followed by 3072 pixel bytes, the R plane, the G plane, then the B plane, each row-major,
//! which is already the CHW layout of [`ImageSet`].

use crate::dataset::Dataset;
use crate::download::extract_tar_gz;
use crate::image_set::{IMAGE_BYTES, ImageSet};
use crate::install::{Wanted, find_or_install};
use crate::locations::{DataLocations, Source};
use crate::name::DatasetName;
use crate::normalization::Normalization;
use anyhow::{Context, Result, bail, ensure};
use std::fs;
use std::path::Path;

/// Everything that differs between the CIFAR-10 and CIFAR-100 binary versions.
pub(crate) struct Layout {
    name: DatasetName,
    /// The archive's file name.
    archive: &'static str,
    /// The directory the archive holds the files in.
    dir: &'static str,
    /// Training files, each with its exact record count.
    train: &'static [(&'static str, usize)],
    /// The test file and its exact record count.
    test: (&'static str, usize),
    /// Label bytes before the pixels of each record; the class is the last of them (the fine
    /// label in CIFAR-100, whose first byte is the coarse label).
    label_bytes: usize,
    classes: usize,
    /// The file with one class name a line.
    names_file: &'static str,
}

/// CIFAR-10: five training batches and one test batch of 10000 records of 1 + 3072 bytes.
pub(crate) const CIFAR10: Layout = Layout {
    name: DatasetName::Cifar10,
    archive: "cifar-10-binary.tar.gz",
    dir: "cifar-10-batches-bin",
    train: &[
        ("data_batch_1.bin", 10000),
        ("data_batch_2.bin", 10000),
        ("data_batch_3.bin", 10000),
        ("data_batch_4.bin", 10000),
        ("data_batch_5.bin", 10000),
    ],
    test: ("test_batch.bin", 10000),
    label_bytes: 1,
    classes: 10,
    names_file: "batches.meta.txt",
};

/// CIFAR-100: one training file of 50000 and one test file of 10000 records of 2 + 3072 bytes.
pub(crate) const CIFAR100: Layout = Layout {
    name: DatasetName::Cifar100,
    archive: "cifar-100-binary.tar.gz",
    dir: "cifar-100-binary",
    train: &[("train.bin", 50000)],
    test: ("test.bin", 10000),
    label_bytes: 2,
    classes: 100,
    names_file: "fine_label_names.txt",
};

/// Loads the data set `layout` describes, downloading it from `source` if it is nowhere in
/// `locations`.
pub(crate) fn load(layout: &Layout, locations: &DataLocations, source: &Source) -> Result<Dataset> {
    let files = layout
        .train
        .iter()
        .chain([&layout.test])
        .map(|(f, _)| f.to_string());
    let wanted = Wanted {
        name: layout.name.clone(),
        dir_name: layout.dir,
        files: files.chain([layout.names_file.to_string()]).collect(),
        origin: format!("extracted from {} (md5 {})", source.url, source.md5),
    };
    let dir = find_or_install(locations, &wanted, |workspace| {
        let archive = workspace.download(source, layout.archive)?;
        extract_tar_gz(&archive, workspace.scratch)?;
        let extracted = workspace.scratch.join(layout.dir);
        ensure!(
            extracted.is_dir(),
            "{}: has no {}/ directory",
            layout.archive,
            layout.dir
        );
        Ok(extracted)
    })?;
    let class_names = read_class_names(&dir.join(layout.names_file), layout.classes)?;
    let train = read_files(&dir, layout.train, layout)?;
    let test = read_files(&dir, std::slice::from_ref(&layout.test), layout)?;
    let normalization = match layout.name {
        DatasetName::Cifar10 => Normalization::CIFAR10,
        _ => {
            Normalization::of(&train).with_context(|| format!("{}: training set", dir.display()))?
        }
    };
    Ok(Dataset::new(
        layout.name.clone(),
        dir.display().to_string(),
        class_names,
        train,
        test,
        normalization,
    ))
}

/// The class names in `path`, one a line (blank lines ignored); exactly `classes` of them.
fn read_class_names(path: &Path, classes: usize) -> Result<Vec<String>> {
    let names = crate::dataset::read_class_names(path)?;
    ensure!(
        names.len() == classes,
        "{}: {} class names, expected {classes}",
        path.display(),
        names.len()
    );
    Ok(names)
}

/// The records of `files` in `dir`, concatenated in order.
fn read_files(dir: &Path, files: &[(&str, usize)], layout: &Layout) -> Result<ImageSet> {
    let total: usize = files.iter().map(|(_, n)| n).sum();
    let mut set = ImageSet {
        images: Vec::with_capacity(total * IMAGE_BYTES),
        labels: Vec::with_capacity(total),
    };
    for &(file, records) in files {
        read_records(&dir.join(file), records, layout, &mut set)?;
    }
    Ok(set)
}

/// Appends the `records` records of the file at `path` to `set`, checking size and labels.
fn read_records(path: &Path, records: usize, layout: &Layout, set: &mut ImageSet) -> Result<()> {
    let bytes = fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let record = layout.label_bytes + IMAGE_BYTES;
    let expected = records * record;
    if bytes.len() != expected {
        let problem = if bytes.len() < expected {
            "truncated"
        } else {
            "too long"
        };
        bail!(
            "{}: {problem}: {} bytes is not {records} records of {record} bytes",
            path.display(),
            bytes.len()
        );
    }
    for (i, rec) in bytes.chunks_exact(record).enumerate() {
        let label = rec[layout.label_bytes - 1];
        ensure!(
            (label as usize) < layout.classes,
            "{}: record {i}: label {label} is out of range (a class below {})",
            path.display(),
            layout.classes
        );
        set.labels.push(label.into());
        set.images.extend_from_slice(&rec[layout.label_bytes..]);
    }
    Ok(())
}
