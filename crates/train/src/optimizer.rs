//! SGD with momentum (optionally Nesterov) and Adam with PyTorch's exact update rules,
//! weight decay coupled into the gradient, state kept on the device and saved with each
//! resumable checkpoint.
//!
//! burn's own `Sgd` defaults to a dampening of 0.1 (PyTorch and the paper use 0) and its
//! optimizers work on `Module`s; landscape's parameters are a flat [`ParamSet`], so the two
//! update rules are written out here, where they can be checked against PyTorch's formulas.

use crate::config::{OptimizerKind, TrainConfig};
use anyhow::{Context, Result, bail};
use burn::tensor::Tensor;
use landscape_core::tensor_file::{HostTensor, TensorFile};
use landscape_models::{ParamLayout, ParamSet};
use std::path::Path;

/// Hyperparameters of the update (the learning rate comes per step).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UpdateRule {
    /// `buf = momentum * buf + g; p -= lr * (nesterov ? g + momentum * buf : buf)`.
    Sgd {
        /// Momentum factor.
        momentum: f64,
        /// Nesterov's look-ahead.
        nesterov: bool,
    },
    /// `m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr * m^ / (sqrt(v^) + eps)`.
    Adam {
        /// First-moment decay.
        beta1: f64,
        /// Second-moment decay.
        beta2: f64,
        /// Denominator guard.
        eps: f64,
    },
}

/// The optimizer: rule, weight decay, and per-tensor state for the learnable tensors.
pub struct Optimizer {
    rule: UpdateRule,
    weight_decay: f64,
    /// Updates applied so far (Adam's bias correction needs it).
    step: u64,
    /// Momentum buffer (SGD) or first moment (Adam), per layout entry; `None` for running
    /// statistics and before the first step.
    first: Vec<Option<Tensor<1>>>,
    /// Second moment (Adam), per layout entry.
    second: Vec<Option<Tensor<1>>>,
}

impl Optimizer {
    /// A fresh optimizer for `config` over `layout.len()` tensors.
    pub fn new(config: &TrainConfig, layout: &ParamLayout) -> Self {
        let rule = match config.optimizer {
            OptimizerKind::Sgd => UpdateRule::Sgd {
                momentum: config.momentum,
                nesterov: config.nesterov,
            },
            OptimizerKind::Adam => UpdateRule::Adam {
                beta1: config.beta1,
                beta2: config.beta2,
                eps: config.adam_eps,
            },
        };
        Self {
            rule,
            weight_decay: config.weight_decay,
            step: 0,
            first: vec![None; layout.len()],
            second: vec![None; layout.len()],
        }
    }

    /// Applies one update with learning rate `lr`: `grads[i]` is the gradient of tensor `i`
    /// (`None` for tensors without one, like running statistics, which are left alone).
    pub fn step(&mut self, params: &ParamSet, grads: Vec<Option<Tensor<1>>>, lr: f64) -> ParamSet {
        self.step += 1;
        let mut tensors = params.tensors().to_vec();
        for (i, grad) in grads.into_iter().enumerate() {
            let Some(grad) = grad else { continue };
            let p = tensors[i].clone();
            let g = if self.weight_decay > 0.0 {
                grad + p.clone().mul_scalar(self.weight_decay)
            } else {
                grad
            };
            let update = match self.rule {
                UpdateRule::Sgd { momentum, nesterov } => {
                    if momentum == 0.0 {
                        g
                    } else {
                        let buf = match self.first[i].take() {
                            Some(buf) => buf.mul_scalar(momentum) + g.clone(),
                            None => g.clone(),
                        };
                        self.first[i] = Some(buf.clone());
                        if nesterov {
                            g + buf.mul_scalar(momentum)
                        } else {
                            buf
                        }
                    }
                }
                UpdateRule::Adam { beta1, beta2, eps } => {
                    let m = match self.first[i].take() {
                        Some(m) => m.mul_scalar(beta1) + g.clone().mul_scalar(1.0 - beta1),
                        None => g.clone().mul_scalar(1.0 - beta1),
                    };
                    let v = match self.second[i].take() {
                        Some(v) => v.mul_scalar(beta2) + g.clone().square().mul_scalar(1.0 - beta2),
                        None => g.square().mul_scalar(1.0 - beta2),
                    };
                    self.first[i] = Some(m.clone());
                    self.second[i] = Some(v.clone());
                    let t = self.step as i32;
                    let m_hat = m.div_scalar(1.0 - beta1.powi(t));
                    let v_hat = v.div_scalar(1.0 - beta2.powi(t));
                    m_hat / (v_hat.sqrt() + eps)
                }
            };
            tensors[i] = p - update.mul_scalar(lr);
        }
        ParamSet::new(params.layout().clone(), tensors).expect("same layout")
    }

    /// The state as named tensors (`optim.first.<param>`, `optim.second.<param>`) and the step
    /// count in metadata, to store beside the parameters.
    pub fn to_tensors(&self, layout: &ParamLayout, file: &mut TensorFile) {
        for (prefix, state) in [("optim.first", &self.first), ("optim.second", &self.second)] {
            for (info, t) in layout.entries().iter().zip(state) {
                if let Some(t) = t {
                    let values = t
                        .to_data()
                        .convert::<f32>()
                        .try_into_vec::<f32>()
                        .expect("f32 state");
                    file.tensors.push(HostTensor {
                        name: format!("{prefix}.{}", info.name),
                        shape: info.shape.clone(),
                        values,
                    });
                }
            }
        }
        file.metadata
            .insert("optim.step".into(), self.step.to_string());
    }

    /// Which state tensors the rule keeps: (first, second).
    fn keeps(&self) -> (bool, bool) {
        match self.rule {
            UpdateRule::Sgd { momentum, .. } => (momentum != 0.0, false),
            UpdateRule::Adam { .. } => (true, true),
        }
    }

    /// Restores the state written by [`Optimizer::to_tensors`], refusing a state that does not
    /// fit: after the first step every learnable tensor has the buffers its rule keeps, each of
    /// its tensor's size, and nothing else is there.
    pub fn restore(
        &mut self,
        layout: &ParamLayout,
        file: &TensorFile,
        path: &Path,
        device: &burn::tensor::Device,
    ) -> Result<()> {
        self.step = file
            .meta("optim.step", path)?
            .parse()
            .with_context(|| format!("{}: optim.step", path.display()))?;
        let (keeps_first, keeps_second) = self.keeps();
        let mut expected = std::collections::BTreeSet::new();
        for (prefix, kept, state) in [
            ("optim.first", keeps_first, &mut self.first),
            ("optim.second", keeps_second, &mut self.second),
        ] {
            for (info, slot) in layout.entries().iter().zip(state.iter_mut()) {
                let name = format!("{prefix}.{}", info.name);
                let required = kept && self.step > 0 && info.kind.is_learnable();
                let found = file.tensors.iter().find(|t| t.name == name);
                *slot = match found {
                    None if required => bail!(
                        "{}: the optimizer state lacks `{name}` after {} steps (damaged or from another optimizer); move the file away to restart the run",
                        path.display(),
                        self.step
                    ),
                    None => None,
                    Some(t) if !required || t.values.len() != info.numel() => bail!(
                        "{}: optimizer state `{name}` {} (damaged or from another optimizer); move the file away to restart the run",
                        path.display(),
                        if required {
                            format!("has {} values, its tensor {}", t.values.len(), info.numel())
                        } else {
                            "is not one this optimizer keeps".to_string()
                        }
                    ),
                    Some(t) => {
                        expected.insert(name);
                        Some(Tensor::<1>::from_data(
                            burn::tensor::TensorData::new(t.values.clone(), [t.values.len()]),
                            device,
                        ))
                    }
                };
            }
        }
        if let Some(extra) = file
            .tensors
            .iter()
            .find(|t| t.name.starts_with("optim.") && !expected.contains(&t.name))
        {
            bail!(
                "{}: unexpected optimizer state `{}`; move the file away to restart the run",
                path.display(),
                extra.name
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BatchSize, Schedule};
    use burn::tensor::Device;
    use landscape_models::ParamKind;
    use std::sync::Arc;

    fn config(kind: OptimizerKind, nesterov: bool, wd: f64) -> TrainConfig {
        TrainConfig {
            model: "resnet20".parse().unwrap(),
            width: 1.0,
            optimizer: kind,
            momentum: 0.9,
            nesterov,
            beta1: 0.9,
            beta2: 0.999,
            adam_eps: 1e-8,
            lr: 0.1,
            schedule: Schedule::Constant,
            epochs: 1,
            batch_size: BatchSize::Examples(1),
            weight_decay: wd,
            seed: 0,
            save_every: 1,
            train_subset: 0,
            test_subset: 0,
            augment: false,
            max_micro_batch: 1,
        }
    }

    fn scalar_param(v: f32) -> ParamSet {
        let mut layout = ParamLayout::default();
        layout.push("w", vec![1], ParamKind::LinearWeight);
        ParamSet::from_host(Arc::new(layout), vec![vec![v]], &Device::flex()).unwrap()
    }

    fn run(kind: OptimizerKind, nesterov: bool, wd: f64, grads: &[f32]) -> f32 {
        let mut p = scalar_param(1.0);
        let mut opt = Optimizer::new(&config(kind, nesterov, wd), p.layout());
        for g in grads {
            let g = Tensor::<1>::from_floats([*g], &Device::flex());
            p = opt.step(&p, vec![Some(g)], 0.1);
        }
        p.to_host()[0][0]
    }

    #[test]
    fn sgd_matches_pytorch_formulas() {
        // torch.optim.SGD([w], lr=0.1, momentum=0.9, dampening=0), grads 1 then 2 from w=1:
        // buf1 = 1, w = 0.9; buf2 = 0.9 + 2 = 2.9, w = 0.9 - 0.29 = 0.61.
        assert!((run(OptimizerKind::Sgd, false, 0.0, &[1.0, 2.0]) - 0.61).abs() < 1e-6);
        // Nesterov: step1 g + 0.9 buf = 1.9 -> w = 0.81; step2 buf = 2.9, 2 + 2.61 = 4.61 -> 0.349.
        assert!((run(OptimizerKind::Sgd, true, 0.0, &[1.0, 2.0]) - 0.349).abs() < 1e-6);
        // Coupled weight decay 0.5: g = 1 + 0.5 * 1 = 1.5 -> w = 0.85.
        assert!((run(OptimizerKind::Sgd, false, 0.5, &[1.0]) - 0.85).abs() < 1e-6);
    }

    #[test]
    fn adam_matches_pytorch_formulas() {
        // The first Adam step moves by lr * g/|g| (bias-corrected): 1 - 0.1 = 0.9.
        assert!((run(OptimizerKind::Adam, false, 0.0, &[3.0]) - 0.9).abs() < 1e-5);
        // Second step with g=1: m = 0.09*3... computed by hand in f64.
        let (b1, b2, lr) = (0.9f64, 0.999f64, 0.1f64);
        let (mut m, mut v, mut w) = (0.0, 0.0, 1.0);
        for (t, g) in [(1, 3.0), (2, 1.0)] {
            m = b1 * m + (1.0 - b1) * g;
            v = b2 * v + (1.0 - b2) * g * g;
            w -= lr * (m / (1.0 - b1.powi(t))) / ((v / (1.0 - b2.powi(t))).sqrt() + 1e-8);
        }
        assert!((run(OptimizerKind::Adam, false, 0.0, &[3.0, 1.0]) as f64 - w).abs() < 1e-5);
    }

    #[test]
    fn damaged_states_are_refused() {
        let p = scalar_param(1.0);
        let adam = config(OptimizerKind::Adam, false, 0.0);
        let mut opt = Optimizer::new(&adam, p.layout());
        opt.step(
            &p,
            vec![Some(Tensor::<1>::from_floats([2.0], &Device::flex()))],
            0.1,
        );
        let mut good = TensorFile::default();
        opt.to_tensors(p.layout(), &mut good);
        let restore = |cfg: &TrainConfig, file: &TensorFile| {
            Optimizer::new(cfg, p.layout())
                .restore(
                    p.layout(),
                    file,
                    Path::new("last.safetensors"),
                    &Device::flex(),
                )
                .map_err(|e| e.to_string())
        };
        assert!(restore(&adam, &good).is_ok());
        let mut missing = good.clone();
        missing
            .tensors
            .retain(|t| !t.name.starts_with("optim.second"));
        assert!(
            restore(&adam, &missing)
                .unwrap_err()
                .contains("lacks `optim.second.")
        );
        let mut short = good.clone();
        short.tensors.iter_mut().for_each(|t| t.values.push(0.0));
        assert!(restore(&adam, &short).unwrap_err().contains("has 2 values"));
        // Adam's state where plain SGD keeps none.
        let plain = TrainConfig {
            momentum: 0.0,
            ..config(OptimizerKind::Sgd, false, 0.0)
        };
        assert!(
            restore(&plain, &good)
                .unwrap_err()
                .contains("not one this optimizer keeps")
        );
    }

    #[test]
    fn state_round_trips() {
        let p = scalar_param(1.0);
        let mut opt = Optimizer::new(&config(OptimizerKind::Adam, false, 0.0), p.layout());
        let p2 = opt.step(
            &p,
            vec![Some(Tensor::<1>::from_floats([2.0], &Device::flex()))],
            0.1,
        );
        let mut file = TensorFile::default();
        opt.to_tensors(p.layout(), &mut file);
        let mut back = Optimizer::new(&config(OptimizerKind::Adam, false, 0.0), p.layout());
        back.restore(p.layout(), &file, Path::new("x"), &Device::flex())
            .unwrap();
        let g = || vec![Some(Tensor::<1>::from_floats([1.0], &Device::flex()))];
        let a = opt.step(&p2, g(), 0.1).to_host();
        let b = back.step(&p2, g(), 0.1).to_host();
        assert_eq!(a, b);
    }
}
