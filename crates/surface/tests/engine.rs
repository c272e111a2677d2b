//! The engine against answers known without it: origin and endpoints, filter norms, the
//! paper's scale invariance, grid indexing, shards, resume.

use burn::tensor::{Device, Distribution};
use landscape_data::{DatasetName, SyntheticConfig};
use landscape_job::grid::merge;
use landscape_job::job::JobMeta;
use landscape_job::journal::read_rows;
use landscape_job::shard::Shard;
use landscape_models::eval::{DeviceBatches, Evaluator, Precision};
use landscape_models::{Network, NetworkSpec, ParamKind, ParamScope, ParamSet};
use landscape_surface::direction::{DirNorm, Direction, Ignore};
use landscape_surface::grid::Grid;
use landscape_surface::points::PointRow;
use landscape_surface::surface::{PointRef, SurfaceJob, SurfaceKind, SurfaceMeta};

fn network() -> Network {
    Network::new(NetworkSpec {
        arch: "resnet20".parse().unwrap(),
        width: 0.25,
        classes: 10,
    })
    .unwrap()
}

/// A model with non-trivial BatchNorm state, so running statistics matter.
fn model(net: &Network, seed: u64) -> ParamSet {
    let device = Device::flex();
    device.seed(seed);
    net.init(seed, &device).map(|info, t| match info.kind {
        ParamKind::BnRunningVar => t.clone().random_like(Distribution::Uniform(0.5, 2.0)),
        ParamKind::BnRunningMean | ParamKind::BnBias => {
            t.clone().random_like(Distribution::Normal(0.0, 0.2))
        }
        _ => t.clone(),
    })
}

fn data(n: usize) -> DeviceBatches {
    let synthetic = SyntheticConfig {
        seed: 2,
        train: n,
        test: 16,
    };
    let ds = landscape_data::load(
        &DatasetName::Synthetic,
        &landscape_data::DataLocations::from_env("/nonexistent"),
        &synthetic,
    )
    .unwrap();
    landscape_train::data::upload(&ds.train, &ds.normalization, &Device::flex()).unwrap()
}

fn meta(grid: Grid, directions: &[Direction], scope: ParamScope) -> SurfaceMeta {
    SurfaceMeta {
        engine: 1,
        kind: SurfaceKind::Surface,
        base: PointRef {
            run: "test".into(),
            epoch: 0,
            checkpoint: landscape_core::hash::ContentHash::of_bytes(b"test"),
        },
        directions: directions.iter().map(|d| d.recipe.clone()).collect(),
        scope,
        grid,
        train_examples: 0,
        test: false,
        precision: Precision::F32,
    }
}

fn grid(x: &str, y: Option<&str>) -> Grid {
    Grid {
        x: x.parse().unwrap(),
        y: y.map(|y| y.parse().unwrap()),
    }
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
}

#[test]
fn filter_normalized_directions_have_the_filters_norms() {
    let net = network();
    let base = model(&net, 1);
    let d = &Direction::random(
        &base,
        ParamScope::Weights,
        DirNorm::Filter,
        Ignore::Biasbn,
        7,
        1,
    )[0];
    let host_base = base.to_host();
    for ((info, theta), dir) in net
        .layout()
        .entries()
        .iter()
        .zip(&host_base)
        .zip(&d.tensors)
    {
        let Some(dir) = dir else {
            assert!(!info.kind.is_learnable(), "{} missing", info.name);
            continue;
        };
        let dir: Vec<f32> = dir.to_data().try_into_vec::<f32>().unwrap();
        if info.shape.len() == 1 {
            assert!(
                dir.iter().all(|v| *v == 0.0),
                "{}: biasbn not ignored",
                info.name
            );
            continue;
        }
        let rows = info.shape[0];
        let per = dir.len() / rows;
        for r in 0..rows {
            let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
            let (a, b) = (
                norm(&dir[r * per..(r + 1) * per]),
                norm(&theta[r * per..(r + 1) * per]),
            );
            assert!(close(a, b, 1e-4), "{} filter {r}: {a} vs {b}", info.name);
        }
    }
    // ignore = none copies theta into 1-D tensors.
    let d = &Direction::random(
        &base,
        ParamScope::Weights,
        DirNorm::Filter,
        Ignore::None,
        7,
        1,
    )[0];
    let gamma = net
        .layout()
        .entries()
        .iter()
        .position(|e| e.name == "bn1.weight")
        .unwrap();
    assert_eq!(
        d.tensors[gamma]
            .as_ref()
            .unwrap()
            .to_data()
            .try_into_vec::<f32>()
            .unwrap(),
        host_base[gamma]
    );
}

fn curve(net: &Network, base: &ParamSet, norm: DirNorm, data: &DeviceBatches) -> Vec<f64> {
    let dirs = Direction::random(base, ParamScope::Weights, norm, Ignore::Biasbn, 11, 1);
    let ev = Evaluator::new(net.layers());
    [-0.5, 0.25, 0.75]
        .iter()
        .map(|&x| {
            ev.evaluate(
                &landscape_surface::direction::displaced(base, &dirs, &[x]),
                data,
            )
            .loss
        })
        .collect()
}

#[test]
fn filter_normalization_is_invariant_to_scaling_filters_before_batchnorm() {
    // paper.md claim 4: scale the filters in front of a BatchNorm by c (and the BatchNorm's
    // statistics with them, which training would do): the network computes the same function,
    // the filter-normalized curve stays, a raw Gaussian direction's curve changes.
    let net = network();
    let base = model(&net, 3);
    let c = 10.0;
    let scaled = base.map(|info, t| match info.name.as_str() {
        "layer1.0.conv1.weight"
        | "layer2.1.conv2.weight"
        | "layer1.0.bn1.running_mean"
        | "layer2.1.bn2.running_mean" => t.clone().mul_scalar(c),
        "layer1.0.bn1.running_var" | "layer2.1.bn2.running_var" => t.clone().mul_scalar(c * c),
        _ => t.clone(),
    });
    let data = data(128);
    let ev = Evaluator::new(net.layers());
    let (l0, l1) = (
        ev.evaluate(base.tensors(), &data).loss,
        ev.evaluate(scaled.tensors(), &data).loss,
    );
    assert!(
        close(l0, l1, 1e-4),
        "scaling changed the loss: {l0} vs {l1}"
    );
    let (a, b) = (
        curve(&net, &base, DirNorm::Filter, &data),
        curve(&net, &scaled, DirNorm::Filter, &data),
    );
    for (x, y) in a.iter().zip(&b) {
        assert!(
            close(*x, *y, 1e-3),
            "filter-normalized curve changed: {a:?} vs {b:?}"
        );
    }
    let (a, b) = (
        curve(&net, &base, DirNorm::None, &data),
        curve(&net, &scaled, DirNorm::None, &data),
    );
    let moved = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    assert!(
        moved > 1e-2,
        "raw direction curve did not change: {a:?} vs {b:?}"
    );
}

#[test]
fn non_square_surface_origin_and_indexing_are_right() {
    let net = network();
    let base = model(&net, 4);
    let data = data(64);
    let dirs = Direction::random(
        &base,
        ParamScope::Weights,
        DirNorm::Filter,
        Ignore::Biasbn,
        5,
        2,
    );
    let g = grid("-1:1:5", Some("-0.5:0.5:3"));
    let job = SurfaceJob {
        meta: meta(g, &dirs, ParamScope::Weights),
        network: &net,
        base: base.clone(),
        directions: dirs.clone(),
        train: &data,
        test: None,
    };
    let work = tempfile::tempdir().unwrap();
    let out = job.run(work.path(), Shard::WHOLE, "test").unwrap();
    assert!(out.complete);
    let rows: Vec<PointRow> = read_rows(&out.dir.join("surface.csv")).unwrap();
    assert_eq!(rows.len(), 15);
    let ev = Evaluator::new(net.layers());
    let origin = rows.iter().find(|r| r.ix == 2 && r.iy == 1).unwrap();
    assert_eq!((origin.x, origin.y), (0.0, 0.0));
    assert!(close(
        origin.train_loss,
        ev.evaluate(base.tensors(), &data).loss,
        1e-5
    ));
    // (ix, iy) = (4, 0) is (x, y) = (1, -0.5): check against a direct evaluation there.
    let corner = rows.iter().find(|r| r.ix == 4 && r.iy == 0).unwrap();
    assert_eq!((corner.x, corner.y), (1.0, -0.5));
    let direct = ev
        .evaluate(
            &landscape_surface::direction::displaced(&base, &dirs, &[1.0, -0.5]),
            &data,
        )
        .loss;
    assert!(
        close(corner.train_loss, direct, 1e-5),
        "{} vs {direct}",
        corner.train_loss
    );
    let swapped = ev
        .evaluate(
            &landscape_surface::direction::displaced(&base, &dirs, &[-0.5, 1.0]),
            &data,
        )
        .loss;
    assert!(!close(corner.train_loss, swapped, 1e-3), "x and y swapped");
    // The directions were saved and load back equal.
    let loaded = landscape_surface::direction::load(
        &out.dir.join("directions.safetensors"),
        net.layout(),
        &Device::flex(),
    )
    .unwrap();
    assert_eq!(loaded.len(), 2);
    let host = |d: &Direction| {
        d.tensors
            .iter()
            .flatten()
            .map(|t| t.to_data().try_into_vec::<f32>().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(host(&loaded[1]), host(&dirs[1]));
}

#[test]
fn interpolation_endpoints_are_the_models() {
    let net = network();
    let (a, b) = (model(&net, 5), model(&net, 6));
    let data = data(64);
    let dir = Direction::difference(&a, &b, ParamScope::States, "a", "b").unwrap();
    let mut m = meta(
        grid("-0.5:1.5:5", None),
        std::slice::from_ref(&dir),
        ParamScope::States,
    );
    m.kind = SurfaceKind::Interpolation;
    let job = SurfaceJob {
        meta: m,
        network: &net,
        base: a.clone(),
        directions: vec![dir],
        train: &data,
        test: Some(&data),
    };
    let work = tempfile::tempdir().unwrap();
    let out = job.run(work.path(), Shard::WHOLE, "test").unwrap();
    let rows: Vec<PointRow> = read_rows(&out.dir.join("surface.csv")).unwrap();
    let ev = Evaluator::new(net.layers());
    let (la, lb) = (
        ev.evaluate(a.tensors(), &data).loss,
        ev.evaluate(b.tensors(), &data).loss,
    );
    assert!(close(rows[1].train_loss, la, 1e-5) && rows[1].x == 0.0);
    assert!(
        close(rows[3].train_loss, lb, 1e-4) && rows[3].x == 1.0,
        "{} vs {lb}",
        rows[3].train_loss
    );
    assert_eq!(rows[3].test_loss, Some(rows[3].train_loss));
    // Extrapolating to -0.5 and 1.5 moves the running variances; any that go negative are
    // counted, and the loss is still a number.
    assert!(rows.iter().all(|r| r.train_loss.is_finite()));
}

#[test]
fn shards_merge_to_the_single_run_and_resume_skips_finished_points() {
    let net = network();
    let base = model(&net, 8);
    let data = data(32);
    let dirs = Direction::random(
        &base,
        ParamScope::Weights,
        DirNorm::Filter,
        Ignore::Biasbn,
        9,
        2,
    );
    let g = grid("-1:1:3", Some("-1:1:4"));
    let job = || SurfaceJob {
        meta: meta(g, &dirs, ParamScope::Weights),
        network: &net,
        base: base.clone(),
        directions: dirs.clone(),
        train: &data,
        test: None,
    };
    let whole = tempfile::tempdir().unwrap();
    let one = job().run(whole.path(), Shard::WHOLE, "whole").unwrap();
    let expected = std::fs::read_to_string(one.dir.join("surface.csv")).unwrap();

    // Two machines, one shard each, then a merge.
    let (m1, m2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let s1 = job().run(m1.path(), "1/2".parse().unwrap(), "s1").unwrap();
    let s2 = job().run(m2.path(), "2/2".parse().unwrap(), "s2").unwrap();
    assert!(!s1.complete && !s2.complete && s1.points_done == 6);
    let merged = merge::<SurfaceMeta>(&s1.dir, std::slice::from_ref(&s2.dir)).unwrap();
    assert!(merged.complete && merged.points_done == 12);
    assert_eq!(
        std::fs::read_to_string(s1.dir.join("surface.csv")).unwrap(),
        expected
    );

    // A different surface is refused.
    let other_dirs = Direction::random(
        &base,
        ParamScope::Weights,
        DirNorm::Filter,
        Ignore::Biasbn,
        10,
        2,
    );
    let other = SurfaceJob {
        meta: meta(g, &other_dirs, ParamScope::Weights),
        network: &net,
        base: base.clone(),
        directions: other_dirs,
        train: &data,
        test: None,
    };
    let m3 = tempfile::tempdir().unwrap();
    let s3 = other.run(m3.path(), "1/2".parse().unwrap(), "s3").unwrap();
    assert!(merge::<SurfaceMeta>(&s1.dir, &[s3.dir]).is_err());

    // Resume: a journal with 5 points and a torn line, then a rerun computes only the rest.
    let resumed = tempfile::tempdir().unwrap();
    let dir = resumed.path().join(one.dir.file_name().unwrap());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(one.dir.join("meta.toml"), dir.join("meta.toml")).unwrap();
    let lines: Vec<&str> = expected.lines().collect();
    let partial = format!("{}\n3,1,0.1", lines[..6].join("\n"));
    std::fs::write(dir.join("points.1-of-1.csv"), partial).unwrap();
    let before = read_rows::<PointRow>(&dir.join("points.1-of-1.csv"))
        .unwrap()
        .len();
    assert_eq!(before, 5);
    let out = job().run(resumed.path(), Shard::WHOLE, "resume").unwrap();
    assert!(out.complete);
    assert_eq!(
        std::fs::read_to_string(out.dir.join("surface.csv")).unwrap(),
        expected
    );
    let journal: Vec<PointRow> = read_rows(&dir.join("points.1-of-1.csv")).unwrap();
    assert_eq!(journal.len(), 12, "finished points were computed again");
}

/// A bf16 surface is its own artifact (another id; f32 meta files do not mention precision, so
/// surfaces computed before bf16 existed keep their ids) and its points are the bf16 evaluator's.
#[test]
fn bf16_surfaces_are_separate_artifacts_evaluated_in_bf16() {
    let net = network();
    let base = model(&net, 4);
    let data = data(32);
    let dirs = Direction::random(
        &base,
        ParamScope::Weights,
        DirNorm::Filter,
        Ignore::Biasbn,
        5,
        1,
    );
    let f32_meta = meta(grid("-0.5:0.5:3", None), &dirs, ParamScope::Weights);
    assert!(!toml::to_string(&f32_meta).unwrap().contains("precision"));
    let mut bf16_meta = f32_meta.clone();
    bf16_meta.precision = Precision::Bf16;
    assert!(
        toml::to_string(&bf16_meta)
            .unwrap()
            .contains("precision = \"bf16\"")
    );
    assert_ne!(f32_meta.id(), bf16_meta.id());
    let work = tempfile::tempdir().unwrap();
    let run = |meta: SurfaceMeta| {
        let job = SurfaceJob {
            meta,
            network: &net,
            base: base.clone(),
            directions: dirs.clone(),
            train: &data,
            test: None,
        };
        let out = job.run(work.path(), Shard::WHOLE, "test").unwrap();
        read_rows::<PointRow>(&out.dir.join("surface.csv")).unwrap()
    };
    let (exact, rounded) = (run(f32_meta), run(bf16_meta));
    let ev = Evaluator::new(net.layers()).with_precision(Precision::Bf16);
    let origin = rounded.iter().find(|r| r.ix == 1).unwrap();
    assert_eq!(origin.train_loss, ev.evaluate(base.tensors(), &data).loss);
    for (a, b) in exact.iter().zip(&rounded) {
        assert!(close(a.train_loss, b.train_loss, 0.05), "{a:?} vs {b:?}");
    }
    assert!(
        exact
            .iter()
            .zip(&rounded)
            .any(|(a, b)| a.train_loss != b.train_loss)
    );
}
