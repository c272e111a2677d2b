//! Spec parsing: sweeps, scales, overrides, and one clear line for each mistake.

use landscape_spec::{Scale, Spec};
use landscape_train::BatchSize;

const BASE: &str = r#"
[experiment]
name = "figure3"
title = "VGG-9 minima"
figure = "figure3"
dataset = "cifar10"

[train]
model = "vgg9"
optimizer = "sgd"
lr = 0.1
epochs = 300
batch_size = [128, 8192]
weight_decay = [0.0, 5e-4]
schedule = { kind = "step", milestones = [150, 225, 275] }

[[analysis]]
name = "1d"
kind = "surface"
x = "-1:1:51"

[[analysis]]
name = "interp"
kind = "interpolate"
pair = "batch_size"
to = 8192
x = "-0.5:1.5:401"

[scale.quick.train]
width = 0.25
epochs = 20
batch_size = [128, "16.4%"]
schedule = { kind = "step", fractions = [0.5, 0.75] }

[scale.quick.analysis.1d]
x = "-1:1:21"
"#;

fn parse(text: &str, scale: Scale, sets: &[&str]) -> anyhow::Result<Spec> {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    Spec::parse(text, "experiments/figure3.toml".as_ref(), scale, &sets)
}

fn error(text: &str, scale: Scale, sets: &[&str]) -> String {
    let e = format!("{:#}", parse(text, scale, sets).unwrap_err());
    assert!(
        e.starts_with("experiments/figure3.toml: "),
        "error does not name the file: {e}"
    );
    assert!(!e.contains('\n'), "error is not one line: {e}");
    e
}

#[test]
fn sweeps_expand_to_the_cartesian_product() {
    let spec = parse(BASE, Scale::Paper, &[]).unwrap();
    assert_eq!(spec.runs.len(), 4);
    assert_eq!(spec.swept, vec!["batch_size", "weight_decay"]);
    let pairs: Vec<(BatchSize, f64)> = spec
        .runs
        .iter()
        .map(|r| (r.config.batch_size.clone(), r.config.weight_decay))
        .collect();
    assert_eq!(
        pairs,
        vec![
            (BatchSize::Examples(128), 0.0),
            (BatchSize::Examples(128), 5e-4),
            (BatchSize::Examples(8192), 0.0),
            (BatchSize::Examples(8192), 5e-4)
        ]
    );
    assert_eq!(spec.runs[1].label(), "batch_size=128 weight_decay=0.0005");
    assert_eq!(spec.analyses.len(), 2);
    assert_eq!(spec.slurm, landscape_slurm::Resources::default());
    let on_a_cluster = parse(
        &format!("{BASE}\n[slurm]\npartition = \"gpu\"\ngpus_per_task = 1\n"),
        Scale::Paper,
        &[],
    )
    .unwrap();
    assert_eq!(on_a_cluster.slurm.partition.as_deref(), Some("gpu"));
    assert_eq!(on_a_cluster.slurm.gpus_per_task, Some(1));
}

#[test]
fn scales_and_sets_override_keys() {
    let quick = BASE.replace("to = 8192\n", "");
    let spec = parse(
        &quick,
        Scale::Quick,
        &["train.lr=0.05", "analysis.interp.x=-0.5:1.5:11"],
    )
    .unwrap();
    let run = &spec.runs[3].config;
    assert_eq!((run.width, run.epochs, run.lr), (0.25, 20, 0.05));
    assert_eq!(run.batch_size, BatchSize::Share("16.4%".into()));
    assert_eq!(run.schedule.decay_epochs(20), vec![10, 15]);
    // Blocks keep their settings as tables; the kinds read them (landscape-pipeline).
    let x = |i: usize| spec.analyses[i].settings["x"].as_str().unwrap().to_string();
    assert_eq!((x(0), x(1)), ("-1:1:21".into(), "-0.5:1.5:11".into()));
    assert_eq!(
        (
            spec.analyses[1].name.as_str(),
            spec.analyses[1].kind.as_str()
        ),
        ("interp", "interpolate")
    );
    // A set can turn a sweep into a single value.
    assert_eq!(
        parse(BASE, Scale::Paper, &["train.weight_decay=0.0"])
            .unwrap()
            .runs
            .len(),
        2
    );
}

#[test]
fn mistakes_get_one_line_naming_file_and_key() {
    let e = error(&BASE.replace("lr = 0.1", "lr = -0.1"), Scale::Paper, &[]);
    assert!(e.contains("train.lr") && e.contains("positive"), "{e}");
    let e = error(
        &BASE.replace("lr = 0.1", "lr = \"fast\""),
        Scale::Paper,
        &[],
    );
    assert!(e.contains("train.lr"), "{e}");
    let e = error(
        &BASE.replace("lr = 0.1", "lr = 0.1\nlearning_rate = 0.1"),
        Scale::Paper,
        &[],
    );
    assert!(e.contains("train") && e.contains("learning_rate"), "{e}");
    let e = error(
        &BASE.replace("model = \"vgg9\"", "model = \"vgg11\""),
        Scale::Paper,
        &[],
    );
    assert!(e.contains("train.model") && e.contains("vgg11"), "{e}");
    let e = error(
        &BASE.replace("dataset = \"cifar10\"", "dataset = \"imagenet\""),
        Scale::Paper,
        &[],
    );
    assert!(e.contains("experiment.dataset"), "{e}");
    let e = error(BASE, Scale::Smoke, &[]);
    assert!(e.contains("scale.smoke"), "{e}");
    let e = error(BASE, Scale::Paper, &["train.epochs=0"]);
    assert!(e.contains("train.epochs"), "{e}");
    let e = error(BASE, Scale::Paper, &["analysis.2d.x=-1:1:3"]);
    assert!(e.contains("2d"), "{e}");
    let e = error(
        &BASE.replace(
            "[[analysis]]\nname = \"1d\"",
            "[[analysis]]\nname = \"interp\"",
        ),
        Scale::Paper,
        &[],
    );
    assert!(e.contains("interp"), "{e}");
    let e = error("[experiment\nname=1", Scale::Paper, &[]);
    assert!(e.contains("TOML"), "{e}");
    let e = error(
        &BASE.replace("batch_size = [128, 8192]", "batch_size = []"),
        Scale::Paper,
        &[],
    );
    assert!(e.contains("train.batch_size"), "{e}");
    let e = error(
        &BASE.replace("name = \"1d\"\n", "name = \"1d\"\nruns = { epochs = 2 }\n"),
        Scale::Paper,
        &[],
    );
    assert!(e.contains("analysis.1d.runs.epochs"), "{e}");
    let e = error(&format!("{BASE}\n[slurm]\ngpus = 1\n"), Scale::Paper, &[]);
    assert!(e.contains("slurm") && e.contains("gpus"), "{e}");
}

#[test]
fn lists_of_tables_sweep_linked_settings() {
    let text = BASE.replace("lr = 0.1\n", "").replace(
        "weight_decay = [0.0, 5e-4]",
        "weight_decay = [0.0, 5e-4]\nvariant = [{ optimizer = \"sgd\", lr = 0.1 }, { optimizer = \"adam\", lr = 1e-3 }]",
    );
    let spec = parse(&text, Scale::Paper, &[]).unwrap();
    assert_eq!(spec.runs.len(), 8);
    let adam: Vec<_> = spec
        .runs
        .iter()
        .filter(|r| r.config.optimizer == landscape_train::OptimizerKind::Adam)
        .collect();
    assert_eq!(adam.len(), 4);
    assert!(adam.iter().all(|r| r.config.lr == 1e-3));
    assert!(
        spec.runs
            .iter()
            .filter(|r| r.config.optimizer == landscape_train::OptimizerKind::Sgd)
            .all(|r| r.config.lr == 0.1)
    );
    // The same run written without a variant has the same settings (so the same run id).
    let plain = parse(BASE, Scale::Paper, &[]).unwrap();
    assert!(plain.runs.iter().any(|p| p.config == spec.runs[0].config));
    let e = error(
        &text.replace("lr = 1e-3 }", "batch_size = 64 }"),
        Scale::Paper,
        &[],
    );
    assert!(
        e.contains("train.variant") && e.contains("batch_size"),
        "{e}"
    );
}
