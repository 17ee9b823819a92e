"""PyTorch -> ONNX, once for every torch model (zoo checkpoints and users' modules): the dynamo exporter,
the legacy TorchScript exporter only as a reported fallback, then onnx.checker and onnxruntime against
torch on the same inputs."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from edgeproof import _log
from edgeproof._util import one_line, scaled_error
from edgeproof.errors import UserModelError

LEGACY_OPSET = 17


class OnnxExportError(UserModelError):
    """torch.onnx.export failed with both exporters, or its graph computes something else than torch."""


@dataclass
class OnnxExport:
    path: Path
    exporter: str  # "dynamo" or "legacy"
    opset: int
    ort_max_abs_error: float
    notes: list[str] = field(default_factory=list)
    noise: dict[str, float] = field(default_factory=dict)  # per output: torch vs its ONNX, float32 vs float64

    @property
    def route(self) -> str:
        return f"onnx({self.exporter}, opset {self.opset})"


def _flat_outputs(module: Any, structure: str):
    """The module with its outputs as a plain tuple, in a fixed order, whatever forward() returns."""
    import torch

    class Flat(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = module

        def forward(self, *args):
            out = self.inner(*args)
            if structure == "dict":
                return tuple(out.values())
            return tuple(out) if structure == "sequence" else out

    return Flat().eval()


def _outputs_as_list(out: Any) -> list:
    if isinstance(out, dict):
        return list(out.values())
    return list(out) if isinstance(out, (tuple, list)) else [out]


def export_torch(module: Any, path: Path, input_names: Sequence[str], output_names: Sequence[str],
                 example: dict[str, np.ndarray], *, static_batch: Optional[int] = None,
                 structure: str = "tensor", label: str = "the module") -> OnnxExport:
    """Export `module` (eval mode) to `path`; inputs `example` (the module's own layout and dtypes) keyed by
    `input_names`. `static_batch`: a fixed batch (None: a dynamic batch dimension). `structure`: what
    forward() returns ("tensor", "sequence" or "dict"), for the legacy exporter's flat outputs."""
    import torch

    module = module.eval()
    n = static_batch or 2  # torch.export specializes a batch of 1: a dynamic batch is exported with 2
    arrays = [np.concatenate([example[k]] * max(1, -(-n // len(example[k]))))[:n] for k in input_names]
    args = tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in arrays)
    notes = []
    try:
        batch = torch.export.Dim("batch", min=1, max=65536)
        with _log.tool_output("torch.onnx"):  # torch.onnx narrates every step on stdout
            torch.onnx.export(module, args, str(path), dynamo=True, input_names=list(input_names),
                              output_names=list(output_names), optimize=True, external_data=False,
                              dynamic_shapes=None if static_batch else tuple({0: batch} for _ in input_names))
        exporter = "dynamo"
    except Exception as err:  # reported, never silent
        notes.append(f"dynamo exporter failed ({one_line(err, 300)}); used the legacy TorchScript exporter")
        dynamic = None if static_batch else {k: {0: "batch"} for k in [*input_names, *output_names]}
        try:
            torch.onnx.export(_flat_outputs(module, structure), args, str(path), dynamo=False,
                              input_names=list(input_names), output_names=list(output_names),
                              dynamic_axes=dynamic, opset_version=LEGACY_OPSET)
        except Exception as err2:
            raise OnnxExportError(f"{label}: torch.onnx.export failed with both exporters: dynamo: "
                                  f"{one_line(err, 200)}; legacy: {one_line(err2, 200)}") from None
        exporter = "legacy"
    errors = _check_against_torch(module, path, input_names, args, label, exporter)
    import onnx

    opset = next(o.version for o in onnx.load(str(path)).opset_import if o.domain in ("", "ai.onnx"))
    noise = dict(zip(output_names, errors))
    for name, value in zip(output_names, _float64_disagreement(module, args)):
        noise[name] = max(noise.get(name, 0.0), value)
    return OnnxExport(path, exporter, opset, max(errors, default=0.0), notes, noise)


def _float64_disagreement(module: Any, args: tuple) -> list[float]:
    """Per output: the module in float32 against the same module in float64 (its float32 rounding noise);
    empty when the module cannot run in float64."""
    import copy

    import torch

    try:
        wide = copy.deepcopy(module).double()
        wide_args = tuple(a.double() if a.is_floating_point() else a for a in args)
        with torch.no_grad():
            narrow = [t.detach().double().numpy() for t in _outputs_as_list(module(*args))]
            exact = [t.detach().numpy() for t in _outputs_as_list(wide(*wide_args))]
    except Exception:  # an op without a float64 kernel: the other measures stand
        return []
    return [float(np.max(np.abs(a - b))) if a.size else 0.0 for a, b in zip(narrow, exact)]


def _check_against_torch(module: Any, path: Path, input_names: Sequence[str], args: tuple, label: str,
                         exporter: str) -> list[float]:
    """onnx.checker, then onnxruntime vs torch on the export's inputs: every output within 1e-4 x its scale."""
    import onnx
    import onnxruntime as ort
    import torch

    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {k: a.numpy() for k, a in zip(input_names, args)})
    with torch.no_grad():
        expected = [t.detach().cpu().numpy() for t in _outputs_as_list(module(*args))]
    errors = []
    for i, (a, b) in enumerate(zip(got, expected)):
        err, limit = scaled_error(a, b, 1e-4)
        if not err <= limit:
            raise OnnxExportError(f"{label}: the ONNX export ({exporter}) differs from torch by {err:.3g} on output "
                                  f"{i} (allowed {limit:.3g}); the export is wrong")
        errors.append(err)
    return errors
