"""The three ways an entry hands its model to convert_user_model, shared by the entry files:
an ONNX file exported from a torch module (optionally renamed like another framework's export), a torch factory
string + a state-dict file, and a Keras file (or an ONNX file made from it by tf2onnx). Each writes the sample
data .npz beside the model and returns a BuiltModel."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from ._entry import BuiltModel, SourceKind
from ._export import keras_to_onnx, onnx_opset, rename, save_npz, torch_to_onnx, versions

TORCH_PACKAGES = ("torch", "transformers", "onnx")
KERAS_PACKAGES = ("tensorflow", "tf-keras", "tf2onnx", "onnx")


def _sample(workdir: Path, arrays: Mapping[str, np.ndarray], labels: Optional[np.ndarray]) -> Path:
    extra = {} if labels is None else {"labels": labels}
    return save_npz(workdir / "sample.npz", **arrays, **extra)


def torch_check(module, arrays: Mapping[str, np.ndarray], names: Sequence[str]) -> Any:
    """Run the module once on the sample (the source model must run on its own data); returns its output."""
    import torch

    with torch.no_grad():
        return module(*[torch.from_numpy(np.ascontiguousarray(arrays[n])) for n in names])


def onnx_from_torch(workdir: Path, module, arrays: Mapping[str, np.ndarray], output_names: Sequence[str], *,
                    opset: int, dynamo: bool, dynamic: Mapping[str, Mapping[int, str]],
                    labels: Optional[np.ndarray] = None, rename_style: Optional[str] = None,
                    rename_tensors: Optional[Mapping[str, str]] = None, example_rows: int = 2) -> BuiltModel:
    """Export `module` (eval mode) to workdir/model.onnx on the first rows of the sample; inputs are named like the
    sample's arrays (in forward()'s order: the mapping's order), outputs `output_names`. rename_style renames every
    node and tensor afterwards (see _export.rename), rename_tensors the graph inputs/outputs; the sample's arrays
    take the renamed input names."""
    names = list(arrays)
    torch_check(module, {k: v[:example_rows] for k, v in arrays.items()}, names)
    path = torch_to_onnx(module, [arrays[n][:example_rows] for n in names], workdir / "model.onnx", names,
                         output_names, opset=opset, dynamo=dynamo, dynamic=dynamic)
    renamed = dict(rename_tensors or {})
    if rename_style or renamed:
        rename(path, renamed, rename_style or "slashes")
    arrays = {renamed.get(k, k): v for k, v in arrays.items()}
    meta = {"versions": versions(*TORCH_PACKAGES), "opset": onnx_opset(path), "bytes": path.stat().st_size,
            "exporter": "dynamo" if dynamo else "legacy"}
    return BuiltModel(str(path), SourceKind.ONNX, _sample(workdir, arrays, labels), meta=meta)


def torch_factory(workdir: Path, factory: str, module, arrays: Mapping[str, np.ndarray],
                  labels: Optional[np.ndarray] = None) -> BuiltModel:
    """A torch source: "benchmarks.corpus.x:factory" + the module's state dict saved to workdir/weights.pt (the
    factory builds the architecture; the weights make it the model the entry built)."""
    import torch

    torch_check(module, {k: v[:2] for k, v in arrays.items()}, list(arrays))
    weights = workdir / "weights.pt"
    torch.save(module.state_dict(), weights)
    meta = {"versions": versions(*TORCH_PACKAGES), "bytes": weights.stat().st_size,
            "parameters": int(sum(p.numel() for p in module.parameters()))}
    return BuiltModel(factory, SourceKind.TORCH, _sample(workdir, arrays, labels), weights=weights, meta=meta)


def keras_file(workdir: Path, model, arrays: Mapping[str, np.ndarray], labels: Optional[np.ndarray] = None
               ) -> BuiltModel:
    """A Keras source: model.save(workdir/model.keras); the arrays take the model's input names, in order."""
    arrays = dict(zip(model.input_names, arrays.values()))
    model.predict([arrays[n][:2] for n in arrays] if len(arrays) > 1 else next(iter(arrays.values()))[:2], verbose=0)
    path = workdir / "model.keras"
    model.save(str(path))
    meta = {"versions": versions(*KERAS_PACKAGES), "bytes": path.stat().st_size,
            "parameters": int(model.count_params())}
    return BuiltModel(str(path), SourceKind.KERAS, _sample(workdir, arrays, labels), meta=meta)


def onnx_from_keras(workdir: Path, model, arrays: Mapping[str, np.ndarray], opset: int,
                    labels: Optional[np.ndarray] = None) -> BuiltModel:
    """tf2onnx: the Keras model -> workdir/model.onnx (NHWC kept: tf2onnx inserts no layout change, so the ONNX
    input is channels-last and convert_user_model is told layouts="NHWC")."""
    names = list(arrays)
    path = keras_to_onnx(model, workdir / "model.onnx", opset, names)
    import onnx

    graph_inputs = [i.name for i in onnx.load(str(path)).graph.input]
    arrays = dict(zip(graph_inputs, arrays.values())) if len(graph_inputs) == len(arrays) else dict(arrays)
    meta = {"versions": versions(*KERAS_PACKAGES), "opset": onnx_opset(path), "bytes": path.stat().st_size,
            "parameters": int(model.count_params())}
    four_d = any(np.ndim(a) == 4 for a in arrays.values())
    return BuiltModel(str(path), SourceKind.ONNX, _sample(workdir, arrays, labels),
                      layouts="NHWC" if four_d else None, meta=meta)


def keras_seeded(seed: int = 0):
    from edgeproof._frameworks import import_tf_keras

    keras = import_tf_keras()
    keras.utils.set_random_seed(seed)
    return keras
