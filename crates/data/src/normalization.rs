//! Per-channel normalization: the affine map from u8 pixels to the f32 values a network sees.

use crate::image_set::{CHANNELS, IMAGE_BYTES, ImageSet};
use anyhow::{Result, ensure};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Per-channel mean and standard deviation in [0, 1] pixel units: a pixel `p` of channel `c`
/// becomes `(p / 255 - mean[c]) / std[c]`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    /// Mean of R, G, B.
    pub mean: [f32; 3],
    /// Standard deviation of R, G, B.
    pub std: [f32; 3],
}

/// One lookup table per channel: normalized value of every u8 pixel value.
pub(crate) type Lookup = [[f32; 256]; CHANNELS];

impl Normalization {
    /// The CIFAR-10 constants of the paper's code (mean 125.3, 123.0, 113.9 and std 63.0,
    /// 62.1, 66.7 out of 255), used as published so runs normalize exactly like the paper's.
    pub const CIFAR10: Normalization = Normalization {
        mean: [125.3 / 255.0, 123.0 / 255.0, 113.9 / 255.0],
        std: [63.0 / 255.0, 62.1 / 255.0, 66.7 / 255.0],
    };

    /// The mean and population standard deviation over all pixels of each channel of `set`.
    ///
    /// Fails on an empty set or a constant channel, which could not be normalized.
    pub fn of(set: &ImageSet) -> Result<Normalization> {
        ensure!(!set.is_empty(), "no images to compute a normalization from");
        // Exact per-channel histograms (u64 counts) make the result independent of summation
        // order, so it is the same for any thread count.
        let histograms = set
            .images
            .par_chunks(IMAGE_BYTES)
            .fold(
                || [[0u64; 256]; CHANNELS],
                |mut h, image| {
                    for (c, plane) in image.chunks_exact(IMAGE_BYTES / CHANNELS).enumerate() {
                        for &p in plane {
                            h[c][p as usize] += 1;
                        }
                    }
                    h
                },
            )
            .reduce(
                || [[0u64; 256]; CHANNELS],
                |mut a, b| {
                    for (ha, hb) in a.iter_mut().zip(&b) {
                        for (x, y) in ha.iter_mut().zip(hb) {
                            *x += y;
                        }
                    }
                    a
                },
            );
        let mut norm = Normalization {
            mean: [0.0; 3],
            std: [0.0; 3],
        };
        for (c, h) in histograms.iter().enumerate() {
            let count: u64 = h.iter().sum();
            let moment = |k: i32| {
                h.iter()
                    .enumerate()
                    .map(|(v, &n)| n as f64 * (v as f64 / 255.0).powi(k))
                    .sum::<f64>()
                    / count as f64
            };
            let mean = moment(1);
            let variance = (moment(2) - mean * mean).max(0.0);
            ensure!(
                variance > 0.0,
                "channel {c} has the same value in every pixel"
            );
            norm.mean[c] = mean as f32;
            norm.std[c] = variance.sqrt() as f32;
        }
        Ok(norm)
    }

    /// The normalized value of each u8 pixel value, per channel.
    pub(crate) fn lookup(&self) -> Lookup {
        std::array::from_fn(|c| {
            std::array::from_fn(|p| (p as f32 / 255.0 - self.mean[c]) / self.std[c])
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cifar10_uses_the_paper_constants() {
        let n = Normalization::CIFAR10;
        let close = |a: f32, b: f32| (a - b).abs() < 1e-4;
        assert!(close(n.mean[0], 0.4914) && close(n.mean[1], 0.4824) && close(n.mean[2], 0.4467));
        assert!(close(n.std[0], 0.2471) && close(n.std[1], 0.2435) && close(n.std[2], 0.2616));
    }

    #[test]
    fn computed_from_a_known_set() {
        // Two images. R: all 0 in one, all 255 in the other: mean 0.5, std 0.5.
        // G: constant 51 in one and 102 in the other: mean 0.3, std 0.1.
        // B: alternating 0/255 pixels inside each image: mean 0.5, std 0.5.
        let plane = IMAGE_BYTES / CHANNELS;
        let mut images = Vec::new();
        for (r, g) in [(0u8, 51u8), (255, 102)] {
            images.extend(std::iter::repeat_n(r, plane));
            images.extend(std::iter::repeat_n(g, plane));
            images.extend((0..plane).map(|i| if i % 2 == 0 { 0 } else { 255 }));
        }
        let n = Normalization::of(&ImageSet {
            images,
            labels: vec![0, 1],
        })
        .unwrap();
        let expect = ([0.5, 0.3, 0.5], [0.5, 0.1, 0.5]);
        for c in 0..3 {
            assert!((n.mean[c] - expect.0[c]).abs() < 1e-6, "{n:?}");
            assert!((n.std[c] - expect.1[c]).abs() < 1e-6, "{n:?}");
        }
        let table = n.lookup();
        // G pixel 51 is 0.2 in [0, 1] units: (0.2 - 0.3) / 0.1 = -1; 102 gives +1.
        assert!((table[1][51] + 1.0).abs() < 1e-5 && (table[1][102] - 1.0).abs() < 1e-5);
    }

    #[test]
    fn constant_or_empty_sets_are_errors() {
        let err = Normalization::of(&ImageSet::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("no images"), "{err}");
        let flat = ImageSet {
            images: vec![7; IMAGE_BYTES],
            labels: vec![0],
        };
        let err = Normalization::of(&flat).unwrap_err().to_string();
        assert!(err.contains("channel 0 has the same value"), "{err}");
    }
}
