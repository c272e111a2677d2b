//! Every panel kind renders to PNG and SVG, with its text, and survives non-finite values.

use landscape_figures::{
    ContourPanel, Figure, Grid2d, HeatmapPanel, HistogramPanel, Labels, LinePanel, Panel,
    PathOverlay, Series, SurfacePanel, ValueSet, ZTransform, linspace, paper_levels,
};
use std::path::Path;

/// (width, height) from a PNG's IHDR chunk, after checking the signature and that it ends whole.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR", "first chunk is IHDR");
    assert_eq!(
        &bytes[bytes.len() - 8..bytes.len() - 4],
        b"IEND",
        "file ends with IEND"
    );
    let word = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (word(16), word(20))
}

/// Saves `figure` under a temporary directory and checks both files, and that the SVG holds
/// every string of `texts` (titles, axis labels, legend entries).
fn assert_renders(figure: &Figure, texts: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("nested/figure");
    figure.save(&stem).unwrap();
    let png = std::fs::read(stem.with_extension("png")).unwrap();
    assert!(png.len() > 1000);
    assert_eq!(png_size(&png), figure.size());
    let svg = std::fs::read_to_string(stem.with_extension("svg")).unwrap();
    assert!(svg.starts_with("<svg"), "SVG document");
    let (w, h) = figure.size();
    assert!(
        svg.contains(&format!(r#"width="{w}" height="{h}""#)),
        "SVG size"
    );
    let drawn = svg_texts(&svg);
    for text in texts {
        assert!(
            drawn.contains(text),
            "SVG lacks text element {text:?}; it has {drawn:?}"
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(stem.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        2,
        "only the PNG and the SVG: {leftovers:?}"
    );
}

/// The contents of every `<text>` element of an SVG document.
fn svg_texts(svg: &str) -> Vec<&str> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| Some(t[t.find('>')? + 1..t.find("</text>")?].trim()))
        .collect()
}

fn bowl(nx: usize, ny: usize) -> Grid2d {
    Grid2d::from_fn(linspace(-1.0, 1.0, nx), linspace(-0.8, 0.8, ny), |x, y| {
        6.0 * (x * x + 2.0 * y * y) + 0.1
    })
    .unwrap()
}

/// The bowl with a few diverged points, as a real landscape has at its edges.
fn bowl_with_holes() -> Grid2d {
    let grid = bowl(31, 25);
    let mut z = grid.z().to_vec();
    z[0] = f64::NAN;
    z[40] = f64::INFINITY;
    z[12 * 31 + 15] = f64::NAN; // the minimum
    Grid2d::new(grid.x().to_vec(), grid.y().to_vec(), z).unwrap()
}

fn training_curves() -> LinePanel {
    let epochs: Vec<f64> = (0..=30).map(f64::from).collect();
    let curve = |a: f64, b: f64| {
        epochs
            .iter()
            .map(|e| a + b * (-e / 8.0).exp())
            .collect::<Vec<_>>()
    };
    let mut test_loss = curve(0.4, 2.0);
    test_loss[17] = f64::NAN; // a diverged evaluation leaves a gap
    let series = vec![
        Series::new("train loss", epochs.clone(), curve(0.05, 2.2)).colour(0),
        Series::new("test loss", epochs.clone(), test_loss)
            .dashed()
            .colour(0),
        Series::new("train accuracy", epochs.clone(), curve(100.0, -90.0))
            .on_right()
            .colour(3),
        Series::new("test accuracy", epochs.clone(), curve(92.0, -80.0))
            .on_right()
            .dashed()
            .colour(3),
    ];
    LinePanel::new(
        Labels::new("VGG-9, batch size 128", "epoch", "loss"),
        series,
    )
    .with_right_label("accuracy (%)")
    .with_markers(vec![10.0, 20.0], "lr decay")
}

fn weight_norms() -> LinePanel {
    let epochs: Vec<f64> = (0..=30).map(f64::from).collect();
    let series = (0..3)
        .map(|k| {
            Series::new(
                format!("wd {k}"),
                epochs.clone(),
                epochs.iter().map(|e| 10.0 + e * k as f64).collect(),
            )
        })
        .collect();
    LinePanel::new(Labels::new("weight norm", "epoch", "norm"), series)
}

fn trajectory_contour() -> ContourPanel {
    let path = PathOverlay {
        points: (0..40)
            .map(|i| {
                (
                    0.9 * (-(i as f64) / 10.0).exp(),
                    0.6 * (-(i as f64) / 6.0).exp(),
                )
            })
            .collect(),
        markers: vec![10, 25],
        label: "SGD path".into(),
    };
    ContourPanel::lines(
        Labels::new("trajectory", "PC1: 62.3 %", "PC2: 20.1 %"),
        bowl_with_holes(),
        paper_levels(),
    )
    .with_colourbar("train loss")
    .with_path(path)
}

fn filled_contour() -> ContourPanel {
    ContourPanel::filled(
        Labels::new("filled", "alpha", "beta"),
        bowl_with_holes(),
        paper_levels(),
        "loss",
    )
}

fn heatmap() -> HeatmapPanel {
    let ratio = bowl_with_holes().map(|z| (z / 10.0).sin().abs());
    HeatmapPanel::new(
        Labels::new("curvature", "alpha", "beta"),
        ratio,
        "|lmin/lmax|",
    )
    .with_range(0.0, 1.0)
}

fn surface() -> SurfacePanel {
    SurfacePanel::new(
        Labels::new("3-D surface", "alpha", "beta"),
        bowl_with_holes(),
        "loss",
    )
    .with_transform(ZTransform::PAPER_LOG)
}

fn histogram() -> HistogramPanel {
    let small: Vec<f64> = (0..2000)
        .map(|i| ((i as f64) * 0.618).sin() * 0.05)
        .collect();
    let mut large: Vec<f64> = (0..2000)
        .map(|i| ((i as f64) * 0.618).sin() * 0.01)
        .collect();
    large.push(f64::NAN);
    HistogramPanel::new(
        Labels::new("weights", "weight value", "count"),
        vec![
            ValueSet::new("batch 128", small),
            ValueSet::new("batch 8192", large),
        ],
        40,
    )
}

#[test]
fn lines_on_twin_axes_render() {
    let texts = [
        "VGG-9, batch size 128",
        "epoch",
        "loss",
        "accuracy (%)",
        "train loss",
        "test accuracy",
        "lr decay",
    ];
    assert_renders(&Figure::single(training_curves()), &texts);
}

#[test]
fn lines_on_one_axis_render() {
    assert_renders(
        &Figure::single(weight_norms()),
        &["weight norm", "epoch", "norm", "wd 2"],
    );
}

#[test]
fn contour_lines_with_levels_colour_bar_and_path_render() {
    let figure = Figure::single(trajectory_contour());
    assert_renders(
        &figure,
        &[
            "trajectory",
            "PC1: 62.3 %",
            "PC2: 20.1 %",
            "train loss",
            "SGD path",
        ],
    );
    // clabel: some level values are written on the lines.
    let svg = figure.render_svg().unwrap();
    let labels = svg_texts(&svg);
    assert!(
        ["1.1", "2.1", "3.1", "4.1"]
            .iter()
            .any(|l| labels.contains(l)),
        "no level labels in {labels:?}"
    );
}

#[test]
fn filled_contour_renders() {
    assert_renders(
        &Figure::single(filled_contour()),
        &["filled", "alpha", "beta", "loss"],
    );
}

#[test]
fn heatmap_renders() {
    assert_renders(
        &Figure::single(heatmap()),
        &["curvature", "alpha", "beta", "|lmin/lmax|"],
    );
}

#[test]
fn surface_renders() {
    assert_renders(
        &Figure::single(surface()),
        &["3-D surface", "alpha", "beta", "ln(loss + 0.1)"],
    );
}

#[test]
fn histogram_renders() {
    assert_renders(
        &Figure::single(histogram()),
        &[
            "weights",
            "weight value",
            "count",
            "batch 128",
            "batch 8192",
        ],
    );
}

#[test]
fn multi_panel_figure_with_title_renders() {
    let panels: Vec<Panel> = vec![
        training_curves().into(),
        trajectory_contour().into(),
        filled_contour().into(),
        heatmap().into(),
        surface().into(),
        histogram().into(),
    ];
    let figure = Figure::grid(2, 3, panels)
        .with_title("All panels")
        .with_panel_size(520, 400);
    assert_eq!(figure.size().0, 3 * 520);
    assert_renders(
        &figure,
        &[
            "All panels",
            "VGG-9, batch size 128",
            "trajectory",
            "filled",
            "weights",
        ],
    );
}

#[test]
fn panels_of_nothing_but_non_finite_values_still_render() {
    let nan = bowl(5, 4).map(|_| f64::NAN);
    let labels = || Labels::new("diverged", "x", "y");
    let panels: Vec<Panel> = vec![
        ContourPanel::lines(labels(), nan.clone(), paper_levels())
            .with_colourbar("loss")
            .into(),
        ContourPanel::filled(labels(), nan.clone(), paper_levels(), "loss").into(),
        HeatmapPanel::new(labels(), nan.clone(), "v").into(),
        SurfacePanel::new(labels(), nan.clone(), "loss")
            .with_transform(ZTransform::PAPER_LOG)
            .into(),
        HistogramPanel::new(labels(), vec![ValueSet::new("none", vec![f64::NAN])], 10).into(),
        LinePanel::new(
            labels(),
            vec![Series::new(
                "gone",
                vec![0.0, 1.0],
                vec![f64::NAN, f64::INFINITY],
            )],
        )
        .into(),
    ];
    assert_renders(&Figure::grid(2, 3, panels), &["diverged"]);
}

#[test]
fn bad_input_is_an_error_naming_the_panel() {
    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("bad");
    let crooked = LinePanel::new(
        Labels::new("crooked", "x", "y"),
        vec![Series::new("s", vec![0.0, 1.0], vec![1.0])],
    );
    let error = format!("{:#}", Figure::single(crooked).save(&stem).unwrap_err());
    assert!(
        error.contains("crooked") && error.contains("bad.svg"),
        "{error}"
    );
    let unsorted = ContourPanel::lines(
        Labels::new("unsorted", "x", "y"),
        bowl(5, 5),
        vec![2.0, 1.0],
    );
    assert!(Figure::single(unsorted).save(&stem).is_err());
    let crowded = Figure::grid(1, 1, vec![weight_norms().into(), weight_norms().into()]);
    assert!(crowded.save(&stem).is_err());
    for extension in ["png", "svg"] {
        assert!(
            !Path::new(&stem.with_extension(extension)).exists(),
            "no {extension} for a failed figure"
        );
    }
}

/// A shared height scale is the one drawn: the z axis' tick labels follow it (the SVG's text),
/// and the transformed value range is what a figure pools for it.
#[test]
fn a_surface_on_a_shared_z_range_draws_that_range() {
    let panel = surface();
    let (low, high) = panel.value_range().unwrap();
    let grid = bowl_with_holes();
    let log = |v: f64| ZTransform::PAPER_LOG.apply(v);
    assert_eq!(
        (low, high),
        (log(grid.min().unwrap()), log(grid.max().unwrap()))
    );
    // The largest number the figure writes (the top of the height axis).
    let top = |svg: String| {
        svg.split('>')
            .filter_map(|t| t.split('<').next()?.trim().parse::<f64>().ok())
            .fold(f64::MIN, f64::max)
    };
    let own = top(Figure::single(panel.clone()).render_svg().unwrap());
    let shared = top(Figure::single(panel.with_z_range(low, 40.0))
        .render_svg()
        .unwrap());
    assert!(
        own < 10.0 && shared >= 20.0,
        "tops: own {own}, shared {shared}"
    );
}
