//! The cached reports (`hessian`, `sharpness`) and the sharded, resumable eigen-ratio maps, on
//! tiny networks; and the machinery on networks of the paper's zoo (BatchNorm, max pools,
//! residual blocks) at a tiny width.

mod common;

use burn::tensor::{DType, Device, Int, Tensor, TensorData};
use common::relu_net;
use landscape_curvature::eigen_ratio::{
    EigenRatioJob, EigenRatioMeta, EigenRatioRequest, compute, read_map,
};
use landscape_curvature::job::{
    CURVATURE_VERSION, CurvatureInput, HessianOptions, SharpnessOptions, hessian, sharpness,
};
use landscape_curvature::lanczos::DensityOptions;
use landscape_curvature::vector::rng;
use landscape_curvature::{
    Batch, CurvatureScope, HessianOperator, HvpOptions, LossHessian, LossModel,
};
use landscape_job::shard::Shard;
use landscape_models::{Network, NetworkSpec, ParamScope};
use landscape_surface::direction::{DirNorm, Direction, Ignore};
use landscape_surface::grid::Grid;

fn merge(into: &std::path::Path, others: &[std::path::PathBuf]) -> (usize, bool) {
    let out = landscape_job::grid::merge::<EigenRatioMeta>(into, others).unwrap();
    (out.points_done, out.complete)
}
use landscape_surface::surface::PointRef;
use std::path::Path;

fn point() -> PointRef {
    PointRef {
        run: "tiny-0123456789ab".into(),
        epoch: 3,
        checkpoint: landscape_core::hash::ContentHash::of_bytes(b"tiny"),
    }
}

#[test]
fn hessian_report_is_written_and_then_found() {
    let net = relu_net(1);
    let (batches, _, _) = net.data(48, 16, 2, DType::F32);
    let dir = tempfile::tempdir().unwrap();
    let input = CurvatureInput {
        layers: &net.layers,
        params: net.params(DType::F32),
        point: point(),
        train_examples: 48,
        batches: &batches,
        micro_batch: 24,
    };
    let options = HessianOptions {
        top_k: 3,
        lanczos_steps: 25,
        trace_probes: 10,
        hutchpp_products: 12,
        power_iterations: 50,
        density: Some(DensityOptions {
            probes: 2,
            steps: 20,
            grid_points: 300,
            sigma_rel: 0.02,
        }),
        ..HessianOptions::default()
    };
    let first = hessian(dir.path(), &input, &options).unwrap();
    assert!(!first.cached);
    let r = &first.report;
    assert!(
        first
            .dir
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("hessian-")
    );
    assert_eq!(r.parameters, 4 * 2 * 9 + 4 + 16 * 8 + 8 + 8 * 3 + 3);
    assert_eq!(r.examples, 48);
    assert!(r.eigen.top[0] >= r.eigen.top[1] && r.eigen.top[1] >= r.eigen.top[2]);
    assert!((r.ratio - (r.eigen.lambda_min / r.eigen.top[0]).abs()).abs() < 1e-12);
    let power = r.power.unwrap();
    assert!(
        (power.eigenvalue - r.eigen.top[0]).abs() < 2e-2 * r.eigen.top[0],
        "power {} vs Lanczos {}",
        power.eigenvalue,
        r.eigen.top[0]
    );
    let (h, hpp, slq) = (
        r.hutchinson.unwrap(),
        r.hutchpp.unwrap(),
        r.density_trace.unwrap(),
    );
    println!(
        "trace: Hutchinson {:.4} +- {:.4}, Hutch++ {:.4}, quadrature {:.4}",
        h.trace, h.stderr, hpp.trace, slq
    );
    assert!((hpp.trace - h.trace).abs() < 4.0 * h.stderr + 0.1 * h.trace.abs());
    assert_eq!(
        r.products,
        25 + 50.min(power.iterations) + 10 + hpp.products + 40
    );
    let spectrum = std::fs::read_to_string(first.dir.join("spectrum.csv")).unwrap();
    assert_eq!(spectrum.lines().next(), Some("lambda,density"));
    assert_eq!(spectrum.lines().count(), 301);
    assert!(first.dir.join("quadrature.csv").exists() && first.dir.join("meta.toml").exists());
    // Found the second time, identical; another setting is another report.
    let second = hessian(dir.path(), &input, &options).unwrap();
    assert!(second.cached);
    assert_eq!(second.report, first.report);
    let other = hessian(
        dir.path(),
        &input,
        &HessianOptions {
            seed: 1,
            trace_probes: 0,
            density: None,
            ..options.clone()
        },
    )
    .unwrap();
    assert_ne!(other.dir, first.dir);
    // A report edited by hand is refused rather than trusted.
    let path = first.dir.join("hessian.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("top_k = 3", "top_k = 4");
    std::fs::write(&path, text).unwrap();
    assert!(hessian(dir.path(), &input, &options).is_err());
}

#[test]
fn sharpness_table_is_written_and_then_found() {
    let net = relu_net(2);
    let (batches, _, _) = net.data(32, 32, 3, DType::F32);
    let dir = tempfile::tempdir().unwrap();
    let input = CurvatureInput {
        layers: &net.layers,
        params: net.params(DType::F32),
        point: point(),
        train_examples: 32,
        batches: &batches,
        micro_batch: 32,
    };
    let options = SharpnessOptions {
        keskar_subspace: 5,
        average_samples: 3,
        worst_steps: 3,
        pac_bayes_samples: 2,
        pac_bayes_depth: 6,
        lambda_max_steps: 8,
        ..SharpnessOptions::default()
    };
    let first = sharpness(dir.path(), &input, &options).unwrap();
    let measures: Vec<&str> = first
        .report
        .rows
        .iter()
        .map(|r| r.measure.as_str())
        .collect();
    assert_eq!(
        measures,
        [
            "keskar",
            "keskar_subspace",
            "keskar",
            "keskar_subspace",
            "average_adaptive",
            "average_plain",
            "worst_adaptive",
            "pacbayes_flatness",
            "pacbayes_mag_flatness",
            "lambda_max"
        ]
    );
    let invariant: Vec<bool> = first
        .report
        .rows
        .iter()
        .map(|r| r.scale_invariant)
        .collect();
    assert_eq!(
        invariant,
        [
            false, false, false, false, true, false, true, false, false, false
        ]
    );
    assert!(first.report.rows.iter().all(|r| r.value.is_finite()));
    let k = &first.report.rows;
    assert!(
        k[0].value > k[2].value,
        "eps 1e-3 box above eps 5e-4 box: {} vs {}",
        k[0].value,
        k[2].value
    );
    let second = sharpness(dir.path(), &input, &options).unwrap();
    assert!(second.cached);
    assert_eq!(second.report, first.report);

    // Killed after the first two measures: the journal's rows are kept (marked here by a value
    // no computation gives), the rest computed again equal the uninterrupted table.
    std::fs::remove_file(first.dir.join("sharpness.csv")).unwrap();
    let kept: String = first.report.rows[..2]
        .iter()
        .map(|r| {
            format!(
                "[[rows]]\nmeasure = \"{}\"\nsetting = \"{}\"\nvalue = 1234.5\nunits = \"{}\"\nscale_invariant = {}\nevaluations = {}\n",
                r.measure, r.setting, r.units, r.scale_invariant, r.evaluations
            )
        })
        .collect();
    std::fs::write(first.dir.join("partial.toml"), format!("steps = 2\n{kept}")).unwrap();
    let resumed = sharpness(dir.path(), &input, &options).unwrap();
    assert!(!resumed.cached);
    let rows = &resumed.report.rows;
    assert_eq!(rows.len(), first.report.rows.len());
    assert!(
        rows[..2].iter().all(|r| r.value == 1234.5),
        "journal rows kept"
    );
    assert_eq!(
        rows[2..],
        first.report.rows[2..],
        "the rest as uninterrupted"
    );
    assert!(!first.dir.join("partial.toml").exists(), "journal removed");
}

fn ratio_job<'a>(
    layers: &'a [landscape_models::graph::Layer],
    params: &landscape_models::ParamSet,
    batches: &'a [Batch],
) -> EigenRatioJob<'a> {
    let directions = Direction::random(
        params,
        ParamScope::Weights,
        DirNorm::Filter,
        Ignore::Biasbn,
        5,
        2,
    );
    let meta = EigenRatioMeta {
        engine: CURVATURE_VERSION,
        base: point(),
        directions: directions.iter().map(|d| d.recipe.clone()).collect(),
        grid: Grid {
            x: "-0.5:0.5:3".parse().unwrap(),
            y: Some("-0.5:0.5:3".parse().unwrap()),
        },
        train_examples: 32,
        scope: CurvatureScope::Weights,
        lanczos_steps: 12,
        eps: HvpOptions::default().eps,
        seed: 5,
    };
    EigenRatioJob {
        meta,
        layers,
        base: params.clone(),
        directions,
        batches,
        micro_batch: 32,
    }
}

fn journal_rows(dir: &Path, name: &str) -> usize {
    std::fs::read_to_string(dir.join(name))
        .unwrap()
        .lines()
        .count()
        - 1
}

#[test]
fn eigen_ratio_maps_shard_resume_and_merge() {
    let net = relu_net(3);
    let (batches, _, _) = net.data(32, 32, 4, DType::F32);
    let params = net.params(DType::F32);
    let job = ratio_job(&net.layers, &params, &batches);
    let (whole, parts) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let all = job.run(whole.path(), Shard::WHOLE, "whole").unwrap();
    assert!(all.complete && all.points_done == 9);
    assert!(
        all.dir
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("eigratio-")
    );
    let rows = read_map(&all.dir).unwrap();
    assert_eq!(rows.len(), 9);
    for r in &rows {
        assert!(r.lambda_max > 0.0 && r.lambda_min <= r.lambda_max);
        assert!((r.ratio - (r.lambda_min / r.lambda_max).abs()).abs() < 1e-12);
    }
    // The centre is the trained point: the same Lanczos run as `landscape hessian`.
    let centre = rows.iter().find(|r| r.ix == 1 && r.iy == 1).unwrap();
    let model = LossModel::new(
        &net.layers,
        params.clone(),
        CurvatureScope::Weights,
        &batches,
        32,
    )
    .unwrap();
    let e = landscape_curvature::lanczos::extreme_eigenvalues(
        &LossHessian::new(&model, HvpOptions::default()).unwrap(),
        1,
        12,
        5,
    )
    .unwrap();
    assert!(
        (centre.lambda_max - e.top[0]).abs() < 1e-9 * e.top[0]
            && (centre.lambda_min - e.lambda_min).abs() < 1e-6
    );

    // The request form (what the command and the spec use) is the same map; with the
    // directions read from the map's file (as from a surface's), the same numbers.
    let input = CurvatureInput {
        layers: &net.layers,
        params: params.clone(),
        point: point(),
        train_examples: 32,
        batches: &batches,
        micro_batch: 32,
    };
    let request = EigenRatioRequest {
        x: "-0.5:0.5:3".parse().unwrap(),
        y: Some("-0.5:0.5:3".parse().unwrap()),
        seed: 5,
        directions: None,
        lanczos_steps: 12,
        scope: CurvatureScope::Weights,
        eps: HvpOptions::default().eps,
        subset: 32,
        micro_batch: 32,
    };
    let found = compute(whole.path(), &input, &request, Shard::WHOLE, "again").unwrap();
    assert_eq!(found.dir, all.dir);
    let from_file = EigenRatioRequest {
        directions: Some(all.dir.join("directions.safetensors")),
        ..request
    };
    let elsewhere = tempfile::tempdir().unwrap();
    let copy = compute(elsewhere.path(), &input, &from_file, Shard::WHOLE, "file").unwrap();
    assert_ne!(copy.dir.file_name(), all.dir.file_name());
    for (a, b) in read_map(&copy.dir).unwrap().iter().zip(&rows) {
        assert!(
            (a.ratio - b.ratio).abs() <= 1e-9 * b.ratio.abs().max(1e-9),
            "{a:?} vs {b:?}"
        );
    }

    // Shard 1 of 2 in one place, shard 2 of 2 in another, merged: the same map.
    let one = job
        .run(parts.path(), Shard { index: 1, count: 2 }, "1/2")
        .unwrap();
    assert!(!one.complete && one.points_done == 5);
    let other = tempfile::tempdir().unwrap();
    let two = job
        .run(other.path(), Shard { index: 2, count: 2 }, "2/2")
        .unwrap();
    assert_eq!(two.points_done, 4);
    assert_eq!(merge(&one.dir, std::slice::from_ref(&two.dir)), (9, true));
    let merged = read_map(&one.dir).unwrap();
    for (a, b) in merged.iter().zip(&rows) {
        assert!(
            (a.ratio - b.ratio).abs() <= 1e-9 * b.ratio.abs().max(1e-9),
            "merged {a:?} vs whole {b:?}"
        );
    }

    // Resuming: a run of the whole grid over shard 1's journal computes only the 4 missing
    // points.
    let resumed = tempfile::tempdir().unwrap();
    let first = job
        .run(resumed.path(), Shard { index: 1, count: 2 }, "1/2")
        .unwrap();
    let done = job.run(resumed.path(), Shard::WHOLE, "rest").unwrap();
    assert!(done.complete);
    assert_eq!(journal_rows(&first.dir, "points.1-of-2.csv"), 5);
    assert_eq!(journal_rows(&first.dir, "points.1-of-1.csv"), 4);
    // Another map (other directions) refuses to merge.
    let mut another = ratio_job(&net.layers, &params, &batches);
    another.meta.lanczos_steps = 5;
    let elsewhere = tempfile::tempdir().unwrap();
    let a = another
        .run(elsewhere.path(), Shard { index: 1, count: 9 }, "x")
        .unwrap();
    assert!(landscape_job::grid::merge::<EigenRatioMeta>(&one.dir, &[a.dir]).is_err());
}

/// Images `[n, 3, 32, 32]` and labels on the CPU.
fn cifar_like(n: usize, seed: u64) -> Vec<Batch> {
    let shape = landscape_curvature::VecShape::new(vec![n * 3 * 32 * 32], Device::flex());
    let x = shape
        .gaussian(&mut rng(seed))
        .into_parts()
        .remove(0)
        .reshape([n, 3, 32, 32]);
    let y = Tensor::<1, Int>::from_data(
        TensorData::new(
            (0..n as i64)
                .map(|i| (i * 7 + seed as i64) % 10)
                .collect::<Vec<_>>(),
            [n],
        ),
        &Device::flex(),
    );
    vec![(x, y)]
}

#[test]
fn zoo_networks_replay_exactly_with_batchnorm_pools_and_skips() {
    for (arch, width) in [("vgg9", 0.0625), ("resnet8", 0.25)] {
        let net = Network::new(NetworkSpec {
            arch: arch.parse().unwrap(),
            width,
            classes: 10,
        })
        .unwrap();
        let params = net.init(3, &Device::flex());
        let batches = cifar_like(8, 1);
        let model =
            LossModel::new(net.layers(), params, CurvatureScope::Weights, &batches, 8).unwrap();
        let shape = model.shape();
        let mut stream = rng(2);
        let (v, w) = (shape.gaussian(&mut stream), shape.gaussian(&mut stream));
        let op = LossHessian::new(&model, HvpOptions::default()).unwrap();
        let (hv, hw) = (op.apply(&v), op.apply(&w));
        let asym = (w.dot(&hv) - v.dot(&hw)).abs() / (hv.norm() * w.norm());
        let coarse = LossHessian::new(
            &model,
            HvpOptions {
                eps: 1e-1,
                ..HvpOptions::default()
            },
        )
        .unwrap()
        .apply(&v);
        let spread = coarse.sub(&hv).norm() / hv.norm();
        println!(
            "{arch}: {} parameters, asymmetry {asym:.2e}, H v change from e = 1e-2 to 1e-1 {spread:.2e}",
            shape.numel()
        );
        assert!(asym < 1e-3, "{arch}: asymmetry {asym:.2e}");
        assert!(spread < 2e-2, "{arch}: spread {spread:.2e}");
        // The loss the curvature is of is the evaluator's (BatchNorm folded, inference mode).
        let loss = model.evaluate(&model.point()).loss;
        let (l, _) = model.loss_and_gradient(&model.point());
        assert!(
            (loss - l).abs() < 1e-4 * l,
            "{arch}: folded {loss} vs unfolded {l}"
        );
    }
}
