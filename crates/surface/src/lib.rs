//! The landscape engine: the loss around a trained model along well-chosen directions.
//!
//! - [`direction`]: seeded Gaussian directions normalized as the reference code does (filter,
//!   layer, weight, dfilter, dlayer, none; biases and BatchNorm ignored or copied), model
//!   differences for interpolation, saved as safetensors with their recipe;
//! - [`grid`]: `start:stop:points` axes, 1-D and 2-D grids of any shape;
//! - [`surface`]: a [`surface::SurfaceJob`] evaluates every grid point (BatchNorm folded,
//!   inference mode, data resident on the device) as a job of the job engine
//!   ([`landscape_job`]: content key, lock, journal, resume, shards, merge);
//! - [`points`]: the record of one point ([`points::PointRow`]), a row of the journals and of
//!   `surface.csv`.
//!
//! ```
//! use landscape_surface::grid::{AxisRange, Grid};
//! let grid = Grid { x: "-1:1:51".parse().unwrap(), y: Some("-1:1:21".parse().unwrap()) };
//! assert_eq!(grid.len(), 51 * 21);
//! assert_eq!(grid.point(51).iy, 1);
//! ```

pub mod direction;
pub mod grid;
pub mod points;
pub mod surface;
