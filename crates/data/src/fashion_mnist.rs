//! Fashion-MNIST (<https://github.com/zalandoresearch/fashion-mnist>): gzipped IDX files of
//! 28x28 grey images, made CIFAR-style by zero-padding each image by 2 pixels on every side
//! to 32x32 (the images' background is 0, so the padding looks like more background) and
//! repeating the grey channel as R, G and B.

use crate::dataset::Dataset;
use crate::image_set::{IMAGE_BYTES, IMAGE_SIDE, ImageSet};
use crate::install::{Wanted, find_or_install};
use crate::locations::{DataLocations, Source};
use crate::name::DatasetName;
use crate::normalization::Normalization;
use anyhow::{Context, Result, bail, ensure};
use flate2::read::GzDecoder;
use rayon::prelude::*;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

/// Height and width of a Fashion-MNIST image.
const SIDE: usize = 28;
/// Zero pixels added on each side to reach CIFAR's 32x32.
const PAD: usize = (IMAGE_SIDE - SIDE) / 2;
/// IDX magic numbers: unsigned bytes, with 3 dimensions (images) or 1 (labels).
const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;
const CLASSES: usize = 10;

/// The directory the files are looked for in, under each search root.
const DIR: &str = "fashion-mnist";
/// The four files and the md5s of the official downloads. (Debian's dataset-fashion-mnist
/// ships the same deflate streams with normalized gzip headers, so its files have other
/// md5s; files found on disk are checked by their format, downloads by these md5s.)
const TRAIN_IMAGES: (&str, &str) = (
    "train-images-idx3-ubyte.gz",
    "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
);
const TRAIN_LABELS: (&str, &str) = (
    "train-labels-idx1-ubyte.gz",
    "25c81989df183df01b3e8a0aad5dffbe",
);
const TEST_IMAGES: (&str, &str) = (
    "t10k-images-idx3-ubyte.gz",
    "bef4ecab320f06d8554ea6380940ec79",
);
const TEST_LABELS: (&str, &str) = (
    "t10k-labels-idx1-ubyte.gz",
    "bb300cfdad3c16e7a12a480ee83cd310",
);
const FILES: [(&str, &str); 4] = [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS];

const CLASS_NAMES: [&str; CLASSES] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Loads Fashion-MNIST from the first search root that has it, downloading it if none does.
pub(crate) fn load(locations: &DataLocations) -> Result<Dataset> {
    let base = locations.mirrors.fashion_mnist.trim_end_matches('/');
    let wanted = Wanted {
        name: DatasetName::FashionMnist,
        dir_name: DIR,
        files: FILES.iter().map(|(file, _)| file.to_string()).collect(),
        origin: format!("from {base}/"),
    };
    let dir = find_or_install(locations, &wanted, |workspace| {
        for (file, md5) in FILES {
            let source = Source {
                url: format!("{base}/{file}"),
                md5: md5.into(),
            };
            workspace.download(&source, file)?;
        }
        Ok(workspace.scratch.to_path_buf())
    })?;
    let train = read_split(&dir, TRAIN_IMAGES.0, TRAIN_LABELS.0)?;
    let test = read_split(&dir, TEST_IMAGES.0, TEST_LABELS.0)?;
    let normalization =
        Normalization::of(&train).with_context(|| format!("{}: training set", dir.display()))?;
    let class_names = CLASS_NAMES.iter().map(|s| s.to_string()).collect();
    Ok(Dataset::new(
        DatasetName::FashionMnist,
        dir.display().to_string(),
        class_names,
        train,
        test,
        normalization,
    ))
}

/// One split from its images file and labels file in `dir`, made CIFAR-style.
fn read_split(dir: &Path, images_file: &str, labels_file: &str) -> Result<ImageSet> {
    let (images_path, labels_path) = (dir.join(images_file), dir.join(labels_file));
    let image_bytes = read_gz(&images_path)?;
    let (dims, pixels) = parse_idx(&image_bytes, &images_path, IMAGES_MAGIC, 3)?;
    ensure!(
        dims[1..] == [SIDE, SIDE],
        "{}: images are {}x{}, expected {SIDE}x{SIDE}",
        images_path.display(),
        dims[1],
        dims[2]
    );
    let label_bytes = read_gz(&labels_path)?;
    let (label_dims, labels) = parse_idx(&label_bytes, &labels_path, LABELS_MAGIC, 1)?;
    ensure!(
        label_dims[0] == dims[0],
        "{}: {} labels for {} images in {}",
        labels_path.display(),
        label_dims[0],
        dims[0],
        images_path.display()
    );
    if let Some(i) = labels.iter().position(|&l| l as usize >= CLASSES) {
        bail!(
            "{}: item {i}: label {} is out of range (a class below {CLASSES})",
            labels_path.display(),
            labels[i]
        );
    }
    let mut images = vec![0u8; dims[0] * IMAGE_BYTES];
    images
        .par_chunks_mut(IMAGE_BYTES)
        .zip(pixels.par_chunks(SIDE * SIDE))
        .for_each(|(out, grey)| pad_to_cifar(grey, out));
    Ok(ImageSet {
        images,
        labels: labels.iter().map(|&l| l.into()).collect(),
    })
}

/// Writes the 28x28 `grey` image centred in each 32x32 plane of the zeroed `out`.
fn pad_to_cifar(grey: &[u8], out: &mut [u8]) {
    for plane in out.chunks_exact_mut(IMAGE_SIDE * IMAGE_SIDE) {
        for (y, row) in grey.chunks_exact(SIDE).enumerate() {
            let start = (y + PAD) * IMAGE_SIDE + PAD;
            plane[start..start + SIDE].copy_from_slice(row);
        }
    }
}

/// The decompressed content of the gzip file at `path`.
fn read_gz(path: &Path) -> Result<Vec<u8>> {
    let file = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let mut bytes = Vec::new();
    GzDecoder::new(BufReader::new(file))
        .read_to_end(&mut bytes)
        .with_context(|| format!("{}: not a complete gzip file", path.display()))?;
    Ok(bytes)
}

/// The dimensions and data of an IDX array of unsigned bytes with `rank` dimensions.
///
/// IDX: a big-endian u32 magic (0x0000_08_rank for u8 data), one big-endian u32 per
/// dimension, then the data, exactly as many bytes as the dimensions' product.
fn parse_idx<'a>(
    bytes: &'a [u8],
    path: &Path,
    magic: u32,
    rank: usize,
) -> Result<(Vec<usize>, &'a [u8])> {
    // Big-endian u32 number `i` of the header, if the file is that long.
    let word = |i: usize| {
        let b = bytes.get(4 * i..4 * i + 4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    // The magic is checked first: a file of the wrong kind is named as such even when it is
    // too short to be the right one.
    if let Some(found) = word(0).filter(|&m| m != magic) {
        bail!(
            "{}: IDX magic {found:#010x}, expected {magic:#010x}",
            path.display()
        );
    }
    let header = 4 * (1 + rank);
    let Some(dims) = (1..=rank)
        .map(|i| word(i).map(|d| d as usize))
        .collect::<Option<Vec<_>>>()
    else {
        bail!(
            "{}: truncated: {} bytes is shorter than an IDX header of {header}",
            path.display(),
            bytes.len()
        );
    };
    let size = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let data = &bytes[header..];
    if size != Some(data.len()) {
        let problem = if size.is_none_or(|s| data.len() < s) {
            "truncated"
        } else {
            "too long"
        };
        bail!(
            "{}: {problem}: {} data bytes do not fill dimensions {dims:?}",
            path.display(),
            data.len()
        );
    }
    Ok((dims, data))
}
