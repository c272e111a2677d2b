//! Curvature of a trained run end to end through the pipeline: a spec with `hessian`,
//! `sharpness` and `eigen_ratio` analyses, then the command-level calls (cache hits) and
//! eigen-ratio shards merged.

use burn::tensor::Device;
use landscape_core::device::DeviceKind;
use landscape_curvature::eigen_ratio::read_map;
use landscape_data::DataLocations;
use landscape_job::shard::Shard;
use landscape_pipeline::analysis::PerRunReport;
use landscape_pipeline::analysis::eigen_ratio::{self, EigenRatioSettings};
use landscape_pipeline::analysis::hessian::HessianSettings;
use landscape_pipeline::analysis::sharpness::SharpnessSettings;
use landscape_pipeline::cache::DataCache;
use landscape_pipeline::jobs::merge;
use landscape_pipeline::{Context, run_spec};
use landscape_spec::{Scale, Spec};

const SPEC: &str = r#"
[experiment]
name = "curvature-test"
title = "Curvature of a tiny run"
dataset = "synthetic"

[train]
model = "resnet8"
width = 0.25
optimizer = "sgd"
lr = 0.05
epochs = 1
batch_size = 64
train_subset = 256
test_subset = 64

[scale.smoke]

[[analysis]]
name = "hess"
kind = "hessian"
top_k = 2
lanczos_steps = 4
trace_probes = 2
density = true
density_probes = 1
density_steps = 4
subset = 32

[[analysis]]
name = "sharp"
kind = "sharpness"
keskar_eps = [1e-3]
keskar_subspace = 3
keskar_iterations = 2
average_samples = 2
worst_steps = 2
pac_bayes_samples = 1
pac_bayes_depth = 3
lambda_max_steps = 3
subset = 32

[[analysis]]
name = "ratio"
kind = "eigen_ratio"
x = "-0.5:0.5:2"
lanczos_steps = 3
subset = 32
"#;

#[test]
fn curvature_analyses_and_commands() {
    let dir = tempfile::tempdir().unwrap();
    let spec_path = dir.path().join("spec.toml");
    std::fs::write(&spec_path, SPEC).unwrap();
    let mut locations = DataLocations::from_env(dir.path().join("no-datasets"));
    locations.allow_download = false;
    let ctx = Context {
        workdir: dir.path().join("work"),
        device: Device::flex(),
        device_kind: DeviceKind::Cpu,
        locations,
    };
    let spec = Spec::load(&spec_path, Scale::Smoke, &[]).unwrap();
    let outcome = run_spec(&ctx, &spec, None, true, Shard::WHOLE).unwrap();
    let id = outcome.runs[0].planned.record.id.clone();
    let names: Vec<&str> = outcome
        .analyses
        .iter()
        .map(|a| a.analysis.as_str())
        .collect();
    assert_eq!(names, ["hess", "sharp", "ratio"]);
    let hess = &outcome.analyses[0].dir;
    assert!(hess.join("hessian.toml").exists() && hess.join("spectrum.csv").exists());
    assert!(outcome.analyses[1].dir.join("sharpness.csv").exists());
    assert!(outcome.analyses[2].dir.join("ratio.csv").exists());

    // The command-level call with the spec's settings finds the same report.
    let mut cache = DataCache::default();
    let settings = HessianSettings {
        top_k: 2,
        lanczos_steps: 4,
        trace_probes: 2,
        density: true,
        density_probes: 1,
        density_steps: 4,
        subset: 32,
        ..HessianSettings::default()
    };
    let found = settings.compute(&ctx, &mut cache, &id, None).unwrap();
    assert!(found.cached, "same settings, same report");
    assert_eq!(&found.dir, hess);
    let printed = HessianSettings::summary(&found);
    assert!(
        printed.starts_with(&format!("{} (found)", hess.display()))
            && printed.contains("top eigenvalues: ")
            && printed.contains("trace (Hutchinson, 2 probes)"),
        "{printed}"
    );
    let s = SharpnessSettings {
        keskar_eps: vec![],
        average_rho: vec![],
        worst_rho: vec![],
        pac_bayes: false,
        lambda_max_steps: 3,
        subset: 32,
        ..SharpnessSettings::default()
    }
    .compute(&ctx, &mut cache, &id, None)
    .unwrap();
    let printed = SharpnessSettings::summary(&s);
    assert_eq!(
        printed.lines().count(),
        3,
        "a header, the columns and one row:\n{printed}"
    );
    assert!(
        printed.lines().nth(2).unwrap().starts_with("lambda_max"),
        "{printed}"
    );
    assert_eq!(s.report.rows.len(), 1);

    // Eigen-ratio shards on two "machines", merged.
    let request = EigenRatioSettings {
        x: "-0.5:0.5:3".parse().unwrap(),
        lanczos_steps: 3,
        eps: 1e-2,
        subset: 32,
        ..EigenRatioSettings::default()
    }
    .request(None);
    let a = eigen_ratio::compute(
        &ctx,
        &mut cache,
        &id,
        None,
        &request,
        Shard { index: 1, count: 2 },
    )
    .unwrap();
    let other = Context {
        workdir: dir.path().join("other"),
        ..ctx
    };
    std::fs::create_dir_all(&other.workdir).unwrap();
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(dir.path().join("work").join(&id))
        .arg(&other.workdir)
        .status()
        .unwrap();
    assert!(status.success());
    let b = eigen_ratio::compute(
        &other,
        &mut cache,
        &id,
        None,
        &request,
        Shard { index: 2, count: 2 },
    )
    .unwrap();
    assert!(!a.complete && !b.complete);
    let merged = merge(&a.dir, &[b.dir]).unwrap();
    assert_eq!((merged.points_done, merged.complete), (3, true));
    assert_eq!(read_map(&a.dir).unwrap().len(), 3);
}
