//! The command line, parsed into plain decisions (no logic here).

use clap::{Args, Parser, Subcommand};
use landscape_core::device::DeviceKind;
use landscape_data::DatasetName;
use landscape_job::shard::Shard;
use landscape_models::Arch;
use landscape_models::eval::Precision;
use landscape_pipeline::analysis::{
    eigen_ratio::EigenRatioCommand, hessian::HessianCommand, interpolate::InterpolateCommand,
    sharpness::SharpnessCommand, surface::SurfaceCommand, trajectory::TrajectoryCommand,
};
use landscape_spec::Scale;
use std::path::PathBuf;

/// `landscape --version`: the package version and the commit it was built from (`-dirty` when
/// tracked files differed from it), as every `provenance.toml` records.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("LANDSCAPE_COMMIT"),
    ")"
);

/// A usage mistake as one line, keeping what clap says about it (the missing arguments, a
/// suggestion, the possible values) and leaving out the usage line and the pointer to --help.
pub fn one_line(error: &clap::Error) -> String {
    let text = error.render().to_string();
    let kept: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with("Usage:") && !l.starts_with("For more information")
        })
        .collect();
    if kept.is_empty() {
        return "error: invalid arguments".to_string();
    }
    kept.iter().skip(1).fold(kept[0].to_string(), |line, more| {
        let joint = if more.starts_with("tip:") { "; " } else { " " };
        line + joint + more
    })
}

/// landscape: train the networks of Li et al. (2018), map the loss around their minima, draw the
/// paper's figures and check its claims.
///
/// Typical session:
///   landscape models                                   # what can be trained
///   landscape train experiments/figure3.toml           # train its runs (cached, resumable)
///   landscape runs                                     # list runs with their ids
///   landscape surface --run vgg9-3fa2c1d9e0b4 --x -1:1:51 --y -1:1:51
///   landscape reproduce figure3                        # the whole figure, tables and findings
#[derive(Parser, Debug)]
#[command(
    name = "landscape",
    version = VERSION,
    verbatim_doc_comment,
    max_term_width = 100
)]
pub struct Cli {
    /// Directory for every generated artifact (runs, surfaces), each keyed by a content hash.
    #[arg(
        long,
        global = true,
        default_value = "runs",
        env = "LANDSCAPE_WORKDIR",
        help_heading = "Global options"
    )]
    pub workdir: PathBuf,
    /// Compute device: cpu (burn's flex backend and landscape's kernels), or cuda / cuda:N, the
    /// N-th NVIDIA GPU from 0 (needs the `cuda` build; one process per GPU).
    #[arg(long, global = true, default_value_t = DeviceKind::Cpu, help_heading = "Global options")]
    pub device: DeviceKind,
    /// CPU threads (default: one per core).
    #[arg(long, global = true, help_heading = "Global options")]
    pub threads: Option<usize>,
    /// Never download data sets (fail, or stand in, instead).
    #[arg(long, global = true, help_heading = "Global options")]
    pub offline: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// List the networks: spec name, learnable parameters, forward multiply-adds per 32x32 image.
    Models,
    /// Inspect data sets.
    #[command(subcommand)]
    Data(DataCommand),
    /// Train every run of an experiment spec (finished runs are found, killed ones resume).
    Train(TrainArgs),
    /// Train every run of a spec and compute its [[analysis]] blocks.
    Run(SpecArgs),
    /// List the runs in the work directory with their state and final numbers.
    Runs,
    /// Bring a network trained elsewhere into the work directory as a run, for every analysis
    /// (`--run <id>`): a PyTorch state_dict (.pt, .pth, the reference zoo's .t7) of one of the
    /// paper's architectures, named as the reference code names its modules, or an ONNX model
    /// (.onnx) of one's own CNN classifier (the `onnx` build). Prints the run id and the test
    /// accuracy measured on import.
    Import(ImportArgs),
    /// Compute a 1-D or 2-D loss surface around a trained run.
    Surface(SurfaceCommand),
    /// Compute the loss along the line between two trained runs (the paper's figure 2).
    Interpolate(InterpolateCommand),
    /// PCA of a run's optimization path (checkpoints of every epoch), the path on the plane of
    /// the first two components over the loss there, and the random-direction baseline.
    Trajectory(TrajectoryCommand),
    /// Curvature at a trained run's minimum: top Hessian eigenvalues and lambda_min (Lanczos),
    /// trace (Hutchinson, Hutch++), spectral density; hessian-<hash>/hessian.toml.
    Hessian(HessianCommand),
    /// Sharpness of a trained run's minimum: Keskar, adaptive average and worst case,
    /// PAC-Bayes flatness, lambda_max; sharpness-<hash>/sharpness.csv.
    Sharpness(SharpnessCommand),
    /// abs(lambda_min / lambda_max) over a surface's plane (the paper's figure 7);
    /// eigratio-<hash>/ratio.csv, shardable like surfaces.
    EigenRatio(EigenRatioCommand),
    /// Join surface (or eigen-ratio) shards computed separately into the first directory.
    Merge(MergeArgs),
    /// Reproduce a figure of the paper: train (cached), analyse (cached), draw, check the claims,
    /// and write results/<figure>/ (summary.csv, findings.md, figures).
    Reproduce(ReproduceArgs),
    /// Draw a finished surface, interpolation, eigen-ratio map or trajectory directory: 1-D
    /// curves; contours, filled contours, heat map, 3-D surface, interactive HTML and ParaView
    /// file of a 2-D surface (with an optimization path over them); the options of the
    /// reference's plot_1D.py, plot_2D.py and h52vtp.py, and the paper's defaults.
    Plot(PlotArgs),
    /// Write a finished surface, interpolation, eigen-ratio map or trajectory in the reference
    /// code's HDF5 layout, which its plot_2D.py, plot_1D.py and h52vtp.py read as they are
    /// (needs the `hdf5` build).
    Export(ExportArgs),
    /// Compare two result tables or result folders; exit 1 when a cell differs beyond tolerance.
    Diff(DiffArgs),
    /// Compare two surfaces of the same grid by their contours (share of points below each
    /// level, Jaccard distance of the sublevel sets) and landscape measures, e.g. a bf16
    /// surface against the f32 one.
    CompareSurfaces(CompareSurfacesArgs),
    /// Measure inference, training-step and grid-point throughput on the chosen device.
    Bench(BenchArgs),
    /// Run a command on a Slurm cluster: a surface or eigen-ratio grid as a job array of shards
    /// and a last job that writes the table; train, run or reproduce as one task per training
    /// run and a last job for the analyses and the figure. Writes the sbatch scripts to
    /// <workdir>/slurm/<name>/ (the work directory must be on a file system the nodes share)
    /// and submits them; submitting again reruns only what did not finish.
    Submit(SubmitArgs),
    /// Print a shell completion script: `landscape completions bash >
    /// ~/.local/share/bash-completion/completions/landscape` (zsh, fish, elvish and PowerShell
    /// too).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `landscape man > ~/.local/share/man/man1/landscape.1`.
    Man,
    /// Where a submission's tasks stand (done, running, pending, failed, killed), from their own
    /// records and squeue; or, for a surface or eigen-ratio directory, each shard's points.
    Status {
        /// A submission's directory (`landscape submit` prints it) or a grid job's.
        dir: PathBuf,
    },
}

/// `landscape submit ...`
#[derive(Args, Debug)]
pub struct SubmitArgs {
    /// Shards of a surface, eigen-ratio or trajectory grid: one array task each (train, run and
    /// reproduce have one task per training run).
    #[arg(long, default_value_t = 4)]
    pub shards: usize,
    /// What every task asks for (flags win over the spec's [slurm] table).
    #[command(flatten)]
    pub resources: landscape_slurm::Resources,
    /// Write the scripts and print them, without submitting (to review them first).
    #[arg(long, conflicts_with = "local")]
    pub dry_run: bool,
    /// Run the steps on this machine instead of Slurm: a step's tasks one after another, or
    /// side by side over --local-gpus.
    #[arg(long)]
    pub local: bool,
    /// With --local: these GPUs (indices, comma separated), one task on each at a time, each
    /// task seeing only its GPU (as cuda); for a machine with several GPUs.
    #[arg(long, value_delimiter = ',', requires = "local")]
    pub local_gpus: Vec<u32>,
    /// The command to run there, with its options: surface, eigen-ratio, trajectory, train, run
    /// or reproduce (global options such as --workdir go before `submit`).
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<String>,
}

/// `landscape train ...`
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// The spec and how to resolve it.
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Train only part k of n of the runs (run i, from 0 in sweep order, when i % n == k - 1):
    /// one task of a job array.
    #[arg(long, default_value = "1/1")]
    pub shard: Shard,
}

/// `landscape bench ...`
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Networks to measure.
    #[arg(long, value_delimiter = ',', default_value = "resnet20,resnet56,vgg9")]
    pub models: Vec<Arch>,
    /// Width multiplier.
    #[arg(long, default_value_t = 1.0)]
    pub width: f64,
    /// Images per grid point and per inference measurement.
    #[arg(long, default_value_t = 2000)]
    pub images: usize,
    /// Inference batch sizes (the last one is used for grid points; 0: skip inference and grid
    /// points).
    #[arg(long, value_delimiter = ',', default_value = "128,500")]
    pub eval_batch: Vec<usize>,
    /// Training batch sizes, each one step of one physical batch (0: skip training).
    #[arg(long, value_delimiter = ',', default_value = "128")]
    pub train_batch: Vec<usize>,
    /// Timed repetitions of each measurement (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Number format of the inference and grid-point measurements (training steps are f32).
    #[arg(long, value_enum, default_value = "f32")]
    pub precision: Precision,
    /// Also write the results as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Instead of timing, check that the device computes what the CPU computes (inference and a
    /// training step on the same parameters and images); exit 1 when it does not.
    #[arg(long)]
    pub compare_cpu: bool,
}

/// `landscape reproduce ...`
#[derive(Args, Debug)]
pub struct ReproduceArgs {
    /// The figure: figure1 to figure9 or repeatability (its spec is <specs>/<figure>.toml).
    pub figure: String,
    /// smoke (a minute or two), quick (the default: about an hour on a 2-core CPU) or paper.
    #[arg(long, default_value = "quick")]
    pub scale: Scale,
    /// Use this data set instead of the spec's (and never stand in for it): a built-in one,
    /// folder:PATH (an image folder) or npy:PATH (NumPy arrays).
    #[arg(long, value_parser = dataset)]
    pub dataset: Option<DatasetName>,
    /// Where to write the results (default: results/<figure>).
    #[arg(long)]
    pub results: Option<PathBuf>,
    /// Folder of experiment specs (default: ./experiments when it holds the figure's spec, else
    /// the paper's specs built into this binary, so any directory works).
    #[arg(long)]
    pub specs: Option<PathBuf>,
    /// Override a spec key: --set train.epochs=2.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
}

/// `landscape import ...`
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The checkpoint (`torch.save(model.state_dict(), path)`, bare or in a dictionary), or the
    /// ONNX model (`torch.onnx.export(model.eval(), x, "m.onnx",
    /// training=torch.onnx.TrainingMode.PRESERVE)` keeps its BatchNorms).
    pub file: PathBuf,
    /// A checkpoint's architecture, as `landscape models` names it (resnet20, vgg9,
    /// resnet56-noshort, ...); an ONNX model says its own.
    #[arg(long)]
    pub model: Option<Arch>,
    /// A checkpoint's channel multiplier (1: the paper's network).
    #[arg(long, default_value_t = 1.0)]
    pub width: f64,
    /// The data set it was trained on (a built-in one, folder:PATH or npy:PATH).
    #[arg(long, default_value = "cifar10", value_parser = dataset)]
    pub dataset: DatasetName,
}

/// `landscape plot ...`
#[derive(Args, Debug)]
pub struct PlotArgs {
    /// The artifact directory (surface-, interp-, eigratio- or trajectory-<hash>, finished).
    pub dir: PathBuf,
    /// What to draw and how.
    #[command(flatten)]
    pub options: landscape_results::plot::PlotOptions,
}

/// `landscape export ...`
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The artifact directory (surface-, interp-, eigratio- or trajectory-<hash>, finished).
    pub dir: PathBuf,
    /// Write this HDF5 file (e.g. surface.h5): `python plot_2D.py --surf_file surface.h5`.
    #[arg(long, value_name = "FILE", required = true)]
    pub h5: PathBuf,
}

/// `landscape diff ...`
#[derive(Args, Debug)]
pub struct DiffArgs {
    /// A CSV table or a results folder.
    pub a: PathBuf,
    /// The table or folder to compare it with.
    pub b: PathBuf,
    /// Relative tolerance for numbers.
    #[arg(long, default_value_t = 1e-4)]
    pub rtol: f64,
    /// Absolute tolerance for numbers.
    #[arg(long, default_value_t = 1e-8)]
    pub atol: f64,
}

/// `landscape compare-surfaces ...`
#[derive(Args, Debug)]
pub struct CompareSurfacesArgs {
    /// A surface directory (surface-<hash> or interp-<hash>, finished).
    pub a: PathBuf,
    /// The surface directory to compare it with (same grid).
    pub b: PathBuf,
    /// Contour levels of the training loss (default: the paper's 0.1, 0.6, ..., 9.6).
    #[arg(long, value_delimiter = ',')]
    pub levels: Vec<f64>,
    /// Also write the comparison as a CSV table here.
    #[arg(long)]
    pub csv: Option<PathBuf>,
}

/// `landscape data ...`
#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Where a data set comes from, its sizes, shape, class balance and normalization.
    Info {
        /// cifar10, cifar100, fashion-mnist, synthetic, folder:PATH (an image folder:
        /// PATH/train/<class>/*.png|jpg and PATH/test/...) or npy:PATH (NumPy arrays:
        /// PATH/{train,test}_{images,labels}.npy).
        #[arg(value_parser = dataset)]
        dataset: DatasetName,
    },
}

/// A spec and how to resolve it.
#[derive(Args, Debug)]
pub struct SpecArgs {
    /// The experiment spec (TOML), e.g. experiments/figure3.toml.
    pub spec: PathBuf,
    /// smoke (seconds), quick (minutes on a laptop, the paper's ratios) or paper.
    #[arg(long, default_value = "quick")]
    pub scale: Scale,
    /// Override a key after the scale: --set train.lr=0.05 --set analysis.2d.x=-1:1:11.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Use this data set instead of the spec's (and never stand in for it): a built-in one,
    /// folder:PATH (an image folder) or npy:PATH (NumPy arrays).
    #[arg(long, value_parser = dataset)]
    pub dataset: Option<DatasetName>,
}

/// `landscape merge ...`
#[derive(Args, Debug)]
pub struct MergeArgs {
    /// The surface directory to merge into.
    pub into: PathBuf,
    /// Surface directories of the same surface (other shards).
    #[arg(required = true)]
    pub others: Vec<PathBuf>,
}

/// Parses a data set named on the command line, with the path of one's own data made
/// absolute (so run records and Slurm jobs find it from any directory).
fn dataset(text: &str) -> anyhow::Result<DatasetName> {
    Ok(text
        .parse::<DatasetName>()?
        .anchored(std::path::Path::new("")))
}
