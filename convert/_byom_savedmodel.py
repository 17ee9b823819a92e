"""A user model's TensorFlow graph (SavedModel) and artifacts bound to its spec: which artifact tensor
is which spec tensor, in which layout and dtype, and a numeric check of the SavedModel against the
source model before anything is converted from it (so a converter that silently produced a wrong
graph counts as a failed converter, and the other ONNX backend gets its turn)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from edgeproof._spec import Layout, ModelSpec, TensorSpec
from edgeproof.runtime._signature import TensorBinding, bind, from_artifact, to_artifact

from ._artifact import TensorInfo


def _fits(actual: Sequence[int], expected: Sequence[Optional[int]]) -> bool:
    return len(actual) == len(expected) and all(
        a is None or a < 0 or e is None or a == e for a, e in zip(actual[1:], expected[1:]))


def artifact_layout(t: TensorSpec, shape: Sequence[int], prefer: Optional[str] = None) -> str:
    """The layout an artifact's tensor really has, from its shape (NCHW images become NHWC in onnx2tf);
    `prefer` breaks the tie when both readings fit (e.g. 3x3x3)."""
    if len(shape) != 4 or len(t.shape) != 4 or t.layout not in (Layout.NHWC, Layout.NCHW):
        return t.layout.value
    other = t.to_layout(Layout.NCHW if t.layout is Layout.NHWC else Layout.NHWC)
    same, swapped = _fits(shape, t.shape), _fits(shape, other.shape)
    if same and swapped:
        return prefer if prefer in (t.layout.value, other.layout.value) else t.layout.value
    return other.layout.value if swapped and not same else t.layout.value


def _index(name: str) -> Optional[int]:
    m = re.fullmatch(r"(?:output|Identity)_(\d+)", name.split(":")[0])
    return int(m.group(1)) if m else None


def tensor_infos(described: Sequence[dict[str, Any]], spec_tensors: Sequence[TensorSpec],
                 prefer: Optional[str] = None) -> list[TensorInfo]:
    """Artifact tensors ({name, shape, dtype, quantization?}) as TensorInfos with their real layouts, in
    the spec's order. Matched by name; onnx2tf names its outputs output_0, output_1... (the ONNX
    graph's output order), so those are matched by their number, anything else by position."""
    spec_index = {t.name: i for i, t in enumerate(spec_tensors)}
    order: dict[int, int] = {}  # described index -> spec index
    for k, d in enumerate(described):
        i = spec_index.get(str(d["name"]).split(":")[0])
        if i is not None and i not in order.values():
            order[k] = i
    rest = [k for k in range(len(described)) if k not in order]
    rest.sort(key=lambda k: (_index(str(described[k]["name"])) is None, _index(str(described[k]["name"])) or 0, k))
    free = [i for i in range(len(spec_tensors)) if i not in order.values()]
    order.update(zip(rest, free))
    infos = []
    for k in sorted(range(len(described)), key=lambda k: order.get(k, len(spec_tensors) + k)):
        d, i = described[k], order.get(k)
        t = spec_tensors[i] if i is not None else None
        shape = [int(s) for s in d["shape"]]
        layout = artifact_layout(t, shape, prefer) if t is not None else "NF"
        infos.append(TensorInfo(d["name"], shape, d["dtype"], layout, d.get("quantization")))
    return infos


def layout_changes(spec: ModelSpec, inputs: Sequence[TensorInfo], converter: str) -> list[str]:
    by_name = {i.name.split(":")[0]: i for i in inputs}
    changes = []
    for t in spec.inputs:
        info = by_name.get(t.name)
        if info is not None and info.layout != t.layout.value:
            changes.append(f"{t.name}: {t.layout.value} (source model) -> {info.layout} ({converter})")
        if info is not None and t.dtype == "int64" and info.dtype == "int32":
            changes.append(f"{t.name}: int64 (source model) -> int32 at the artifact's boundary (cast inside)")
    return changes


@dataclass
class BoundSavedModel:
    path: Path
    inputs: list[TensorBinding]
    outputs: list[TensorBinding]
    max_abs_error: float  # against the source model on the probes

    def feed(self, canonical: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Canonical arrays as the SavedModel (and so the TFLite calibrator) takes them."""
        return {b.name: to_artifact(b, canonical[b.canonical]) for b in self.inputs}


class SavedModelMismatch(RuntimeError):
    """The converter's SavedModel does not compute what the source model computes."""


def _describe_signature(fn) -> tuple[list[dict], list[dict]]:
    _, kwargs = fn.structured_input_signature
    ins = [{"name": k, "shape": [-1 if d is None else int(d) for d in s.shape], "dtype": s.dtype.name}
           for k, s in kwargs.items()]
    outs = [{"name": k, "shape": [-1 if d is None else int(d) for d in s.shape], "dtype": s.dtype.name}
            for k, s in fn.structured_outputs.items()]
    return ins, outs


def bind_saved_model(saved_model: Path, spec: ModelSpec, probes: dict[str, np.ndarray],
                     reference: dict[str, np.ndarray], prefer: Optional[str] = None) -> BoundSavedModel:
    """Bind the SavedModel's serving signature to the spec and run it on the probes: every output must
    match the source model's (max abs error <= 1e-3 x max(1, |reference|))."""
    from edgeproof._frameworks import import_tensorflow

    tf = import_tensorflow()
    fn = tf.saved_model.load(str(saved_model)).signatures["serving_default"]
    ins, outs = _describe_signature(fn)
    in_infos, out_infos = tensor_infos(ins, spec.inputs, prefer), tensor_infos(outs, spec.outputs, prefer)
    try:
        inputs = bind([(t.name, t.layout.value) for t in spec.inputs], [vars(i) for i in in_infos])
        outputs = bind([(t.name, t.layout.value) for t in spec.outputs], [vars(o) for o in out_infos])
    except ValueError as err:
        raise SavedModelMismatch(f"its signature does not match the source model: {err}") from None
    bound = BoundSavedModel(Path(saved_model), inputs, outputs, 0.0)
    feed = bound.feed(probes)
    n = len(next(iter(feed.values())))
    step = next((b.static_batch for b in inputs if b.static_batch), None) or n
    parts = [fn(**{k: tf.constant(v[i:i + step]) for k, v in feed.items()}) for i in range(0, n, step)]
    worst = 0.0
    for b in outputs:
        got = from_artifact(b, np.concatenate([p[b.name].numpy() for p in parts]))
        ref = np.asarray(reference[b.canonical])
        if got.shape != ref.shape:
            raise SavedModelMismatch(f"output {b.canonical!r} has shape {list(got.shape)}, the source model's "
                                     f"{list(ref.shape)}")
        err = float(np.max(np.abs(got.astype(np.float64) - ref.astype(np.float64)))) if ref.size else 0.0
        limit = 1e-3 * max(1.0, float(np.max(np.abs(ref))) if ref.size else 1.0)
        if not err <= limit:
            raise SavedModelMismatch(f"output {b.canonical!r} differs from the source model by {err:.3g} on the "
                                     f"probes (allowed {limit:.3g})")
        worst = max(worst, err)
    bound.max_abs_error = worst
    return bound
