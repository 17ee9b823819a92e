"""A user's PyTorch model: `module.path:factory` (+ an optional state dict) or a module object. Its
inputs come from the sample data (names and order from forward()'s parameters where they match);
its outputs (a tensor, a tuple or a dict of tensors) are named output / output_0... / the dict's keys.
The reference is the module itself, run eagerly; its ONNX export (convert/_onnx_export) then takes the
ONNX route like any ONNX file."""
from __future__ import annotations

import importlib
import inspect
import os
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from edgeproof._util import one_line
from edgeproof.errors import CorruptModelError, FactoryError, UserModelError

from ._model_files import require_exists
from ._onnx_export import OnnxExport, export_torch
from ._sample_data import SampleData
from ._user_inputs import Declared, unique_names


def _import_factory(spec: str) -> Callable[[], Any]:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise FactoryError(f"--torch {spec!r}: expected module.path:factory, e.g. mypackage.models:build_model")
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:  # `python -m` would find modules in the working folder; so does the console script
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except (Exception, SystemExit) as err:  # a module that exits on import is an error too, not an exit
        raise FactoryError(f"--torch {spec}: cannot import module {module_name!r} ({one_line(err, 300)})") from None
    finally:
        if added:
            sys.path.remove(cwd)
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise FactoryError(f"--torch {spec}: module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise FactoryError(f"--torch {spec}: {attr!r} is a {type(obj).__name__}, not a callable factory")
    return obj


def build_module(factory: Any, weights: Optional[Path | str] = None):
    """The eval-mode torch module from a factory string, a callable, or a module."""
    import torch

    label = factory if isinstance(factory, str) else getattr(factory, "__name__", type(factory).__name__)
    if isinstance(factory, str):
        factory = _import_factory(factory)
    if isinstance(factory, torch.nn.Module):
        module = factory
    else:
        try:
            module = factory()
        except (Exception, SystemExit) as err:  # `builtins:exit` must not end edgeproof with status 0
            raise FactoryError(f"the factory {label} failed: {one_line(err, 300)}") from None
    if not isinstance(module, torch.nn.Module):
        raise FactoryError(f"the factory {label} returned a {type(module).__name__}, not a torch.nn.Module")
    if weights is not None:
        path = require_exists(weights, "weights file")
        try:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as err:
            raise CorruptModelError(f"{path} cannot be read as PyTorch weights ({one_line(err, 200)}): save them "
                                    f"with torch.save(model.state_dict(), path)") from None
        if isinstance(state, dict) and not any(isinstance(v, torch.Tensor) for v in state.values()):
            state = state.get("state_dict") or state.get("model_state_dict") or state
        if not isinstance(state, dict):
            raise CorruptModelError(f"{path} holds a {type(state).__name__}, not a state dict")
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise FactoryError(f"the weights in {path} do not fit the module from {label}: "
                               f"{one_line(err, 400)}") from None
    return module.eval()


class TorchModel:
    """A torch module (from a factory, a module object, + weights) run eagerly and exported to ONNX."""

    kind = "torch"

    def __init__(self, factory: Any, weights: Optional[Path | str] = None):
        self.factory = factory if isinstance(factory, str) else getattr(factory, "__name__", type(factory).__name__)
        self.weights = None if weights is None else str(weights)
        self.module = build_module(factory, weights)
        self.path = self.factory
        self._declared: list[Declared] = []
        self._outputs: Optional[list[tuple[str, Any]]] = None  # (name, key or index)
        self._structure: Optional[str] = None

    def declared_inputs(self, sample: SampleData) -> list[Declared]:
        """From the sample data: forward()'s parameter order where the names match, else the file's."""
        keys = list(sample.inputs)
        try:
            params = [p.name for p in inspect.signature(self.module.forward).parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        except (TypeError, ValueError):
            params = []
        if set(keys) <= set(params):
            keys = [p for p in params if p in keys]
        self._declared = []
        for name, key in zip(unique_names(keys), keys):
            array = sample.inputs[key]
            dtype = "float32" if array.dtype.kind == "f" else ("int64" if array.dtype.kind in "iu" else "bool")
            self._declared.append(Declared(name, key, (None,) + tuple(array.shape[1:]), dtype))
        return list(self._declared)

    def _flatten(self, out) -> list[tuple[str, Any]]:
        """(name, tensor) per output; a name an input already has (a state `h` in and out) gets `_out`."""
        taken = {d.name for d in self._declared}
        return [(f"{name}_out" if name in taken else name, value) for name, value in self._named(out)]

    def _named(self, out) -> list[tuple[str, Any]]:
        import torch

        if isinstance(out, torch.Tensor):
            self._structure = "tensor"
            return [("output", out)]
        if isinstance(out, dict):
            self._structure = "dict"
            keys = list(out)
            return list(zip(unique_names([str(k) for k in keys]), [out[k] for k in keys]))
        if isinstance(out, (tuple, list)):
            self._structure = "sequence"
            return [(f"output_{i}", v) for i, v in enumerate(out)]
        raise UserModelError(f"{self.factory}: forward() returned a {type(out).__name__}; return a tensor, a tuple "
                             f"or a dict of tensors")

    def reference(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        args = [torch.from_numpy(np.ascontiguousarray(inputs[d.name])) for d in self._declared]
        try:
            with torch.no_grad():
                out = self.module(*args)
        except Exception as err:
            raise UserModelError(f"{self.factory}: the module fails on the sample data ({one_line(err, 300)}); "
                                 f"its inputs were {[(d.source_name, list(d.shape), d.dtype) for d in self._declared]}"
                                 ) from None
        flat = self._flatten(out)
        bad = [n for n, v in flat if not isinstance(v, torch.Tensor)]
        if bad:
            raise UserModelError(f"{self.factory}: outputs {bad} are not tensors; return a tensor, a tuple or a dict "
                                 f"of tensors")
        self._outputs = [(n, i) for i, (n, _) in enumerate(flat)]
        return {n: v.detach().cpu().numpy() for n, v in flat}

    @property
    def structure(self) -> str:
        """What forward() returns: tensor | dict | sequence (known after the first reference run)."""
        return self._structure or "tensor"

    @property
    def output_names(self) -> list[str]:
        return [n for n, _ in (self._outputs or [])]

    def save_source(self, dest: Path) -> list[str]:
        return [f"model.onnx: the module from {self.factory}" + (f" with weights {self.weights}" if self.weights else "")
                + " exported to ONNX"]

    def export_onnx(self, path: Path, probes: dict[str, np.ndarray]) -> OnnxExport:
        """The module as an ONNX file (dynamic batch), checked against torch on the probes."""
        if self._outputs is None:
            self.reference({k: v[:1] for k, v in probes.items()})  # learns the output structure and names
        return export_torch(self.module, path, [d.name for d in self._declared], self.output_names,
                            {d.name: probes[d.name] for d in self._declared}, structure=self._structure or "tensor",
                            label=str(self.factory))
