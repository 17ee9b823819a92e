"""Exporters the corpus uses, each as a user would call it: torch.onnx.export (legacy TorchScript and dynamo, at a
chosen opset, with dynamic axes), tf2onnx (Keras -> ONNX), Hugging Face optimum's ONNX exporter, and a renamer
that gives an exported ONNX graph the node and tensor names other frameworks' exporters write (Paddle's
`Softmax@0`, dots, slashes, non-ASCII), applied with onnx.helper after export. Frameworks are imported lazily."""
from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np


def versions(*packages: str) -> dict[str, str]:
    out = {}
    for p in packages:
        try:
            out[p] = importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError:
            out[p] = "not installed"
    return out


def seed_torch(seed: int = 0):
    import torch

    torch.manual_seed(seed)
    return torch


def torch_eval(module):
    """Eval mode, no grad anywhere (the exporters and the factories both want it)."""
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def torch_to_onnx(module, example: Sequence[np.ndarray], path: Path, input_names: Sequence[str],
                  output_names: Sequence[str], *, opset: int, dynamo: bool,
                  dynamic: Optional[Mapping[str, Mapping[int, str]]] = None) -> Path:
    """torch.onnx.export of `module` on `example` (numpy arrays, in forward()'s order). `dynamic` maps an input
    (or, for the legacy exporter, an output) name to {axis: symbolic name}."""
    import torch

    args = tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in example)
    dynamic = dict(dynamic or {})
    if dynamo:
        dims: dict[str, Any] = {}
        shapes = []
        for name in input_names:
            axes = dynamic.get(name, {})
            shapes.append({axis: dims.setdefault(sym, torch.export.Dim(sym.replace(".", "_"), min=1, max=4096))
                           for axis, sym in axes.items()} or None)
        torch.onnx.export(module, args, str(path), dynamo=True, opset_version=opset, input_names=list(input_names),
                          output_names=list(output_names), dynamic_shapes=tuple(shapes), optimize=True,
                          external_data=False)
    else:
        torch.onnx.export(module, args, str(path), dynamo=False, opset_version=opset, input_names=list(input_names),
                          output_names=list(output_names), dynamic_axes={k: dict(v) for k, v in dynamic.items()},
                          do_constant_folding=True)
    return path


def onnx_opset(path: Path) -> int:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


# -- renaming: other frameworks' names ----------------------------------------------------------------------------

def _rename_in_graph(graph, tensor: Callable[[str], str], node: Callable[[Any, int], str]) -> None:
    from onnx import AttributeProto

    def t(name: str) -> str:
        return tensor(name) if name else name

    for coll in (graph.input, graph.output, graph.value_info):
        for vi in coll:
            vi.name = t(vi.name)
    for init in graph.initializer:
        init.name = t(init.name)
    for i, n in enumerate(graph.node):
        n.input[:] = [t(x) for x in n.input]
        n.output[:] = [t(x) for x in n.output]
        n.name = node(n, i)
        for attr in n.attribute:
            if attr.type == AttributeProto.GRAPH:
                _rename_in_graph(attr.g, tensor, node)
            elif attr.type == AttributeProto.GRAPHS:
                for g in attr.graphs:
                    _rename_in_graph(g, tensor, node)


def rename(path: Path, tensor_names: Mapping[str, str], style: str) -> dict[str, str]:
    """Rewrite the ONNX file at `path` in place with another exporter's naming. `tensor_names` renames the graph
    inputs/outputs explicitly; every other tensor and every node is renamed by `style`:
      "paddle": nodes `Conv@0`, `Softmax@0` (op@index per op type), tensors `conv_0.tmp_0`, weights `conv_0.w_0`;
      "slashes": nodes `/backbone/stage.1/Conv_0` and tensors `/backbone/stage.1/Conv_0_output_0`, with dots;
      "unicode": like "slashes" but under a non-ASCII scope (`/主干/…`, `/stufe_ü/…`).
    Returns the mapping of the graph inputs' old names to new (the sample data uses the new ones)."""
    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    counters: dict[str, int] = {}
    produced: dict[str, str] = {}
    initializers = {i.name for i in graph.initializer}
    taken = set(tensor_names.values())
    scope = {"paddle": "", "slashes": "/backbone/stage.1/", "unicode": "/主干网络/stufe_ü.1/"}[style]

    for n in graph.node:
        k = counters.get(n.op_type, 0)
        counters[n.op_type] = k + 1
        for j, out in enumerate(n.output):
            if out and out not in tensor_names:
                new = (f"{n.op_type.lower()}_{k}.tmp_{j}" if style == "paddle"
                       else f"{scope}{n.op_type}_{k}_output_{j}")
                produced[out] = new if new not in taken else f"{new}_{len(produced)}"
    weight_no = iter(range(len(initializers)))

    weights = {name: (f"param_{next(weight_no)}.w_0" if style == "paddle" else f"{scope}param.{next(weight_no)}")
               for name in sorted(initializers) if name not in tensor_names}
    mapping = {**produced, **weights, **tensor_names}
    node_counts: dict[str, int] = {}

    def node_name(n, i: int) -> str:
        k = node_counts.get(n.op_type, 0)
        node_counts[n.op_type] = k + 1
        return f"{n.op_type}@{k}" if style == "paddle" else f"{scope}{n.op_type}_{k}"

    _rename_in_graph(graph, lambda name: mapping.get(name, name), node_name)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return dict(tensor_names)


# -- Keras -> ONNX with tf2onnx -----------------------------------------------------------------------------------

def keras_to_onnx(model, path: Path, opset: int, input_names: Sequence[str]) -> Path:
    """tf2onnx.convert.from_keras at `opset`, dynamic batch; the inputs keep the Keras names."""
    import tensorflow as tf
    import tf2onnx

    signature = [tf.TensorSpec((None,) + tuple(t.shape[1:]), t.dtype, name=n)
                 for t, n in zip(model.inputs, input_names)]
    tf2onnx.convert.from_keras(model, input_signature=signature, opset=opset, output_path=str(path))
    return path


# -- Hugging Face optimum -----------------------------------------------------------------------------------------

def optimum_export(model_dir: Path, out_dir: Path, task: str, opset: int) -> Path:
    """optimum's ONNX exporter (optimum-onnx's main_export) on a save_pretrained() folder; returns model.onnx."""
    from optimum.exporters.onnx import main_export

    main_export(str(model_dir), output=str(out_dir), task=task, opset=opset, device="cpu", do_validation=True,
                no_post_process=False, library_name="transformers")
    return out_dir / "model.onnx"


def save_npz(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def trained_like_batchnorm(module, seed: int = 0):
    """Give every torch BatchNorm the statistics and affine parameters of a trained network (random init leaves
    mean 0 / var 1 / gamma 1 / beta 0, which makes BatchNorm an identity and hides how converters fold it)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
                n = m.running_mean.numel()
                m.running_mean.copy_(torch.rand(n, generator=gen) * 0.6 - 0.3)
                m.running_var.copy_(torch.rand(n, generator=gen) * 1.5 + 0.5)
                if m.affine:
                    m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                    m.bias.copy_(torch.rand(n, generator=gen) * 0.4 - 0.2)
    return module


def keras_trained_like_batchnorm(model, seed: int = 0):
    """The same for tf-keras BatchNormalization layers (gamma, beta, moving mean, moving variance)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            weights = layer.get_weights()
            n = weights[0].shape[0]
            new = []
            for w in layer.weights:
                key = w.name.split("/")[-1]
                if key.startswith("gamma"):
                    new.append(rng.uniform(0.5, 1.5, n))
                elif key.startswith("beta"):
                    new.append(rng.uniform(-0.2, 0.2, n))
                elif key.startswith("moving_mean"):
                    new.append(rng.uniform(-0.3, 0.3, n))
                else:
                    new.append(rng.uniform(0.5, 2.0, n))
            layer.set_weights([a.astype(np.float32) for a in new])
    return model
