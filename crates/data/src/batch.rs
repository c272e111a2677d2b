//! Batches for training and evaluation: normalized f32 NCHW values on the host, with the
//! standard CIFAR augmentation (random crop from the zero-padded image, random horizontal
//! flip), and the seeded shuffle of each epoch.

use crate::image_set::{IMAGE_BYTES, IMAGE_SIDE, ImageSet};
use crate::normalization::{Lookup, Normalization};
use crate::rng::{Purpose, permutation, stream};
use rand::RngExt;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

const PLANE: usize = IMAGE_SIDE * IMAGE_SIDE;

/// Random crop and horizontal flip for training, like torchvision's `RandomCrop(32,
/// padding)` then `RandomHorizontalFlip()` before `Normalize`: the crop window may reach into
/// a border of raw 0 pixels, which normalize to `(0 - mean) / std`.
///
/// The choices for a sample depend only on `(seed, epoch, sample index in the data set)`, so
/// they do not change with batch composition or thread count, and a resumed run repeats them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Augmentation {
    /// Zero pixels added on each side before cropping (4 for CIFAR).
    pub padding: usize,
    /// Whether to mirror half of the samples.
    pub flip: bool,
    /// The run's seed.
    pub seed: u64,
    /// The epoch, so each epoch sees different crops.
    pub epoch: u64,
}

impl Augmentation {
    /// The standard CIFAR augmentation: padding 4 and random flips.
    pub fn standard(seed: u64, epoch: u64) -> Augmentation {
        Augmentation {
            padding: 4,
            flip: true,
            seed,
            epoch,
        }
    }

    /// The crop and flip this augmentation applies to the sample with data set index `index`.
    pub fn placement(&self, index: usize) -> Placement {
        let mut rng = stream(Purpose::Augmentation, self.seed, self.epoch, index as u64);
        let p = self.padding as i32;
        Placement {
            dx: rng.random_range(-p..=p),
            dy: rng.random_range(-p..=p),
            flip: self.flip && rng.random_bool(0.5),
        }
    }
}

/// Where one sample's 32x32 crop window lies, relative to the unshifted image, and whether
/// the crop is then mirrored left to right. The default is the image as it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Placement {
    /// Columns the window is moved right: output column `x` shows source column `x + dx`.
    pub dx: i32,
    /// Rows the window is moved down: output row `y` shows source row `y + dy`.
    pub dy: i32,
    /// Whether the cropped window is mirrored left to right.
    pub flip: bool,
}

/// Fills `out` with the images `indices` of `set`, normalized, as f32 NCHW
/// (`indices.len() x 3 x 32 x 32`), augmented when `augment` is given.
///
/// `out` is reused between calls to avoid an allocation per step; its previous content is
/// replaced. Images are processed in parallel.
///
/// # Panics
///
/// If an index is not below `set.len()` (a bug in the caller, not bad data).
pub fn fill_batch(
    set: &ImageSet,
    indices: &[usize],
    norm: &Normalization,
    augment: Option<&Augmentation>,
    out: &mut Vec<f32>,
) {
    if let Some(&bad) = indices.iter().find(|&&i| i >= set.len()) {
        panic!(
            "fill_batch: index {bad} out of range for a set of {} images",
            set.len()
        );
    }
    let table = norm.lookup();
    out.clear();
    out.resize(indices.len() * IMAGE_BYTES, 0.0);
    out.par_chunks_mut(IMAGE_BYTES)
        .zip(indices)
        .for_each(|(dst, &i)| {
            let placement = augment.map_or(Placement::default(), |a| a.placement(i));
            render(set.image(i), placement, &table, dst);
        });
}

/// Writes the normalized view of one CHW image through `placement` into `dst`; pixels the
/// window takes from outside the image are raw 0.
fn render(src: &[u8], placement: Placement, table: &Lookup, dst: &mut [f32]) {
    let side = IMAGE_SIDE as i32;
    for (c, (dst_plane, src_plane)) in dst
        .chunks_exact_mut(PLANE)
        .zip(src.chunks_exact(PLANE))
        .enumerate()
    {
        let table = &table[c];
        let zero = table[0];
        for (y, row) in dst_plane.chunks_exact_mut(IMAGE_SIDE).enumerate() {
            let sy = y as i32 + placement.dy;
            if !(0..side).contains(&sy) {
                row.fill(zero);
                continue;
            }
            let src_row = &src_plane[sy as usize * IMAGE_SIDE..][..IMAGE_SIDE];
            for (x, value) in row.iter_mut().enumerate() {
                let x = if placement.flip {
                    IMAGE_SIDE - 1 - x
                } else {
                    x
                };
                let sx = x as i32 + placement.dx;
                *value = if (0..side).contains(&sx) {
                    table[src_row[sx as usize] as usize]
                } else {
                    zero
                };
            }
        }
    }
}

/// The order in which epoch `epoch` visits the `n` training samples: a permutation of `0..n`
/// that depends only on `(n, seed, epoch)`.
pub fn epoch_order(n: usize, seed: u64, epoch: u64) -> Vec<usize> {
    permutation(n, &mut stream(Purpose::EpochOrder, seed, epoch, 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image_set::CHANNELS;

    /// Three images whose pixels all differ: value (i * 7 + c * 50 + y * 3 + x) % 256.
    fn distinct() -> ImageSet {
        let images = (0..3)
            .flat_map(|i| {
                (0..IMAGE_BYTES).map(move |k| {
                    let (c, y, x) = (k / PLANE, (k / IMAGE_SIDE) % IMAGE_SIDE, k % IMAGE_SIDE);
                    ((i * 7 + c * 50 + y * 3 + x) % 256) as u8
                })
            })
            .collect();
        ImageSet {
            images,
            labels: vec![0, 1, 2],
        }
    }

    fn normalize(norm: &Normalization, c: usize, p: u8) -> f32 {
        (p as f32 / 255.0 - norm.mean[c]) / norm.std[c]
    }

    #[test]
    fn plain_batches_are_normalized_nchw_in_index_order() {
        let set = distinct();
        let norm = Normalization::CIFAR10;
        let mut out = vec![99.0; 5];
        fill_batch(&set, &[2, 0], &norm, None, &mut out);
        assert_eq!(out.len(), 2 * IMAGE_BYTES);
        for (slot, image) in [(0, 2), (1, 0)] {
            for k in [0, 1, 33, PLANE + 5, 2 * PLANE + 1023] {
                let expect = normalize(&norm, k / PLANE, set.image(image)[k]);
                assert!((out[slot * IMAGE_BYTES + k] - expect).abs() < 1e-6);
            }
        }
    }

    /// The augmented image built the obvious way: pad with zeros, crop, mirror, normalize.
    fn reference(image: &[u8], padding: usize, p: Placement, norm: &Normalization) -> Vec<f32> {
        let big = IMAGE_SIDE + 2 * padding;
        let mut padded = vec![0u8; CHANNELS * big * big];
        for c in 0..CHANNELS {
            for y in 0..IMAGE_SIDE {
                for x in 0..IMAGE_SIDE {
                    padded[(c * big + y + padding) * big + x + padding] =
                        image[(c * IMAGE_SIDE + y) * IMAGE_SIDE + x];
                }
            }
        }
        let (top, left) = (
            (p.dy + padding as i32) as usize,
            (p.dx + padding as i32) as usize,
        );
        let mut out = vec![0.0; IMAGE_BYTES];
        for c in 0..CHANNELS {
            for y in 0..IMAGE_SIDE {
                for x in 0..IMAGE_SIDE {
                    let cropped_x = if p.flip { IMAGE_SIDE - 1 - x } else { x };
                    let raw = padded[(c * big + top + y) * big + left + cropped_x];
                    out[(c * IMAGE_SIDE + y) * IMAGE_SIDE + x] = normalize(norm, c, raw);
                }
            }
        }
        out
    }

    #[test]
    fn crop_and_flip_match_the_padded_reference() {
        let set = distinct();
        let norm = Normalization::CIFAR10;
        let aug = Augmentation::standard(11, 2);
        let mut out = Vec::new();
        fill_batch(&set, &[0, 1, 2], &norm, Some(&aug), &mut out);
        for i in 0..3 {
            let expect = reference(set.image(i), 4, aug.placement(i), &norm);
            assert_eq!(
                out[i * IMAGE_BYTES..(i + 1) * IMAGE_BYTES],
                expect[..],
                "image {i}"
            );
        }
        // One fixed choice checked by hand: window 3 rows up, 2 columns right, mirrored.
        let mut dst = vec![0.0; IMAGE_BYTES];
        let p = Placement {
            dx: 2,
            dy: -3,
            flip: true,
        };
        render(set.image(0), p, &norm.lookup(), &mut dst);
        let zero: [f32; 3] = std::array::from_fn(|c| -norm.mean[c] / norm.std[c]);
        assert!(
            dst[..3 * IMAGE_SIDE].iter().all(|&v| v == zero[0]),
            "top 3 rows padded"
        );
        // Output (y=5, x=0) mirrors to cropped column 31, source column 33: padding.
        assert_eq!(dst[5 * IMAGE_SIDE], zero[0]);
        // Output (c=1, y=5, x=2) is source (1, 2, 31): value 50 + 6 + 31 = 87.
        assert_eq!(dst[PLANE + 5 * IMAGE_SIDE + 2], normalize(&norm, 1, 87));
        assert_eq!(dst, reference(set.image(0), 4, p, &norm));
    }

    #[test]
    fn padding_is_raw_zero_after_normalization() {
        let set = ImageSet {
            images: vec![255; IMAGE_BYTES],
            labels: vec![0],
        };
        let norm = Normalization::CIFAR10;
        let mut dst = vec![0.0; IMAGE_BYTES];
        render(
            set.image(0),
            Placement {
                dx: -4,
                dy: 0,
                flip: false,
            },
            &norm.lookup(),
            &mut dst,
        );
        for c in 0..CHANNELS {
            let row = &dst[c * PLANE..][..IMAGE_SIDE];
            let zero = (0.0 - norm.mean[c]) / norm.std[c];
            assert!(row[..4].iter().all(|&v| (v - zero).abs() < 1e-6), "{row:?}");
            assert!(
                row[4..]
                    .iter()
                    .all(|&v| (v - normalize(&norm, c, 255)).abs() < 1e-6)
            );
        }
    }

    #[test]
    fn choices_depend_only_on_seed_epoch_and_index() {
        let set = distinct();
        let norm = Normalization::CIFAR10;
        let aug = Augmentation::standard(3, 1);
        let mut together = Vec::new();
        fill_batch(&set, &[0, 1, 2], &norm, Some(&aug), &mut together);
        let mut alone = Vec::new();
        fill_batch(&set, &[2], &norm, Some(&aug), &mut alone);
        assert_eq!(
            together[2 * IMAGE_BYTES..],
            alone[..],
            "batch composition matters"
        );
        let single_thread = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let mut serial = Vec::new();
        single_thread.install(|| fill_batch(&set, &[0, 1, 2], &norm, Some(&aug), &mut serial));
        assert_eq!(together, serial, "thread count matters");

        let placements = |aug: Augmentation| (0..200).map(|i| aug.placement(i)).collect::<Vec<_>>();
        assert_eq!(placements(aug), placements(Augmentation::standard(3, 1)));
        assert_ne!(placements(aug), placements(Augmentation::standard(3, 2)));
        assert_ne!(placements(aug), placements(Augmentation::standard(4, 1)));
    }

    #[test]
    fn crops_cover_the_whole_range_and_half_are_flipped() {
        let aug = Augmentation::standard(0, 0);
        let placements: Vec<_> = (0..2000).map(|i| aug.placement(i)).collect();
        for shift in -4..=4 {
            assert!(
                placements.iter().any(|p| p.dx == shift)
                    && placements.iter().any(|p| p.dy == shift)
            );
        }
        let flips = placements.iter().filter(|p| p.flip).count();
        assert!((900..=1100).contains(&flips), "{flips} flips of 2000");
        let still = Augmentation {
            padding: 0,
            flip: false,
            ..aug
        };
        assert!((0..100).all(|i| still.placement(i) == Placement::default()));
    }

    #[test]
    fn epoch_orders_are_seeded_permutations() {
        let order = epoch_order(1000, 7, 3);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
        assert_eq!(order, epoch_order(1000, 7, 3));
        assert_ne!(order, epoch_order(1000, 7, 4));
        assert_ne!(order, epoch_order(1000, 8, 3));
        assert_ne!(order, sorted, "shuffled");
    }
}
