//! The `landscape` binary as users run it: exact model counts, clear errors, training that
//! survives kill -9, surfaces computed in shards and merged.

mod common;

use common::{
    SPEC, copy_run, landscape, one_epoch_spec, one_line_failure, run_ok, train, train_command,
    write_spec,
};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn models_prints_the_papers_parameter_counts() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_ok(landscape(dir.path()).arg("models"));
    let counts: Vec<(String, u64)> = out
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].to_string(), f[1].parse().unwrap())
        })
        .collect();
    for (name, count) in [
        ("vgg9", 2_789_706),
        ("resnet56", 855_770),
        ("resnet110-noshort", 1_727_962),
        ("wrn56-8", 54_470_282),
        ("densenet121", 6_956_298),
    ] {
        assert!(
            counts.contains(&(name.to_string(), count)),
            "{name} {count} not in\n{out}"
        );
    }
}

#[test]
fn data_info_reports_sizes_and_balance() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_ok(landscape(dir.path()).args(["data", "info", "synthetic"]));
    assert!(out.contains("50000") && out.contains("10000"), "{out}");
}

#[test]
fn completions_and_the_manual_page_come_from_the_command_line_itself() {
    let dir = tempfile::tempdir().unwrap();
    let bash = run_ok(landscape(dir.path()).args(["completions", "bash"]));
    assert!(
        bash.contains("_landscape()") && bash.contains("eigen-ratio"),
        "{bash}"
    );
    assert!(
        bash.contains("--local-gpus"),
        "every subcommand's options are completed"
    );
    let man = run_ok(landscape(dir.path()).arg("man"));
    assert!(
        man.starts_with(".ie") || man.contains(".TH landscape"),
        "{man}"
    );
    assert!(man.contains("submit"), "{man}");
    let version = run_ok(landscape(dir.path()).arg("--version"));
    assert!(
        version.starts_with(concat!("landscape ", env!("CARGO_PKG_VERSION"), " (")),
        "{version}"
    );
}

#[test]
fn data_info_never_downloads() {
    let dir = tempfile::tempdir().unwrap();
    // Online (no --offline), with an empty data cache: the answer names where the set would
    // go, and nothing is fetched.
    let out = Command::new(env!("CARGO_BIN_EXE_landscape"))
        .args(["data", "info", "cifar10"])
        .env("LANDSCAPE_DATA", dir.path())
        .output()
        .unwrap();
    let err = one_line_failure(&out);
    assert!(
        err.contains("data info never downloads") && err.contains("cifar10"),
        "{err}"
    );
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "something was written"
    );
}

#[test]
fn outside_a_checkout_data_is_cached_in_the_users_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("xdg");
    let out = Command::new(env!("CARGO_BIN_EXE_landscape"))
        .current_dir(dir.path())
        .env_remove("LANDSCAPE_DATA")
        .env("XDG_CACHE_HOME", &cache)
        .args(["data", "info", "cifar10"])
        .output()
        .unwrap();
    let err = one_line_failure(&out);
    let expected = cache.join("landscape").join("cifar-10-batches-bin");
    assert!(err.contains(&expected.display().to_string()), "{err}");
    // --help keeps the global options apart from each command's own.
    let help = run_ok(landscape(dir.path()).args(["surface", "--help"]));
    let global = help
        .find("Global options:")
        .expect("a heading of their own");
    assert!(help[global..].contains("--workdir") && !help[..global].contains("--workdir"));
}

#[test]
fn bad_input_gets_one_line_and_starts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let spec = write_spec(dir.path(), &SPEC.replace("lr = 0.05", "lr = -0.05"));
    let err = one_line_failure(&train_command(&work, &spec).output().unwrap());
    assert!(
        err.contains("spec.toml") && err.contains("train.lr"),
        "{err}"
    );
    assert!(
        !work.exists() || std::fs::read_dir(&work).unwrap().next().is_none(),
        "something started"
    );
    let err = one_line_failure(
        &landscape(&work)
            .args(["train", "missing.toml"])
            .output()
            .unwrap(),
    );
    assert!(err.contains("missing.toml"), "{err}");
    let err = one_line_failure(
        &landscape(&work)
            .args(["surface", "--run", "nope", "--x", "-1:1:3"])
            .output()
            .unwrap(),
    );
    assert!(err.contains("nope"), "{err}");
    let err = one_line_failure(
        &landscape(&work)
            .args(["surface", "--run", "nope", "--x", "1:-1:3"])
            .output()
            .unwrap_or_else(|e| panic!("{e}")),
    );
    assert!(err.contains("--x") || err.contains("1:-1:3"), "{err}");
    // Usage mistakes keep what clap knows: the missing argument, the likely one, the choices.
    for (args, expect) in [
        (&["surface"][..], "--run <RUN>"),
        (
            &["surface", "--run", "r", "--nrom", "layer"][..],
            "'--norm'",
        ),
        (&["surface", "--run", "r", "--norm", "filtr"][..], "filter"),
    ] {
        let err = one_line_failure(&landscape(&work).args(args).output().unwrap());
        assert!(
            err.contains(expect) && !err.contains("Usage:"),
            "{args:?}: {err}"
        );
    }
}

fn metrics_rows(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|t| t.lines().count().saturating_sub(1))
        .unwrap_or(0)
}

/// The metrics without the wall-clock column.
fn metrics_without_time(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string())
        .collect()
}

#[test]
fn kill_minus_nine_then_rerun_equals_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), SPEC);
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let id = train(&a, &spec);

    // Kill the second training after its second epoch, at a moment chosen by the clock.
    let mut child = train_command(&b, &spec)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let metrics = b.join(&id).join("metrics.csv");
    let deadline = Instant::now() + Duration::from_secs(300);
    while metrics_rows(&metrics) < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(150));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let status = std::fs::read_to_string(b.join(&id).join("status.toml")).unwrap();
    assert!(
        status.contains("running"),
        "the run finished before the kill; make it longer:\n{status}"
    );
    assert_eq!(train(&b, &spec), id);

    assert_eq!(
        metrics_without_time(&a.join(&id).join("metrics.csv")),
        metrics_without_time(&metrics)
    );
    let last = |w: &Path| {
        landscape_core::tensor_file::TensorFile::read(
            &w.join(&id).join("checkpoints/epoch_0006.safetensors"),
        )
        .unwrap()
        .tensors
    };
    assert!(last(&a) == last(&b), "final weights differ after resume");
    let runs = run_ok(landscape(&b).arg("runs"));
    assert!(runs.contains(&id) && runs.contains("complete"), "{runs}");
}

#[test]
fn surfaces_in_shards_merge_to_the_whole() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), &SPEC.replace("epochs = 6", "epochs = 1"));
    let whole = dir.path().join("whole");
    let id = train(&whole, &spec);
    let args = [
        "surface",
        "--run",
        &id,
        "--x",
        "-1:1:3",
        "--y",
        "-0.5:0.5:2",
        "--subset",
        "64",
        "--test",
    ];
    let csv = PathBuf::from(run_ok(landscape(&whole).args(args)).trim());
    let expected = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(expected.lines().count(), 1 + 6);
    // A second call is a cache hit that prints the same file.
    assert_eq!(
        PathBuf::from(run_ok(landscape(&whole).args(args)).trim()),
        csv
    );

    // Two machines: copy the run, compute one shard each, merge.
    let mut dirs = Vec::new();
    for shard in ["1/2", "2/2"] {
        let work = dir.path().join(shard.replace('/', "-of-"));
        std::fs::create_dir_all(&work).unwrap();
        assert!(
            Command::new("cp")
                .arg("-r")
                .arg(whole.join(&id))
                .arg(&work)
                .status()
                .unwrap()
                .success()
        );
        let out = run_ok(landscape(&work).args(args).args(["--shard", shard]));
        assert!(out.contains("landscape merge"), "{out}");
        dirs.push(work.join(csv.parent().unwrap().file_name().unwrap()));
    }
    run_ok(
        landscape(dir.path())
            .arg("merge")
            .arg(&dirs[0])
            .arg(&dirs[1]),
    );
    assert_eq!(
        std::fs::read_to_string(dirs[0].join("surface.csv")).unwrap(),
        expected
    );
}

/// A bf16 surface is computed beside the f32 one (its own directory) and `compare-surfaces`
/// measures how far their contours are apart; surfaces of different grids are refused.
#[test]
fn bf16_surfaces_compare_with_f32_ones_by_their_contours() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), &SPEC.replace("epochs = 6", "epochs = 1"));
    let work = dir.path();
    let id = train(work, &spec);
    let surface = |extra: &[&str]| {
        let mut args = vec!["surface", "--run", &id, "--x", "-1:1:5", "--y", "-1:1:5"];
        args.extend_from_slice(&["--subset", "32"]);
        args.extend_from_slice(extra);
        PathBuf::from(run_ok(landscape(work).args(&args)).trim())
            .parent()
            .unwrap()
            .to_path_buf()
    };
    let exact = surface(&[]);
    let rounded = surface(&["--precision", "bf16"]);
    assert_ne!(exact, rounded);
    let meta = std::fs::read_to_string(rounded.join("meta.toml")).unwrap();
    assert!(meta.contains("precision = \"bf16\""), "{meta}");
    let table = dir.path().join("comparison.csv");
    let out = run_ok(
        landscape(work)
            .arg("compare-surfaces")
            .arg(&exact)
            .arg(&rounded)
            .args(["--levels", "1,2.5,1000"])
            .arg("--csv")
            .arg(&table),
    );
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("computed differently: precision: f32 / bf16"),
        "{out}"
    );
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("25 points; largest |loss difference| "),
        "{out}"
    );
    let csv = std::fs::read_to_string(&table).unwrap();
    assert!(csv.starts_with("quantity,level,value\n"), "{csv}");
    // Points below 1000 (all but the far corners of a barely trained net) are the same set.
    assert!(csv.contains("Jaccard distance,1000.0000,0.0000\n"), "{csv}");
    assert!(csv.contains("non-convex share (%) (B),"), "{csv}");
    // A surface against itself differs nowhere.
    let same = run_ok(
        landscape(work)
            .arg("compare-surfaces")
            .arg(&exact)
            .arg(&exact),
    );
    assert!(
        same.starts_with("25 points; largest |loss difference| 0.0000 (0.00e0 relative),"),
        "{same}"
    );
    let line =
        run_ok(landscape(work).args(["surface", "--run", &id, "--x", "-1:1:3", "--subset", "32"]));
    let line = PathBuf::from(line.trim()).parent().unwrap().to_path_buf();
    let out = landscape(work)
        .arg("compare-surfaces")
        .arg(&line)
        .arg(&exact)
        .output()
        .unwrap();
    let err = one_line_failure(&out);
    assert!(err.contains("different grids"), "{err}");
}

/// The final test loss of a run, from its metrics.
fn final_test_loss(workdir: &Path, id: &str) -> f64 {
    let text = std::fs::read_to_string(workdir.join(id).join("metrics.csv")).unwrap();
    text.lines()
        .last()
        .unwrap()
        .split(',')
        .nth(4)
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn a_plane_through_three_runs_passes_through_each() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), &one_epoch_spec("seed = [0, 1, 2]"));
    let work = dir.path().join("work");
    let out = run_ok(&mut train_command(&work, &spec));
    let ids: Vec<String> = out
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 3);
    let csv = run_ok(landscape(&work).args([
        "surface",
        "--run",
        &ids[0],
        "--plane",
        &ids[1],
        &ids[2],
        "--x",
        "0:1:2",
        "--y",
        "0:1:2",
        "--dir-type",
        "states",
        "--test",
    ]));
    let rows: Vec<Vec<String>> = std::fs::read_to_string(csv.trim())
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    let at = |ix: &str, iy: &str| {
        rows.iter().find(|r| r[0] == ix && r[1] == iy).unwrap()[6]
            .parse::<f64>()
            .unwrap()
    };
    for ((ix, iy), id) in [
        (("0", "0"), &ids[0]),
        (("1", "0"), &ids[1]),
        (("0", "1"), &ids[2]),
    ] {
        let (on_plane, own) = (at(ix, iy), final_test_loss(&work, id));
        assert!(
            (on_plane - own).abs() <= 1e-4 * own.max(1.0),
            "({ix}, {iy}): {on_plane} vs run {id}'s {own}"
        );
    }
}

#[test]
fn a_diverging_run_is_marked_and_the_sweep_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(
        dir.path(),
        &SPEC
            .replace("lr = 0.05", "lr = [0.05, 1e12]")
            .replace("epochs = 6", "epochs = 2"),
    );
    let work = dir.path().join("work");
    let out = train_command(&work, &spec).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("diverged") && stdout.contains("complete"),
        "{stdout}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("diverged at epoch"),
        "no clear message"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is above 1, beyond what SGD"),
        "no warning before the learning rate that diverges"
    );
    let diverged = stdout
        .lines()
        .find(|l| l.contains("diverged"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    let metrics = std::fs::read_to_string(work.join(diverged).join("metrics.csv")).unwrap();
    let last = metrics.lines().last().unwrap();
    assert!(last.contains("NaN") || last.contains("inf"), "{last}");
}

#[test]
fn a_spec_block_and_its_command_compute_the_same_artifacts() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let blocks = r#"
[[analysis]]
name = "line"
kind = "surface"
x = "-1:1:3"
subset = 32
repeats = 2

[[analysis]]
name = "curv"
kind = "hessian"
top_k = 2
lanczos_steps = 3
trace_probes = 1
subset = 32
"#;
    let spec = write_spec(
        dir.path(),
        &(SPEC.replace("epochs = 6", "epochs = 2") + blocks),
    );
    let out = run_ok(landscape(&work).args(["run", spec.to_str().unwrap(), "--scale", "smoke"]));
    let id = out
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    let dirs = |name: &str| -> Vec<PathBuf> {
        out.lines()
            .filter(|l| l.starts_with(&format!("{name} ")))
            .map(|l| PathBuf::from(l.split_whitespace().last().unwrap()))
            .collect()
    };
    // The block's two seeds are the command's two surfaces, found, not computed again.
    let printed = run_ok(landscape(&work).args([
        "surface",
        "--run",
        id,
        "--x",
        "-1:1:3",
        "--subset",
        "32",
        "--repeats",
        "2",
    ]));
    let surfaces: Vec<PathBuf> = printed
        .lines()
        .map(|l| PathBuf::from(l).parent().unwrap().to_path_buf())
        .collect();
    assert_eq!(surfaces, dirs("line"), "{out}\n{printed}");
    // The block's Hessian report is the command's with the same settings (every other key at
    // the one default both read)...
    let hessian = |top_k: &str| {
        run_ok(landscape(&work).args([
            "hessian",
            "--run",
            id,
            "--top-k",
            top_k,
            "--lanczos-steps",
            "3",
            "--trace-probes",
            "1",
            "--subset",
            "32",
        ]))
    };
    let found = hessian("2");
    let curv = dirs("curv");
    assert_eq!(curv.len(), 1, "{out}");
    assert!(
        found.starts_with(&format!("{} (found)", curv[0].display())),
        "{found}"
    );
    // ... and another setting is another report.
    assert!(hessian("3").contains("(computed)"));
}

#[test]
fn train_shards_train_their_share_of_the_runs() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let spec = write_spec(dir.path(), &one_epoch_spec("seed = [0, 1, 2]"));
    let out = run_ok(train_command(&work, &spec).args(["--shard", "2/2"]));
    let trained: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(trained.len(), 1, "{out}");
    assert!(
        trained[0].contains("seed=1") && trained[0].contains("complete"),
        "{out}"
    );
    let err = one_line_failure(
        &landscape(&work)
            .args([
                "run",
                spec.to_str().unwrap(),
                "--scale",
                "smoke",
                "--shard",
                "1/2",
            ])
            .output()
            .unwrap(),
    );
    assert!(err.contains("--shard"), "{err}");
}

#[test]
fn submit_writes_reviewable_scripts_for_each_kind_of_command() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let spec = write_spec(
        dir.path(),
        &(one_epoch_spec("seed = [0, 1, 2]")
            + "\n[slurm]\npartition = \"gpu\"\ntime = \"2:00:00\"\n"),
    );
    let trained = run_ok(train_command(&work, &spec).args(["--shard", "1/3"]));
    let r = trained
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    let spec = spec.to_str().unwrap();
    let scripts = |args: &[&str]| -> Vec<String> {
        let out = run_ok(landscape(&work).args(["submit", "--dry-run"]).args(args));
        assert!(out.contains("not submitted"), "{out}");
        out.lines()
            .filter(|l| l.ends_with(".sbatch"))
            .map(|l| std::fs::read_to_string(l).unwrap())
            .collect()
    };
    // A grid: an array of shards, then the whole command, which writes the table.
    let grid = scripts(&["--shards", "3", "surface", "--run", r, "--x", "-1:1:5"]);
    assert_eq!(grid.len(), 2);
    assert!(grid[0].contains("#SBATCH --array=1-3\n"), "{}", grid[0]);
    assert!(
        grid[0].contains(&format!(
            "'surface' '--run' '{r}' '--x' '-1:1:5' --shard \"$task/3\""
        )),
        "{}",
        grid[0]
    );
    assert!(!grid[1].contains("--array") && grid[1].contains(&format!("'surface' '--run' '{r}'")));
    // A spec: one training task per run, then the analyses; the spec's [slurm] table asks for
    // the resources, and a flag wins over it.
    let run = scripts(&["--partition", "cpu", "run", spec, "--scale", "smoke"]);
    assert!(run[0].contains("#SBATCH --array=1-3\n"), "{}", run[0]);
    assert!(run[0].contains(&format!(
        "'train' '{spec}' '--scale' 'smoke' --shard \"$task/3\""
    )));
    assert!(
        run[0].contains("#SBATCH --partition=cpu\n") && run[0].contains("#SBATCH --time=2:00:00\n")
    );
    assert!(
        run[1].contains(&format!("'run' '{spec}' '--scale' 'smoke'\n")),
        "{}",
        run[1]
    );
    let figure = scripts(&[
        "reproduce",
        "figure5",
        "--scale",
        "smoke",
        "--dataset",
        "synthetic",
    ]);
    assert!(figure[0].contains("#SBATCH --array=1-6\n"), "{}", figure[0]);
    assert!(figure[0].contains(
        "'train' 'experiments/figure5.toml' '--scale' 'smoke' '--dataset' 'synthetic' --shard"
    ));
    assert!(figure[1].contains("'reproduce' 'figure5'"));
    // Outside a checkout the built-in spec is written out for the training tasks.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = run_ok(
        Command::new(env!("CARGO_BIN_EXE_landscape"))
            .current_dir(elsewhere.path())
            .args([
                "--workdir",
                "w",
                "submit",
                "--dry-run",
                "reproduce",
                "figure2",
            ]),
    );
    let train =
        std::fs::read_to_string(elsewhere.path().join(out.lines().next().unwrap())).unwrap();
    let written = elsewhere.path().join("w/slurm/specs");
    let copy = std::fs::read_dir(&written)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(
        train.contains(&format!("'train' '{}'", copy.display())),
        "{train}"
    );
    assert_eq!(
        std::fs::read_to_string(&copy).unwrap(),
        std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/figure2.toml")
        )
        .unwrap()
    );
    // Mistakes are found before anything is written or queued.
    for (args, expect) in [
        (
            &["surface", "--run", r, "--shard", "1/2"][..],
            "leave out --shard",
        ),
        (
            &["surface", "--run", r, "--workdir", "w"][..],
            "put --workdir before",
        ),
        (&["models"][..], "not `models`"),
        (
            &["surface", "--run", "resnet20-000000000000"][..],
            "no run `resnet20-000000000000`",
        ),
        (&["surface", "--run", r, "--nrom", "layer"][..], "--nrom"),
        (&["reproduce", "figure10"][..], "figure10"),
    ] {
        let err = one_line_failure(
            &landscape(&work)
                .args(["submit", "--dry-run"])
                .args(args)
                .output()
                .unwrap(),
        );
        assert!(err.contains(expect), "{args:?}: {err}");
    }
}

#[test]
fn submit_local_runs_the_shards_here_and_equals_the_whole_surface() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let spec = write_spec(dir.path(), &one_epoch_spec(""));
    let id = train(&work, &spec);
    let surface = [
        "surface", "--run", &id, "--x", "-1:1:4", "--y", "-1:1:3", "--subset", "32",
    ];
    let out = run_ok(
        landscape(&work)
            .args(["submit", "--local", "--shards", "3"])
            .args(surface),
    );
    assert_eq!(out.matches("  done").count(), 4, "{out}");
    let sharded = out.lines().next().unwrap().trim().to_string();
    let table = PathBuf::from(
        std::fs::read_to_string(Path::new(&sharded).join("finish-1.log"))
            .unwrap()
            .lines()
            .last()
            .unwrap(),
    );
    // The whole surface, computed again elsewhere from a copy of the run, is the same table.
    let whole = dir.path().join("whole");
    copy_run(&work, &id, &whole);
    let expected = run_ok(landscape(&whole).args(surface));
    assert_eq!(
        std::fs::read_to_string(&table).unwrap(),
        std::fs::read_to_string(expected.trim()).unwrap()
    );
    let job = table.parent().unwrap();
    let status = run_ok(landscape(&work).arg("status").arg(job));
    assert!(status.contains(": 12/12 points\n"), "{status}");
    for (k, share) in [(1, 4), (2, 4), (3, 4)] {
        assert!(
            status.contains(&format!("  shard {k}/3  {share}/{share} points  done\n")),
            "{status}"
        );
    }
    // A grid cut in two of which one half ran: the other is not started.
    let half = [
        "surface", "--run", &id, "--x", "-1:1:3", "--subset", "32", "--shard", "1/2",
    ];
    let printed = run_ok(landscape(&work).args(half));
    let half_dir = printed.split(':').next().unwrap();
    let status = run_ok(landscape(&work).arg("status").arg(half_dir));
    assert!(
        status.contains("  shard 1/2  2/2 points  done\n")
            && status.contains("  shard 2/2  0/1 points  not started\n"),
        "{status}"
    );
    // GPUs of this machine are handed to tasks as the first (and only) one each.
    let err = one_line_failure(
        &landscape(&work)
            .args(["submit", "--local", "--local-gpus", "0,1"])
            .args(surface)
            .output()
            .unwrap(),
    );
    assert!(err.contains("--device cuda"), "{err}");
}

/// The names of the sections of the ELF file `path` (`readelf -S`).
fn elf_sections(path: &Path) -> Vec<String> {
    elf_section_sizes(path)
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

/// The ELF sections of `path` with their sizes in bytes, as `readelf -SW` lists them.
fn elf_section_sizes(path: &Path) -> Vec<(String, u64)> {
    let out = Command::new("readelf")
        .arg("-SW")
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            // `[Nr] Name Type Address Off Size ...`, the size in hex.
            let fields: Vec<&str> = l.split(']').nth(1)?.split_whitespace().collect();
            let size = u64::from_str_radix(fields.get(4)?, 16).ok()?;
            Some((fields[0].to_string(), size))
        })
        .collect()
}

/// `just dist`'s last step on this test's own binary: the shipped binary has no debug info,
/// still runs, and names the `.debug` file beside it that holds the debug info.
#[test]
fn dist_strips_the_binary_and_keeps_its_debug_info_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let binary = Path::new(env!("CARGO_BIN_EXE_landscape"));
    let out = dir.path().join("dist");
    run_ok(
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/dist.sh"))
            .arg(binary)
            .arg(&out),
    );
    let (shipped, debug) = (out.join("landscape"), out.join("landscape.debug"));
    let sections = elf_sections(binary);
    assert!(sections.iter().any(|s| s == ".debug_line"), "{sections:?}");
    let sections = elf_sections(&shipped);
    assert!(
        !sections
            .iter()
            .any(|s| s == ".debug_line" || s == ".debug_info"),
        "{sections:?}"
    );
    assert!(sections.iter().any(|s| s == ".gnu_debuglink"));
    // The section holds the file's name, then its CRC: bytes, not text.
    let link = Command::new("readelf")
        .arg("--string-dump=.gnu_debuglink")
        .arg(&shipped)
        .output()
        .unwrap();
    let link = String::from_utf8_lossy(&link.stdout);
    assert!(link.contains("landscape.debug"), "{link}");
    assert!(elf_sections(&debug).iter().any(|s| s == ".debug_line"));
    // The shipped binary is smaller by (nearly) all of the debug sections' bytes.
    let size = |p: &Path| std::fs::metadata(p).unwrap().len();
    let debug_bytes: u64 = elf_section_sizes(binary)
        .iter()
        .filter(|(name, _)| name.starts_with(".debug"))
        .map(|(_, size)| size)
        .sum();
    let saved = size(binary) - size(&shipped);
    assert!(
        debug_bytes > 0 && saved * 10 >= debug_bytes * 9,
        "{saved} bytes saved of {debug_bytes} in debug sections"
    );
    let version = run_ok(Command::new(&shipped).arg("--version"));
    assert!(version.starts_with("landscape "), "{version}");
    // No scratch folder is left behind.
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 2);
}
