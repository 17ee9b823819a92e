"""PyTorch -> ONNX (the dynamo exporter; the legacy TorchScript exporter only as a reported
fallback), checked by onnx.checker and run by onnxruntime against torch on the probe inputs."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeproof._spec import ModelSpec
from edgeproof.errors import EdgeproofError


class OnnxExportError(EdgeproofError):
    pass


@dataclass
class OnnxExport:
    path: Path
    exporter: str  # "dynamo" or "legacy (fallback: <why dynamo failed>)"
    opset: int
    ort_max_abs_error: float
    notes: list[str] = field(default_factory=list)


def _deployed_module(model):
    return model[0] if isinstance(model, tuple) else model


_SPEC = object()


def export_onnx(spec: ModelSpec, model, path: Path, probes: dict[str, np.ndarray], atol: float = 1e-4,
                batch_size=_SPEC) -> OnnxExport:
    """`batch_size`: the spec's export batch by default; None for a dynamic batch."""
    import onnx
    import onnxruntime as ort
    import torch

    from edgeproof.train._torch_trainer import to_framework_layout

    net = _deployed_module(model).eval()
    torch_inputs = to_framework_layout(spec, probes)
    names = [t.name for t in spec.inputs]
    static = spec.export_batch_size if batch_size is _SPEC else batch_size
    example = tuple(torch.from_numpy(np.ascontiguousarray(torch_inputs[n][:static or 2])) for n in names)
    batch = torch.export.Dim("batch", min=1, max=4096)
    dynamic = None if static else {n: {0: batch} for n in names}
    notes = []
    try:
        torch.onnx.export(net, example, str(path), dynamo=True, input_names=names,
                          output_names=[spec.outputs[0].name], dynamic_shapes=dynamic, optimize=True,
                          external_data=False)  # one self-contained file (our models are far below 2 GB)
        exporter = "dynamo"
    except Exception as err:  # reported, never silent
        first = str(err).strip().splitlines()[0][:300]
        notes.append(f"dynamo exporter failed ({first}); used the legacy TorchScript exporter")
        torch.onnx.export(net, example, str(path), dynamo=False, input_names=names,
                          output_names=[spec.outputs[0].name],
                          dynamic_axes=None if static else {n: {0: "batch"} for n in names},
                          opset_version=17)
        exporter = "legacy"
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    opset = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    if static:
        torch_inputs = {n: torch_inputs[n][:static] for n in names}
    ort_out = session.run(None, {n: torch_inputs[n] for n in names})[0]
    with torch.no_grad():
        ref = net(*(torch.from_numpy(np.ascontiguousarray(torch_inputs[n])) for n in names)).numpy()
    err = float(np.max(np.abs(ort_out - ref)))
    if not err <= atol:
        raise OnnxExportError(f"{path.name}: onnxruntime differs from torch by {err:.3g} (budget {atol:g}) "
                              f"on the probe inputs; the ONNX export is wrong")
    return OnnxExport(path, exporter, opset, err, notes)
