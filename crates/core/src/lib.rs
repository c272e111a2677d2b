//! Shared plumbing for every stage of landscape.
//!
//! Nothing here knows about networks or landscapes; it is what every stage needs to write
//! results safely and to describe them:
//!
//! - [`atomic`]: files appear whole or not at all (temporary file, then rename);
//! - [`hash`]: content hashes that key every artifact by everything that determines it;
//! - [`linalg`]: eigen-decompositions of small dense symmetric matrices (Lanczos tridiagonals,
//!   Gram matrices of optimizer paths);
//! - [`progress`]: progress with an ETA, a bar on a terminal and plain lines elsewhere;
//! - [`tensor_file`]: named f32 tensors in safetensors files (checkpoints, directions) that
//!   Python opens too;
//! - [`device`]: the `--device` choice, turned into a burn [`burn::tensor::Device`].
//!
//! ```
//! use landscape_core::hash::content_hash;
//! let a = content_hash(&("vgg9", 0.1_f64, 128_u32));
//! let b = content_hash(&("vgg9", 0.1_f64, 8192_u32));
//! assert_ne!(a, b);
//! assert_eq!(a.short().len(), 12);
//! ```

pub mod atomic;
pub mod device;
pub mod hash;
pub mod linalg;
pub mod progress;
pub mod tensor_file;
