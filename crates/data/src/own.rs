//! The user's own data sets, brought to the shape of the built-in ones (3x32x32 u8 images,
//! labels below the class count) so every network and analysis takes them unchanged:
//!
//! - an image folder, `folder:PATH`: `PATH/train/<class>/<image>` and `PATH/test/<class>/...`
//!   (PNG or JPEG). Classes are the training folder's subfolders in name order, as
//!   torchvision's `ImageFolder` numbers them; images are read in name order;
//! - NumPy arrays, `npy:PATH`: `PATH/train_images.npy`, `train_labels.npy`, `test_images.npy`
//!   and `test_labels.npy`. Images are `uint8`, shaped `(N, H, W)`, `(N, H, W, C)` or
//!   `(N, C, H, W)` with C = 1 or 3; labels are integers from 0, shaped `(N,)`. An optional
//!   `classes.txt` names the classes, one a line.
//!
//! An image of another size is scaled so its shorter side is 32 pixels and cropped to the
//! centre 32x32 (torchvision's `Resize(32)` then `CenterCrop(32)`); a grey one is repeated as
//! R, G and B. Inputs are normalized with the training split's own statistics.

use crate::dataset::Dataset;
use crate::image_set::{IMAGE_BYTES, IMAGE_SIDE, ImageSet};
use crate::name::DatasetName;
use crate::normalization::Normalization;
use anyhow::{Context, Result, bail, ensure};
use image::imageops::FilterType;
use image::{DynamicImage, GrayImage, RgbImage};
use npyz::{DType, NpyFile, Order, TypeChar};
use rayon::prelude::*;
use std::fs::{self, File};
use std::io::BufReader;
use std::path::{Path, PathBuf};

/// The image files an image folder may hold, by extension (compared in lower case).
const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// Loads the user's data set `name` (a [`DatasetName::Folder`] or [`DatasetName::Npy`]).
pub(crate) fn load(name: &DatasetName) -> Result<Dataset> {
    let (train, test, class_names, root) = match name {
        DatasetName::Folder(root) => {
            let (train, class_names) = read_folder_split(&root.join("train"), None)?;
            let (test, _) = read_folder_split(&root.join("test"), Some(&class_names))?;
            (train, test, class_names, root)
        }
        DatasetName::Npy(root) => {
            let train = read_npy_split(root, "train")?;
            let test = read_npy_split(root, "test")?;
            let classes = train
                .labels
                .iter()
                .chain(&test.labels)
                .max()
                .map_or(0, |&l| l as usize + 1);
            let class_names = npy_class_names(root, classes)?;
            (train, test, class_names, root)
        }
        other => bail!("`{other}` is not one's own data set"),
    };
    ensure!(
        class_names.len() >= 2,
        "{}: {} class(es); a classifier needs at least 2",
        root.display(),
        class_names.len()
    );
    let normalization =
        Normalization::of(&train).with_context(|| format!("{}: training split", root.display()))?;
    Ok(Dataset::new(
        name.clone(),
        root.display().to_string(),
        class_names,
        train,
        test,
        normalization,
    ))
}

/// The images of one split of an image folder, labelled by their subfolder: the classes are
/// the subfolders themselves (training split, `classes` is `None`) or must be among `classes`.
fn read_folder_split(dir: &Path, classes: Option<&[String]>) -> Result<(ImageSet, Vec<String>)> {
    let subfolders = sorted_entries(dir)?
        .into_iter()
        .filter(|path| path.is_dir())
        .collect::<Vec<_>>();
    ensure!(
        !subfolders.is_empty(),
        "{}: has no class folders (expected {}/<class>/<image>)",
        dir.display(),
        dir.display()
    );
    let names: Vec<String> = subfolders
        .iter()
        .map(|p| {
            p.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let mut files = Vec::new();
    for (index, (folder, name)) in subfolders.iter().zip(&names).enumerate() {
        let label = match classes {
            None => index,
            Some(known) => known.iter().position(|k| k == name).with_context(|| {
                format!(
                    "{}: class '{name}' is not one of the training classes ({})",
                    folder.display(),
                    known.join(", ")
                )
            })?,
        };
        for file in sorted_entries(folder)? {
            let extension = file.extension().map(|e| e.to_string_lossy().to_lowercase());
            if extension.is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str())) {
                files.push((file, label));
            }
        }
    }
    ensure!(
        !files.is_empty(),
        "{}: has no images ({} files in its class folders)",
        dir.display(),
        IMAGE_EXTENSIONS.join(", ")
    );
    let images = files
        .par_iter()
        .map(|(file, _)| {
            let image = image::open(file)
                .with_context(|| format!("{}: not a readable image", file.display()))?;
            Ok(to_chw(image))
        })
        .collect::<Result<Vec<_>>>()?;
    let set = ImageSet {
        images: images.concat(),
        labels: files.iter().map(|&(_, label)| label as u16).collect(),
    };
    Ok((set, classes.map_or(names, <[String]>::to_vec)))
}

/// The entries of `dir`, sorted by name (hidden ones left out).
fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries = fs::read_dir(dir)
        .with_context(|| format!("{}: cannot read the folder", dir.display()))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()
        .with_context(|| format!("{}: cannot read the folder", dir.display()))?;
    entries.retain(|p| {
        !p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
    });
    entries.sort();
    Ok(entries)
}

/// One split of NumPy arrays: `<split>_images.npy` and `<split>_labels.npy` under `root`.
fn read_npy_split(root: &Path, split: &str) -> Result<ImageSet> {
    let images_path = root.join(format!("{split}_images.npy"));
    let labels_path = root.join(format!("{split}_labels.npy"));
    let images = read_npy_images(&images_path)?;
    let labels = read_npy_labels(&labels_path)?;
    ensure!(
        images.len() == labels.len(),
        "{}: {} labels for the {} images of {}",
        labels_path.display(),
        labels.len(),
        images.len(),
        images_path.display()
    );
    Ok(ImageSet {
        images: images.concat(),
        labels,
    })
}

/// Opens the `.npy` file at `path`.
fn open_npy(path: &Path) -> Result<NpyFile<BufReader<File>>> {
    let file = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    NpyFile::new(BufReader::new(file))
        .with_context(|| format!("{}: not a NumPy .npy file", path.display()))
}

/// The images of a `uint8` array of shape `(N, H, W)`, `(N, H, W, C)` or `(N, C, H, W)`
/// (C = 1 or 3), each brought to 3x32x32.
fn read_npy_images(path: &Path) -> Result<Vec<Vec<u8>>> {
    let npy = open_npy(path)?;
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let dtype = dtype_name(&npy.dtype());
    let (n, height, width, channels, channels_last) = match shape[..] {
        [n, h, w] => (n, h, w, 1, true),
        [n, h, w, c] if c == 1 || c == 3 => (n, h, w, c, true),
        [n, c, h, w] if c == 1 || c == 3 => (n, h, w, c, false),
        _ => bail!(
            "{}: images of shape {shape:?}; expected (N, H, W), (N, H, W, C) or (N, C, H, W) with C = 1 or 3",
            path.display()
        ),
    };
    ensure!(
        n > 0 && height > 0 && width > 0,
        "{}: no images (shape {shape:?})",
        path.display()
    );
    ensure!(
        matches!(npy.dtype(), DType::Plain(t) if t.type_char() == TypeChar::Uint && t.size_field() == 1),
        "{}: images of dtype {dtype}; landscape reads uint8 pixels (save them with `images.astype(np.uint8)`, after scaling to 0-255)",
        path.display()
    );
    ensure!(
        npy.order() == Order::C,
        "{}: images stored in Fortran order; save them with `np.save(path, np.ascontiguousarray(images))`",
        path.display()
    );
    let pixels: Vec<u8> = npy
        .into_vec()
        .with_context(|| format!("{}: cannot read the images", path.display()))?;
    let per_image = height * width * channels;
    Ok(pixels
        .par_chunks(per_image)
        .map(|pixels| {
            let interleaved = if channels_last {
                pixels.to_vec()
            } else {
                (0..height * width)
                    .flat_map(|i| (0..channels).map(move |c| pixels[c * height * width + i]))
                    .collect()
            };
            let image = if channels == 1 {
                DynamicImage::ImageLuma8(
                    GrayImage::from_raw(width as u32, height as u32, interleaved)
                        .expect("one image's pixels"),
                )
            } else {
                DynamicImage::ImageRgb8(
                    RgbImage::from_raw(width as u32, height as u32, interleaved)
                        .expect("one image's pixels"),
                )
            };
            to_chw(image)
        })
        .collect())
}

/// The labels of an integer array of shape `(N,)`, each non-negative and below 65536.
fn read_npy_labels(path: &Path) -> Result<Vec<u16>> {
    let npy = open_npy(path)?;
    let shape = npy.shape().to_vec();
    ensure!(
        shape.len() == 1,
        "{}: labels of shape {shape:?}; expected (N,)",
        path.display()
    );
    let dtype = npy.dtype();
    let integer = match &dtype {
        DType::Plain(t) => {
            matches!(t.type_char(), TypeChar::Int | TypeChar::Uint) && t.size_field() <= 8
        }
        _ => false,
    };
    ensure!(
        integer,
        "{}: labels of dtype {}; expected integers (save them with `labels.astype(np.int64)`)",
        path.display(),
        dtype_name(&dtype)
    );
    let DType::Plain(type_str) = &dtype else {
        unreachable!("checked above")
    };
    match (type_str.type_char(), type_str.size_field()) {
        (TypeChar::Int, 1) => labels_as::<i8>(npy, path),
        (TypeChar::Int, 2) => labels_as::<i16>(npy, path),
        (TypeChar::Int, 4) => labels_as::<i32>(npy, path),
        (TypeChar::Int, 8) => labels_as::<i64>(npy, path),
        (TypeChar::Uint, 1) => labels_as::<u8>(npy, path),
        (TypeChar::Uint, 2) => labels_as::<u16>(npy, path),
        (TypeChar::Uint, 4) => labels_as::<u32>(npy, path),
        _ => labels_as::<u64>(npy, path),
    }
}

/// The labels of `npy`, read as `T` (its dtype), each a class number below 65536.
fn labels_as<T>(npy: NpyFile<BufReader<File>>, path: &Path) -> Result<Vec<u16>>
where
    T: npyz::Deserialize + Copy + std::fmt::Display,
    u16: TryFrom<T>,
{
    let values: Vec<T> = npy
        .into_vec()
        .with_context(|| format!("{}: cannot read the labels", path.display()))?;
    values
        .iter()
        .enumerate()
        .map(|(i, &label)| {
            u16::try_from(label).map_err(|_| {
                anyhow::anyhow!(
                    "{}: label {i} is {label}; labels are class numbers from 0",
                    path.display()
                )
            })
        })
        .collect()
}

/// A dtype as NumPy writes it: `<f4`, `|u1`, ...
fn dtype_name(dtype: &DType) -> String {
    match dtype {
        DType::Plain(type_str) => type_str.to_string(),
        other => other.descr(),
    }
}

/// The class names of a NumPy data set: `classes.txt` under `root` (one a line, at least
/// `classes` of them) if it is there, else the numbers `0` to `classes - 1`.
fn npy_class_names(root: &Path, classes: usize) -> Result<Vec<String>> {
    let path = root.join("classes.txt");
    if !path.exists() {
        return Ok((0..classes).map(|c| c.to_string()).collect());
    }
    let names = crate::dataset::read_class_names(&path)?;
    ensure!(
        names.len() >= classes,
        "{}: {} class names, but the labels go up to {}",
        path.display(),
        names.len(),
        classes.saturating_sub(1)
    );
    Ok(names)
}

/// An image as 3x32x32 CHW bytes: its shorter side scaled to 32 and the centre cropped
/// (unless it is 32x32 already), grey repeated as R, G and B, alpha dropped.
fn to_chw(image: DynamicImage) -> Vec<u8> {
    let side = IMAGE_SIDE as u32;
    let image = if image.width() == side && image.height() == side {
        image
    } else {
        image.resize_to_fill(side, side, FilterType::Triangle)
    };
    let rgb = image.to_rgb8();
    let plane = IMAGE_SIDE * IMAGE_SIDE;
    let mut chw = vec![0u8; IMAGE_BYTES];
    for (i, pixel) in rgb.pixels().enumerate() {
        for c in 0..3 {
            chw[c * plane + i] = pixel[c];
        }
    }
    chw
}
