//! `landscape import`: a network trained elsewhere becomes a run of the work directory, so every
//! analysis (`surface --run`, `interpolate`, `hessian`, ...) takes it as it takes a trained one:
//! a PyTorch checkpoint of one of the paper's architectures, or an ONNX model of one's own CNN
//! (whose graph the run keeps in `network.json`; the `onnx` build).
//!
//! The run's id hashes the file's bytes, the architecture and the data, so importing the same
//! file again finds the run and another file is another run. Its one checkpoint is epoch 0;
//! its status records the test loss and accuracy measured on import, which say at once
//! whether the names and layouts were read right (a misread network is at chance).

use crate::{Context, data};
use anyhow::{Result, bail};
use landscape_core::hash::ContentHash;
use landscape_core::tensor_file::TensorFile;
use landscape_data::DatasetName;
use landscape_models::eval::Evaluator;
use landscape_models::{Arch, Network, NetworkSpec, checkpoint};
use landscape_train::config::TrainConfig;
use landscape_train::data::upload;
use landscape_train::run::{
    DataIdentity, Imported, RunConfig, RunDir, RunRecord, RunState, RunStatus,
};
use std::collections::BTreeMap;
use std::path::Path;

/// A network to import.
pub struct ImportRequest<'a> {
    /// The PyTorch checkpoint, or the ONNX model (`.onnx`).
    pub file: &'a Path,
    /// The checkpoint's architecture (an ONNX model says its own).
    pub model: Option<Arch>,
    /// Its channel multiplier.
    pub width: f64,
    /// The data set it was trained on (its classes must be the network's outputs).
    pub dataset: DatasetName,
}

/// What an import left.
pub struct ImportOutcome {
    /// The run's id, for `--run`.
    pub id: String,
    /// Its test loss and accuracy, as measured on import (or found).
    pub status: RunStatus,
    /// Whether the run was already there.
    pub found: bool,
}

/// Imports `request.file` as a run of `ctx.workdir`, or finds it there.
pub fn import(ctx: &Context, request: &ImportRequest) -> Result<ImportOutcome> {
    let ds = data::load(&request.dataset, &ctx.locations)?;
    let onnx = request.file.extension().is_some_and(|e| e == "onnx");
    let (network, tensors) = match (onnx, request.model) {
        (true, None) => read_onnx(request.file, ds.classes)?,
        (true, Some(_)) => bail!("--model: an ONNX model says its own architecture; leave it out"),
        (false, None) => bail!(
            "--model: which of landscape's architectures {} is (`landscape models` lists them)",
            request.file.display()
        ),
        (false, Some(arch)) => {
            let network = Network::new(NetworkSpec {
                arch,
                width: request.width,
                classes: ds.classes,
            })?;
            let tensors = landscape_import::pytorch::read(request.file, &network)?;
            (network, tensors)
        }
    };
    let spec = network.spec();
    let config = RunConfig::imported(
        TrainConfig::architecture(spec.arch, spec.width),
        DataIdentity {
            name: ds.name,
            fingerprint: ds.fingerprint.clone(),
            classes: ds.classes,
        },
        Imported {
            format: if onnx { "onnx" } else { "pytorch" }.into(),
            sha256: ContentHash::of_file(request.file)?,
        },
    );
    let id = config.id();
    let dir = RunDir::new(&ctx.workdir, &id);
    if let Some(status) = dir.read_status()? {
        if status.state != RunState::Complete {
            bail!(
                "{}: an import that did not finish; remove it",
                dir.root().display()
            );
        }
        return Ok(ImportOutcome {
            id,
            status,
            found: true,
        });
    }
    let params =
        checkpoint::from_tensor_file(&tensors, network.layout(), &ctx.device, request.file)?;
    if spec.arch == Arch::Imported {
        network.save_graph(&dir.graph_path())?;
    }
    let test = upload(&ds.test, &ds.normalization, &ctx.device)?;
    let evaluation = Evaluator::new(network.layers()).evaluate(params.tensors(), &test);
    let metadata = BTreeMap::from([
        ("run".to_string(), id.clone()),
        ("epoch".to_string(), "0".to_string()),
    ]);
    checkpoint::save(&dir.checkpoint_path(0), &params, metadata)?;
    let file_name = request
        .file
        .file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into_owned());
    dir.write_record(&RunRecord {
        id: id.clone(),
        experiment: "import".into(),
        sweep: BTreeMap::from([("file".to_string(), file_name.clone())]),
        substituted_for: None,
        device: ctx.device_kind.to_string(),
        config,
    })?;
    // The status last: a run with one is complete.
    let status = RunStatus {
        state: RunState::Complete,
        epochs_done: 0,
        test_acc: Some(evaluation.accuracy),
        test_loss: Some(evaluation.loss),
        train_loss: None,
        message: format!("imported from {file_name}"),
        engine: String::new(),
    };
    dir.write_status(&status)?;
    Ok(ImportOutcome {
        id,
        status,
        found: false,
    })
}

#[cfg(feature = "onnx")]
fn read_onnx(file: &Path, classes: usize) -> Result<(Network, TensorFile)> {
    landscape_import::onnx::read(file, classes)
}

#[cfg(not(feature = "onnx"))]
fn read_onnx(file: &Path, _classes: usize) -> Result<(Network, TensorFile)> {
    bail!(
        "{}: this landscape was built without ONNX import; build it with `cargo install --path . --features onnx`",
        file.display()
    )
}
