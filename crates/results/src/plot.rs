//! `landscape plot`: the drawings of one finished artifact with the reference code's options
//! (`plot_1D.py`, `plot_2D.py`, `h52vtp.py`) and the paper's defaults. A 1-D surface or an
//! interpolation gives loss and accuracy on twin axes; a 2-D surface gives contour lines, filled
//! contours, a heat map, a 3-D surface, the interactive HTML and a ParaView file, with an
//! optimization path over them when one is given; an eigen-ratio map gives its heat map (or
//! curve); a trajectory gives its path on the PCA plane.

use crate::artifact::{Artifact, Quantity, neighbour_run};
use crate::collect::{SurfaceResult, loss_grid};
use crate::panels::curve_panel;
use anyhow::{Context, Result, bail, ensure};
use landscape_core::hash::ContentHash;
use landscape_curvature::eigen_ratio::{EigenRatioMeta, RatioRow};
use landscape_figures::{
    ContourPanel, Figure, Grid2d, HeatmapPanel, Labels, LinePanel, PathOverlay, Point, Series,
    SurfacePanel, VtpOptions, ZTransform, linear_levels, write_surface_html, write_vtp,
};
use landscape_job::job::read_meta;
use landscape_surface::direction::DirectionRecipe;
use landscape_trajectory::trajectory::{TrajectoryMeta, TrajectoryOutcome};
use std::path::{Path, PathBuf};

/// A drawing `landscape plot` can make.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PlotKind {
    /// 1-D: loss (left axis) and accuracy (right), train solid and test dashed.
    Curve,
    /// 2-D: contour lines at vmin, vmin + vlevel, ... below vmax, labelled.
    Contour,
    /// 2-D: filled contours at the same levels, with a colour bar.
    Contourf,
    /// 2-D: heat map over vmin..vmax (an eigen-ratio map: abs(lambda_min / lambda_max) over
    /// 0..0.5, as the reference draws it).
    Heat,
    /// 2-D: 3-D surface, values clipped at zmax, heights on the z scale.
    Surface3d,
    /// 2-D: interactive, self-contained HTML page of the 3-D surface.
    Html,
    /// 2-D: ParaView file (`.vtp`) of the surface, as `h52vtp.py` writes it.
    Vtp,
    /// Trajectory: the path on the plane of its first two principal components.
    Path,
}

/// How 3-D heights are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ZScale {
    /// The values as they are.
    Linear,
    /// `ln(value + 0.1)`, as the paper's 3-D figures and `h52vtp.py --log`.
    Log,
}

/// What `landscape plot` draws and how; the defaults are the paper's.
#[derive(Clone, Debug, clap::Args)]
pub struct PlotOptions {
    /// The quantity of a 2-D surface to draw (1-D plots draw loss and accuracy together).
    #[arg(long, value_enum, default_value = "train_loss")]
    pub quantity: Quantity,
    /// Lowest contour level and bottom of the heat map's colours (plot_2D.py --vmin).
    #[arg(long, default_value_t = 0.1)]
    pub vmin: f64,
    /// Contours stop below it; top of the heat map's colours (plot_2D.py --vmax).
    #[arg(long, default_value_t = 10.0)]
    pub vmax: f64,
    /// Step between contour levels (plot_2D.py --vlevel).
    #[arg(long, default_value_t = 0.5)]
    pub vlevel: f64,
    /// Heights of the 3-D surface, the HTML and the VTP [default: log for a loss, linear for an
    /// accuracy or error].
    #[arg(long, value_enum)]
    pub z_scale: Option<ZScale>,
    /// Values above it are drawn at it in 3-D, the HTML and the VTP (h52vtp.py --zmax)
    /// [default: vmax for a loss, none for an accuracy or error].
    #[arg(long)]
    pub zmax: Option<f64>,
    /// Top of the loss axis of 1-D plots (plot_1D.py --loss_max).
    #[arg(long, default_value_t = 5.0)]
    pub loss_max: f64,
    /// A trajectory directory whose path is drawn over a 2-D surface's contours, HTML and VTP
    /// (the surface of its PCA plane, as `landscape trajectory` computes it; in 3-D over the
    /// training loss only, at its projection's loss).
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
    /// Which drawings, comma-separated [default: every one the artifact has].
    #[arg(long, value_enum, value_delimiter = ',')]
    pub kinds: Vec<PlotKind>,
    /// Directory for the drawings [default: <DIR>/plots].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// The drawings of each kind of artifact, in the order they are made.
const SURFACE_1D: &[PlotKind] = &[PlotKind::Curve];
const SURFACE_2D: &[PlotKind] = &[
    PlotKind::Contour,
    PlotKind::Contourf,
    PlotKind::Heat,
    PlotKind::Surface3d,
    PlotKind::Html,
    PlotKind::Vtp,
];
const RATIO_1D: &[PlotKind] = &[PlotKind::Curve];
const RATIO_2D: &[PlotKind] = &[PlotKind::Heat];
const TRAJECTORY: &[PlotKind] = &[PlotKind::Path];

/// The top of the reference's abs(lambda_min / lambda_max) colour range (`plot_2d_eig_ratio`).
const RATIO_HEAT_MAX: f64 = 0.5;

/// Draws the artifact in `dir` as `options` say and returns the files written.
pub fn plot(dir: &Path, options: &PlotOptions) -> Result<Vec<PathBuf>> {
    ensure!(
        options.vlevel > 0.0 && options.vlevel.is_finite(),
        "--vlevel: must be positive, got {}",
        options.vlevel
    );
    ensure!(
        options.vmin < options.vmax,
        "--vmin {} must be below --vmax {}",
        options.vmin,
        options.vmax
    );
    let artifact = Artifact::read(dir)?;
    let path = options
        .path
        .as_deref()
        .map(|p| match Artifact::read(p)? {
            Artifact::Trajectory(t) => Ok(t),
            _ => bail!("--path {}: not a trajectory directory", p.display()),
        })
        .transpose()?;
    let available = match &artifact {
        Artifact::Surface(s) if s.meta.grid.y.is_some() => SURFACE_2D,
        Artifact::Surface(_) => SURFACE_1D,
        Artifact::EigenRatio(meta, _) if meta.grid.y.is_some() => RATIO_2D,
        Artifact::EigenRatio(..) => RATIO_1D,
        Artifact::Trajectory(_) => TRAJECTORY,
    };
    let kinds = if options.kinds.is_empty() {
        available.to_vec()
    } else {
        options.kinds.clone()
    };
    if let Some(kind) = kinds.iter().find(|k| !available.contains(k)) {
        bail!(
            "--kinds: {} has no {kind:?} drawing (it has: {available:?})",
            dir.display()
        );
    }
    if let Some(t) = &path {
        let Artifact::Surface(s) = &artifact else {
            bail!("--path: a path is drawn over a 2-D surface only");
        };
        ensure!(
            s.meta.grid.y.is_some(),
            "--path: a path is drawn over a 2-D surface only"
        );
        on_its_plane(s, t)?;
    }
    let out = options.out.clone().unwrap_or_else(|| dir.join("plots"));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let drawing = Drawing {
        dir,
        out: &out,
        options,
    };
    let mut written = Vec::new();
    for kind in kinds {
        written.extend(match &artifact {
            Artifact::Surface(s) => drawing.surface(s, kind, path.as_ref())?,
            Artifact::EigenRatio(meta, rows) => drawing.ratio(meta, rows)?,
            Artifact::Trajectory(t) => drawing.trajectory(t)?,
        });
    }
    Ok(written)
}

/// One artifact's drawings under way.
struct Drawing<'a> {
    dir: &'a Path,
    out: &'a Path,
    options: &'a PlotOptions,
}

impl Drawing<'_> {
    fn surface(
        &self,
        s: &SurfaceResult,
        kind: PlotKind,
        path: Option<&TrajectoryOutcome>,
    ) -> Result<Vec<PathBuf>> {
        let title = crate::surface_title(s, neighbour_run(self.dir, &s.runs[0]).as_ref());
        let o = self.options;
        if kind == PlotKind::Curve {
            let panel = curve_panel(&title, "x", &s.curve()).with_left_max(o.loss_max);
            return self.figure(Figure::single(panel), "1d_loss_acc");
        }
        let q = o.quantity;
        let grid = loss_grid(&s.meta, q.values(&s.rows, self.dir)?)?;
        let (x_label, y_label) = match path {
            Some(t) => pc_labels(t),
            None => (axis_label(s, 0), axis_label(s, 1)),
        };
        let labels = Labels::new(title.as_str(), x_label, y_label);
        let levels = contour_levels(o);
        let stem = q.name();
        let loss = q.is_loss();
        let heights = Heights {
            zmax: o.zmax.or(loss.then_some(o.vmax)),
            transform: match o
                .z_scale
                .unwrap_or(if loss { ZScale::Log } else { ZScale::Linear })
            {
                ZScale::Log => ZTransform::PAPER_LOG,
                ZScale::Linear => ZTransform::Identity,
            },
        };
        // The path in 3-D sits at its projection's training loss: on a training-loss surface.
        let trail = path
            .filter(|_| q == Quantity::TrainLoss)
            .map_or(Vec::new(), trail);
        match kind {
            PlotKind::Contour | PlotKind::Contourf => {
                let panel = if kind == PlotKind::Contour {
                    ContourPanel::lines(labels, grid, levels)
                } else {
                    ContourPanel::filled(labels, grid, levels, q.label())
                };
                let panel = match path {
                    Some(t) => panel.with_path(overlay(t)),
                    None => panel,
                };
                let suffix = if kind == PlotKind::Contour {
                    "2dcontour"
                } else {
                    "2dcontourf"
                };
                self.figure(Figure::single(panel), &format!("{stem}_{suffix}"))
            }
            PlotKind::Heat => {
                let panel = HeatmapPanel::new(labels, grid, q.label()).with_range(o.vmin, o.vmax);
                self.figure(Figure::single(panel), &format!("{stem}_2dheat"))
            }
            PlotKind::Surface3d => {
                let panel = SurfacePanel::new(labels, heights.clip(&grid), q.label())
                    .with_transform(heights.transform);
                self.figure(Figure::single(panel), &format!("{stem}_3dsurface"))
            }
            PlotKind::Html => {
                let file = self.out.join(format!("{stem}.html"));
                heights.write_html(&file, &grid, &title, q.label(), &trail)?;
                Ok(vec![file])
            }
            PlotKind::Vtp => {
                let file = self.out.join(format!("{stem}.vtp"));
                heights.write_vtp(&file, &grid, &trail)?;
                Ok(vec![file])
            }
            PlotKind::Curve | PlotKind::Path => unreachable!("checked against SURFACE_2D"),
        }
    }

    fn ratio(&self, meta: &EigenRatioMeta, rows: &[RatioRow]) -> Result<Vec<PathBuf>> {
        let title = format!(
            "abs(lambda_min / lambda_max) around {} ({} Lanczos steps)",
            meta.base.run, meta.lanczos_steps
        );
        let ratio: Vec<f64> = rows.iter().map(|r| r.ratio).collect();
        let Some(y) = meta.grid.y else {
            let x = rows.iter().map(|r| r.x).collect();
            let panel = LinePanel::new(
                Labels::new(title, "x", "abs(lambda_min / lambda_max)"),
                vec![Series::new("ratio", x, ratio)],
            );
            return self.figure(Figure::single(panel), "1d_eig_abs_ratio");
        };
        let grid = Grid2d::new(meta.grid.x.values(), y.values(), ratio)?;
        let panel = HeatmapPanel::new(Labels::new(title, "x", "y"), grid, "abs ratio")
            .with_range(0.0, RATIO_HEAT_MAX);
        self.figure(Figure::single(panel), "eig_abs_ratio_heat")
    }

    fn trajectory(&self, t: &TrajectoryOutcome) -> Result<Vec<PathBuf>> {
        let (x_label, y_label) = pc_labels(t);
        let run = read_meta::<TrajectoryMeta>(&t.dir)?.run;
        let panel = LinePanel::new(
            Labels::new(format!("optimization path of run {run}"), x_label, y_label),
            vec![Series::new(
                "path",
                t.path.iter().map(|p| p.pc1).collect(),
                t.path.iter().map(|p| p.pc2).collect(),
            )],
        );
        self.figure(Figure::single(panel), "trajectory")
    }

    /// Saves `figure` as `<stem>.png` and `<stem>.svg` under the output directory.
    fn figure(&self, figure: Figure, stem: &str) -> Result<Vec<PathBuf>> {
        let base = self.out.join(stem);
        figure.save(&base)?;
        Ok(vec![base.with_extension("png"), base.with_extension("svg")])
    }
}

/// Checks that surface `s` lies on the PCA plane of path `t`: its directions are the path's
/// `directions.safetensors`, by content (a path drawn over another plane would mislead).
fn on_its_plane(s: &SurfaceResult, t: &TrajectoryOutcome) -> Result<()> {
    let file = t.dir.join("directions.safetensors");
    let plane = ContentHash::of_file(&file)?;
    let on_it = s
        .meta
        .directions
        .iter()
        .all(|d| matches!(d, DirectionRecipe::File { hash } if *hash == plane));
    ensure!(
        on_it,
        "--path {}: the surface is not on this path's PCA plane (its directions are not {})",
        t.dir.display(),
        file.display()
    );
    Ok(())
}

/// `vmin, vmin + vlevel, ...` below `vmax`, as `np.arange(vmin, vmax, vlevel)`.
fn contour_levels(o: &PlotOptions) -> Vec<f64> {
    let mut levels = linear_levels(o.vmin, o.vlevel, o.vmax);
    if levels
        .last()
        .is_some_and(|&l| l >= o.vmax - 1e-9 * o.vlevel)
    {
        levels.pop();
    }
    levels
}

/// The label of axis `index` (0 = x) of a surface: its direction's normalization or origin.
fn axis_label(s: &SurfaceResult, index: usize) -> String {
    let axis = ["x", "y"][index];
    match s.meta.directions.get(index) {
        Some(DirectionRecipe::Random { norm, .. }) => {
            format!("{axis} ({norm:?}-normalized)").to_lowercase()
        }
        Some(DirectionRecipe::Pca {
            component,
            explained,
            ..
        }) => format!("PC{}: {:.2} %", component + 1, 100.0 * explained),
        _ => axis.to_string(),
    }
}

/// "1st PC: 62.30 %", "2nd PC: 12.00 %", as the reference labels its trajectory plots.
fn pc_labels(t: &TrajectoryOutcome) -> (String, String) {
    let share = |k: usize| t.summary.explained_pct.get(k).copied().unwrap_or(f64::NAN);
    (
        format!("1st PC: {:.2} %", share(0)),
        format!("2nd PC: {:.2} %", share(1)),
    )
}

/// How values become the heights of 3-D drawings: clipped at `zmax`, then transformed.
pub(crate) struct Heights {
    /// Values above it are drawn at it.
    pub zmax: Option<f64>,
    /// Applied after the clip.
    pub transform: ZTransform,
}

impl Heights {
    /// The paper's 3-D figures: loss clipped at [`crate::panels::LOSS_CLIP`], `ln(loss + 0.1)`.
    pub const PAPER: Self = Self {
        zmax: Some(crate::panels::LOSS_CLIP),
        transform: ZTransform::PAPER_LOG,
    };

    fn clip(&self, grid: &Grid2d) -> Grid2d {
        grid.map(|z| self.zmax.map_or(z, |m| z.min(m)))
    }

    /// Writes the interactive page of `grid` (values of `label`) with `trail` over it.
    pub fn write_html(
        &self,
        file: &Path,
        grid: &Grid2d,
        title: &str,
        label: &str,
        trail: &[[f64; 3]],
    ) -> Result<()> {
        let height = |z: f64| self.transform.apply(self.zmax.map_or(z, |m| z.min(m)));
        let trail: Vec<[f64; 3]> = trail.iter().map(|&[x, y, z]| [x, y, height(z)]).collect();
        write_surface_html(
            file,
            &grid.map(height),
            title,
            &self.transform.describe(label),
            &trail,
        )
    }

    /// Writes the ParaView file of `grid` with `trail` over it (`h52vtp.py`'s heights).
    pub fn write_vtp(&self, file: &Path, grid: &Grid2d, trail: &[[f64; 3]]) -> Result<()> {
        let options = VtpOptions {
            log: self.transform != ZTransform::Identity,
            zmax: self.zmax,
        };
        write_vtp(file, grid, &options, trail)
    }
}

/// An optimization path as points (pc1, pc2, loss at the projection): on the surface of its
/// PCA plane, where the 3-D drawings put it.
pub(crate) fn trail(t: &TrajectoryOutcome) -> Vec<[f64; 3]> {
    t.path
        .iter()
        .map(|p| [p.pc1, p.pc2, p.projected_train_loss])
        .collect()
}

/// The path as an overlay of a contour plot, a dot at every saved epoch.
fn overlay(t: &TrajectoryOutcome) -> PathOverlay {
    let points: Vec<Point> = t.path.iter().map(|p| (p.pc1, p.pc2)).collect();
    PathOverlay {
        markers: (0..points.len()).collect(),
        points,
        label: "optimization path".into(),
    }
}
