//! Directions in parameter space, as the reference code (`net_plotter.py`) defines them:
//! seeded Gaussian directions normalized per filter, layer or weight, and the difference of two
//! models for interpolation. Saved as safetensors with their recipe in the metadata.

use anyhow::{Context, Result, bail};
use burn::tensor::{Tensor, TensorData};
use landscape_core::hash::ContentHash;
use landscape_core::tensor_file::{HostTensor, TensorFile};
use landscape_models::{ParamKind, ParamLayout, ParamScope, ParamSet};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

/// How a random direction is scaled to its model (per multi-dimensional tensor).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DirNorm {
    /// Each filter (output slice) gets the norm of the model's filter: the paper's choice, and
    /// what makes plots of different networks comparable.
    Filter,
    /// Each tensor gets the norm of the model's tensor.
    Layer,
    /// Multiplied elementwise by the model's weights.
    Weight,
    /// Each filter scaled to unit norm.
    Dfilter,
    /// Each tensor scaled to unit norm.
    Dlayer,
    /// The raw Gaussian.
    None,
}

/// What happens to the 1-D tensors (biases, BatchNorm parameters and statistics).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Ignore {
    /// Set to zero: the plot moves only the weights of convolutions and linear layers.
    Biasbn,
    /// Set equal to the model's own values (`d = theta`), as the reference code does.
    None,
}

/// How a direction was made, stored in its file and in the metadata of a surface.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum DirectionRecipe {
    /// Gaussian from a seed, then normalized.
    Random {
        /// Seed of the Gaussian draws.
        seed: u64,
        /// Index of this direction among those drawn from the seed (0 = x, 1 = y).
        index: usize,
        /// Normalization.
        norm: DirNorm,
        /// Treatment of 1-D tensors.
        ignore: Ignore,
    },
    /// `theta_to - theta_from`.
    Difference {
        /// The point the direction leaves from.
        from: String,
        /// The point it goes to.
        to: String,
    },
    /// A principal component of an optimization path (`theta_e - theta_final` over epochs).
    Pca {
        /// The run whose path it is.
        run: String,
        /// Component index (0 = the first).
        component: usize,
        /// Share of the path's variance it explains.
        explained: f64,
    },
    /// Read from a file (its content hash).
    File {
        /// SHA-256 of the file.
        hash: ContentHash,
    },
}

/// One direction: a tensor per layout entry in the scope (`None` outside it).
#[derive(Clone, Debug)]
pub struct Direction {
    /// Which tensors it covers.
    pub scope: ParamScope,
    /// Per layout entry, flat.
    pub tensors: Vec<Option<Tensor<1>>>,
    /// How it was made.
    pub recipe: DirectionRecipe,
}

impl Direction {
    /// Seeded Gaussian directions (`count` of them, drawn in order from one stream on the host, so
    /// every device gets the same numbers), normalized against `base`.
    pub fn random(
        base: &ParamSet,
        scope: ParamScope,
        norm: DirNorm,
        ignore: Ignore,
        seed: u64,
        count: usize,
    ) -> Vec<Direction> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let device = base.device();
        (0..count)
            .map(|index| {
                let tensors = base
                    .layout()
                    .entries()
                    .iter()
                    .zip(base.tensors())
                    .map(|(info, theta)| {
                        if !scope.includes(info.kind) {
                            return None;
                        }
                        let n = info.numel();
                        let gaussian: Vec<f32> =
                            (0..n).map(|_| StandardNormal.sample(&mut rng)).collect();
                        let d = Tensor::<1>::from_data(TensorData::new(gaussian, [n]), &device);
                        Some(normalize(d, theta, &info.shape, info.kind, norm, ignore))
                    })
                    .collect();
                Direction {
                    scope,
                    tensors,
                    recipe: DirectionRecipe::Random {
                        seed,
                        index,
                        norm,
                        ignore,
                    },
                }
            })
            .collect()
    }

    /// `to - from` over `scope` (the paper's interpolation uses "states", so BatchNorm statistics
    /// move along).
    pub fn difference(
        from: &ParamSet,
        to: &ParamSet,
        scope: ParamScope,
        from_name: &str,
        to_name: &str,
    ) -> Result<Direction> {
        if from.layout() != to.layout() {
            bail!("cannot interpolate between `{from_name}` and `{to_name}`: different networks");
        }
        let tensors = from
            .layout()
            .entries()
            .iter()
            .zip(from.tensors().iter().zip(to.tensors()))
            .map(|(info, (a, b))| scope.includes(info.kind).then(|| b.clone() - a.clone()))
            .collect();
        Ok(Direction {
            scope,
            tensors,
            recipe: DirectionRecipe::Difference {
                from: from_name.into(),
                to: to_name.into(),
            },
        })
    }

    /// The L2 norm of the direction.
    pub fn norm(&self) -> f64 {
        self.dot(self).sqrt()
    }

    /// The inner product with `other` (tensors outside either scope count as zero).
    pub fn dot(&self, other: &Direction) -> f64 {
        self.tensors
            .iter()
            .zip(&other.tensors)
            .filter_map(|(a, b)| Some((a.as_ref()?, b.as_ref()?)))
            .map(|(a, b)| (a.clone() * b.clone()).sum().into_scalar::<f32>() as f64)
            .sum()
    }
}

/// Refuses directions that span no grid: a zero or non-finite direction (a model minus
/// itself, a file of zeros or NaN) or two parallel ones (a plane through a run and the same
/// other run twice). `what` names them in the message.
pub fn check_directions(directions: &[Direction], what: &str) -> Result<()> {
    let norms: Vec<f64> = directions.iter().map(Direction::norm).collect();
    for (i, (d, n)) in directions.iter().zip(&norms).enumerate() {
        if !n.is_finite() || *n == 0.0 {
            bail!(
                "{what}: direction {} ({}) has norm {n}: it moves nothing",
                ["x", "y"].get(i).unwrap_or(&"?"),
                serde_json::to_string(&d.recipe).unwrap_or_default()
            );
        }
    }
    if let [a, b] = directions {
        let cos = a.dot(b) / (norms[0] * norms[1]);
        if cos.abs() > 1.0 - 1e-6 {
            bail!(
                "{what}: the x and y directions are parallel (cosine {cos:.6}): they span a line, not a plane"
            );
        }
    }
    Ok(())
}

/// The reference's `normalize_directions_for_weights` for one tensor pair.
fn normalize(
    d: Tensor<1>,
    theta: &Tensor<1>,
    shape: &[usize],
    kind: ParamKind,
    norm: DirNorm,
    ignore: Ignore,
) -> Tensor<1> {
    if shape.len() <= 1 {
        return match ignore {
            Ignore::Biasbn => d.zeros_like(),
            Ignore::None => theta.clone(),
        };
    }
    debug_assert!(!kind.is_bias_or_bn());
    let n = shape.iter().product::<usize>();
    let rows = shape[0];
    let per_row = |t: Tensor<1>| t.reshape([rows, n / rows]).square().sum_dim(1).sqrt();
    match norm {
        DirNorm::Filter => {
            let scale = per_row(theta.clone()) / (per_row(d.clone()) + 1e-10);
            (d.reshape([rows, n / rows]) * scale).reshape([n])
        }
        DirNorm::Layer => {
            let scale = theta.clone().square().sum().sqrt() / d.clone().square().sum().sqrt();
            d * scale
        }
        DirNorm::Weight => d * theta.clone(),
        DirNorm::Dfilter => {
            let scale = (per_row(d.clone()) + 1e-10).recip();
            (d.reshape([rows, n / rows]) * scale).reshape([n])
        }
        DirNorm::Dlayer => d.clone() / d.square().sum().sqrt(),
        DirNorm::None => d,
    }
}

/// Writes directions to one safetensors file: tensors `d<i>.<param>`, metadata with each
/// recipe (JSON), the scope and the id of the model they belong to.
pub fn save(
    path: &Path,
    layout: &ParamLayout,
    directions: &[Direction],
    model: &str,
) -> Result<()> {
    let mut file = TensorFile::default();
    for (i, dir) in directions.iter().enumerate() {
        for (info, t) in layout.entries().iter().zip(&dir.tensors) {
            if let Some(t) = t {
                let values = t
                    .to_data()
                    .convert::<f32>()
                    .try_into_vec::<f32>()
                    .expect("f32 direction");
                file.tensors.push(HostTensor {
                    name: format!("d{i}.{}", info.name),
                    shape: info.shape.clone(),
                    values,
                });
            }
        }
        file.metadata
            .insert(format!("d{i}.recipe"), serde_json::to_string(&dir.recipe)?);
        file.metadata
            .insert(format!("d{i}.scope"), dir.scope.name().into());
    }
    file.metadata
        .insert("count".into(), directions.len().to_string());
    file.metadata.insert("model".into(), model.into());
    file.metadata
        .insert("format".into(), "landscape-directions-1".into());
    file.write(path)
}

/// Reads directions written by [`save`] for a network of `layout`; the recipe of each becomes
/// [`DirectionRecipe::File`] with the file's hash, which is what determines surfaces made from it.
pub fn load(
    path: &Path,
    layout: &Arc<ParamLayout>,
    device: &burn::tensor::Device,
) -> Result<Vec<Direction>> {
    let (file, hash) = TensorFile::read_hashed(path)?;
    let count: usize = file
        .meta("count", path)?
        .parse()
        .with_context(|| format!("{}: count", path.display()))?;
    (0..count)
        .map(|i| {
            let scope = match file.meta(&format!("d{i}.scope"), path)? {
                "weights" => ParamScope::Weights,
                "states" => ParamScope::States,
                other => bail!(
                    "{}: d{i}.scope is `{other}`, expected weights or states",
                    path.display()
                ),
            };
            let tensors = layout
                .entries()
                .iter()
                .map(|info| {
                    if !scope.includes(info.kind) {
                        return Ok(None);
                    }
                    let t = file.get(&format!("d{i}.{}", info.name), path)?;
                    if t.shape != info.shape {
                        bail!(
                            "{}: d{i}.{} has shape {:?}, the model expects {:?}",
                            path.display(),
                            info.name,
                            t.shape,
                            info.shape
                        );
                    }
                    Ok(Some(Tensor::<1>::from_data(
                        TensorData::new(t.values.clone(), [t.values.len()]),
                        device,
                    )))
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(Direction {
                scope,
                tensors,
                recipe: DirectionRecipe::File { hash: hash.clone() },
            })
        })
        .collect()
}

/// The parameters `base + sum_i coords[i] * directions[i]`, on the device.
pub fn displaced(base: &ParamSet, directions: &[Direction], coords: &[f64]) -> Vec<Tensor<1>> {
    base.tensors()
        .iter()
        .enumerate()
        .map(|(i, theta)| {
            let mut t = theta.clone();
            for (dir, &c) in directions.iter().zip(coords) {
                if let Some(d) = &dir.tensors[i]
                    && c != 0.0
                {
                    t = t + d.clone().mul_scalar(c);
                }
            }
            t
        })
        .collect()
}
