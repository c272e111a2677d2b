//! `landscape compare-surfaces`: how far apart two surfaces of the same grid are, in the terms
//! a reader of the figures cares about — where the contours lie and what the landscape
//! measures say — rather than cell by cell. Made to answer whether a cheaper way of computing a
//! surface (bf16 inference, fewer examples) draws the same picture as the exact one.
//!
//! For each contour level `L` it reports the share of points inside (`loss < L`) in each
//! surface and the Jaccard distance of the two sublevel sets, `1 - |A ∩ B| / |A ∪ B|` (0: the
//! same region; 1: disjoint); and it evaluates the landscape measures of [`crate::measures`] on
//! both.

use crate::collect::{SurfaceResult, loss_grid};
use crate::measures::{
    WIDTH_RISE, basin_area, basin_width, curvature, local_minima, nearest, nonconvex_share,
};
use crate::report::{Table, num};
use anyhow::{Result, bail};
use landscape_figures::Grid2d;
use landscape_surface::surface::SurfaceMeta;
use std::fmt::Write as _;
use std::path::Path;

/// How the two sublevel sets `{loss < level}` compare.
#[derive(Clone, Debug, PartialEq)]
pub struct LevelAgreement {
    /// The contour level (training loss).
    pub level: f64,
    /// Share of the first surface's points inside, percent.
    pub inside_a: f64,
    /// Share of the second surface's points inside, percent.
    pub inside_b: f64,
    /// `1 - |A ∩ B| / |A ∪ B|` over the two sets of points inside.
    pub jaccard_distance: f64,
}

/// One landscape measure on both surfaces.
#[derive(Clone, Debug, PartialEq)]
pub struct MeasurePair {
    /// What is measured.
    pub name: &'static str,
    /// On the first surface.
    pub a: f64,
    /// On the second.
    pub b: f64,
}

/// Everything [`compare`] found.
#[derive(Clone, Debug, PartialEq)]
pub struct SurfaceComparison {
    /// What, besides the grid they share, the two surfaces were computed from differently
    /// (`precision: f32 / bf16`); empty for two computations of the same surface.
    pub differs_in: Vec<String>,
    /// Grid points compared.
    pub points: usize,
    /// Largest `|loss_a - loss_b|` over points where both are finite.
    pub max_abs_difference: f64,
    /// Largest `|loss_a - loss_b| / max(|loss_a|, |loss_b|)` over points where both are finite
    /// (the far corners of a surface reach losses of 1e6 and more, where only this says much).
    pub max_rel_difference: f64,
    /// Largest `|loss_a - loss_b|` over the low-loss region: points where either loss is within
    /// [`WIDTH_RISE`] of the first surface's loss at the origin (NaN when that is not finite).
    pub low_loss_max_abs_difference: f64,
    /// Points finite in one surface and not in the other.
    pub finiteness_mismatches: usize,
    /// One entry per level with points inside either surface.
    pub levels: Vec<LevelAgreement>,
    /// Landscape measures on both.
    pub measures: Vec<MeasurePair>,
}

/// Compares the surfaces in directories `a` and `b` (same grid) at contour `levels`.
pub fn compare(a: &Path, b: &Path, levels: &[f64]) -> Result<SurfaceComparison> {
    let read = |dir: &Path| SurfaceResult::read(dir, String::new(), Vec::new());
    let (sa, sb) = (read(a)?, read(b)?);
    if sa.meta.grid != sb.meta.grid {
        bail!(
            "{} and {} have different grids ({} vs {}): compare surfaces of the same grid",
            a.display(),
            b.display(),
            describe(&sa.meta),
            describe(&sb.meta)
        );
    }
    let mut c = compare_losses(&sa.meta, &sa.train_loss(), &sb.train_loss(), levels);
    c.differs_in = differences(&sa.meta, &sb.meta);
    Ok(c)
}

/// The fields of two metas of one grid that differ, as `name: a / b`.
fn differences(a: &SurfaceMeta, b: &SurfaceMeta) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = |name: &str, x: String, y: String| {
        if x != y {
            out.push(format!("{name}: {x} / {y}"));
        }
    };
    field("kind", format!("{:?}", a.kind), format!("{:?}", b.kind));
    field("base", a.base.to_string(), b.base.to_string());
    field(
        "directions",
        format!("{:?}", a.directions),
        format!("{:?}", b.directions),
    );
    field("scope", format!("{:?}", a.scope), format!("{:?}", b.scope));
    field(
        "train_examples",
        a.train_examples.to_string(),
        b.train_examples.to_string(),
    );
    field(
        "precision",
        a.precision.name().into(),
        b.precision.name().into(),
    );
    out
}

fn describe(meta: &SurfaceMeta) -> String {
    match meta.grid.y {
        Some(y) => format!("x {} y {}", meta.grid.x, y),
        None => format!("x {}", meta.grid.x),
    }
}

fn compare_losses(meta: &SurfaceMeta, a: &[f64], b: &[f64], levels: &[f64]) -> SurfaceComparison {
    let both = || {
        a.iter()
            .zip(b)
            .filter(|(x, y)| x.is_finite() && y.is_finite())
    };
    let max_abs_difference = both().map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
    let max_rel_difference = both()
        .filter(|(x, y)| x != y)
        .map(|(x, y)| (x - y).abs() / x.abs().max(y.abs()))
        .fold(0.0, f64::max);
    let centre = a[centre_index(meta)];
    let low = centre + WIDTH_RISE;
    let low_loss_max_abs_difference = if centre.is_finite() {
        both()
            .filter(|(x, y)| x.min(**y) <= low)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
    } else {
        f64::NAN
    };
    let finiteness_mismatches = a
        .iter()
        .zip(b)
        .filter(|(x, y)| x.is_finite() != y.is_finite())
        .count();
    let n = a.len() as f64;
    let levels = levels
        .iter()
        .filter_map(|&level| {
            let inside = |v: f64| v.is_finite() && v < level;
            let (mut ia, mut ib, mut both_in, mut either) = (0usize, 0usize, 0usize, 0usize);
            for (&x, &y) in a.iter().zip(b) {
                let (p, q) = (inside(x), inside(y));
                ia += p as usize;
                ib += q as usize;
                both_in += (p && q) as usize;
                either += (p || q) as usize;
            }
            (either > 0).then(|| LevelAgreement {
                level,
                inside_a: 100.0 * ia as f64 / n,
                inside_b: 100.0 * ib as f64 / n,
                jaccard_distance: 1.0 - both_in as f64 / either as f64,
            })
        })
        .collect();
    SurfaceComparison {
        differs_in: Vec::new(),
        points: a.len(),
        max_abs_difference,
        max_rel_difference,
        low_loss_max_abs_difference,
        finiteness_mismatches,
        levels,
        measures: measures(meta, a, b),
    }
}

/// The grid index closest to the origin (the base point).
fn centre_index(meta: &SurfaceMeta) -> usize {
    let ix = nearest(&meta.grid.x.values(), 0.0);
    let iy = meta.grid.y.map_or(0, |y| nearest(&y.values(), 0.0));
    iy * meta.grid.x.points + ix
}

fn measures(meta: &SurfaceMeta, a: &[f64], b: &[f64]) -> Vec<MeasurePair> {
    let centre = centre_index(meta);
    let mut out = vec![MeasurePair {
        name: "loss at the centre",
        a: a[centre],
        b: b[centre],
    }];
    match meta.grid.y {
        Some(_) => {
            let grid = |z: &[f64]| loss_grid(meta, z.to_vec());
            if let (Ok(ga), Ok(gb)) = (grid(a), grid(b)) {
                let pair = |name, f: &dyn Fn(&Grid2d) -> f64| MeasurePair {
                    name,
                    a: f(&ga),
                    b: f(&gb),
                };
                out.push(pair(
                    "basin area (% of points within 0.5 of the centre)",
                    &|g| basin_area(g, WIDTH_RISE),
                ));
                out.push(pair("non-convex share (%)", &nonconvex_share));
                out.push(pair("local minima", &|g| local_minima(g) as f64));
            }
        }
        None => {
            let x = meta.grid.x.values();
            let pair = |name, f: &dyn Fn(&[f64]) -> f64| MeasurePair {
                name,
                a: f(a),
                b: f(b),
            };
            out.push(pair("basin width (loss within 0.5 of the centre)", &|l| {
                basin_width(&x, l, 0.0, WIDTH_RISE)
            }));
            out.push(pair("curvature at the centre", &|l| curvature(&x, l, 0.0)));
        }
    }
    out
}

/// The comparison as text: the differences, the levels, the measures.
pub fn render(c: &SurfaceComparison) -> String {
    let mut s = String::new();
    if !c.differs_in.is_empty() {
        let _ = writeln!(s, "computed differently: {}", c.differs_in.join("; "));
    }
    let _ = writeln!(
        s,
        "{} points; largest |loss difference| {} ({:.2e} relative), {} in the low-loss region (within {WIDTH_RISE} of the centre); {} point(s) finite in only one",
        c.points,
        num(c.max_abs_difference),
        c.max_rel_difference,
        num(c.low_loss_max_abs_difference),
        c.finiteness_mismatches
    );
    let _ = writeln!(
        s,
        "{:>8}  {:>10}  {:>10}  {:>16}",
        "level", "inside A %", "inside B %", "Jaccard distance"
    );
    for l in &c.levels {
        let _ = writeln!(
            s,
            "{:>8}  {:>10.2}  {:>10.2}  {:>16.4}",
            num(l.level),
            l.inside_a,
            l.inside_b,
            l.jaccard_distance
        );
    }
    for m in &c.measures {
        let _ = writeln!(s, "{}: A {} / B {}", m.name, num(m.a), num(m.b));
    }
    s
}

/// The comparison as a long table (`quantity, level, value`), for result folders and
/// `landscape diff`.
pub fn table(c: &SurfaceComparison) -> Table {
    let mut t = Table::new(&["quantity", "level", "value"]);
    let mut row = |q: &str, level: Option<f64>, v: f64| {
        t.push(vec![q.into(), level.map_or(String::new(), num), num(v)])
    };
    row("max abs difference", None, c.max_abs_difference);
    row("max relative difference", None, c.max_rel_difference);
    row(
        "low-loss max abs difference",
        None,
        c.low_loss_max_abs_difference,
    );
    row(
        "points finite in only one",
        None,
        c.finiteness_mismatches as f64,
    );
    for l in &c.levels {
        row("inside % (A)", Some(l.level), l.inside_a);
        row("inside % (B)", Some(l.level), l.inside_b);
        row("Jaccard distance", Some(l.level), l.jaccard_distance);
    }
    for m in &c.measures {
        row(&format!("{} (A)", m.name), None, m.a);
        row(&format!("{} (B)", m.name), None, m.b);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use landscape_surface::grid::Grid;

    fn meta_2d(points: usize) -> SurfaceMeta {
        let axis = format!("-1:1:{points}");
        toml::from_str::<SurfaceMeta>(&format!(
            "engine = 1\nkind = \"surface\"\nscope = \"weights\"\ntrain_examples = 0\ntest = false\ndirections = []\n[base]\nrun = \"r\"\nepoch = 1\ncheckpoint = \"0000000000000000000000000000000000000000000000000000000000000000\"\n[grid]\nx = \"{axis}\"\ny = \"{axis}\"\n"
        ))
        .unwrap()
    }

    /// A bowl `x^2 + y^2` (plus `shift`) on an n x n grid over [-1, 1]^2.
    fn bowl(meta: &SurfaceMeta, scale: f64, shift: f64) -> Vec<f64> {
        let Grid { x, y } = meta.grid;
        let (xs, ys) = (x.values(), y.unwrap().values());
        ys.iter()
            .flat_map(|yv| xs.iter().map(move |xv| shift + scale * (xv * xv + yv * yv)))
            .collect()
    }

    #[test]
    fn identical_surfaces_agree_everywhere() {
        let meta = meta_2d(11);
        let z = bowl(&meta, 1.0, 0.1);
        let c = compare_losses(&meta, &z, &z, &[0.2, 0.6, 1.1]);
        assert_eq!(c.max_abs_difference, 0.0);
        assert_eq!(c.max_rel_difference, 0.0);
        assert_eq!(c.levels.len(), 3);
        assert!(c.levels.iter().all(|l| l.jaccard_distance == 0.0));
        assert!(
            c.measures
                .iter()
                .all(|m| m.a == m.b || (m.a.is_nan() && m.b.is_nan()))
        );
    }

    #[test]
    fn a_wider_bowl_has_larger_sublevel_sets() {
        let meta = meta_2d(21);
        let (narrow, wide) = (bowl(&meta, 2.0, 0.1), bowl(&meta, 1.0, 0.1));
        let c = compare_losses(&meta, &narrow, &wide, &[0.6, 50.0]);
        let l = &c.levels[0];
        // Inside the level 0.6: r^2 < 0.25 for the narrow bowl, r^2 < 0.5 for the wide one; the
        // narrow set lies inside the wide one, so the distance is 1 - area ratio, about 0.5.
        assert!(l.inside_a < l.inside_b, "{l:?}");
        assert!(
            (l.jaccard_distance - (1.0 - l.inside_a / l.inside_b)).abs() < 1e-12,
            "{l:?}"
        );
        assert!((0.35..0.65).contains(&l.jaccard_distance), "{l:?}");
        // Every point is inside 50 in both.
        assert_eq!(c.levels[1].jaccard_distance, 0.0);
        assert_eq!(c.levels[1].inside_a, 100.0);
        // Largest difference at the corners: (2 - 1) * 2 = 2; the low-loss region (narrow
        // bowl within 0.5 of 0.1, or wide within it) sees less.
        assert!((c.max_abs_difference - 2.0).abs() < 1e-12);
        // Relative: at the corners (0.1 + 4) vs (0.1 + 2).
        assert!((c.max_rel_difference - 2.0 / 4.1).abs() < 1e-12);
        assert!(c.low_loss_max_abs_difference < 0.6);
        let area = c
            .measures
            .iter()
            .find(|m| m.name.starts_with("basin area"))
            .unwrap();
        assert!(area.a < area.b);
    }

    #[test]
    fn levels_no_point_reaches_are_left_out_and_nan_points_counted() {
        let meta = meta_2d(5);
        let a = bowl(&meta, 1.0, 1.0);
        let mut b = a.clone();
        b[0] = f64::NAN;
        let c = compare_losses(&meta, &a, &b, &[0.5, 1.5]);
        assert_eq!(c.levels.len(), 1);
        assert_eq!(c.levels[0].level, 1.5);
        assert_eq!(c.finiteness_mismatches, 1);
        // A diverged base point leaves no low-loss region to speak of.
        let mut nan_centre = a.clone();
        nan_centre[12] = f64::NAN;
        let c = compare_losses(&meta, &nan_centre, &a, &[1.5]);
        assert!(c.low_loss_max_abs_difference.is_nan());
    }
}
