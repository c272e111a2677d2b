//! One's own data through the binary: a spec names an image folder beside it, the network
//! trains on it and a surface is computed; the folder moves, and naming its new place finds
//! the same run (the run id hashes the data's content, not its path) and records the place.

mod common;

use common::{landscape, run_ok, train};
use image::{Rgb, RgbImage};
use std::path::Path;

/// `root/{train,test}/{dark,light}/<i>.png`: noisy images whose brightness tells the class.
fn image_folder(root: &Path) {
    for (split, count) in [("train", 48u32), ("test", 16)] {
        for (class, base) in [("dark", 20u32), ("light", 160)] {
            let dir = root.join(split).join(class);
            std::fs::create_dir_all(&dir).unwrap();
            for i in 0..count {
                let image = RgbImage::from_fn(32, 32, |x, y| {
                    let noise = (x * 7 + y * 13 + i * 31) % 60;
                    Rgb([
                        (base + noise) as u8,
                        (base + 2 * noise / 3) as u8,
                        base as u8,
                    ])
                });
                image.save(dir.join(format!("{i}.png"))).unwrap();
            }
        }
    }
}

const SPEC: &str = r#"
[experiment]
name = "own-data"
title = "A network on one's own image folder"
dataset = "folder:pets"

[train]
model = "resnet20"
width = 0.25
optimizer = "sgd"
lr = 0.05
epochs = 1
batch_size = 32

[scale.smoke]
"#;

#[test]
fn a_spec_on_ones_own_folder_trains_and_the_folder_may_move() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    image_folder(&project.join("pets"));
    std::fs::write(project.join("spec.toml"), SPEC).unwrap();
    let work = dir.path().join("work");
    let spec = project.join("spec.toml");

    // The spec's relative path is read from the spec's folder, whatever the current one.
    let info = run_ok(
        landscape(&work)
            .current_dir(&project)
            .args(["data", "info", "folder:pets"]),
    );
    assert!(
        info.contains("96 train, 32 test") && info.contains("light"),
        "{info}"
    );
    let id = train(&work, &spec);
    let surface = ["surface", "--run", &id, "--x", "-1:1:3", "--subset", "32"];
    let csv = run_ok(landscape(&work).args(surface));
    assert!(Path::new(csv.trim()).exists(), "{csv}");

    // The same images in another folder are the same data: a run trained there (another seed)
    // and the first are joined by an interpolation, though their records name two places.
    let copy = dir.path().join("copy");
    image_folder(&copy);
    let named_copy = format!("folder:{}", copy.display());
    let other = run_ok(common::train_command(&work, &spec).args([
        "--dataset",
        &named_copy,
        "--set",
        "train.seed=1",
    ]));
    let other = other
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    assert_ne!(other, id);
    let line = [
        "interpolate",
        "--from",
        &id,
        "--to",
        other,
        "--x",
        "0:1:3",
        "--subset",
        "32",
    ];
    run_ok(landscape(&work).args(line));

    // Moved: the stored place is gone, and the error says how to record the new one.
    let moved = dir.path().join("elsewhere");
    std::fs::rename(project.join("pets"), &moved).unwrap();
    let out = landscape(&work)
        .args(["surface", "--run", &id, "--x", "-1:1:5", "--subset", "32"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("--dataset naming their new place"),
        "{err}"
    );

    // Named at its new place (relative to the current folder): the same run, found, and the
    // surface that failed now computes from there.
    let found = run_ok(
        common::train_command(&work, &spec)
            .current_dir(dir.path())
            .args(["--dataset", "folder:elsewhere"]),
    );
    assert!(
        found
            .lines()
            .any(|l| l.starts_with(&id) && l.contains("complete")),
        "{found}"
    );
    let record = std::fs::read_to_string(work.join(&id).join("run.toml")).unwrap();
    assert!(
        record.contains(&format!("folder:{}", moved.display())),
        "{record}"
    );
    run_ok(landscape(&work).args(["surface", "--run", &id, "--x", "-1:1:5", "--subset", "32"]));

    // Other pixels are other data: a new run.
    RgbImage::from_pixel(32, 32, Rgb([1, 2, 3]))
        .save(moved.join("train/dark/0.png"))
        .unwrap();
    let named = format!("folder:{}", moved.display());
    let changed = run_ok(common::train_command(&work, &spec).args(["--dataset", &named]));
    assert!(!changed.contains(&id), "{id}: {changed}");
}
