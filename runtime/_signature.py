"""Bind a model's canonical tensors (the spec's names, NHWC images, float values) to an artifact's
real tensors (its own names, layout, dtype, int8 quantization), in both directions.

Pure numpy: the runtime on a device, the verify stage and the tests share this one mapping, so the
artifact is proven through the same code that later feeds it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from edgeproof.errors import EdgeproofError


class InputError(EdgeproofError, ValueError):
    """An input that does not match the model's signature (name, shape or dtype)."""


@dataclass(frozen=True)
class TensorBinding:
    """One tensor of an artifact: `canonical` is the name the pipeline uses, `name` the artifact's own."""

    canonical: str
    name: str
    shape: tuple[int, ...]  # the artifact's shape; -1 for a dynamic dimension
    dtype: str  # the artifact's dtype
    layout: str  # the artifact's layout: NHWC / NCHW / NF / NT
    canonical_layout: str
    quantization: Optional[Mapping[str, Any]] = None  # {"scale": [...], "zero_point": [...]}

    @property
    def static_batch(self) -> Optional[int]:
        return self.shape[0] if self.shape and self.shape[0] > 0 else None

    @property
    def quantized(self) -> bool:
        return bool(self.quantization and self.quantization.get("scale")) and self.dtype in ("int8", "uint8")

    def describe(self) -> str:
        return f"{self.canonical}: {list(self.shape)} {self.dtype} ({self.layout})"


def _strip(name: str) -> str:
    return name.split(":")[0]


def bind(canonical: Sequence[tuple[str, str]], actual: Sequence[Mapping[str, Any]]) -> list[TensorBinding]:
    """Pair canonical (name, layout) tensors with an artifact's recorded tensors.

    By name first (TF.js appends ':0' to some), then by position for what is left (the PyTorch route
    names its outputs output_0...). Raises if the counts differ.
    """
    if len(canonical) != len(actual):
        raise InputError(f"the artifact has {len(actual)} tensors ({[a['name'] for a in actual]}), "
                         f"the model defines {len(canonical)} ({[c for c, _ in canonical]})")
    by_name = {_strip(a["name"]): a for a in actual}
    left = [a for a in actual if _strip(a["name"]) not in {c for c, _ in canonical}]
    bindings = []
    for name, layout in canonical:
        a = by_name.get(name) or left.pop(0)
        bindings.append(TensorBinding(name, a["name"], tuple(int(d) for d in a["shape"]), a["dtype"],
                                      a.get("layout") or layout, layout, a.get("quantization")))
    return bindings


def _transpose(array: np.ndarray, src: str, dst: str) -> np.ndarray:
    if src == dst or array.ndim != 4 or {src, dst} != {"NHWC", "NCHW"}:
        return array
    return array.transpose(0, 3, 1, 2) if dst == "NCHW" else array.transpose(0, 2, 3, 1)


def to_artifact(binding: TensorBinding, array: np.ndarray) -> np.ndarray:
    """A canonical input -> what the artifact takes: its layout, its dtype, quantized if it is int8."""
    array = np.asarray(array)
    given = list(array.shape)
    expected = binding.shape[1:]
    array = _transpose(array, binding.canonical_layout, binding.layout)
    if array.ndim != len(binding.shape) or any(e not in (-1, g) for e, g in zip(expected, array.shape[1:])):
        want = _transpose(np.empty([max(d, 1) for d in binding.shape], np.uint8), binding.layout,
                          binding.canonical_layout).shape
        want = ["N"] + [d if d > 0 else "?" for d in want[1:]]
        raise InputError(f"input {binding.canonical!r} has shape {given}; the model takes {binding.describe()}, i.e. [{', '.join(map(str, want))}] "
                         f"in {binding.canonical_layout} with the batch first")
    if binding.quantized:
        if not np.issubdtype(array.dtype, np.floating):
            raise InputError(f"input {binding.canonical!r}: expected float values to quantize, got {array.dtype}")
        scale, zero = float(binding.quantization["scale"][0]), int(binding.quantization["zero_point"][0])
        info = np.iinfo(binding.dtype)
        return np.clip(np.round(array / scale + zero), info.min, info.max).astype(binding.dtype)
    target = np.dtype(binding.dtype)
    if np.issubdtype(target, np.integer) and not np.issubdtype(array.dtype, np.integer):
        raise InputError(f"input {binding.canonical!r} takes integer ids ({binding.dtype}), got {array.dtype} values")
    if np.issubdtype(target, np.integer) and array.size and (array.min() < np.iinfo(target).min
                                                              or array.max() > np.iinfo(target).max):
        raise InputError(f"input {binding.canonical!r}: ids out of the {binding.dtype} range")
    return np.ascontiguousarray(array.astype(target, copy=False))


def from_artifact(binding: TensorBinding, array: np.ndarray) -> np.ndarray:
    """An artifact output -> canonical: float32 (dequantized), canonical layout."""
    array = np.asarray(array)
    if binding.quantized:
        scale, zero = float(binding.quantization["scale"][0]), int(binding.quantization["zero_point"][0])
        array = (array.astype(np.float32) - zero) * scale
    elif np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float32, copy=False)
    return _transpose(array, binding.layout, binding.canonical_layout)
