//! Sharpness measures on functions with known answers, and their (non-)invariance to the
//! rescalings of Dinh et al. (2017).

mod common;

use burn::tensor::{DType, Device};
use common::mlp;
use landscape_curvature::lanczos::extreme_eigenvalues;
use landscape_curvature::sharpness::{
    AverageOptions, KeskarOptions, Objective, PacBayesOptions, Scaling, WorstCaseOptions,
    average_case, keskar, pac_bayes, worst_case_adaptive,
};
use landscape_curvature::vector::rng;
use landscape_curvature::{CurvatureScope, HvpOptions, LossHessian, LossModel, ParamVec, VecShape};
use landscape_models::ParamSet;
use landscape_models::forward::{BatchNormMode, Forward};

/// `f(w) = f0 + 1/2 sum_i a_i (w_i - c_i)^2` at its minimum `c`; error `min(1, k |w - c|^2)`.
struct Quadratic {
    a: Vec<f64>,
    c: Vec<f64>,
    f0: f64,
    k: f64,
    shape: VecShape,
}

impl Quadratic {
    fn new(a: Vec<f64>, f0: f64) -> Self {
        let n = a.len();
        let c = (0..n).map(|i| ((i * 7) % 11) as f64 / 5.0 - 1.0).collect();
        Self {
            a,
            c,
            f0,
            k: 0.0,
            shape: VecShape::new(vec![n / 2, n - n / 2], Device::flex()),
        }
    }

    fn upload(&self, v: &[f64]) -> ParamVec {
        let h = self.shape.sizes[0];
        self.shape.from_host(vec![
            v[..h].iter().map(|x| *x as f32).collect(),
            v[h..].iter().map(|x| *x as f32).collect(),
        ])
    }
}

impl Objective for Quadratic {
    fn shape(&self) -> VecShape {
        self.shape.clone()
    }
    fn point(&self) -> ParamVec {
        self.upload(&self.c)
    }
    fn loss(&self, w: &ParamVec) -> f64 {
        let w = w.to_host_flat();
        self.f0
            + 0.5
                * w.iter()
                    .zip(&self.c)
                    .zip(&self.a)
                    .map(|((w, c), a)| a * (w - c).powi(2))
                    .sum::<f64>()
    }
    fn loss_and_gradient(&self, w: &ParamVec) -> (f64, ParamVec) {
        let host = w.to_host_flat();
        let g: Vec<f64> = host
            .iter()
            .zip(&self.c)
            .zip(&self.a)
            .map(|((w, c), a)| a * (w - c))
            .collect();
        (self.loss(w), self.upload(&g))
    }
    fn error(&self, w: &ParamVec) -> Option<f64> {
        let d: f64 = w
            .to_host_flat()
            .iter()
            .zip(&self.c)
            .map(|(w, c)| (w - c).powi(2))
            .sum();
        Some((self.k * d).min(1.0))
    }
}

#[test]
fn keskar_finds_the_corner_of_the_box_and_grows_with_sharpness() {
    let a: Vec<f64> = (0..40).map(|i| 1.0 + (i % 5) as f64).collect();
    let flat = Quadratic::new(a.clone(), 0.3);
    let sharp = Quadratic::new(a.iter().map(|v| 10.0 * v).collect(), 0.3);
    let options = KeskarOptions {
        eps: 1e-3,
        ..KeskarOptions::default()
    };
    let r = keskar(&flat, &options).unwrap();
    // A convex quadratic's maximum over the box |z_i| <= eps (|c_i| + 1) is at a corner.
    let corner: f64 = 0.5
        * flat
            .a
            .iter()
            .zip(&flat.c)
            .map(|(a, c)| a * (1e-3 * (c.abs() + 1.0)).powi(2))
            .sum::<f64>();
    let expected = 100.0 * corner / 1.3;
    assert!(
        (r.value - expected).abs() < 1e-3 * expected,
        "phi {} vs {expected}",
        r.value
    );
    assert_eq!(r.evaluations, 12);
    let s = keskar(&sharp, &options).unwrap();
    assert!(
        (s.value / r.value - 10.0).abs() < 1e-2,
        "sharper by 10x: {} vs {}",
        s.value,
        r.value
    );
    // A smaller box, a smaller value (quadratic in eps).
    let small = keskar(
        &flat,
        &KeskarOptions {
            eps: 5e-4,
            ..options
        },
    )
    .unwrap();
    assert!((small.value / r.value - 0.25).abs() < 1e-2);
    // Random subspace (p = 10): positive, bounded by the full space's corner for this box, and
    // exactly 10x for the 10x sharper function (the ascent's path is the same).
    let sub = KeskarOptions {
        subspace: Some(10),
        ..options
    };
    let (fs, ss) = (keskar(&flat, &sub).unwrap(), keskar(&sharp, &sub).unwrap());
    assert!(fs.value > 0.0);
    assert!(
        (ss.value / fs.value - 10.0).abs() < 1e-2,
        "{} vs {}",
        ss.value,
        fs.value
    );
}

#[test]
fn pac_bayes_bisection_finds_the_noise_level() {
    // Error rise with plain noise sigma z: k sigma^2 |z|^2 ~ k sigma^2 n, so the target 0.1
    // is met at sigma = sqrt(0.1 / (k n)) = 0.1 for n = 1000, k = 0.01.
    let mut q = Quadratic::new(vec![1.0; 1000], 0.0);
    q.k = 0.01;
    let r = pac_bayes(&q, &PacBayesOptions::default()).unwrap();
    assert!((r.sigma - 0.1).abs() < 0.1 * 0.1, "sigma {}", r.sigma);
    assert!(
        (r.rise - 0.1).abs() <= 1e-2 + 1e-9,
        "stopped at rise {}",
        r.rise
    );
    assert!((r.flatness - 1.0 / (r.sigma * r.sigma)).abs() < 1e-9);
    assert!(r.error < 1e-9);
    // Four times the sensitivity, half the sigma, four times the flatness measure.
    q.k = 0.04;
    let r4 = pac_bayes(&q, &PacBayesOptions::default()).unwrap();
    assert!(
        (r4.sigma / r.sigma - 0.5).abs() < 0.1,
        "{} vs {}",
        r4.sigma,
        r.sigma
    );
}

/// The MLP's parameters with the Dinh et al. rescaling: layer 1 (weight and bias) times `a`,
/// layer 2's weight divided by `a`. The network computes the same function (ReLU is
/// positively homogeneous); with a = 4 (a power of two) even bit for bit.
fn rescaled(params: &ParamSet, a: f64) -> ParamSet {
    params.map(|info, t| match info.name.as_str() {
        "fc1.weight" | "fc1.bias" => t.clone().mul_scalar(a),
        "fc2.weight" => t.clone().div_scalar(a),
        _ => t.clone(),
    })
}

#[test]
fn adaptive_measures_are_invariant_to_rescaling_and_curvature_is_not() {
    let net = mlp(21);
    // Labels from the network itself: error 0 at the point, so weight noise can raise it.
    let (_, images, _) = net.data(64, 64, 6, DType::F32);
    let params = net.params(DType::F32);
    let logits = Forward::new(params.tensors(), BatchNormMode::Running).logits(
        &net.layers,
        common::batches(&images, &[0; 64], net.input, 64, DType::F32)[0]
            .0
            .clone(),
    );
    let labels: Vec<usize> = logits
        .argmax(1)
        .into_data()
        .convert::<i64>()
        .try_into_vec::<i64>()
        .unwrap()
        .into_iter()
        .map(|l| l as usize)
        .collect();
    let batches = common::batches(&images, &labels, net.input, 64, DType::F32);
    let original =
        LossModel::new(&net.layers, params, CurvatureScope::Weights, &batches, 64).unwrap();
    let scaled = original.at(rescaled(original.base(), 4.0));
    let (l1, l2) = (
        original.evaluate(&original.point()),
        scaled.evaluate(&scaled.point()),
    );
    assert!(
        (l1.loss - l2.loss).abs() < 1e-6 && l1.error == l2.error,
        "same function: {l1:?} vs {l2:?}"
    );
    assert_eq!(l1.error, 0.0);

    let close = |a: f64, b: f64, what: &str| {
        assert!(
            (a - b).abs() <= 1e-4 * a.abs().max(b.abs()) + 1e-9,
            "{what}: {a} vs {b} should agree"
        )
    };
    let apart = |a: f64, b: f64, what: &str| {
        assert!(
            (a - b).abs() > 0.2 * a.abs().max(b.abs()),
            "{what}: {a} vs {b} should differ"
        )
    };

    let avg = AverageOptions {
        rho: 0.05,
        scaling: Scaling::Adaptive,
        samples: 6,
        seed: 3,
    };
    let (a1, a2) = (
        average_case(&original, &avg).unwrap(),
        average_case(&scaled, &avg).unwrap(),
    );
    assert!(
        a1.value > 0.0,
        "noise raises the loss at this point: {a1:?}"
    );
    close(a1.value, a2.value, "average-case adaptive sharpness");

    let worst = WorstCaseOptions {
        rho: 0.5,
        steps: 5,
        ..WorstCaseOptions::default()
    };
    let (w1, w2) = (
        worst_case_adaptive(&original, &worst).unwrap(),
        worst_case_adaptive(&scaled, &worst).unwrap(),
    );
    assert!(
        w1.value > a1.value.max(0.0),
        "worst case above average case: {w1:?} vs {a1:?}"
    );
    close(w1.value, w2.value, "adaptive worst-case sharpness");

    let mag = PacBayesOptions {
        samples: 4,
        depth: 10,
        magnitude_eps: Some(0.0),
        ..PacBayesOptions::default()
    };
    let (p1, p2) = (
        pac_bayes(&original, &mag).unwrap(),
        pac_bayes(&scaled, &mag).unwrap(),
    );
    assert!(
        p1.sigma < 1.0 && (p1.rise - 0.1).abs() < 0.05,
        "the search found its target: {p1:?}"
    );
    close(p1.sigma, p2.sigma, "magnitude-aware PAC-Bayes sigma");

    // Not invariant: lambda_max, Keskar's measure, plain average-case sharpness and plain
    // PAC-Bayes flatness.
    let lmax = |m: &LossModel| {
        extreme_eigenvalues(
            &LossHessian::new(m, HvpOptions::default()).unwrap(),
            1,
            20,
            0,
        )
        .unwrap()
        .top[0]
    };
    let (h1, h2) = (lmax(&original), lmax(&scaled));
    println!(
        "lambda_max {h1:.4} -> {h2:.4} under the rescaling; adaptive average {:.4e}, worst {:.4e}",
        a1.value, w1.value
    );
    apart(h1, h2, "lambda_max");
    let k = KeskarOptions::default();
    apart(
        keskar(&original, &k).unwrap().value,
        keskar(&scaled, &k).unwrap().value,
        "Keskar sharpness",
    );
    let plain = AverageOptions {
        scaling: Scaling::Plain,
        ..avg
    };
    apart(
        average_case(&original, &plain).unwrap().value,
        average_case(&scaled, &plain).unwrap().value,
        "plain average-case sharpness",
    );
    let plain_pb = PacBayesOptions {
        magnitude_eps: None,
        ..mag
    };
    let (q1, q2) = (
        pac_bayes(&original, &plain_pb).unwrap(),
        pac_bayes(&scaled, &plain_pb).unwrap(),
    );
    println!(
        "PAC-Bayes sigma: magnitude-aware {:.4} -> {:.4}, plain {:.4} -> {:.4}",
        p1.sigma, p2.sigma, q1.sigma, q2.sigma
    );
    apart(q1.sigma, q2.sigma, "plain PAC-Bayes sigma");
}

#[test]
fn measures_are_seeded() {
    let net = mlp(4);
    let (batches, _, _) = net.data(32, 32, 1, DType::F32);
    let model = LossModel::new(
        &net.layers,
        net.params(DType::F32),
        CurvatureScope::Weights,
        &batches,
        32,
    )
    .unwrap();
    let o = AverageOptions {
        samples: 3,
        ..AverageOptions::default()
    };
    assert_eq!(
        average_case(&model, &o).unwrap(),
        average_case(&model, &o).unwrap()
    );
    assert_ne!(
        average_case(&model, &o).unwrap(),
        average_case(&model, &AverageOptions { seed: 1, ..o }).unwrap()
    );
    let _ = rng(0);
}
