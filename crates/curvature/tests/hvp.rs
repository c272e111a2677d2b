//! Hessian-vector products through the real code path: softmax regression against its
//! analytic Hessian, a ReLU network against an f64 reference, batch-size invariance, and why
//! the masks must be replayed.

mod common;

use burn::tensor::DType;
use common::{rel, relu_net, softmax_regression};
use landscape_core::linalg::symmetric_eigen;
use landscape_curvature::lanczos::extreme_eigenvalues;
use landscape_curvature::vector::rng;
use landscape_curvature::{
    CurvatureScope, HessianOperator, HvpOptions, LossHessian, LossModel, ParamVec,
};

/// The analytic Hessian of softmax regression's mean cross-entropy,
/// `(1/n) sum_i (diag(p_i) - p_i p_i^T) kron a_i a_i^T` with `a_i = [x_i; 1]`, in the layout's
/// order (weight `[k, d]` row-major, then bias `[k]`).
fn softmax_hessian(w: &[f32], b: &[f32], images: &[f32], n: usize, d: usize, k: usize) -> Vec<f64> {
    let dim = k * d + k;
    let index = |c: usize, j: usize| if j < d { c * d + j } else { k * d + c };
    let mut h = vec![0.0; dim * dim];
    for i in 0..n {
        let x = &images[i * d..(i + 1) * d];
        let z: Vec<f64> = (0..k)
            .map(|c| {
                b[c] as f64
                    + (0..d)
                        .map(|j| w[c * d + j] as f64 * x[j] as f64)
                        .sum::<f64>()
            })
            .collect();
        let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = z.iter().map(|v| (v - m).exp()).collect();
        let s: f64 = e.iter().sum();
        let p: Vec<f64> = e.iter().map(|v| v / s).collect();
        let a: Vec<f64> = x.iter().map(|v| *v as f64).chain([1.0]).collect();
        for c in 0..k {
            for c2 in 0..k {
                let s = if c == c2 { p[c] } else { 0.0 } - p[c] * p[c2];
                for j in 0..=d {
                    for j2 in 0..=d {
                        h[index(c, j) * dim + index(c2, j2)] += s * a[j] * a[j2] / n as f64;
                    }
                }
            }
        }
    }
    h
}

fn matvec(h: &[f64], v: &[f64]) -> Vec<f64> {
    let n = v.len();
    (0..n)
        .map(|i| (0..n).map(|j| h[i * n + j] * v[j]).sum())
        .collect()
}

#[test]
fn softmax_regression_matches_its_analytic_hessian() {
    let net = softmax_regression(11);
    let (batches, images, _) = net.data(48, 16, 5, DType::F32);
    let model = LossModel::new(
        &net.layers,
        net.params(DType::F32),
        CurvatureScope::Weights,
        &batches,
        64,
    )
    .unwrap();
    let exact = softmax_hessian(&net.values[0], &net.values[1], &images, 48, 8, 3);
    let op = LossHessian::new(&model, HvpOptions::default()).unwrap();
    for seed in 0..3 {
        let v = model.shape().gaussian(&mut rng(seed));
        let got = op.apply(&v).to_host_flat();
        let want = matvec(&exact, &v.to_host_flat());
        let err = rel(&got, &want);
        println!("softmax regression HVP relative error {err:.2e}");
        assert!(err < 5e-4, "HVP relative error {err:.2e}");
    }
    let e = symmetric_eigen(&exact, 27);
    let lanczos = extreme_eigenvalues(&op, 3, 27, 1).unwrap();
    let lmax = e.values[26];
    println!(
        "softmax regression eigenvalues: Lanczos {:?} lambda_min {:.2e}; exact {:?}",
        lanczos.top,
        lanczos.lambda_min,
        &e.values[24..]
    );
    for (i, got) in lanczos.top.iter().enumerate() {
        assert!(
            (got - e.values[26 - i]).abs() < 1e-3 * lmax,
            "eigenvalue {i}: {got} vs {}",
            e.values[26 - i]
        );
    }
    // Softmax is invariant to adding one vector to every class: a null space, lambda_min = 0.
    assert!(e.values[0].abs() < 1e-12);
    assert!(
        lanczos.lambda_min.abs() < 1e-3 * lmax,
        "lambda_min {}",
        lanczos.lambda_min
    );
}

/// `H v` of the ReLU network in f64 with a tiny step: the reference (truncation 1e-10,
/// rounding 1e-11).
fn reference_hvp(v: &ParamVec, data_seed: u64) -> Vec<f64> {
    let net = relu_net(3);
    let (batches, _, _) = net.data(64, 64, data_seed, DType::F64);
    let model = LossModel::new(
        &net.layers,
        net.params(DType::F64),
        CurvatureScope::Weights,
        &batches,
        64,
    )
    .unwrap();
    let v64 = model.shape().from_host(
        v.to_host()
            .into_iter()
            .map(|p| p.into_iter().map(|x| x as f32).collect())
            .collect(),
    );
    let op = LossHessian::new(
        &model,
        HvpOptions {
            eps: 1e-5,
            ..HvpOptions::default()
        },
    )
    .unwrap();
    op.apply(&v64).to_host_flat()
}

#[test]
fn replayed_differences_match_an_f64_reference_across_steps() {
    let net = relu_net(3);
    let (batches, _, _) = net.data(64, 64, 9, DType::F32);
    let model = LossModel::new(
        &net.layers,
        net.params(DType::F32),
        CurvatureScope::Weights,
        &batches,
        64,
    )
    .unwrap();
    let v = model.shape().gaussian(&mut rng(4));
    let v = v.scale(1.0 / v.norm());
    let reference = reference_hvp(&v, 9);
    println!("HVP relative error against the f64 reference (||v|| = 1):");
    println!("{:>8} {:>12} {:>12}", "e", "replay", "free");
    let mut replay_errors = Vec::new();
    for eps in [1e-4, 1e-3, 1e-2, 3e-2, 1e-1] {
        let replay = LossHessian::new(
            &model,
            HvpOptions {
                eps,
                ..HvpOptions::default()
            },
        )
        .unwrap()
        .apply(&v)
        .to_host_flat();
        let free = LossHessian::new(
            &model,
            HvpOptions {
                eps,
                replay: false,
                ..HvpOptions::default()
            },
        )
        .unwrap()
        .apply(&v)
        .to_host_flat();
        let (er, ef) = (rel(&replay, &reference), rel(&free, &reference));
        println!("{eps:>8.0e} {er:>12.2e} {ef:>12.2e}");
        replay_errors.push((eps, er, ef));
    }
    for &(eps, er, _) in &replay_errors {
        if (1e-3..=3e-2).contains(&eps) {
            assert!(
                er < 1e-3,
                "replayed HVP at e = {eps}: relative error {er:.2e}"
            );
        }
    }
    // The default step is within the accurate range.
    let default = LossHessian::new(&model, HvpOptions::default())
        .unwrap()
        .apply(&v)
        .to_host_flat();
    assert!(
        rel(&default, &reference) < 2e-4,
        "default step: {:.2e}",
        rel(&default, &reference)
    );
    // Without replay, a large step crosses kinks and the estimate is far off.
    let (_, _, free_big) = replay_errors[4];
    assert!(
        free_big > 3e-2,
        "free differences at e = 0.1 should be wrong, error {free_big:.2e}"
    );
}

#[test]
fn the_mean_does_not_depend_on_the_batching() {
    let net = relu_net(5);
    let (big, images, labels) = net.data(64, 64, 2, DType::F32);
    let small = common::batches(&images, &labels, net.input, 16, DType::F32);
    let params = net.params(DType::F32);
    let m64 = LossModel::new(
        &net.layers,
        params.clone(),
        CurvatureScope::Weights,
        &big,
        64,
    )
    .unwrap();
    let m16 = LossModel::new(
        &net.layers,
        params.clone(),
        CurvatureScope::Weights,
        &small,
        64,
    )
    .unwrap();
    let cut16 = LossModel::new(&net.layers, params, CurvatureScope::Weights, &big, 16).unwrap();
    assert_eq!(
        (m64.batch_count(), m16.batch_count(), cut16.batch_count()),
        (1, 4, 4)
    );
    let v = m64.shape().gaussian(&mut rng(8));
    let h64 = LossHessian::new(&m64, HvpOptions::default())
        .unwrap()
        .apply(&v)
        .to_host_flat();
    for model in [&m16, &cut16] {
        let h = LossHessian::new(model, HvpOptions::default())
            .unwrap()
            .apply(&v)
            .to_host_flat();
        assert!(
            rel(&h, &h64) < 1e-4,
            "batches of 16 vs 64: {:.2e}",
            rel(&h, &h64)
        );
        let (l, g) = model.loss_and_gradient(&model.point());
        let (l64, g64) = m64.loss_and_gradient(&m64.point());
        assert!((l - l64).abs() < 1e-5 * l64.abs(), "mean loss {l} vs {l64}");
        assert!(rel(&g.to_host_flat(), &g64.to_host_flat()) < 1e-4);
    }
    assert!((m16.evaluate(&m16.point()).loss - m64.evaluate(&m64.point()).loss).abs() < 1e-5);
}

#[test]
fn replay_is_symmetric_and_stable_where_free_differences_are_not() {
    let net = relu_net(7);
    let (batches, _, _) = net.data(64, 64, 3, DType::F32);
    let model = LossModel::new(
        &net.layers,
        net.params(DType::F32),
        CurvatureScope::Weights,
        &batches,
        64,
    )
    .unwrap();
    let shape = model.shape();
    let mut stream = rng(1);
    let (v, w) = (shape.gaussian(&mut stream), shape.gaussian(&mut stream));
    let (v, w) = (v.scale(1.0 / v.norm()), w.scale(1.0 / w.norm()));
    let measure = |replay: bool| {
        let mut asym: f64 = 0.0;
        let mut spread: f64 = 0.0;
        let base = LossHessian::new(
            &model,
            HvpOptions {
                eps: 1e-2,
                replay,
                ..HvpOptions::default()
            },
        )
        .unwrap()
        .apply(&v);
        let scale = base.norm();
        for eps in [1e-3, 1e-2, 1e-1] {
            let op = LossHessian::new(
                &model,
                HvpOptions {
                    eps,
                    replay,
                    ..HvpOptions::default()
                },
            )
            .unwrap();
            let (hv, hw) = (op.apply(&v), op.apply(&w));
            asym = asym.max((w.dot(&hv) - v.dot(&hw)).abs() / scale);
            spread = spread.max(hv.sub(&base).norm() / scale);
        }
        (asym, spread)
    };
    let (asym_r, spread_r) = measure(true);
    let (asym_f, spread_f) = measure(false);
    println!(
        "replay: asymmetry {asym_r:.2e}, spread over e {spread_r:.2e}; free: {asym_f:.2e}, {spread_f:.2e}"
    );
    assert!(
        asym_r < 2e-3,
        "replayed w^T H v - v^T H w = {asym_r:.2e} (relative)"
    );
    assert!(
        spread_r < 1e-2,
        "replayed H v varies {spread_r:.2e} over e in 1e-3..1e-1"
    );
    assert!(
        asym_f > 5.0 * asym_r.max(1e-4) || spread_f > 5.0 * spread_r,
        "free differences should be worse: {asym_f:.2e}, {spread_f:.2e}"
    );
    assert!(
        spread_f > 3e-2,
        "free H v should change with e: {spread_f:.2e}"
    );
}

#[test]
fn gradients_are_the_mean_loss_gradient() {
    // The replayed gradient at the recording point is the gradient; a finite difference of the
    // loss along a direction agrees with it.
    let net = relu_net(2);
    let (batches, _, _) = net.data(32, 32, 4, DType::F64);
    let model = LossModel::new(
        &net.layers,
        net.params(DType::F64),
        CurvatureScope::WeightsNoBiasbn,
        &batches,
        32,
    )
    .unwrap();
    assert_eq!(model.selected().len(), 3, "conv, fc1, fc2 weights");
    let w = model.point();
    let (loss, g) = model.loss_and_gradient(&w);
    let gates = model.record_gates(&w);
    assert!(
        rel(
            &model.replayed_gradient(&w, &gates).to_host_flat(),
            &g.to_host_flat()
        ) < 1e-12
    );
    let d = model.shape().gaussian(&mut rng(0));
    let h = 1e-6;
    let slope =
        (model.evaluate(&w.axpy(h, &d)).loss - model.evaluate(&w.axpy(-h, &d)).loss) / (2.0 * h);
    assert!(
        (slope - g.dot(&d)).abs() < 1e-6 * g.dot(&d).abs().max(1.0),
        "{slope} vs {}",
        g.dot(&d)
    );
    assert!((model.evaluate(&w).loss - loss).abs() < 1e-12);
}
