//! `landscape reproduce` end to end at smoke scale: each figure leaves its
//! figure files, a summary and findings that parse; a rerun is a cache hit that `diff` finds
//! identical.

mod common;

use common::{one_line_failure, run_ok};
use sha2::Digest;
use std::path::Path;
use std::process::Command;

fn landscape(workdir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_landscape"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("--workdir")
        .arg(workdir);
    cmd
}

/// The header of the CSV file at `path`.
fn csv_header(path: &Path) -> Vec<String> {
    let mut reader =
        csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    reader.headers().unwrap().iter().map(String::from).collect()
}

fn csv_rows(path: &Path) -> Vec<Vec<String>> {
    let mut reader =
        csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    reader
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect()
}

/// Reproduces `figure` at smoke scale and checks what every figure leaves; returns the folder
/// holding the results (`<figure>/`), kept until the caller drops it.
fn reproduce(figure: &str, runs: usize, files: &[&str]) -> tempfile::TempDir {
    reproduce_with(figure, runs, files, &[])
}

/// [`reproduce`] with more arguments (`--set` overrides).
fn reproduce_with(figure: &str, runs: usize, files: &[&str], more: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let results = dir.path().join(figure);
    let args = [
        "reproduce",
        figure,
        "--scale",
        "smoke",
        "--dataset",
        "synthetic",
        "--results",
        results.to_str().unwrap(),
    ];
    let out = run_ok(landscape(&work).args(args).args(more));
    assert!(out.contains("checks pass"), "{out}");
    for file in files.iter().chain(&[
        "summary.csv",
        "findings.csv",
        "findings.md",
        "provenance.toml",
    ]) {
        let path = results.join(file);
        assert!(
            path.metadata().map(|m| m.len() > 0).unwrap_or(false),
            "{} missing or empty",
            path.display()
        );
    }
    let summary = csv_rows(&results.join("summary.csv"));
    assert_eq!(summary.len(), runs, "one summary row per run");
    let findings = csv_rows(&results.join("findings.csv"));
    assert!(
        !findings.is_empty() && findings.iter().all(|r| r[4] == "PASS" || r[4] == "FAIL"),
        "{findings:?}"
    );
    let provenance: toml::Table = std::fs::read_to_string(results.join("provenance.toml"))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(provenance["dataset"].as_str(), Some("synthetic"));
    // What produced it: the binary's commit, the spec's bytes, the threads and kernels.
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("experiments/{figure}.toml"));
    let spec_hash = format!("{:x}", sha2::Sha256::digest(std::fs::read(&spec).unwrap()));
    assert_eq!(provenance["spec_sha256"].as_str(), Some(spec_hash.as_str()));
    let binary = provenance["landscape"].as_str().unwrap();
    assert!(
        binary.starts_with(concat!(env!("CARGO_PKG_VERSION"), " (")),
        "{binary}"
    );
    assert!(provenance["threads"].as_integer().unwrap() >= 1);
    assert!(
        provenance["cpu_kernels"]
            .as_str()
            .unwrap()
            .starts_with("cpu-kernels-")
    );
    // What trained the runs, from their own records.
    let engines = provenance["training_engines"].as_array().unwrap();
    assert!(
        !engines.is_empty()
            && engines
                .iter()
                .all(|e| e.as_str().unwrap().starts_with("cpu-kernels-")),
        "{engines:?}"
    );
    assert!(provenance["training_seconds"].as_float().unwrap() > 0.0);
    // The surfaces' points took time, which their timing journals recorded.
    assert!(provenance["analysis_seconds"].as_float().unwrap() > 0.0);
    // Every surface's grid is kept as a table beside the figures.
    let tables: Vec<_> = std::fs::read_dir(results.join("surfaces"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(!tables.is_empty(), "no surface tables");
    for table in &tables {
        let text = std::fs::read_to_string(table).unwrap();
        assert!(
            text.starts_with("ix,iy,x,y,train_loss"),
            "{}",
            table.display()
        );
    }
    let png = std::fs::read(results.join(format!("{figure}.png"))).unwrap();
    assert_eq!(&png[1..4], b"PNG");

    // A rerun finds everything cached and reproduces the tables exactly.
    let again = dir.path().join("again");
    let args2 = [
        "reproduce",
        figure,
        "--scale",
        "smoke",
        "--dataset",
        "synthetic",
        "--results",
        again.to_str().unwrap(),
    ];
    run_ok(landscape(&work).args(args2).args(more));
    let same =
        run_ok(landscape(&work).args(["diff", results.to_str().unwrap(), again.to_str().unwrap()]));
    assert!(same.contains("no differences"), "{same}");
    // And diff notices a change.
    let summary_path = again.join("summary.csv");
    let text = std::fs::read_to_string(&summary_path).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut cells: Vec<String> = lines[1].split(',').map(String::from).collect();
    cells[3] = "99.9999".into();
    lines[1] = cells.join(",");
    std::fs::write(&summary_path, lines.join("\n") + "\n").unwrap();
    let out = landscape(&work)
        .args(["diff", results.to_str().unwrap(), again.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("99.9999"));
    dir
}

#[test]
fn figure2_smoke() {
    reproduce("figure2", 4, &["figure2.png", "figure2.svg"]);
}

#[test]
fn figure3_smoke() {
    let results = reproduce(
        "figure3",
        4,
        &[
            "figure3.png",
            "figure3.svg",
            "figure3_normalizations.png",
            "sharpness.csv",
            "centres.csv",
        ],
    );
    // Each run's centre, once per analysis around it, equal to the point x = 0 of its 1-D table.
    let folder = results.path().join("figure3");
    let centres = csv_rows(&folder.join("centres.csv"));
    assert_eq!(centres.len(), 4 * 4, "{centres:?}");
    let one_d: Vec<_> = centres.iter().filter(|r| r[1] == "1d").collect();
    assert_eq!(one_d.len(), 4);
    let table = std::fs::read_dir(folder.join("surfaces"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("1d_vgg9-32-0-0.0.")
        })
        .unwrap();
    let centre_row = csv_rows(&table)
        .into_iter()
        .find(|r| r[2].parse::<f64>().unwrap() == 0.0)
        .unwrap();
    let loss = centre_row[4].parse::<f64>().unwrap();
    assert!(
        one_d
            .iter()
            .any(|r| (r[3].parse::<f64>().unwrap() - loss).abs() <= 5e-5),
        "{one_d:?} vs {centre_row:?}"
    );
    // Claim 3 reads each minimum's 1-D measures over the spec's five directions: a mean that
    // lies within the range the directions span.
    let summary = results.path().join("figure3").join("summary.csv");
    let header = csv_header(&summary);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows = csv_rows(&summary);
    let (lo, hi) = (col("width_1d_min"), col("width_1d_max"));
    for row in &rows {
        let value = |i: usize| row[i].parse::<f64>().unwrap();
        assert_eq!(row[col("directions_1d")], "5", "{row:?}");
        assert_eq!(row[col("seed")], "0", "{row:?}");
        let mean = value(col("width_1d_at_plus_0.5"));
        assert!(value(lo) <= mean && mean <= value(hi), "{row:?}");
    }
    assert!(rows.iter().any(|row| row[lo] != row[hi]), "{rows:?}");
}

/// With two training seeds, figure 2 interpolates each seed's pair, draws the first, and its
/// checks read both seeds.
#[test]
fn figure2_reads_every_seed() {
    let results = reproduce_with(
        "figure2",
        8,
        &["figure2.png"],
        &["--set", "train.seed=[0, 1]"],
    );
    let folder = results.path().join("figure2");
    let header = csv_header(&folder.join("summary.csv"));
    let seed = header.iter().position(|h| h == "seed").unwrap();
    let mut seeds: Vec<String> = csv_rows(&folder.join("summary.csv"))
        .into_iter()
        .map(|r| r[seed].clone())
        .collect();
    seeds.sort();
    assert_eq!(seeds, ["0", "0", "0", "0", "1", "1", "1", "1"]);
    let findings = csv_rows(&folder.join("findings.csv"));
    let over_both = findings
        .iter()
        .filter(|r| r.iter().any(|c| c.contains("over 2 seeds")))
        .count();
    // Per weight decay: norms, histograms, widths and test errors (the growth check reads the
    // least share over seeds and says so in its check).
    assert_eq!(over_both, 8, "{findings:?}");
    let interpolations = std::fs::read_dir(folder.join("surfaces")).unwrap().count();
    assert_eq!(interpolations, 4);
}

#[test]
fn figure1_smoke() {
    reproduce("figure1", 2, &["figure1.png", "figure1.svg"]);
}

#[test]
fn figure4_smoke() {
    reproduce("figure4", 2, &["figure4.png", "figure4.svg"]);
}

#[test]
fn figure5_smoke() {
    let dir = reproduce("figure5", 6, &["figure5.png", "figure5.svg"]);
    // The interactive pages say what they show: network, swept values, directions.
    let page = std::fs::read_dir(dir.path().join("figure5"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "html"))
        .unwrap();
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.contains("2d: resnet") && html.contains("filter-normalized random directions, seed 0"),
        "{}",
        page.display()
    );
}

#[test]
fn figure6_smoke() {
    reproduce("figure6", 4, &["figure6.png", "figure6.svg"]);
}

#[test]
fn repeatability_smoke() {
    reproduce(
        "repeatability",
        1,
        &["repeatability.png", "repeatability.svg"],
    );
}

#[test]
fn figure8_smoke() {
    reproduce("figure8", 4, &["figure8.png", "figure8.svg"]);
}

#[test]
fn figure9_smoke() {
    reproduce("figure9", 8, &["figure9.png", "figure9.svg"]);
}

#[test]
fn figure7_smoke() {
    reproduce("figure7", 4, &["figure7.png", "figure7.svg"]);
}

#[test]
fn a_figure_whose_analyses_are_missing_stops_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let specs = dir.path().join("specs");
    std::fs::create_dir_all(&specs).unwrap();
    let spec = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/figure5.toml"),
    )
    .unwrap();
    let work = dir.path().join("work");
    let try_spec = |text: &str| {
        std::fs::write(specs.join("figure5.toml"), text).unwrap();
        let out = landscape(&work)
            .args(["reproduce", "figure5", "--scale", "smoke", "--specs"])
            .arg(&specs)
            .output()
            .unwrap();
        one_line_failure(&out)
    };
    // A renamed block would leave the figure with nothing to draw: refused, naming it.
    let renamed = spec
        .replace("name = \"2d\"", "name = \"2D\"")
        .replace("analysis.2d]", "analysis.2D]");
    assert_ne!(renamed, spec);
    let err = try_spec(&renamed);
    assert!(
        err.contains("figure5.toml: analysis.2d: figure5 reads a `surface` analysis named `2d`")
            && err.contains("2D (surface)"),
        "{err}"
    );
    let err = try_spec(&spec.replace("figure = \"figure5\"", "figure = \"figure10\""));
    assert!(err.contains("experiment.figure: `figure10`"), "{err}");
    assert!(!work.exists(), "something started");
}

#[test]
fn a_figure_reproduces_in_any_directory_from_the_built_in_spec() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_ok(
        Command::new(env!("CARGO_BIN_EXE_landscape"))
            .current_dir(dir.path())
            .args([
                "--workdir",
                "work",
                "reproduce",
                "figure3",
                "--scale",
                "smoke",
                "--dataset",
                "synthetic",
            ]),
    );
    assert!(out.contains("checks pass"), "{out}");
    let provenance: toml::Table =
        std::fs::read_to_string(dir.path().join("results/figure3/provenance.toml"))
            .unwrap()
            .parse()
            .unwrap();
    assert_eq!(provenance["spec"].as_str(), Some("<built-in>/figure3.toml"));
    // The built-in spec is the checkout's file as the binary was built.
    let file =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/figure3.toml"))
            .unwrap();
    let hash = format!("{:x}", sha2::Sha256::digest(file));
    assert_eq!(provenance["spec_sha256"].as_str(), Some(hash.as_str()));
}
