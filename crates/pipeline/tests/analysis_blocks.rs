//! `[[analysis]]` blocks read by their kinds: defaults, the interpolation's ends, and one line
//! naming the spec file and the block's key for each mistake, before anything is trained.

use landscape_pipeline::analysis::interpolate::Interpolate;
use landscape_pipeline::analysis::{KINDS, plan};
use landscape_spec::{Scale, Spec};
use toml::Value;

const BASE: &str = r#"
[experiment]
name = "figure3"
title = "VGG-9 minima"
dataset = "cifar10"

[train]
model = "vgg9"
optimizer = "sgd"
lr = 0.1
epochs = 300
batch_size = [128, 8192]
weight_decay = [0.0, 5e-4]

[[analysis]]
name = "1d"
kind = "surface"
x = "-1:1:51"

[[analysis]]
name = "interp"
kind = "interpolate"
pair = "batch_size"
to = 8192

[[analysis]]
name = "curv"
kind = "hessian"

[scale.quick.train]
batch_size = [128, "16.4%"]
"#;

fn spec(text: &str, scale: Scale) -> Spec {
    Spec::parse(text, "experiments/figure3.toml".as_ref(), scale, &[]).unwrap()
}

fn error(text: &str) -> String {
    let e = format!("{:#}", plan(&spec(text, Scale::Paper)).unwrap_err());
    assert!(
        e.starts_with("experiments/figure3.toml: analysis."),
        "error does not name the file and block: {e}"
    );
    assert!(!e.contains('\n'), "error is not one line: {e}");
    e
}

#[test]
fn every_block_is_read_by_its_kind() {
    let planned = plan(&spec(BASE, Scale::Paper)).unwrap();
    let names: Vec<&str> = planned.iter().map(|p| p.block.name.as_str()).collect();
    assert_eq!(names, ["1d", "interp", "curv"]);
    let mut kinds: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
    kinds.sort();
    kinds.dedup();
    assert_eq!(kinds.len(), KINDS.len(), "two kinds share a name");
}

#[test]
fn interpolation_ends_default_to_the_first_and_last_values_swept() {
    let quick = spec(&BASE.replace("to = 8192\n", ""), Scale::Quick);
    let block = &quick.analyses[1];
    let i = Interpolate::parse(block, &quick).unwrap();
    assert_eq!(
        (i.from, i.to),
        (Value::Integer(128), Value::String("16.4%".into()))
    );
    assert_eq!(i.settings.x, "-0.5:1.5:401".parse().unwrap());
    assert!(i.settings.test);
}

#[test]
fn mistakes_get_one_line_naming_file_and_key() {
    for (from, to, expect) in [
        ("x = \"-1:1:51\"", "x = \"1:-1:51\"", "analysis.1d.x"),
        (
            "kind = \"surface\"",
            "kind = \"surface\"\nnorm = \"filterr\"",
            "analysis.1d.norm",
        ),
        (
            "kind = \"surface\"",
            "kind = \"surface\"\nrepeats = 0",
            "analysis.1d.repeats: expected at least 1",
        ),
        (
            "kind = \"surface\"",
            "kind = \"surfac\"",
            "analysis.1d.kind: unknown kind `surfac`",
        ),
        ("to = 8192", "to = 4096", "analysis.interp.to"),
        (
            "pair = \"batch_size\"",
            "pair = \"lr\"",
            "analysis.interp.pair",
        ),
        ("to = 8192", "to = 128", "nothing to interpolate"),
        (
            "kind = \"hessian\"",
            "kind = \"hessian\"\ntopk = 3",
            "analysis.curv",
        ),
        (
            "kind = \"hessian\"",
            "kind = \"trajectory\"\npoints = 1",
            "analysis.curv.points: expected at least 2",
        ),
    ] {
        let text = BASE.replacen(from, to, 1);
        assert_ne!(text, BASE, "{from}");
        let e = error(&text);
        assert!(e.contains(expect), "{expect}: {e}");
    }
}

/// The rows (keys, documented defaults) of `experiments/README.md`'s table for `kind`.
fn documented(kind: &str) -> Vec<(Vec<String>, String)> {
    let text = include_str!("../../../experiments/README.md");
    let start = text
        .find(&format!("`kind = \"{kind}\"`"))
        .unwrap_or_else(|| panic!("experiments/README.md has no section for {kind}"));
    text[start..]
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with("`kind = ") && !l.starts_with("## "))
        .filter(|l| l.starts_with("| `"))
        .map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let keys = cells[1]
                .split(", ")
                .map(|k| k.trim_matches('`').to_string())
                .collect();
            (keys, cells[2].to_string())
        })
        .collect()
}

/// `text` split at the commas outside brackets.
fn top_level_items(text: &str) -> Vec<String> {
    let (mut items, mut depth, mut item) = (Vec::new(), 0, String::new());
    for c in text.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth == 0 => {
                items.push(std::mem::take(&mut item).trim().to_string());
                continue;
            }
            _ => {}
        }
        item.push(c);
    }
    items.push(item.trim().to_string());
    items
}

/// Every setting of `T` is documented for `kind`, and every documented default is the default.
fn documented_defaults_are_the_defaults<T>(kind: &str, not_settings: &[&str])
where
    T: clap::Args + serde::de::DeserializeOwned + Default + PartialEq + std::fmt::Debug,
{
    let rows = documented(kind);
    let mut keys = Vec::new();
    for (names, defaults) in &rows {
        if names.iter().all(|n| not_settings.contains(&n.as_str())) {
            keys.extend(names.iter().cloned());
            continue;
        }
        let defaults = if defaults == "–" {
            vec![defaults.clone(); names.len()]
        } else {
            top_level_items(defaults)
        };
        assert_eq!(
            names.len(),
            defaults.len(),
            "{kind}: {names:?} vs {defaults:?}"
        );
        for (name, default) in names.iter().zip(defaults) {
            keys.push(name.clone());
            if default == "–" {
                continue;
            }
            let value = match default.strip_prefix('`').and_then(|d| d.strip_suffix('`')) {
                Some(text) => Value::String(text.into()),
                None => format!("v = {default}")
                    .parse::<toml::Table>()
                    .unwrap_or_else(|e| panic!("{kind}.{name}: default `{default}`: {e}"))
                    .remove("v")
                    .unwrap(),
            };
            let table = toml::Table::from_iter([(name.clone(), value)]);
            let read: T = toml::Value::Table(table)
                .try_into()
                .unwrap_or_else(|e| panic!("{kind}.{name} = {default}: {e}"));
            assert_eq!(
                read,
                T::default(),
                "{kind}.{name}: documented default {default}"
            );
        }
    }
    let command = T::augment_args(clap::Command::new("settings"));
    for arg in command.get_arguments() {
        let id = arg.get_id().as_str();
        assert!(
            keys.iter().any(|k| k == id),
            "{kind}.{id} is not documented"
        );
    }
}

#[test]
fn the_documented_keys_and_defaults_are_the_code_s() {
    use landscape_pipeline::analysis::*;
    documented_defaults_are_the_defaults::<surface::SurfaceSettings>("surface", &[]);
    documented_defaults_are_the_defaults::<interpolate::InterpolateSettings>(
        "interpolate",
        &["pair", "from", "to"],
    );
    documented_defaults_are_the_defaults::<trajectory::TrajectorySettings>("trajectory", &[]);
    documented_defaults_are_the_defaults::<hessian::HessianSettings>("hessian", &[]);
    documented_defaults_are_the_defaults::<sharpness::SharpnessSettings>("sharpness", &[]);
    documented_defaults_are_the_defaults::<eigen_ratio::EigenRatioSettings>("eigen_ratio", &[]);
    assert_eq!(KINDS.len(), 6, "a new kind: document it and add it here");
}
