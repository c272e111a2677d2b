//! What users came for: `landscape reproduce <figure>` trains what is needed, computes the
//! landscapes, draws the paper's figure, checks the paper's claims and leaves result tables to
//! diff (`results/<figure>/`: `summary.csv`, `findings.csv`, `findings.md`, the figure as PNG
//! and SVG, interactive HTML and VTP surfaces, `provenance.toml`).
//!
//! - [`collect`]: a finished spec's runs and surfaces read back;
//! - [`measures`]: numbers that summarize a landscape (basin width, curvature, non-convexity);
//! - [`figure1`] to [`figure7`], [`figure9`] (and 8), [`repeatability`]: the paper's layouts
//!   and claim checks;
//! - [`report`]: tables and findings on disk; [`diff`]: comparing result folders;
//!   [`compare`]: comparing two surfaces of one grid by their contours and measures.
//!
//! ```no_run
//! # fn demo(ctx: landscape_pipeline::Context) -> anyhow::Result<()> {
//! let options = landscape_results::ReproduceOptions::new("figure3", landscape_spec::Scale::Smoke);
//! let dir = landscape_results::reproduce(&ctx, &options)?;
//! assert!(dir.join("findings.md").exists());
//! # Ok(()) }
//! ```

pub mod artifact;
pub mod collect;
pub mod compare;
pub mod diff;
pub mod figure1;
pub mod figure2;
pub mod figure3;
pub mod figure4;
pub mod figure5;
pub mod figure6;
pub mod figure7;
pub mod figure9;
pub mod measures;
pub mod notes;
mod panels;
pub mod paper;
pub mod plot;
pub mod repeatability;
pub mod report;

use anyhow::{Context as _, Result, bail};
use collect::{Collected, SurfaceResult};
use landscape_core::atomic::write_atomic;
use landscape_core::device::DeviceKind;
use landscape_core::hash::ContentHash;
use landscape_data::DatasetName;
use landscape_job::journal::{self, Row as _};
use landscape_job::shard::Shard;
use landscape_models::cpu::Isa;
use landscape_pipeline::{Context, run_spec};
use landscape_spec::{Scale, Spec, SpecSource};
use landscape_surface::direction::DirectionRecipe;
use report::{Check, Table, num, write_findings};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What a figure's builder produces besides its figure files.
pub struct Product {
    /// `summary.csv`: one row per run.
    pub summary: Table,
    /// The claim checks.
    pub checks: Vec<Check>,
    /// How each quantity in the summary and checks is measured (name, explanation).
    pub measures: Vec<(&'static str, &'static str)>,
    /// The figure files written.
    pub figures: Vec<String>,
    /// More tables to write beside `summary.csv` (file name, table).
    pub tables: Vec<(&'static str, Table)>,
}

/// An analysis a figure reads: a block of this kind, by this name (or, where the builder
/// reads it by kind, any block of the kind).
#[derive(Clone, Copy, Debug)]
pub struct Reads {
    /// The block's name in the spec (`2d`), or `None` where any block of the kind will do.
    pub name: Option<&'static str>,
    /// Its kind (`surface`).
    pub kind: &'static str,
}

const fn named(name: &'static str, kind: &'static str) -> Reads {
    Reads {
        name: Some(name),
        kind,
    }
}

const fn any(kind: &'static str) -> Reads {
    Reads { name: None, kind }
}

/// A figure `reproduce` draws and checks: the analyses it reads and its builder (the collected
/// results, the work directory, the folder to write into).
pub struct Figure {
    /// `figure = "<name>"` in a spec (or the experiment's name).
    pub name: &'static str,
    /// What it reads, checked against the spec before anything is trained.
    pub reads: &'static [Reads],
    /// Draws the figure and checks the claims.
    pub build: fn(&Collected, &Path, &Path) -> Result<Product>,
}

/// Every figure `reproduce` knows.
pub const FIGURES: &[Figure] = &[
    Figure {
        name: "figure1",
        reads: &[named("2d", "surface")],
        build: |c, _, out| figure1::build(c, out),
    },
    Figure {
        name: "figure2",
        reads: &[named("interp", "interpolate")],
        build: figure2::build,
    },
    Figure {
        name: "figure3",
        reads: &[
            named("1d", "surface"),
            named("1d_layer", "surface"),
            named("1d_raw", "surface"),
            named("2d", "surface"),
        ],
        build: |c, _, out| figure3::build(c, out),
    },
    Figure {
        name: "figure4",
        reads: &[named("2d", "surface")],
        build: |c, _, out| figure4::build(c, out),
    },
    Figure {
        name: "figure5",
        reads: &[named("2d", "surface")],
        build: |c, _, out| figure5::build(c, out),
    },
    Figure {
        name: "figure6",
        reads: &[named("2d", "surface")],
        build: |c, _, out| figure6::build(c, out),
    },
    Figure {
        name: "figure7",
        reads: &[named("2d", "surface"), any("eigen_ratio")],
        build: |c, _, out| figure7::build(c, out),
    },
    Figure {
        name: "figure8",
        reads: &[any("trajectory")],
        build: |c, _, out| figure9::build_figure8(c, out),
    },
    Figure {
        name: "figure9",
        reads: &[any("trajectory")],
        build: |c, _, out| figure9::build_figure9(c, out),
    },
    Figure {
        name: "repeatability",
        reads: &[named("1d", "surface")],
        build: |c, _, out| repeatability::build(c, out),
    },
];

impl Figure {
    /// The figure `spec` draws (its `figure`, else its name), with every analysis it reads
    /// present in the spec under its name and kind: checked before anything is trained, so a
    /// renamed block cannot silently empty a figure.
    pub fn of(spec: &Spec) -> Result<&'static Figure> {
        let wanted = spec
            .experiment
            .figure
            .as_deref()
            .unwrap_or(&spec.experiment.name);
        let Some(figure) = FIGURES.iter().find(|f| f.name == wanted) else {
            let names: Vec<&str> = FIGURES.iter().map(|f| f.name).collect();
            bail!(
                "{}: experiment.figure: `{wanted}` has no figure builder ({} do)",
                spec.path.display(),
                names.join(", ")
            );
        };
        let blocks: Vec<String> = spec
            .analyses
            .iter()
            .map(|a| format!("{} ({})", a.name, a.kind))
            .collect();
        let blocks = if blocks.is_empty() {
            "none".to_string()
        } else {
            blocks.join(", ")
        };
        for reads in figure.reads {
            let found = spec
                .analyses
                .iter()
                .any(|a| a.kind == reads.kind && reads.name.is_none_or(|name| a.name == name));
            if !found {
                let what = match reads.name {
                    Some(name) => format!(
                        "analysis.{name}: {wanted} reads a `{}` analysis named `{name}`",
                        reads.kind
                    ),
                    None => format!("analysis: {wanted} reads a `{}` analysis", reads.kind),
                };
                bail!("{}: {what}; the spec has: {blocks}", spec.path.display());
            }
        }
        Ok(figure)
    }
}

/// How to reproduce a figure.
#[derive(Clone, Debug)]
pub struct ReproduceOptions {
    /// The figure (`figure3`): its spec is `<specs>/<figure>.toml` ([`SpecSource::find`]).
    pub figure: String,
    /// The scale.
    pub scale: Scale,
    /// A data set to use instead of the spec's.
    pub dataset: Option<DatasetName>,
    /// Where the results go (default `results/<figure>`).
    pub results: PathBuf,
    /// The folder of experiment specs (`None`: `./experiments` when it holds the figure's
    /// spec, else the spec built into the binary).
    pub specs: Option<PathBuf>,
    /// `--set` overrides.
    pub sets: Vec<String>,
    /// The binary's version and commit, for `provenance.toml` (`landscape --version`).
    pub binary: String,
}

impl ReproduceOptions {
    /// Defaults: the checkout's or the built-in specs, results in `results/<figure>`.
    pub fn new(figure: &str, scale: Scale) -> Self {
        Self {
            figure: figure.into(),
            scale,
            dataset: None,
            results: Path::new("results").join(figure),
            specs: None,
            sets: Vec::new(),
            binary: format!("landscape-results {}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// Plans, trains (cached), analyses (cached), draws and checks `options.figure`, and writes its
/// results folder whole (built aside, then moved into place). Returns the folder.
pub fn reproduce(ctx: &Context, options: &ReproduceOptions) -> Result<PathBuf> {
    let start = Instant::now();
    let source = SpecSource::find(options.specs.as_deref(), &options.figure)?;
    let spec_path = source.path.clone();
    let spec = source.load(options.scale, &options.sets)?;
    let figure = Figure::of(&spec)?;
    let outcome = run_spec(ctx, &spec, options.dataset.clone(), true, Shard::WHOLE)?;
    let collected = Collected::read(&ctx.workdir, &outcome)?;

    let out = &options.results;
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let staging = parent.join(format!(".{}.tmp-{}", options.figure, std::process::id()));
    if staging.exists() {
        std::fs::remove_dir_all(&staging)?;
    }
    std::fs::create_dir_all(&staging)?;
    let built = (|| -> Result<()> {
        let product = (figure.build)(&collected, &ctx.workdir, &staging)?;
        write_surfaces(&collected, &staging)?;
        centre_table(&collected).write(&staging.join("centres.csv"))?;
        product.summary.write(&staging.join("summary.csv"))?;
        for (name, table) in &product.tables {
            table.write(&staging.join(name))?;
        }
        let data = &outcome.data;
        let mut conditions = vec![
            format!(
                "Scale: {} (spec {})",
                options.scale.name(),
                spec_path.display()
            ),
            match &data.substituted_for {
                Some(named) => format!(
                    "Data: **{} standing in for {named}**, which was not available; numbers are not the paper's",
                    data.dataset.name
                ),
                None => format!("Data: {} ({})", data.dataset.name, data.dataset.source),
            },
            format!(
                "Runs: {}",
                collected
                    .runs
                    .iter()
                    .map(|r| format!(
                        "{} ({})",
                        r.record.id,
                        r.record
                            .sweep
                            .iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ];
        conditions.push(format!("Device: {}", ctx.device_kind.name()));
        write_findings(
            &staging,
            &spec.experiment.title,
            &conditions,
            &product.measures,
            &product.checks,
        )?;
        let provenance = toml::to_string_pretty(&Provenance {
            figure: options.figure.clone(),
            scale: options.scale.name().into(),
            dataset: data.dataset.name.to_string(),
            substituted_for: data.substituted_for.as_ref().map(|d| d.to_string()),
            runs: collected.runs.iter().map(|r| r.record.id.clone()).collect(),
            surfaces: outcome
                .analyses
                .iter()
                .map(|a| {
                    a.dir
                        .file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned()
                })
                .collect(),
            wall_seconds: start.elapsed().as_secs_f64().round(),
            training_seconds: collected
                .runs
                .iter()
                .flat_map(|r| &r.metrics)
                .map(|m| m.seconds)
                .sum::<f64>()
                .round(),
            analysis_seconds: outcome
                .analyses
                .iter()
                .map(|a| landscape_job::journal::computed_seconds(&a.dir))
                .sum::<Result<f64>>()
                .map(|s| (s * 1000.0).round() / 1000.0)?,
            device: ctx.device_kind.to_string(),
            landscape: options.binary.clone(),
            spec: spec_path.display().to_string(),
            spec_sha256: ContentHash::of_bytes(source.text.as_bytes())
                .full()
                .to_string(),
            sets: options.sets.clone(),
            threads: rayon::current_num_threads(),
            cpu_kernels: match ctx.device_kind {
                DeviceKind::Cpu => landscape_models::cpu::kernel_isa()
                    .map_or("off (burn's operations)", |isa| isa.engine())
                    .to_string(),
                DeviceKind::Cuda(_) => "unused (device cuda)".to_string(),
            },
            training_engines: {
                let mut engines: Vec<String> = collected
                    .runs
                    .iter()
                    .map(|r| r.status.engine.clone())
                    .filter(|e| !e.is_empty())
                    .collect();
                engines.sort();
                engines.dedup();
                engines
            },
            cpu_instruction_sets: Isa::available_all()
                .iter()
                .map(|isa| isa.name().to_string())
                .collect(),
        })?;
        write_atomic(&staging.join("provenance.toml"), provenance.as_bytes())?;
        notes::carry(out, &staging)?;
        Ok(())
    })();
    if let Err(e) = built {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    if out.exists() {
        std::fs::remove_dir_all(out).with_context(|| format!("replacing {}", out.display()))?;
    }
    std::fs::rename(&staging, out)
        .with_context(|| format!("moving results into {}", out.display()))?;
    Ok(out.clone())
}

/// `provenance.toml`: what produced a results folder. The runs' and analyses' ids are content
/// hashes of everything that determines them (their resolved settings, seeds, data and
/// checkpoints), so they stand for the resolved configuration.
#[derive(serde::Serialize)]
struct Provenance {
    figure: String,
    scale: String,
    dataset: String,
    substituted_for: Option<String>,
    runs: Vec<String>,
    surfaces: Vec<String>,
    /// This sitting's wall time (cached work costs nothing here).
    wall_seconds: f64,
    /// The runs' training time over every sitting (their metrics' seconds).
    training_seconds: f64,
    /// The grid analyses' computing time (surfaces, interpolations, ratio maps: the seconds
    /// their points took) over every sitting and shard; analyses without points (sharpness,
    /// spectra, trajectories) are not counted. To the millisecond: a small surface's points
    /// take less than a second in all.
    analysis_seconds: f64,
    device: String,
    /// The binary: version and commit (`-dirty`: built from a changed tree).
    landscape: String,
    /// The spec file, its SHA-256 and the `--set` overrides.
    spec: String,
    spec_sha256: String,
    sets: Vec<String>,
    /// CPU threads; what this sitting's inference ran on the CPU (the kernels' instruction
    /// set); what trained the runs (their last sessions' engines); the instruction sets this
    /// CPU runs.
    threads: usize,
    cpu_kernels: String,
    training_engines: Vec<String>,
    cpu_instruction_sets: Vec<String>,
}

/// What a surface page shows, in words: `2d: resnet56 (batch_size=128, weight_decay=0.0005),
/// filter-normalized random directions, seed 0 (run resnet56-3fa2c1d9e0b4)`.
fn surface_title(s: &SurfaceResult, run: Option<&landscape_train::run::RunRecord>) -> String {
    let network = run.map_or(s.runs[0].clone(), |r| {
        let sweep: Vec<String> = r.sweep.iter().map(|(k, v)| format!("{k}={v}")).collect();
        match sweep.is_empty() {
            true => r.config.train.model.to_string(),
            false => format!("{} ({})", r.config.train.model, sweep.join(", ")),
        }
    });
    let directions = match s.meta.directions.first() {
        Some(DirectionRecipe::Random { seed, norm, .. }) => {
            format!("{norm:?}-normalized random directions, seed {seed}").to_lowercase()
        }
        Some(DirectionRecipe::Difference { .. }) => "the plane through runs".to_string(),
        Some(DirectionRecipe::Pca { .. }) => "the path's PCA plane".to_string(),
        Some(DirectionRecipe::File { .. }) | None => "directions from a file".to_string(),
    };
    format!(
        "{}: {network}, {directions} (run {})",
        s.analysis, s.runs[0]
    )
}

/// `<analysis>_<model>-<swept values>`: the file name of a surface's outputs.
fn surface_stem(c: &Collected, s: &SurfaceResult) -> String {
    let label = c.run(&s.runs[0]).map_or(s.runs[0].clone(), |r| {
        let values: Vec<String> = r.record.sweep.values().map(|v| file_part(v)).collect();
        format!("{}-{}", r.record.config.train.model, values.join("-"))
    });
    format!("{}_{label}", s.analysis)
}

/// A swept value as part of a file name, with no quotes, spaces, percent signs or braces:
/// `"16.4%"` is `16.4`, and linked settings give their values in key order
/// (`{ lr = 0.001, optimizer = "adam" }` is `0.001-adam`).
fn file_part(value: &str) -> String {
    let bare: String = value
        .chars()
        .filter(|c| !matches!(c, '"' | '%' | ' ' | '{' | '}'))
        .collect();
    bare.split(',')
        .map(|setting| setting.rsplit('=').next().unwrap_or(setting))
        .collect::<Vec<_>>()
        .join("-")
}

/// `centres.csv`: for each run, the training loss and accuracy at the centre of each of its
/// surfaces around it (random directions through the origin; the first when an analysis has
/// several), how far the minimum a figure draws is trained.
fn centre_table(c: &Collected) -> Table {
    let mut table = Table::new(&[
        "run",
        "analysis",
        "train_examples",
        "train_loss",
        "train_acc",
    ]);
    let mut seen = std::collections::BTreeSet::new();
    for s in &c.surfaces {
        let around_run = matches!(
            s.meta.directions.first(),
            Some(DirectionRecipe::Random { .. })
        );
        let centre = s.rows.iter().find(|r| r.x == 0.0 && r.y == 0.0);
        let (Some(centre), true) = (centre, around_run) else {
            continue;
        };
        if seen.insert((s.runs[0].clone(), s.analysis.clone())) {
            table.push(vec![
                s.runs[0].clone(),
                s.analysis.clone(),
                s.meta.train_examples.to_string(),
                num(centre.train_loss),
                num(centre.train_acc),
            ]);
        }
    }
    table
}

/// Every surface's table (`surfaces/<stem>.csv`), and an interactive HTML page and a ParaView
/// file for every 2-D surface.
fn write_surfaces(c: &Collected, out: &Path) -> Result<()> {
    // Every surface's grid as a table, so the committed results keep the numbers the figures
    // draw (several surfaces of one analysis and run, the repeats, numbered in order).
    let tables = out.join("surfaces");
    std::fs::create_dir_all(&tables)?;
    let mut seen: Vec<String> = Vec::new();
    for s in &c.surfaces {
        let stem = surface_stem(c, s);
        let repeat = seen.iter().filter(|t| **t == stem).count();
        seen.push(stem.clone());
        let name = match repeat {
            0 => format!("{stem}.csv"),
            n => format!("{stem}_{}.csv", n + 1),
        };
        let nx = s.meta.grid.x.points;
        let rows = s.rows.iter().map(|r| {
            let (ix, iy) = r.index();
            (iy * nx + ix, r.clone())
        });
        journal::write_table(&tables.join(name), &rows.collect())?;
    }
    for s in c.surfaces.iter().filter(|s| s.meta.grid.y.is_some()) {
        let grid = s.loss_grid()?;
        let run = c.run(&s.runs[0]);
        let stem = surface_stem(c, s);
        let title = surface_title(s, run.map(|r| &r.record));
        let trail = s.trajectory.as_ref().map_or(Vec::new(), plot::trail);
        let heights = plot::Heights::PAPER;
        heights.write_html(
            &out.join(format!("{stem}.html")),
            &grid,
            &title,
            "loss",
            &trail,
        )?;
        heights.write_vtp(&out.join(format!("{stem}.vtp")), &grid, &trail)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::file_part;

    #[test]
    fn swept_values_become_plain_file_name_parts() {
        assert_eq!(file_part("32"), "32");
        assert_eq!(file_part("\"16.4%\""), "16.4");
        assert_eq!(file_part("0.0005"), "0.0005");
        assert_eq!(
            file_part("{ lr = 0.001, optimizer = \"adam\" }"),
            "0.001-adam"
        );
    }
}
