//! A split of a data set (train or test) in the one shape every data set is brought to:
//! 3x32x32 u8 images, channel-major, with a class label each.

use crate::rng::{Purpose, permutation, stream};

/// Height and width of every image.
pub const IMAGE_SIDE: usize = 32;
/// Colour channels of every image (R, G, B).
pub const CHANNELS: usize = 3;
/// Bytes (and f32 values in a batch) per image: 3 x 32 x 32.
pub const IMAGE_BYTES: usize = CHANNELS * IMAGE_SIDE * IMAGE_SIDE;

/// N labelled images of 3x32x32 u8, stored CHW and back to back.
///
/// Invariants (kept by every loader): `images.len() == labels.len() * IMAGE_BYTES`, and every
/// label is below the data set's class count.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageSet {
    /// All pixels: image `i` is `images[i * 3072..(i + 1) * 3072]`, its R plane, then G, then
    /// B, each row-major.
    pub images: Vec<u8>,
    /// The class of each image.
    pub labels: Vec<u16>,
}

impl ImageSet {
    /// The number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The 3072 CHW bytes of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        &self.images[i * IMAGE_BYTES..(i + 1) * IMAGE_BYTES]
    }

    /// How many images each of the `classes` classes has (every label must be below
    /// `classes`, as loaders guarantee).
    pub fn class_counts(&self, classes: usize) -> Vec<usize> {
        let mut counts = vec![0; classes];
        for &label in &self.labels {
            counts[label as usize] += 1;
        }
        counts
    }

    /// A deterministic random subset of `n` images, for quick runs on part of a data set.
    ///
    /// The chosen images are the first `n` of a permutation seeded by `seed`, kept in their
    /// original relative order. The same `(n, seed)` always picks the same images, and a larger
    /// `n` with the same seed picks a superset. `n >= len()` returns every image in the
    /// original order.
    pub fn subset(&self, n: usize, seed: u64) -> ImageSet {
        if n >= self.len() {
            return self.clone();
        }
        let mut chosen = permutation(self.len(), &mut stream(Purpose::Subset, seed, 0, 0));
        chosen.truncate(n);
        chosen.sort_unstable();
        let mut images = Vec::with_capacity(n * IMAGE_BYTES);
        for &i in &chosen {
            images.extend_from_slice(self.image(i));
        }
        ImageSet {
            images,
            labels: chosen.iter().map(|&i| self.labels[i]).collect(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `n` images whose every byte encodes the image index, labelled `i % classes`.
    pub(crate) fn numbered(n: usize, classes: usize) -> ImageSet {
        let images = (0..n)
            .flat_map(|i| [(i % 251) as u8; IMAGE_BYTES])
            .collect();
        ImageSet {
            images,
            labels: (0..n).map(|i| (i % classes) as u16).collect(),
        }
    }

    #[test]
    fn image_slices_and_class_counts() {
        let set = numbered(25, 10);
        assert_eq!(set.len(), 25);
        assert!(set.image(7).iter().all(|&b| b == 7));
        assert_eq!(set.class_counts(10), [3, 3, 3, 3, 3, 2, 2, 2, 2, 2]);
    }

    #[test]
    fn subset_is_deterministic_nested_and_distinct() {
        let set = numbered(200, 10);
        let a = set.subset(50, 3);
        assert_eq!(a, set.subset(50, 3));
        assert_ne!(a, set.subset(50, 4));
        assert_eq!(a.len(), 50);
        let picked: Vec<u8> = (0..a.len()).map(|i| a.image(i)[0]).collect();
        assert!(
            picked.windows(2).all(|w| w[0] < w[1]),
            "distinct, original order: {picked:?}"
        );
        for (i, &p) in picked.iter().enumerate() {
            assert_eq!(
                a.labels[i],
                p as u16 % 10,
                "labels travel with their images"
            );
        }
        let larger: Vec<u8> = {
            let b = set.subset(80, 3);
            (0..b.len()).map(|i| b.image(i)[0]).collect()
        };
        assert!(
            picked.iter().all(|p| larger.contains(p)),
            "a larger subset is a superset"
        );
        assert_eq!(set.subset(200, 3), set);
        assert_eq!(set.subset(1000, 3), set);
    }
}
