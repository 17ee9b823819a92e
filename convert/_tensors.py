"""Which tensor of a converted graph (SavedModel, .tflite, TF.js) is which tensor of the model's contract,
in which layout and dtype, and how the artifact's inputs differ from the source model's own."""
from __future__ import annotations

import re
from typing import Any, Optional, Sequence

from edgeproof._spec import Layout, TensorSpec
from edgeproof._util import TF_DTYPES

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


def layout_changes(native_inputs: Sequence[TensorSpec], inputs: Sequence[TensorInfo], converter: str,
                   label: str = "source model") -> list[str]:
    """How the artifact's inputs differ from the inputs of the source model itself (`native_inputs`, in the
    layout and dtype it takes them): a layout the converter changed, int64 ids taken as int32."""
    by_name = {i.name.split(":")[0]: i for i in inputs}
    changes = []
    for t in native_inputs:
        info = by_name.get(t.name)
        if info is not None and info.layout != t.layout.value:
            changes.append(f"{t.name}: {t.layout.value} ({label}) -> {info.layout} ({converter})")
        if info is not None and t.dtype == "int64" and info.dtype == "int32":
            changes.append(f"{t.name}: int64 ({label}) -> int32 at the artifact's boundary (cast inside)")
    return changes


def tfjs_described(signature: dict) -> list[dict]:
    """A TF.js graph model's signature entries ({name: {dtype: "DT_FLOAT", tensorShape: ...}}) as the
    {name, shape, dtype} dicts `tensor_infos` takes, sorted by name."""
    return [{"name": key, "shape": [int(d.get("size", -1)) for d in t.get("tensorShape", {}).get("dim", [])],
             "dtype": TF_DTYPES.get(t.get("dtype"), t.get("dtype", "?"))}
            for key, t in sorted(signature.items())]


