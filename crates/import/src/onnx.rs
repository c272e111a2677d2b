//! ONNX models of one's own CNN classifier, parsed with `onnx-ir` (the burn project's ONNX
//! parser) and mapped onto landscape's layer graph, so surfaces and every other analysis run on
//! them with the engine's kernels.
//!
//! Read: Conv (square kernel, one stride, symmetric padding, no dilation or groups),
//! BatchNormalization (epsilon 1e-5, landscape's), Relu, Add (a residual block), Concat on
//! channels (a dense block, `cat([f(x), x])`), MaxPool and AveragePool without padding,
//! GlobalAveragePool, Flatten (and a Reshape to rows), Gemm and MatMul (linear layers, with a
//! following Add as their bias),
//! Dropout and Identity (nothing at inference). Anything else is one line naming the operator
//! and its node. Export BatchNorms as nodes of their own (`torch.onnx.export(...,
//! training=torch.onnx.TrainingMode.PRESERVE)` on a model in eval mode): folded into the
//! convolutions, they would change the parameters a landscape perturbs.
//!
//! Each value of the graph is the sequence of layers that computes it from the images; where
//! two branches join (Add, Concat), their common beginning is the trunk and the rest become a
//! residual or dense block. Parameter tensors are named by their node and role
//! (`conv2d1.weight`, `batchnormalization1.running_var`), as onnx-ir names the nodes.

use anyhow::{Context, Result, bail, ensure};
use landscape_core::tensor_file::{HostTensor, TensorFile};
use landscape_models::forward::BN_EPS;
use landscape_models::graph::{BatchNorm, Conv, Layer, Linear};
use landscape_models::{Network, ParamId, ParamKind, ParamLayout};
use onnx_ir::node::padding::PaddingConfig2d;
use onnx_ir::{Argument, Node, OnnxGraphBuilder};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The operators read, for the message about any other.
const SUPPORTED: &str = "Conv, BatchNormalization, Relu, Add, Concat, MaxPool, AveragePool, GlobalAveragePool, Flatten, Reshape, Gemm, MatMul, Dropout, Identity";

/// A network of `classes` outputs and its parameters, read from the ONNX model at `path`.
pub fn read(path: &Path, classes: usize) -> Result<(Network, TensorFile)> {
    let file = path.display().to_string();
    let graph = OnnxGraphBuilder::new()
        .parse_file(path)
        .map_err(|e| anyhow::anyhow!("{file}: not an ONNX model ({e})"))?;
    ensure!(
        graph.inputs.len() == 1 && graph.outputs.len() == 1,
        "{file}: a classifier has one input (the images) and one output (the logits); this model has {} and {}",
        graph.inputs.len(),
        graph.outputs.len()
    );
    let mut mapping = Mapping {
        file: &file,
        chains: HashMap::from([(graph.inputs[0].name.clone(), Chain::default())]),
        layout: ParamLayout::default(),
        tensors: Vec::new(),
    };
    for node in &graph.nodes {
        mapping
            .node(node)
            .with_context(|| format!("{file}: node `{}`", node.name()))?;
    }
    let output = mapping.chain(&graph.outputs[0])?;
    ensure!(
        output.flat,
        "{file}: the output is not a row of logits per image"
    );
    let outputs = output.layers.iter().rev().find_map(|l| match l {
        Layer::Linear(linear) => Some(linear.output),
        _ => None,
    });
    ensure!(
        outputs == Some(classes),
        "{file}: the model ends in {} outputs; the data set has {classes} classes",
        outputs.map_or("no linear layer's".into(), |n| n.to_string())
    );
    let network = Network::from_graph(output.layers, mapping.layout, classes)
        .with_context(|| file.clone())?;
    let tensors = TensorFile {
        tensors: mapping.tensors,
        metadata: BTreeMap::new(),
    };
    Ok((network, tensors))
}

/// The layers that compute a value from the images, and whether it is a row per image.
#[derive(Clone, Debug, Default)]
struct Chain {
    layers: Vec<Layer>,
    flat: bool,
}

impl Chain {
    fn then(&self, layer: Layer) -> Self {
        let mut layers = self.layers.clone();
        layers.push(layer);
        Self {
            layers,
            flat: self.flat,
        }
    }
}

/// The graph read so far.
struct Mapping<'a> {
    file: &'a str,
    chains: HashMap<String, Chain>,
    layout: ParamLayout,
    tensors: Vec<HostTensor>,
}

impl Mapping<'_> {
    fn chain(&self, arg: &Argument) -> Result<Chain> {
        self.chains.get(&arg.name).cloned().with_context(|| {
            format!(
                "{}: `{}` is not computed from the images by the operators read",
                self.file, arg.name
            )
        })
    }

    /// A parameter tensor `name` from the constant `arg`, with landscape's `shape` (the same
    /// values).
    fn param(
        &mut self,
        arg: &Argument,
        name: String,
        kind: ParamKind,
        shape: Vec<usize>,
    ) -> Result<ParamId> {
        let data = arg.value().with_context(|| {
            format!(
                "`{}` is not a constant (weights must be initializers)",
                arg.name
            )
        })?;
        let values: Vec<f32> = data
            .try_to_vec_as::<f32>()
            .map_err(|e| anyhow::anyhow!("`{}`: {e:?}", arg.name))?;
        ensure!(
            values.len() == shape.iter().product::<usize>(),
            "`{}` has {} values where {shape:?} was expected",
            arg.name,
            values.len()
        );
        self.tensors.push(HostTensor {
            name: name.clone(),
            shape: shape.clone(),
            values,
        });
        Ok(self.layout.push(name, shape, kind))
    }

    /// The parameters of linear layer `node`, from a weight laid out `[out, in]` (or
    /// `[in, out]` when `transposed`) and an optional bias (zeros when absent).
    fn linear(
        &mut self,
        node: &str,
        weight: &Argument,
        transposed: bool,
        bias: Option<&Argument>,
    ) -> Result<Layer> {
        let weight_name = format!("{node}.weight");
        let data = weight
            .value()
            .with_context(|| format!("`{}` is not a constant", weight.name))?;
        let shape: Vec<usize> = data.shape().iter().copied().collect();
        ensure!(shape.len() == 2, "`{}` is not a matrix", weight.name);
        let (output, input) = if transposed {
            (shape[1], shape[0])
        } else {
            (shape[0], shape[1])
        };
        let weight_id = if transposed {
            let values: Vec<f32> = data
                .try_to_vec_as::<f32>()
                .map_err(|e| anyhow::anyhow!("`{}`: {e:?}", weight.name))?;
            let mut rows = vec![0.0f32; values.len()];
            for i in 0..input {
                for o in 0..output {
                    rows[o * input + i] = values[i * output + o];
                }
            }
            self.tensors.push(HostTensor {
                name: weight_name.clone(),
                shape: vec![output, input],
                values: rows,
            });
            self.layout
                .push(weight_name, vec![output, input], ParamKind::LinearWeight)
        } else {
            self.param(
                weight,
                weight_name,
                ParamKind::LinearWeight,
                vec![output, input],
            )?
        };
        let bias_name = format!("{node}.bias");
        let bias = match bias {
            Some(arg) => self.param(arg, bias_name, ParamKind::Bias, vec![output])?,
            None => {
                let name = bias_name;
                self.tensors.push(HostTensor {
                    name: name.clone(),
                    shape: vec![output],
                    values: vec![0.0; output],
                });
                self.layout.push(name, vec![output], ParamKind::Bias)
            }
        };
        Ok(Layer::Linear(Linear {
            weight: weight_id,
            bias,
            input,
            output,
        }))
    }

    fn node(&mut self, node: &Node) -> Result<()> {
        let inputs = node.inputs();
        let name = |role: &str| format!("{}.{role}", node.name());
        let layer = match node {
            Node::Conv2d(n) => {
                let c = &n.config;
                let k = c.kernel_size[0];
                let padding = match &c.padding {
                    PaddingConfig2d::Valid => 0,
                    PaddingConfig2d::Explicit(t, l, b, r) if t == l && l == b && b == r => *t,
                    other => bail!("Conv: padding {other} is not the same on every side"),
                };
                ensure!(
                    c.kernel_size[1] == k && c.stride[0] == c.stride[1],
                    "Conv: kernel {:?} and stride {:?} must be square",
                    c.kernel_size,
                    c.stride
                );
                ensure!(
                    c.dilation == [1, 1] && c.groups == 1,
                    "Conv: dilation {:?} and groups {} are not read",
                    c.dilation,
                    c.groups
                );
                let shape: Vec<usize> = inputs[1]
                    .value()
                    .context("Conv: the weight is not a constant")?
                    .shape()
                    .iter()
                    .copied()
                    .collect();
                ensure!(shape.len() == 4, "Conv: a {}-D weight", shape.len());
                let (cout, cin) = (shape[0], shape[1]);
                let weight =
                    self.param(&inputs[1], name("weight"), ParamKind::ConvWeight, shape)?;
                let bias = inputs
                    .get(2)
                    .filter(|b| b.value().is_some())
                    .map(|b| self.param(b, name("bias"), ParamKind::Bias, vec![cout]))
                    .transpose()?;
                Some(Layer::Conv(Conv {
                    weight,
                    bias,
                    cin,
                    cout,
                    kernel: k,
                    stride: c.stride[0],
                    padding,
                }))
            }
            Node::BatchNormalization(n) => {
                let epsilon = match &n.config {
                    onnx_ir::node::batch_norm::BatchNormConfig::Static(c) => c.epsilon,
                    onnx_ir::node::batch_norm::BatchNormConfig::Runtime(c) => c.epsilon,
                };
                ensure!(
                    (epsilon - BN_EPS).abs() <= 1e-9,
                    "BatchNormalization: epsilon {epsilon}, where landscape's BatchNorm uses {BN_EPS}"
                );
                let channels = inputs[1]
                    .value()
                    .context("BatchNormalization: the scale is not a constant")?
                    .num_elements();
                let c = vec![channels];
                Some(Layer::BatchNorm(BatchNorm {
                    weight: self.param(
                        &inputs[1],
                        name("weight"),
                        ParamKind::BnWeight,
                        c.clone(),
                    )?,
                    bias: self.param(&inputs[2], name("bias"), ParamKind::BnBias, c.clone())?,
                    running_mean: self.param(
                        &inputs[3],
                        name("running_mean"),
                        ParamKind::BnRunningMean,
                        c.clone(),
                    )?,
                    running_var: self.param(
                        &inputs[4],
                        name("running_var"),
                        ParamKind::BnRunningVar,
                        c,
                    )?,
                    channels,
                }))
            }
            Node::Relu(_) => Some(Layer::Relu),
            Node::MaxPool2d(n) => {
                let c = &n.config;
                Some(Layer::MaxPool {
                    kernel: pool_size("MaxPool", c.kernel_size, c.strides, &c.padding, c.dilation)?,
                    stride: c.strides[0],
                })
            }
            Node::AveragePool2d(n) => {
                let c = &n.config;
                Some(Layer::AvgPool {
                    kernel: pool_size(
                        "AveragePool",
                        c.kernel_size,
                        c.strides,
                        &c.padding,
                        c.dilation,
                    )?,
                    stride: c.strides[0],
                })
            }
            Node::GlobalAveragePool(_) => Some(Layer::GlobalAvgPool),
            Node::Flatten(n) => {
                ensure!(
                    n.config.axis == 1,
                    "Flatten: axis {} (only 1 is read)",
                    n.config.axis
                );
                None
            }
            Node::Reshape(_) => {
                let rank = node.outputs()[0].ty.rank();
                ensure!(
                    rank == 2,
                    "Reshape: to rank {rank} (only to a row per image)"
                );
                None
            }
            Node::Gemm(n) => {
                let c = &n.config;
                ensure!(
                    c.alpha == 1.0 && c.beta == 1.0 && c.trans_a == 0,
                    "Gemm: alpha {}, beta {}, transA {} (only a linear layer is read)",
                    c.alpha,
                    c.beta,
                    c.trans_a
                );
                Some(self.linear(node.name(), &inputs[1], c.trans_b == 0, inputs.get(2))?)
            }
            Node::MatMul(_) => Some(self.linear(node.name(), &inputs[1], true, None)?),
            // onnx-ir's fusion of Gemm (weight [out, in]) or MatMul + Add (weight [in, out]).
            Node::Linear(n) => Some(self.linear(
                node.name(),
                &inputs[1],
                !n.config.transpose_weight,
                inputs.get(2),
            )?),
            Node::Dropout(_) | Node::Identity(_) => None,
            Node::Add(_) => return self.join(node, JoinKind::Add),
            Node::Concat(n) => {
                ensure!(
                    n.config.axis == 1,
                    "Concat: axis {} (only channels, 1)",
                    n.config.axis
                );
                return self.join(node, JoinKind::Concat);
            }
            other => bail!(
                "operator {:?} is not read (landscape reads {SUPPORTED})",
                other.node_type()
            ),
        };
        let input = self.chain(&inputs[0])?;
        let output = match (layer, node) {
            (Some(layer @ Layer::GlobalAvgPool), _) => Chain {
                flat: true,
                ..input.then(layer)
            },
            (Some(layer), _) => input.then(layer),
            // Flatten and Reshape: the engine's global pool already gives rows.
            (None, Node::Flatten(_) | Node::Reshape(_)) if !input.flat => Chain {
                flat: true,
                ..input.then(Layer::Flatten)
            },
            (None, _) => input,
        };
        self.chains.insert(node.outputs()[0].name.clone(), output);
        Ok(())
    }

    /// Add and Concat: the two branches' common beginning, then a residual or dense block.
    fn join(&mut self, node: &Node, kind: JoinKind) -> Result<()> {
        let inputs = node.inputs();
        ensure!(
            inputs.len() == 2,
            "{kind:?} of {} inputs (two are read)",
            inputs.len()
        );
        let (a, b) = (self.chain(&inputs[0])?, self.chain(&inputs[1])?);
        ensure!(
            a.flat == b.flat && !a.flat,
            "{kind:?} of rows (only of feature maps)"
        );
        let common = a
            .layers
            .iter()
            .zip(&b.layers)
            .take_while(|(x, y)| x == y)
            .count();
        let (ra, rb) = (a.layers[common..].to_vec(), b.layers[common..].to_vec());
        let block = match kind {
            JoinKind::Add => {
                let (body, shortcut) = if ra.len() >= rb.len() {
                    (ra, rb)
                } else {
                    (rb, ra)
                };
                Layer::Residual { body, shortcut }
            }
            JoinKind::Concat => {
                ensure!(
                    rb.is_empty() && !ra.is_empty(),
                    "Concat: only cat([f(x), x]) is read, a dense block's new features first"
                );
                Layer::Concat { body: ra }
            }
        };
        let mut layers = a.layers[..common].to_vec();
        layers.push(block);
        self.chains.insert(
            node.outputs()[0].name.clone(),
            Chain {
                layers,
                flat: false,
            },
        );
        Ok(())
    }
}

/// How two branches join.
#[derive(Clone, Copy, Debug)]
enum JoinKind {
    Add,
    Concat,
}

/// A pool's square kernel, checking it has one stride, no padding and no dilation.
fn pool_size(
    op: &str,
    kernel: [usize; 2],
    strides: [usize; 2],
    padding: &PaddingConfig2d,
    dilation: [usize; 2],
) -> Result<usize> {
    ensure!(
        kernel[0] == kernel[1] && strides[0] == strides[1],
        "{op}: kernel {kernel:?} and strides {strides:?} must be square"
    );
    ensure!(
        matches!(
            padding,
            PaddingConfig2d::Valid | PaddingConfig2d::Explicit(0, 0, 0, 0)
        ) && dilation == [1, 1],
        "{op}: padding {padding} and dilation {dilation:?} are not read"
    );
    Ok(kernel[0])
}
