//! The ParaView export parses back to the grid's points and quads, transformed as asked.

use landscape_figures::{Grid2d, VtpOptions, linspace, write_vtp};

/// The numbers of the `<DataArray Name="name">` in `xml`.
fn array(xml: &str, name: &str) -> Vec<f64> {
    let open = format!(r#"Name="{name}""#);
    let start = xml
        .find(&open)
        .unwrap_or_else(|| panic!("no DataArray {name}"));
    let body_start = start + xml[start..].find('>').unwrap() + 1;
    let body_end = body_start + xml[body_start..].find("</DataArray>").unwrap();
    xml[body_start..body_end]
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect()
}

/// The value of attribute `name` on the `<Piece>` element.
fn piece_attribute(xml: &str, name: &str) -> usize {
    let piece = &xml[xml.find("<Piece").unwrap()..];
    let at = piece.find(&format!(r#"{name}=""#)).unwrap() + name.len() + 2;
    piece[at..at + piece[at..].find('"').unwrap()]
        .parse()
        .unwrap()
}

fn write_and_read(grid: &Grid2d, options: VtpOptions) -> String {
    write_with_trail(grid, options, &[])
}

fn write_with_trail(grid: &Grid2d, options: VtpOptions, trail: &[[f64; 3]]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("surface.vtp");
    write_vtp(&path, grid, &options, trail).unwrap();
    std::fs::read_to_string(path).unwrap()
}

/// A 4 x 3 grid (not square, so rows and columns cannot be confused) with values 0.5 .. 11.5.
fn grid() -> Grid2d {
    let (x, y) = (linspace(-1.0, 1.0, 4), vec![10.0, 20.0, 30.0]);
    let z = (0..12).map(|i| i as f64 + 0.5).collect();
    Grid2d::new(x, y, z).unwrap()
}

#[test]
fn points_and_quads_match_the_grid() {
    let grid = grid();
    let xml = write_and_read(&grid, VtpOptions::default());
    assert!(xml.contains(r#"<VTKFile type="PolyData""#));
    assert_eq!(piece_attribute(&xml, "NumberOfPoints"), 4 * 3);
    assert_eq!(piece_attribute(&xml, "NumberOfPolys"), 3 * 2);
    let points = array(&xml, "Points");
    assert_eq!(points.len(), 3 * 12);
    for iy in 0..3 {
        for ix in 0..4 {
            let p = &points[3 * (iy * 4 + ix)..][..3];
            assert_eq!(p, [grid.x()[ix], grid.y()[iy], grid.get(ix, iy)]);
        }
    }
    assert_eq!(array(&xml, "zvalue"), grid.z());
    let connectivity = array(&xml, "connectivity");
    assert_eq!(connectivity.len(), 4 * 6);
    assert_eq!(
        &connectivity[..4],
        [0.0, 1.0, 5.0, 4.0],
        "first quad: (0,0) (1,0) (1,1) (0,1)"
    );
    assert_eq!(&connectivity[20..], [6.0, 7.0, 11.0, 10.0], "last quad");
    assert_eq!(
        array(&xml, "offsets"),
        (1..=6).map(|k| 4.0 * k as f64).collect::<Vec<_>>()
    );
    assert_eq!(
        array(&xml, "averaged zvalue")[0],
        (0.5 + 1.5 + 5.5 + 4.5) / 4.0
    );
}

#[test]
fn clip_then_log_as_the_reference() {
    let grid = grid();
    let xml = write_and_read(
        &grid,
        VtpOptions {
            log: true,
            zmax: Some(6.0),
        },
    );
    let expected: Vec<f64> = grid.z().iter().map(|&z| (z.min(6.0) + 0.1).ln()).collect();
    let zvalue = array(&xml, "zvalue");
    assert_eq!(zvalue, expected);
    let heights: Vec<f64> = array(&xml, "Points").chunks(3).map(|p| p[2]).collect();
    assert_eq!(heights, expected);
    assert_eq!(zvalue[11], 6.1_f64.ln(), "11.5 clipped to 6, then logged");

    let clipped_only = array(
        &write_and_read(
            &grid,
            VtpOptions {
                log: false,
                zmax: Some(6.0),
            },
        ),
        "zvalue",
    );
    assert_eq!(clipped_only[11], 6.0);
    assert_eq!(clipped_only[3], 3.5);
}

#[test]
fn non_finite_values_leave_holes_not_garbage() {
    let grid = grid();
    let mut z = grid.z().to_vec();
    z[5] = f64::NAN; // the centre-left point (1, 1): used by 4 quads
    z[11] = f64::INFINITY; // a corner: clipped by zmax, so it stays
    let holed = Grid2d::new(grid.x().to_vec(), grid.y().to_vec(), z).unwrap();
    let xml = write_and_read(
        &holed,
        VtpOptions {
            log: false,
            zmax: Some(100.0),
        },
    );
    assert!(!xml.contains("NaN") && !xml.contains("inf"));
    assert_eq!(piece_attribute(&xml, "NumberOfPoints"), 12);
    assert_eq!(piece_attribute(&xml, "NumberOfPolys"), 2);
    let connectivity = array(&xml, "connectivity");
    assert!(!connectivity.contains(&5.0));
    assert_eq!(array(&xml, "zvalue")[11], 100.0);
}

#[test]
fn a_trail_is_one_polyline_after_the_grid_points_with_heights_as_the_surface() {
    let grid = grid();
    let options = VtpOptions {
        log: true,
        zmax: Some(10.0),
    };
    // The NaN point is left out; the other three make the line.
    let trail = [
        [-1.0, 10.0, 0.5],
        [0.0, 15.0, f64::NAN],
        [0.5, 20.0, 4.0],
        [1.0, 30.0, 50.0],
    ];
    let xml = write_with_trail(&grid, options, &trail);
    assert_eq!(piece_attribute(&xml, "NumberOfPoints"), 12 + 3);
    assert_eq!(piece_attribute(&xml, "NumberOfLines"), 1);
    let points = array(&xml, "Points");
    let kept = [trail[0], trail[2], trail[3]];
    for (k, p) in kept.iter().enumerate() {
        let written = &points[3 * (12 + k)..][..3];
        assert_eq!(written, [p[0], p[1], options.height(p[2])]);
    }
    assert_eq!(
        options.height(50.0),
        (10.0f64 + 0.1).ln(),
        "clipped, then logged"
    );
    let lines = &xml[xml.find("<Lines>").unwrap()..xml.find("</Lines>").unwrap()];
    assert_eq!(array(lines, "connectivity"), [12.0, 13.0, 14.0]);
    assert_eq!(array(lines, "offsets"), [3.0]);
    // One cell value per cell: the line first, then the six quads.
    assert_eq!(array(&xml, "averaged zvalue").len(), 1 + 6);
    // A lone finite point makes no line.
    let xml = write_with_trail(&grid, options, &trail[..2]);
    assert_eq!(piece_attribute(&xml, "NumberOfLines"), 0);
    assert_eq!(piece_attribute(&xml, "NumberOfPoints"), 12);
}
