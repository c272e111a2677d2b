//! The data stage of landscape: data sets loaded, verified and brought to one shape, and the
//! normalized f32 batches training and evaluation feed to a network (on the host; turning
//! them into device tensors is the training stage's job).
//!
//! Every data set becomes a [`Dataset`] of 3x32x32 u8 images (CHW) in two [`ImageSet`]s:
//!
//! - `cifar10`, `cifar100`: the official binary versions, looked for under the system dirs
//!   and the cache (`datasets/` or `$LANDSCAPE_DATA`), else downloaded from the official
//!   address, md5-verified and extracted into the cache whole (never half a data set);
//! - `fashion-mnist`: the gzipped IDX files, from `/usr/share/datasets/fashion-mnist`
//!   (Debian's dataset-fashion-mnist), the cache or a download. Each 28x28 grey image is
//!   zero-padded by 2 pixels on every side to 32x32 (its background is 0) and its grey
//!   channel repeated as R, G and B, so every model takes every data set unchanged;
//! - `synthetic`: 10 classes of CIFAR-style images generated from a seed, learnable but not
//!   trivially separable, for runs without files or network;
//! - one's own data: an image folder (`folder:PATH`) or NumPy arrays (`npy:PATH`), scaled and
//!   cropped to 32x32 where needed, with the training split's statistics as normalization.
//!
//! Inputs are normalized per channel with [`Normalization`]: the paper's constants for
//! CIFAR-10, the training set's own statistics otherwise. [`fill_batch`] builds a batch, with
//! the standard random crop and flip ([`Augmentation`]) for training, and [`epoch_order`]
//! shuffles each epoch; both are seeded so a resumed run repeats them exactly.
//!
//! ```
//! use landscape_data::{Augmentation, DataLocations, DatasetName, SyntheticConfig};
//! use landscape_data::{epoch_order, fill_batch, load};
//!
//! let locations = DataLocations::from_env("datasets");
//! let config = SyntheticConfig { seed: 0, train: 500, test: 100 };
//! let data = load(&DatasetName::Synthetic, &locations, &config)?;
//! assert_eq!(data.train.len(), 500);
//!
//! let order = epoch_order(data.train.len(), 7, 0);
//! let augment = Augmentation::standard(7, 0);
//! let mut batch = Vec::new();
//! fill_batch(&data.train, &order[..64], &data.normalization, Some(&augment), &mut batch);
//! assert_eq!(batch.len(), 64 * 3 * 32 * 32);
//! # Ok::<(), anyhow::Error>(())
//! ```

mod batch;
mod cifar;
mod dataset;
mod download;
mod fashion_mnist;
mod image_set;
mod install;
mod locations;
mod name;
mod normalization;
mod own;
mod rng;
mod synthetic;

pub use batch::{Augmentation, Placement, epoch_order, fill_batch};
pub use dataset::Dataset;
pub use image_set::{CHANNELS, IMAGE_BYTES, IMAGE_SIDE, ImageSet};
pub use install::Missing;
pub use locations::{DataLocations, Mirrors, Source, default_cache};
pub use name::DatasetName;
pub use normalization::Normalization;
pub use synthetic::SyntheticConfig;

/// Loads the data set `name`: found in `locations` or downloaded into its cache (CIFAR,
/// Fashion-MNIST), generated as `synthetic` says (which the other data sets ignore), or read
/// from the user's own folder or NumPy arrays.
///
/// Any missing, damaged or unexpected file is an error naming the file and the problem; a data
/// set found nowhere (and not downloaded) has [`Missing`] in its error's chain.
pub fn load(
    name: &DatasetName,
    locations: &DataLocations,
    synthetic: &SyntheticConfig,
) -> anyhow::Result<Dataset> {
    match name {
        DatasetName::Cifar10 => cifar::load(&cifar::CIFAR10, locations, &locations.mirrors.cifar10),
        DatasetName::Cifar100 => {
            cifar::load(&cifar::CIFAR100, locations, &locations.mirrors.cifar100)
        }
        DatasetName::FashionMnist => fashion_mnist::load(locations),
        DatasetName::Synthetic => synthetic::generate(synthetic),
        DatasetName::Folder(_) | DatasetName::Npy(_) => own::load(name),
    }
}
