//! Synthetic CIFAR-style data: 10 classes of 3x32x32 images generated from a seed, for
//! experiments and tests that need no files and no network.
//!
//! Each class has a template: a coloured background, an oriented colour grating and a few
//! smooth colour blobs, drawn on a canvas 4 pixels larger than an image on every side. A
//! sample is a 32x32 window of its class's template at a random offset (up to ±4 pixels),
//! possibly mirrored, blended with a window of another class's template at a random weight
//! up to 0.4, with random contrast and brightness and per-pixel noise; 3 % of labels are
//! replaced by a random class. That keeps it learnable but not separable by a linear look at
//! the pixels: a nearest-class-mean classifier scores well above chance and well below 100 %.
//!
//! Every image comes from its own generator keyed by (seed, split, index), so the data is
//! the same for any thread count, and train and test never share random numbers.

use crate::dataset::Dataset;
use crate::image_set::{CHANNELS, IMAGE_BYTES, IMAGE_SIDE, ImageSet};
use crate::name::DatasetName;
use crate::normalization::Normalization;
use crate::rng::{Purpose, stream};
use anyhow::{Context, Result};
use rand::{Rng, RngExt};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::f32::consts::PI;

/// How much synthetic data to generate, and from which seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SyntheticConfig {
    /// Everything generated follows from it.
    pub seed: u64,
    /// Training images (50000 by default, like CIFAR-10).
    pub train: usize,
    /// Test images (10000 by default).
    pub test: usize,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        SyntheticConfig {
            seed: 0,
            train: 50_000,
            test: 10_000,
        }
    }
}

const CLASSES: usize = 10;
/// The largest translation of a sample from its template, in pixels.
const SHIFT: usize = 4;
/// Templates are drawn larger than an image so any shifted window lies inside them.
const CANVAS: usize = IMAGE_SIDE + 2 * SHIFT;
const BLOBS: usize = 3;
/// The largest weight of the other class's template blended into a sample.
const MAX_BLEND: f32 = 0.4;
/// The probability that a sample's label is replaced by a random class.
const LABEL_NOISE: f64 = 0.03;
/// The largest shift of one colour channel of a sample.
const COLOUR_CAST: f32 = 0.1;
/// Per-pixel noise is triangular on ±NOISE (standard deviation NOISE / √6).
const NOISE: f32 = 0.5;

/// The synthetic data set of `config`.
pub(crate) fn generate(config: &SyntheticConfig) -> Result<Dataset> {
    let templates: Vec<Vec<f32>> = (0..CLASSES).map(|c| template(config.seed, c)).collect();
    let train = split(&templates, config.seed, 0, config.train);
    let test = split(&templates, config.seed, 1, config.test);
    let normalization = Normalization::of(&train).context("synthetic training set")?;
    Ok(Dataset::new(
        DatasetName::Synthetic,
        format!("generated from seed {}", config.seed),
        (0..CLASSES).map(|c| format!("class {c}")).collect(),
        train,
        test,
        normalization,
    ))
}

/// The template of `class`: CHW planes of CANVAS x CANVAS values, roughly in [0, 1].
fn template(seed: u64, class: usize) -> Vec<f32> {
    let mut rng = stream(Purpose::SyntheticTemplate, seed, class as u64, 0);
    let background: [f32; CHANNELS] = std::array::from_fn(|_| rng.random_range(0.35..0.65));
    let angle = rng.random_range(0.0..PI);
    let frequency = 2.0 * PI / rng.random_range(4.0..12.0);
    let phase = rng.random_range(0.0..2.0 * PI);
    let grating: [f32; CHANNELS] = std::array::from_fn(|_| rng.random_range(-0.2..0.2));
    let blobs: Vec<([f32; 2], f32, [f32; CHANNELS])> = (0..BLOBS)
        .map(|_| {
            let centre = std::array::from_fn(|_| rng.random_range(8.0..(CANVAS - 8) as f32));
            let spread = 2.0 * rng.random_range(3.0f32..7.0).powi(2);
            (
                centre,
                spread,
                std::array::from_fn(|_| rng.random_range(-0.5..0.5)),
            )
        })
        .collect();
    let mut planes = vec![0.0; CHANNELS * CANVAS * CANVAS];
    for (i, value) in planes.iter_mut().enumerate() {
        let (c, y, x) = (i / (CANVAS * CANVAS), (i / CANVAS) % CANVAS, i % CANVAS);
        let (x, y) = (x as f32, y as f32);
        let wave = (frequency * (x * angle.cos() + y * angle.sin()) + phase).sin();
        *value = background[c]
            + grating[c] * wave
            + blobs
                .iter()
                .map(|([cx, cy], spread, colour)| {
                    colour[c] * (-((x - cx).powi(2) + (y - cy).powi(2)) / spread).exp()
                })
                .sum::<f32>();
    }
    planes
}

/// `n` samples of split `split` (0 train, 1 test).
fn split(templates: &[Vec<f32>], seed: u64, split: u64, n: usize) -> ImageSet {
    let mut images = vec![0u8; n * IMAGE_BYTES];
    let mut labels = vec![0u16; n];
    images
        .par_chunks_mut(IMAGE_BYTES)
        .zip(labels.par_iter_mut())
        .enumerate()
        .for_each(|(i, (image, label))| {
            let mut rng = stream(Purpose::SyntheticImage, seed, split, i as u64);
            *label = sample(templates, &mut rng, image);
        });
    ImageSet { images, labels }
}

/// A window of a template: its offset in the canvas and whether it is mirrored.
struct Window {
    dx: usize,
    dy: usize,
    mirror: bool,
}

impl Window {
    fn random(rng: &mut impl Rng) -> Window {
        Window {
            dx: rng.random_range(0..=2 * SHIFT),
            dy: rng.random_range(0..=2 * SHIFT),
            mirror: rng.random_bool(0.5),
        }
    }

    /// The canvas values behind image row `y` of channel `c`, left to right before mirroring.
    fn row<'t>(&self, template: &'t [f32], c: usize, y: usize) -> &'t [f32] {
        &template[(c * CANVAS + y + self.dy) * CANVAS + self.dx..][..IMAGE_SIDE]
    }

    /// The position in a [`Window::row`] of image column `x`.
    fn column(&self, x: usize) -> usize {
        if self.mirror { IMAGE_SIDE - 1 - x } else { x }
    }
}

/// Draws one sample into `image` and returns its label.
fn sample(templates: &[Vec<f32>], rng: &mut impl Rng, image: &mut [u8]) -> u16 {
    let class = rng.random_range(0..CLASSES);
    let other = (class + rng.random_range(1..CLASSES)) % CLASSES;
    let blend = rng.random_range(0.0..MAX_BLEND);
    let (main, distractor) = (Window::random(rng), Window::random(rng));
    let contrast = rng.random_range(0.6..1.4);
    let brightness = rng.random_range(-0.2..0.2);
    // A colour cast per sample, so no class can be told by its mean colour alone.
    let cast: [f32; CHANNELS] =
        std::array::from_fn(|_| rng.random_range(-COLOUR_CAST..COLOUR_CAST));
    let label = if rng.random_bool(LABEL_NOISE) {
        rng.random_range(0..CLASSES)
    } else {
        class
    };
    // Two noise bytes per pixel; their sum is triangular, cheaper than a normal draw.
    let mut noise = [0u8; 2 * IMAGE_BYTES];
    rng.fill_bytes(&mut noise);
    let (ours, theirs) = (&templates[class], &templates[other]);
    let rows = image
        .chunks_exact_mut(IMAGE_SIDE)
        .zip(noise.chunks_exact(2 * IMAGE_SIDE));
    for (r, (row, noise)) in rows.enumerate() {
        let (c, y) = (r / IMAGE_SIDE, r % IMAGE_SIDE);
        let (a, b) = (main.row(ours, c, y), distractor.row(theirs, c, y));
        let offset = 0.5 + brightness + cast[c];
        for (x, (pixel, bytes)) in row.iter_mut().zip(noise.chunks_exact(2)).enumerate() {
            let mixed = (1.0 - blend) * a[main.column(x)] + blend * b[distractor.column(x)];
            let jitter = (bytes[0] as f32 + bytes[1] as f32 - 255.0) / 255.0 * NOISE;
            let value = offset + contrast * (mixed - 0.5) + jitter;
            // Float-to-int `as` saturates, so this also clamps to 0..=255.
            *pixel = (value * 255.0 + 0.5) as u8;
        }
    }
    label as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(seed: u64) -> Dataset {
        generate(&SyntheticConfig {
            seed,
            train: 4000,
            test: 1000,
        })
        .unwrap()
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let a = small(0);
        let b = small(0);
        assert_eq!(
            (&a.train, &a.test, &a.fingerprint),
            (&b.train, &b.test, &b.fingerprint)
        );
        let c = small(1);
        assert_ne!(a.train.images, c.train.images);
        assert_ne!(a.fingerprint, c.fingerprint);
        assert_ne!(
            a.train.images[..IMAGE_BYTES],
            a.test.images[..IMAGE_BYTES],
            "splits differ"
        );
    }

    #[test]
    fn independent_of_thread_count() {
        let config = SyntheticConfig {
            seed: 5,
            train: 300,
            test: 10,
        };
        let with = |threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| generate(&config).unwrap().train)
        };
        assert_eq!(with(1), with(3));
    }

    #[test]
    fn classes_are_balanced_and_named() {
        let data = small(0);
        assert_eq!((data.classes, data.class_names.len()), (10, 10));
        for count in data.train.class_counts(10) {
            assert!(
                (340..=460).contains(&count),
                "{:?}",
                data.train.class_counts(10)
            );
        }
        assert_eq!(data.source, "generated from seed 0");
    }

    /// Accuracy on the test split of the classifier that picks the class whose mean
    /// normalized training image is nearest.
    fn nearest_class_mean_accuracy(data: &Dataset) -> f64 {
        let table = data.normalization.lookup();
        let normalized = |image: &[u8]| -> Vec<f32> {
            let plane = IMAGE_BYTES / CHANNELS;
            image
                .iter()
                .enumerate()
                .map(|(i, &p)| table[i / plane][p as usize])
                .collect()
        };
        let mut means = vec![vec![0f64; IMAGE_BYTES]; data.classes];
        for (i, &label) in data.train.labels.iter().enumerate() {
            for (m, v) in means[label as usize]
                .iter_mut()
                .zip(normalized(data.train.image(i)))
            {
                *m += v as f64;
            }
        }
        for (mean, count) in means.iter_mut().zip(data.train.class_counts(data.classes)) {
            mean.iter_mut().for_each(|m| *m /= count as f64);
        }
        let correct = (0..data.test.len())
            .filter(|&i| {
                let x = normalized(data.test.image(i));
                let distance = |mean: &Vec<f64>| -> f64 {
                    mean.iter()
                        .zip(&x)
                        .map(|(m, &v)| (m - v as f64).powi(2))
                        .sum()
                };
                let best = (0..data.classes)
                    .min_by(|&a, &b| distance(&means[a]).total_cmp(&distance(&means[b])))
                    .unwrap();
                best == data.test.labels[i] as usize
            })
            .count();
        correct as f64 / data.test.len() as f64
    }

    #[test]
    fn learnable_but_not_trivially_separable() {
        // Calibrated at 62 %, 54 %, 51 % and 50 % for seeds 0 to 3 (chance is 10 %).
        for seed in 0..2 {
            let config = SyntheticConfig {
                seed,
                train: 10_000,
                test: 2_000,
            };
            let accuracy = nearest_class_mean_accuracy(&generate(&config).unwrap());
            eprintln!(
                "seed {seed}: nearest-class-mean test accuracy {:.1} %",
                100.0 * accuracy
            );
            assert!(
                (0.25..=0.75).contains(&accuracy),
                "seed {seed}: accuracy {accuracy}"
            );
        }
    }

    /// The default sizes in well under 2 s (only meaningful in an optimized build).
    #[cfg(not(debug_assertions))]
    #[test]
    fn default_sizes_generate_quickly() {
        let start = std::time::Instant::now();
        let data = generate(&SyntheticConfig::default()).unwrap();
        let seconds = start.elapsed().as_secs_f64();
        eprintln!("generated 50000 + 10000 synthetic images in {seconds:.2} s");
        assert_eq!((data.train.len(), data.test.len()), (50_000, 10_000));
        assert!(seconds < 2.0, "{seconds} s");
    }
}
