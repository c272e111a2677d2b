//! One's own data sets: an image folder and NumPy arrays, brought to the built-in sets' shape,
//! fingerprinted by content, and refused in one line naming the file when malformed.

use image::{GrayImage, Luma, Rgb, RgbImage};
use landscape_data::{DataLocations, Dataset, DatasetName, IMAGE_BYTES, SyntheticConfig, load};
use npyz::WriterBuilder;
use std::path::Path;

fn read(name: &DatasetName) -> anyhow::Result<Dataset> {
    load(
        name,
        &DataLocations::from_env("unused"),
        &SyntheticConfig::default(),
    )
}

/// A 32x32 image whose pixel (x, y) is (x, y, seed): every byte tells where it must land.
fn gradient(seed: u8) -> RgbImage {
    RgbImage::from_fn(32, 32, |x, y| Rgb([x as u8, y as u8, seed]))
}

/// The CHW bytes `gradient(seed)` must become.
fn gradient_chw(seed: u8) -> Vec<u8> {
    let plane = |f: &dyn Fn(usize, usize) -> u8| -> Vec<u8> {
        (0..32)
            .flat_map(|y| (0..32).map(move |x| (x, y)))
            .map(|(x, y)| f(x, y))
            .collect()
    };
    [
        plane(&|x, _| x as u8),
        plane(&|_, y| y as u8),
        plane(&|_, _| seed),
    ]
    .concat()
}

/// `root/train/{cat,dog}` and `root/test/{cat,dog}`: gradients, a grey image and a JPEG of
/// another size.
fn image_folder(root: &Path) {
    for dir in ["train/cat", "train/dog", "test/cat", "test/dog"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    gradient(1).save(root.join("train/cat/a.png")).unwrap();
    gradient(2).save(root.join("train/cat/b.PNG")).unwrap();
    GrayImage::from_pixel(32, 32, Luma([77]))
        .save(root.join("train/dog/grey.png"))
        .unwrap();
    RgbImage::from_pixel(64, 48, Rgb([200, 100, 50]))
        .save(root.join("train/dog/wide.jpg"))
        .unwrap();
    std::fs::write(root.join("train/dog/notes.txt"), "not an image").unwrap();
    gradient(3).save(root.join("test/cat/c.png")).unwrap();
    gradient(4).save(root.join("test/dog/d.png")).unwrap();
}

#[test]
fn an_image_folder_becomes_labelled_chw_images() {
    let dir = tempfile::tempdir().unwrap();
    image_folder(dir.path());
    let data = read(&DatasetName::Folder(dir.path().into())).unwrap();
    assert_eq!(data.class_names, ["cat", "dog"]);
    assert_eq!(
        data.train.labels,
        [0, 0, 1, 1],
        "class folders in name order"
    );
    assert_eq!(data.test.labels, [0, 1]);
    assert_eq!(
        data.train.image(0),
        gradient_chw(1),
        "pixels land in CHW order"
    );
    assert_eq!(
        data.train.image(1),
        gradient_chw(2),
        "extensions in any case"
    );
    assert!(
        data.train.image(2).iter().all(|&p| p == 77),
        "grey repeated as RGB"
    );
    let wide = data.train.image(3);
    assert_eq!(wide.len(), IMAGE_BYTES);
    for (channel, value) in [200i32, 100, 50].into_iter().enumerate() {
        let plane = &wide[channel * 1024..(channel + 1) * 1024];
        assert!(
            plane.iter().all(|&p| (p as i32 - value).abs() <= 3),
            "a 64x48 JPEG scaled and cropped to 32x32 keeps its colour"
        );
    }
    assert_eq!(data.test.image(1), gradient_chw(4));
    assert!(data.info().contains("4 train, 2 test"), "{}", data.info());
}

#[test]
fn the_fingerprint_follows_the_content_not_the_path() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    image_folder(a.path());
    image_folder(b.path());
    let first = read(&DatasetName::Folder(a.path().into())).unwrap();
    let moved = read(&DatasetName::Folder(b.path().into())).unwrap();
    assert_eq!(first.fingerprint, moved.fingerprint);
    gradient(9).save(b.path().join("test/dog/d.png")).unwrap();
    let changed = read(&DatasetName::Folder(b.path().into())).unwrap();
    assert_ne!(first.fingerprint, changed.fingerprint);
}

#[test]
fn a_malformed_image_folder_is_one_line_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let name = DatasetName::Folder(dir.path().into());
    let message = |name: &DatasetName| format!("{:#}", read(name).unwrap_err());

    let e = message(&name);
    assert!(
        e.contains("train") && e.contains("cannot read the folder"),
        "{e}"
    );

    image_folder(dir.path());
    std::fs::create_dir_all(dir.path().join("test/bird")).unwrap();
    let e = message(&name);
    assert!(
        e.contains("test/bird")
            && e.contains("'bird' is not one of the training classes (cat, dog)"),
        "{e}"
    );
    std::fs::remove_dir(dir.path().join("test/bird")).unwrap();

    std::fs::write(dir.path().join("train/cat/broken.png"), b"not a png").unwrap();
    let e = message(&name);
    assert!(e.contains("broken.png: not a readable image"), "{e}");
    assert!(!e.contains('\n'), "one line: {e}");
}

/// Writes `data` as a `.npy` array of `shape` at `path` (C order, as NumPy saves by default).
fn write_npy<T: npyz::AutoSerialize>(
    path: &Path,
    shape: &[u64],
    data: impl IntoIterator<Item = T>,
) {
    write_npy_in(npyz::Order::C, path, shape, data)
}

/// Writes `data` as a `.npy` array of `shape` at `path`, its header saying `order`.
fn write_npy_in<T: npyz::AutoSerialize>(
    order: npyz::Order,
    path: &Path,
    shape: &[u64],
    data: impl IntoIterator<Item = T>,
) {
    let file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut writer = npyz::WriteOptions::new()
        .default_dtype()
        .shape(shape)
        .order(order)
        .writer(file)
        .begin_nd()
        .unwrap();
    writer.extend(data).unwrap();
    writer.finish().unwrap();
}

/// The gradient images `seeds` as one NHWC byte array.
fn nhwc(seeds: &[u8]) -> Vec<u8> {
    seeds.iter().flat_map(|&s| gradient(s).into_raw()).collect()
}

/// The same images as NCHW.
fn nchw(seeds: &[u8]) -> Vec<u8> {
    seeds.iter().flat_map(|&s| gradient_chw(s)).collect()
}

#[test]
fn numpy_arrays_in_either_layout_give_the_same_images() {
    let (hwc, chw) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_npy(
        &hwc.path().join("train_images.npy"),
        &[3, 32, 32, 3],
        nhwc(&[1, 2, 3]),
    );
    write_npy(&hwc.path().join("train_labels.npy"), &[3], [0i64, 2, 1]);
    write_npy(
        &hwc.path().join("test_images.npy"),
        &[1, 32, 32, 3],
        nhwc(&[4]),
    );
    write_npy(&hwc.path().join("test_labels.npy"), &[1], [2i64]);
    write_npy(
        &chw.path().join("train_images.npy"),
        &[3, 3, 32, 32],
        nchw(&[1, 2, 3]),
    );
    write_npy(&chw.path().join("train_labels.npy"), &[3], [0u8, 2, 1]);
    write_npy(
        &chw.path().join("test_images.npy"),
        &[1, 3, 32, 32],
        nchw(&[4]),
    );
    write_npy(&chw.path().join("test_labels.npy"), &[1], [2i32]);
    std::fs::write(chw.path().join("classes.txt"), "ant\nbee\ncow\n").unwrap();

    let a = read(&DatasetName::Npy(hwc.path().into())).unwrap();
    let b = read(&DatasetName::Npy(chw.path().into())).unwrap();
    assert_eq!(a.train.images, nchw(&[1, 2, 3]));
    assert_eq!((a.train.clone(), a.test.clone()), (b.train, b.test));
    assert_eq!(a.train.labels, [0, 2, 1]);
    assert_eq!(a.class_names, ["0", "1", "2"]);
    assert_eq!(b.class_names, ["ant", "bee", "cow"]);
    assert_eq!(
        a.fingerprint, b.fingerprint,
        "same content, same fingerprint"
    );
}

#[test]
fn grey_numpy_images_of_another_size_are_scaled_to_32() {
    let dir = tempfile::tempdir().unwrap();
    let pixels = [vec![9u8; 28 * 28], vec![200u8; 28 * 28]].concat();
    write_npy(&dir.path().join("train_images.npy"), &[2, 28, 28], pixels);
    write_npy(&dir.path().join("train_labels.npy"), &[2], [0i64, 1]);
    let test = vec![50u8; 28 * 28];
    write_npy(&dir.path().join("test_images.npy"), &[1, 28, 28, 1], test);
    write_npy(&dir.path().join("test_labels.npy"), &[1], [1i64]);
    let data = read(&DatasetName::Npy(dir.path().into())).unwrap();
    assert_eq!(data.train.len(), 2);
    assert!(data.train.image(0).iter().all(|&p| p == 9));
    assert!(data.train.image(1).iter().all(|&p| p == 200));
    assert!(data.test.image(0).iter().all(|&p| p == 50));
}

#[test]
fn malformed_numpy_arrays_are_one_line_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let name = DatasetName::Npy(dir.path().into());
    let message = || format!("{:#}", read(&name).unwrap_err());
    write_npy(
        &dir.path().join("train_images.npy"),
        &[2, 32, 32, 3],
        vec![0.5f32; 2 * 3072],
    );
    write_npy(&dir.path().join("train_labels.npy"), &[2], [0i64, 1]);
    write_npy(
        &dir.path().join("test_images.npy"),
        &[1, 32, 32, 3],
        nhwc(&[1]),
    );
    write_npy(&dir.path().join("test_labels.npy"), &[1], [1i64]);
    let e = message();
    assert!(
        e.contains("train_images.npy: images of dtype <f4") && e.contains("astype(np.uint8)"),
        "{e}"
    );
    write_npy(
        &dir.path().join("train_images.npy"),
        &[2, 5, 32, 32],
        vec![0u8; 2 * 5 * 1024],
    );
    let e = message();
    assert!(
        e.contains("train_images.npy: images of shape [2, 5, 32, 32]"),
        "{e}"
    );
    write_npy_in(
        npyz::Order::Fortran,
        &dir.path().join("train_images.npy"),
        &[2, 32, 32, 3],
        nhwc(&[1, 2]),
    );
    let e = message();
    assert!(
        e.contains("train_images.npy: images stored in Fortran order"),
        "{e}"
    );
    write_npy(
        &dir.path().join("train_images.npy"),
        &[2, 32, 32, 3],
        nhwc(&[1, 2]),
    );
    write_npy(&dir.path().join("train_labels.npy"), &[3], [0i64, 1, 1]);
    let e = message();
    assert!(
        e.contains("train_labels.npy: 3 labels for the 2 images"),
        "{e}"
    );
    write_npy(&dir.path().join("train_labels.npy"), &[2], [0i64, -1]);
    let e = message();
    assert!(e.contains("train_labels.npy: label 1 is -1"), "{e}");
    write_npy(&dir.path().join("train_labels.npy"), &[2], [0.0f64, 1.0]);
    let e = message();
    assert!(e.contains("train_labels.npy: labels of dtype <f8"), "{e}");
    std::fs::write(dir.path().join("train_labels.npy"), b"garbage").unwrap();
    let e = message();
    assert!(e.contains("train_labels.npy: not a NumPy .npy file"), "{e}");
    assert!(!e.contains('\n'), "one line: {e}");
}
