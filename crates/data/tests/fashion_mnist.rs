//! Fashion-MNIST through the public API: the real files of Debian's dataset-fashion-mnist
//! when installed, small IDX files written here, and damaged ones.

use flate2::{Compression, write::GzEncoder};
use landscape_data::{DataLocations, Dataset, DatasetName, Mirrors, SyntheticConfig, load};
use std::fs;
use std::io::Write;
use std::path::Path;

const DEBIAN_DIR: &str = "/usr/share/datasets";

fn locations(system: &Path, cache: &Path) -> DataLocations {
    DataLocations {
        cache_dir: cache.to_path_buf(),
        system_dirs: vec![system.to_path_buf()],
        allow_download: false,
        mirrors: Mirrors::official(),
    }
}

fn load_from(system: &Path) -> anyhow::Result<Dataset> {
    let cache = tempfile::tempdir().unwrap();
    load(
        &DatasetName::FashionMnist,
        &locations(system, cache.path()),
        &SyntheticConfig::default(),
    )
}

/// An IDX file: big-endian magic and dimensions, then the data.
fn idx(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut bytes = magic.to_be_bytes().to_vec();
    for d in dims {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    bytes
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// Image `i` of a small set: pixel (y, x) = (i * 40 + y * 28 + x) % 255 + 1, never 0.
fn small_pixels(n: usize) -> Vec<u8> {
    (0..n * 784)
        .map(|k| ((k / 784 * 40 + k % 784) % 255 + 1) as u8)
        .collect()
}

/// Writes a small Fashion-MNIST directory under `root`: 5 train and 3 test images.
fn write_small(root: &Path) -> std::path::PathBuf {
    let dir = root.join("fashion-mnist");
    fs::create_dir_all(&dir).unwrap();
    for (prefix, n) in [("train", 5u32), ("t10k", 3)] {
        let images = idx(0x803, &[n, 28, 28], &small_pixels(n as usize));
        let labels: Vec<u8> = (0..n as u8).map(|i| (i * 3) % 10).collect();
        fs::write(
            dir.join(format!("{prefix}-images-idx3-ubyte.gz")),
            gzip(&images),
        )
        .unwrap();
        fs::write(
            dir.join(format!("{prefix}-labels-idx1-ubyte.gz")),
            gzip(&idx(0x801, &[n], &labels)),
        )
        .unwrap();
    }
    dir
}

/// Checks that image `i` of `set` is `source` (28x28) centred, grey in all three channels,
/// with a zero border of 2 pixels.
fn check_padded(image: &[u8], source: &[u8]) {
    for c in 0..3 {
        let plane = &image[c * 1024..(c + 1) * 1024];
        for y in 0..32 {
            for x in 0..32 {
                let inside = (2..30).contains(&y) && (2..30).contains(&x);
                let expect = if inside {
                    source[(y - 2) * 28 + x - 2]
                } else {
                    0
                };
                assert_eq!(plane[y * 32 + x], expect, "channel {c} ({y}, {x})");
            }
        }
    }
}

#[test]
fn small_idx_files_round_trip() {
    let root = tempfile::tempdir().unwrap();
    write_small(root.path());
    let data = load_from(root.path()).unwrap();
    assert_eq!((data.train.len(), data.test.len()), (5, 3));
    assert_eq!(data.train.labels, [0, 3, 6, 9, 2]);
    assert_eq!(data.test.labels, [0, 3, 6]);
    let pixels = small_pixels(5);
    for i in 0..5 {
        check_padded(data.train.image(i), &pixels[i * 784..(i + 1) * 784]);
    }
    assert_eq!(data.class_names[0], "T-shirt/top");
    assert_eq!(data.class_names[9], "Ankle boot");
    let n = data.normalization;
    assert!(
        n.mean[0] == n.mean[1] && n.mean[1] == n.mean[2],
        "grey: {n:?}"
    );
}

#[test]
fn debian_files_load_balanced_and_padded() {
    let dir = Path::new(DEBIAN_DIR).join("fashion-mnist");
    if !dir.join("train-images-idx3-ubyte.gz").exists() {
        eprintln!(
            "skipped: {} not installed (Debian package dataset-fashion-mnist)",
            dir.display()
        );
        return;
    }
    let data = load_from(Path::new(DEBIAN_DIR)).unwrap();
    assert_eq!((data.train.len(), data.test.len()), (60_000, 10_000));
    assert_eq!(data.train.class_counts(10), [6000; 10]);
    assert_eq!(data.test.class_counts(10), [1000; 10]);
    // Compare with the source pixels read independently.
    let mut raw = Vec::new();
    let file = fs::File::open(dir.join("t10k-images-idx3-ubyte.gz")).unwrap();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(file), &mut raw).unwrap();
    for i in [0, 1234, 9_999] {
        check_padded(data.test.image(i), &raw[16 + i * 784..16 + (i + 1) * 784]);
    }
    let n = data.normalization;
    // Fashion-MNIST's mean over 28x28 pixels is about 0.286; 2/7 of the padded image is 0.
    assert!((n.mean[0] - 0.286 * 784.0 / 1024.0).abs() < 0.01, "{n:?}");
    assert!(data.info().contains("60000 train, 10000 test"));
}

/// The one-line error of loading the small set after `damage` changed it.
fn error_after(damage: impl FnOnce(&Path)) -> (String, String) {
    let root = tempfile::tempdir().unwrap();
    let dir = write_small(root.path());
    damage(&dir);
    let text = format!("{:#}", load_from(root.path()).unwrap_err());
    assert!(!text.contains('\n'), "{text}");
    (text, dir.display().to_string())
}

#[test]
fn wrong_magic_is_named() {
    let (text, dir) = error_after(|dir| {
        let labels = idx(0x801, &[5], &[0; 5]);
        fs::write(dir.join("train-images-idx3-ubyte.gz"), gzip(&labels)).unwrap();
    });
    assert_eq!(
        text,
        format!("{dir}/train-images-idx3-ubyte.gz: IDX magic 0x00000801, expected 0x00000803")
    );
}

#[test]
fn truncated_gzip_is_named() {
    let (text, dir) = error_after(|dir| {
        let path = dir.join("t10k-images-idx3-ubyte.gz");
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..bytes.len() - 20]).unwrap();
    });
    assert!(
        text.starts_with(&format!(
            "{dir}/t10k-images-idx3-ubyte.gz: not a complete gzip file: "
        )),
        "{text}"
    );
}

#[test]
fn short_data_is_named() {
    let (text, dir) = error_after(|dir| {
        let images = idx(0x803, &[5, 28, 28], &small_pixels(4));
        fs::write(dir.join("train-images-idx3-ubyte.gz"), gzip(&images)).unwrap();
    });
    assert_eq!(
        text,
        format!(
            "{dir}/train-images-idx3-ubyte.gz: truncated: 3136 data bytes do not fill dimensions [5, 28, 28]"
        )
    );
}

#[test]
fn label_problems_are_named() {
    let (text, dir) = error_after(|dir| {
        fs::write(
            dir.join("t10k-labels-idx1-ubyte.gz"),
            gzip(&idx(0x801, &[2], &[1, 2])),
        )
        .unwrap();
    });
    assert_eq!(
        text,
        format!(
            "{dir}/t10k-labels-idx1-ubyte.gz: 2 labels for 3 images in {dir}/t10k-images-idx3-ubyte.gz"
        )
    );
    let (text, dir) = error_after(|dir| {
        fs::write(
            dir.join("train-labels-idx1-ubyte.gz"),
            gzip(&idx(0x801, &[5], &[1, 2, 10, 3, 4])),
        )
        .unwrap();
    });
    assert_eq!(
        text,
        format!(
            "{dir}/train-labels-idx1-ubyte.gz: item 2: label 10 is out of range (a class below 10)"
        )
    );
}

#[test]
fn missing_file_is_named() {
    let (text, dir) =
        error_after(|dir| fs::remove_file(dir.join("train-labels-idx1-ubyte.gz")).unwrap());
    assert!(
        text.starts_with(&format!("{dir}/train-labels-idx1-ubyte.gz: cannot open: ")),
        "{text}"
    );
}
