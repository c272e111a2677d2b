//! `landscape plot` and `landscape export --h5` on artifacts of a real (small) run: every
//! drawing of each kind of artifact, a path over a surface in the HTML and the VTP, one-line
//! refusals, and HDF5 files read back by h5py as the reference's plot_2D.py reads them.

mod common;

use common::{landscape, one_epoch_spec, one_line_failure, run_ok, train, write_spec};
#[cfg(feature = "hdf5")]
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The artifact directories of a 3-epoch run: a non-square 2-D surface with test data, a 1-D
/// surface, a trajectory and the surface of its plane, and an eigen-ratio map.
struct Artifacts {
    _dir: tempfile::TempDir,
    work: PathBuf,
    /// The run they were computed around.
    id: String,
    surface: PathBuf,
    line: PathBuf,
    trajectory: PathBuf,
    plane: PathBuf,
    ratio: PathBuf,
}

/// The one directory under `work` whose name starts with `prefix` and that is not `except`.
fn only_dir(work: &Path, prefix: &str, except: &[&Path]) -> PathBuf {
    let found: Vec<PathBuf> = std::fs::read_dir(work)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name().unwrap().to_string_lossy().starts_with(prefix)
                && !except.contains(&p.as_path())
        })
        .collect();
    assert_eq!(found.len(), 1, "{prefix}*: {found:?}");
    found.into_iter().next().unwrap()
}

fn artifacts() -> Artifacts {
    let dir = tempfile::tempdir().unwrap();
    let spec = one_epoch_spec("").replace("epochs = 1", "epochs = 3");
    let spec = write_spec(dir.path(), &spec);
    let work = dir.path().join("work");
    let id = train(&work, &spec);
    let surface_csv = run_ok(landscape(&work).args([
        "surface",
        "--run",
        &id,
        "--x",
        "-1:1:4",
        "--y",
        "-0.5:0.5:3",
        "--subset",
        "64",
        "--test",
    ]));
    let surface = PathBuf::from(surface_csv.trim())
        .parent()
        .unwrap()
        .to_path_buf();
    let line_csv = run_ok(landscape(&work).args([
        "surface", "--run", &id, "--x", "-1:1:5", "--subset", "64", "--test",
    ]));
    let line = PathBuf::from(line_csv.trim())
        .parent()
        .unwrap()
        .to_path_buf();
    run_ok(landscape(&work).args([
        "trajectory",
        "--run",
        &id,
        "--subset",
        "64",
        "--points",
        "3",
    ]));
    let trajectory = only_dir(&work, "trajectory-", &[]);
    let plane = only_dir(&work, "surface-", &[&surface, &line]);
    run_ok(landscape(&work).args([
        "eigen-ratio",
        "--run",
        &id,
        "--x",
        "-1:1:2",
        "--y",
        "-1:1:2",
        "--subset",
        "64",
        "--lanczos-steps",
        "3",
    ]));
    let ratio = only_dir(&work, "eigratio-", &[]);
    Artifacts {
        _dir: dir,
        work,
        id,
        surface,
        line,
        trajectory,
        plane,
        ratio,
    }
}

/// File names (not paths) that `landscape plot` printed.
fn plotted(out: &str) -> Vec<String> {
    out.lines()
        .map(|l| {
            Path::new(l.trim())
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

/// The value of attribute `name` on a VTP file's `<Piece>`.
fn piece_attribute(xml: &str, name: &str) -> usize {
    let piece = &xml[xml.find("<Piece").unwrap()..];
    let at = piece.find(&format!(r#"{name}=""#)).unwrap() + name.len() + 2;
    piece[at..at + piece[at..].find('"').unwrap()]
        .parse()
        .unwrap()
}

#[test]
fn plot_draws_every_kind_of_artifact_and_refuses_in_one_line() {
    let a = artifacts();

    // A 2-D surface: each drawing, named as the reference names its files, in <dir>/plots.
    let out = run_ok(landscape(&a.work).arg("plot").arg(&a.surface));
    let mut expected = Vec::new();
    for stem in ["2dcontour", "2dcontourf", "2dheat", "3dsurface"] {
        for ext in ["png", "svg"] {
            expected.push(format!("train_loss_{stem}.{ext}"));
        }
    }
    expected.extend(["train_loss.html".into(), "train_loss.vtp".into()]);
    assert_eq!(plotted(&out), expected);
    for name in &expected {
        let file = a.surface.join("plots").join(name);
        assert!(std::fs::metadata(&file).unwrap().len() > 0, "{name}");
    }
    let vtp = std::fs::read_to_string(a.surface.join("plots/train_loss.vtp")).unwrap();
    assert_eq!(piece_attribute(&vtp, "NumberOfPoints"), 4 * 3);
    assert_eq!(piece_attribute(&vtp, "NumberOfLines"), 0);
    let html = std::fs::read_to_string(a.surface.join("plots/train_loss.html")).unwrap();
    assert!(
        html.contains("resnet20") && html.contains("filter-normalized"),
        "the page's title says what it shows"
    );

    // Another quantity, chosen drawings, another folder; heights linear for an accuracy.
    let elsewhere = a.work.join("figs");
    let out = run_ok(
        landscape(&a.work)
            .arg("plot")
            .arg(&a.surface)
            .args(["--quantity", "test_err", "--kinds", "heat,html", "--out"])
            .arg(&elsewhere),
    );
    assert_eq!(
        plotted(&out),
        [
            "test_err_2dheat.png",
            "test_err_2dheat.svg",
            "test_err.html"
        ]
    );
    let html = std::fs::read_to_string(elsewhere.join("test_err.html")).unwrap();
    assert!(
        html.contains(r#""zLabel":"test error (%)""#),
        "no log of an error"
    );

    // The plane of the trajectory with its path over the contours, the HTML and the VTP.
    let path_csv = std::fs::read_to_string(a.trajectory.join("path.csv")).unwrap();
    let epochs = path_csv.lines().count() - 1;
    assert_eq!(epochs, 4, "epochs 0 to 3");
    let out = run_ok(
        landscape(&a.work)
            .arg("plot")
            .arg(&a.plane)
            .arg("--path")
            .arg(&a.trajectory)
            .args(["--kinds", "contour,html,vtp"]),
    );
    assert_eq!(plotted(&out).len(), 4);
    let vtp = std::fs::read_to_string(a.plane.join("plots/train_loss.vtp")).unwrap();
    assert_eq!(piece_attribute(&vtp, "NumberOfPoints"), 3 * 3 + epochs);
    assert_eq!(piece_attribute(&vtp, "NumberOfLines"), 1);
    let html = std::fs::read_to_string(a.plane.join("plots/train_loss.html")).unwrap();
    let path_json = &html[html.find(r#""path":[["#).expect("a path in the page")..];
    assert_eq!(
        path_json[..path_json.find("]]").unwrap()]
            .matches('[')
            .count(),
        1 + epochs
    );

    // 1-D surface, trajectory, eigen-ratio map.
    let out = run_ok(landscape(&a.work).arg("plot").arg(&a.line));
    assert_eq!(plotted(&out), ["1d_loss_acc.png", "1d_loss_acc.svg"]);
    let out = run_ok(landscape(&a.work).arg("plot").arg(&a.trajectory));
    assert_eq!(plotted(&out), ["trajectory.png", "trajectory.svg"]);
    let out = run_ok(landscape(&a.work).arg("plot").arg(&a.ratio));
    assert_eq!(
        plotted(&out),
        ["eig_abs_ratio_heat.png", "eig_abs_ratio_heat.svg"]
    );

    // Refusals: one line naming what is wrong, and nothing drawn.
    let refuse = |args: &[&str], dir: &Path, says: &str| {
        let out = landscape(&a.work)
            .arg("plot")
            .arg(dir)
            .args(args)
            .output()
            .unwrap();
        let line = one_line_failure(&out);
        assert!(line.contains(says), "{line}");
    };
    refuse(&["--kinds", "path"], &a.surface, "has no Path drawing");
    refuse(&[], &a.work.join("nowhere"), "no such directory");
    refuse(&[], &a.work, "not a surface, interpolation");
    refuse(&["--vmin", "5", "--vmax", "1"], &a.surface, "--vmin 5");
    refuse(
        &["--path", a.trajectory.to_str().unwrap()],
        &a.line,
        "over a 2-D surface only",
    );
    refuse(
        &["--path", a.surface.to_str().unwrap()],
        &a.plane,
        "not a trajectory directory",
    );
    refuse(
        &["--path", a.trajectory.to_str().unwrap()],
        &a.surface,
        "not on this path's PCA plane",
    );
    let untested = run_ok(landscape(&a.work).args([
        "surface", "--run", &a.id, "--x", "-1:1:2", "--y", "-1:1:2", "--subset", "64",
    ]));
    let untested = PathBuf::from(untested.trim())
        .parent()
        .unwrap()
        .to_path_buf();
    refuse(&["--quantity", "test_loss"], &untested, "has no test_loss");
    assert!(!untested.join("plots").join("test_loss.html").exists());
}

/// The Python that reads the files: Debian's, where h5py is (CI installs python3-h5py).
#[cfg(feature = "hdf5")]
fn python_with_h5py() -> &'static str {
    for python in ["/usr/bin/python3", "python3"] {
        let ok = std::process::Command::new(python)
            .args(["-c", "import h5py"])
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return python;
        }
    }
    panic!("no python3 with h5py (Debian: apt-get install python3-h5py)");
}

/// Reads `file` as plot_2D.py does (x, y, np.meshgrid(x, y), Z = f[name][:]) and prints each
/// dataset as JSON, with a check that Z has the meshgrid's shape.
#[cfg(feature = "hdf5")]
fn read_h5(file: &Path) -> BTreeMap<String, serde_json::Value> {
    const READER: &str = r#"
import h5py, json, sys
import numpy as np
f = h5py.File(sys.argv[1], 'r')
out = {k: np.array(f[k][:]).tolist() for k in f.keys()}
if 'ycoordinates' in f.keys():
    X, Y = np.meshgrid(f['xcoordinates'][:], f['ycoordinates'][:])
    for k in f.keys():
        if k not in ('xcoordinates', 'ycoordinates'):
            assert np.array(f[k][:]).shape == X.shape, (k, f[k].shape, X.shape)
print(json.dumps(out))
"#;
    let out = run_ok(
        std::process::Command::new(python_with_h5py())
            .args(["-c", READER])
            .arg(file),
    );
    serde_json::from_str(&out).unwrap()
}

#[cfg(feature = "hdf5")]
fn numbers(v: &serde_json::Value) -> Vec<f64> {
    match v {
        serde_json::Value::Array(items) => items.iter().flat_map(numbers).collect(),
        n => vec![n.as_f64().unwrap()],
    }
}

/// Equal up to the last bit that serde_json's float parsing may round differently.
#[cfg(feature = "hdf5")]
fn same(a: f64, b: f64) {
    assert!((a - b).abs() <= 1e-14 * b.abs().max(1e-300), "{a} != {b}");
}

/// The rows of a surface.csv as (ix, iy) -> (train_loss, test_acc).
#[cfg(feature = "hdf5")]
fn surface_rows(dir: &Path) -> BTreeMap<(usize, usize), (f64, f64)> {
    let mut reader = csv::Reader::from_path(dir.join("surface.csv")).unwrap();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            let f = |i: usize| r[i].parse::<f64>().unwrap();
            ((f(0) as usize, f(1) as usize), (f(4), f(7)))
        })
        .collect()
}

#[cfg(feature = "hdf5")]
#[test]
fn export_h5_is_read_as_the_reference_scripts_read_it() {
    let a = artifacts();
    let file = a.work.join("out").join("surface.h5");
    let out = run_ok(
        landscape(&a.work)
            .arg("export")
            .arg(&a.surface)
            .arg("--h5")
            .arg(&file),
    );
    assert!(
        out.contains("xcoordinates, ycoordinates, train_loss, train_acc, test_loss, test_acc"),
        "{out}"
    );
    let h5 = read_h5(&file);
    assert_eq!(numbers(&h5["xcoordinates"]).len(), 4);
    assert_eq!(numbers(&h5["ycoordinates"]), [-0.5, 0.0, 0.5]);
    // Element [i][j] is y index i, x index j (np.meshgrid(x, y)'s order).
    let rows = surface_rows(&a.surface);
    let loss = h5["train_loss"].as_array().unwrap();
    let test_acc = h5["test_acc"].as_array().unwrap();
    assert_eq!(loss.len(), 3);
    for ((ix, iy), (train_loss, acc)) in rows {
        same(loss[iy][ix].as_f64().unwrap(), train_loss);
        same(test_acc[iy][ix].as_f64().unwrap(), acc);
    }

    // 1-D: flat arrays, as plot_1D.py reads them.
    let file = a.work.join("line.h5");
    run_ok(
        landscape(&a.work)
            .arg("export")
            .arg(&a.line)
            .arg("--h5")
            .arg(&file),
    );
    let h5 = read_h5(&file);
    assert!(!h5.contains_key("ycoordinates"));
    let losses = numbers(&h5["train_loss"]);
    assert_eq!(losses.len(), 5);
    for (got, row) in losses.iter().zip(surface_rows(&a.line).values()) {
        same(*got, row.0);
    }

    // A trajectory: plot_2D.py's --proj_file and --dir_file.
    let file = a.work.join("path.h5");
    run_ok(
        landscape(&a.work)
            .arg("export")
            .arg(&a.trajectory)
            .arg("--h5")
            .arg(&file),
    );
    let h5 = read_h5(&file);
    let path = std::fs::read_to_string(a.trajectory.join("path.csv")).unwrap();
    let pc1: Vec<f64> = path
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
        .collect();
    let proj = numbers(&h5["proj_xcoord"]);
    assert_eq!(proj.len(), pc1.len());
    proj.iter().zip(&pc1).for_each(|(a, b)| same(*a, *b));
    let ratios = numbers(&h5["explained_variance_ratio_"]);
    assert!(ratios[0] >= ratios[1] && ratios.iter().sum::<f64>() <= 1.0 + 1e-9);

    // An eigen-ratio map: plot_2d_eig_ratio's min_eig and max_eig.
    let file = a.work.join("ratio.h5");
    run_ok(
        landscape(&a.work)
            .arg("export")
            .arg(&a.ratio)
            .arg("--h5")
            .arg(&file),
    );
    let h5 = read_h5(&file);
    let (min, max) = (numbers(&h5["min_eig"]), numbers(&h5["max_eig"]));
    assert_eq!(min.len(), 4);
    assert!(min.iter().zip(&max).all(|(a, b)| a <= b));

    // A file that exists is replaced whole; a directory that is not an artifact writes nothing.
    let out = landscape(&a.work)
        .arg("export")
        .arg(&a.work)
        .arg("--h5")
        .arg(a.work.join("bad.h5"))
        .output()
        .unwrap();
    assert!(one_line_failure(&out).contains("not a surface"));
    assert!(!a.work.join("bad.h5").exists());
}
