"""A user's own model's tensors: its inputs as the model declares them, matched with the sample data and
the --input-shape / --layout overrides, its outputs as it returns them, and the metric its labels call
for. Nothing here imports TensorFlow or PyTorch."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional, Sequence

import numpy as np

from edgeproof._metrics import METRICS, NO_LABELS
from edgeproof._spec import Distribution, Layout, TensorSpec
from edgeproof.errors import SampleDataError, UserModelError

from ._sample_data import SampleData, sanitize

PROBE_COUNT = 16


@dataclass(frozen=True)
class Declared:
    """A tensor as the user's model declares it: None for a dimension it leaves open."""

    name: str  # the pipeline's (sanitized) name
    source_name: str  # the name in the user's model
    shape: tuple[Optional[int], ...]
    dtype: str


def unique_names(names: Sequence[str]) -> list[str]:
    out: list[str] = []
    for n in names:
        clean, k = sanitize(n), 1
        while clean in out:
            k += 1
            clean = f"{sanitize(n)}_{k}"
        out.append(clean)
    return out


# -- --input-shape and --layout ---------------------------------------------------------------------------

def _split_named(value: str) -> tuple[Optional[str], str]:
    name, sep, rest = value.partition("=")
    return (name.strip(), rest.strip()) if sep else (None, value.strip())


def parse_input_shapes(values: Optional[Iterable[str] | Mapping[str, Any]]) -> dict[Optional[str], tuple]:
    """`image=N,3,64,64` (or `N,3,64,64` for a single-input model) -> {name: (None, 3, 64, 64)}.
    N, ?, -1 or None mark a dimension left open (the batch)."""
    if not values:
        return {}
    items = values.items() if isinstance(values, Mapping) else [_split_named(v) for v in values]
    out: dict[Optional[str], tuple] = {}
    for name, dims in items:
        parts = dims if isinstance(dims, (list, tuple)) else [d for d in str(dims).replace("x", ",").split(",") if d.strip()]
        shape = []
        for d in parts:
            d = str(d).strip()
            if d in ("N", "n", "?", "-1", "None", "batch"):
                shape.append(None)
            elif d.isdigit() and int(d) > 0:
                shape.append(int(d))
            else:
                raise UserModelError(f"--input-shape {name + '=' if name else ''}{dims}: {d!r} is not a dimension "
                                     f"(positive integers, N for the batch), e.g. --input-shape image=N,3,224,224")
        if not shape:
            raise UserModelError(f"--input-shape {dims!r} has no dimensions")
        out[name] = tuple(shape)
    return out


def parse_layouts(values: Optional[Iterable[str] | Mapping[str, Any] | str]) -> dict[Optional[str], Layout]:
    """`NCHW` (every 4-D input) or `image=NHWC` -> {name or None: Layout}."""
    if not values:
        return {}
    if isinstance(values, str):
        values = [values]
    items = values.items() if isinstance(values, Mapping) else [_split_named(v) for v in values]
    out = {}
    for name, layout in items:
        try:
            out[name] = Layout(str(getattr(layout, "value", layout)).upper())
        except ValueError:
            raise UserModelError(f"--layout {layout!r}: choose one of {[l.value for l in Layout]}") from None
    return out


def _pick(mapping: Mapping[Optional[str], Any], d: Declared) -> Any:
    for key in (d.source_name, d.name):
        if key in mapping:
            return mapping[key]
    return mapping.get(None)


def check_override_names(mapping: Mapping[Optional[str], Any], declared: Sequence[Declared], option: str) -> None:
    known = {d.source_name for d in declared} | {d.name for d in declared}
    unknown = [k for k in mapping if k is not None and k not in known]
    if unknown:
        raise UserModelError(f"{option} names {unknown}, which the model does not have; its inputs are "
                             f"{[d.source_name for d in declared]}")
    if None in mapping and option == "--input-shape" and len(declared) > 1:
        raise UserModelError(f"the model has {len(declared)} inputs: name the one to reshape, e.g. "
                             f"--input-shape {declared[0].source_name}=N,...")


def _fmt_shape(shape) -> str:
    return "[" + ", ".join("N" if i == 0 and d is None else ("?" if d is None else str(d))
                           for i, d in enumerate(shape)) + "]"


def _cast(array: np.ndarray, dtype: str, key: str, where: str, d: Declared) -> np.ndarray:
    target = np.dtype(dtype)
    if array.dtype == target:
        return array
    if target.kind in "iu" and array.dtype.kind == "f":
        if not np.all(np.isfinite(array)) or not np.array_equal(array, np.round(array)):
            raise SampleDataError(f"{where}: {key!r} holds {array.dtype} values; the model's input {d.source_name!r} "
                                  f"takes {dtype} (integer ids)")
    if target.kind in "iu" and array.size:
        info = np.iinfo(target)
        if array.min() < info.min or array.max() > info.max:
            raise SampleDataError(f"{where}: {key!r} has values outside the {dtype} range of input {d.source_name!r}")
    return np.ascontiguousarray(array.astype(target))


def resolve_inputs(declared: Sequence[Declared], sample: SampleData, kind: str,
                   shapes: Mapping[Optional[str], tuple], layouts: Mapping[Optional[str], Layout]
                   ) -> tuple[list[TensorSpec], dict[str, np.ndarray], list[Declared]]:
    """Match the sample arrays to the model's inputs (by name; a single input takes the single array),
    apply --input-shape / --layout, and check every shape. Returns the input TensorSpecs, the sample
    inputs keyed by the pipeline's names in the model's dtypes, and the fixed declared tensors."""
    check_override_names(shapes, declared, "--input-shape")
    check_override_names(layouts, declared, "--layout")
    arrays = dict(sample.inputs)
    if len(declared) == 1 and len(arrays) == 1:
        arrays = {declared[0].source_name: next(iter(arrays.values()))}
    wanted = [d.source_name for d in declared]
    missing = [d for d in declared if d.source_name not in arrays and d.name not in arrays]
    extra = [k for k in arrays if k not in wanted and k not in {d.name for d in declared}]
    if missing or extra:
        raise SampleDataError(
            f"{sample.where} does not match the model's inputs {wanted}: "
            + (f"missing {[d.source_name for d in missing]}" if missing else "")
            + ("; " if missing and extra else "") + (f"unexpected arrays {extra}" if extra else "")
            + " (name each array after a model input; labels go in an array named 'labels')")
    specs, canonical, fixed = [], {}, []
    for d in declared:
        key = d.source_name if d.source_name in arrays else d.name
        array = arrays[key]
        shape = tuple(d.shape)
        override = _pick(shapes, d)
        if override is not None:
            if len(override) != len(shape) and len(shape) > 0:
                raise UserModelError(f"--input-shape for {d.source_name!r} has {len(override)} dimensions, the "
                                     f"model's input has {len(shape)}: {_fmt_shape(shape)}")
            clash = [i for i, (a, b) in enumerate(zip(shape, override)) if a is not None and b is not None and a != b]
            if clash and len(shape) > 0:
                raise UserModelError(f"--input-shape {_fmt_shape(override)} contradicts the model's input "
                                     f"{d.source_name!r} {_fmt_shape(shape)} (dimension {clash[0]})")
            shape = tuple(b if b is not None else a for a, b in zip(shape, override)) if shape else tuple(override)
        per_example = tuple(array.shape[1:])
        if not shape:  # a graph input of unknown rank: the sample data says
            shape = (None,) + per_example
        if len(per_example) != len(shape) - 1 or any(s is not None and s != a for s, a in zip(shape[1:], per_example)):
            raise SampleDataError(
                f"{sample.where}: {key!r} has shape {list(array.shape)} (per example {list(per_example)}); the model's "
                f"input {d.source_name!r} takes {_fmt_shape(shape)} {d.dtype}" +
                (" (fix open dimensions with --input-shape)" if any(s is None for s in shape[1:]) else ""))
        shape = (shape[0],) + per_example  # open non-batch dimensions take the sample's size
        array = _cast(array, d.dtype, key, sample.where, d)
        is_int = np.dtype(d.dtype).kind in "iub"
        layout = _pick(layouts, d)
        if layout is None or (len(shape) != 4 and layout in (Layout.NHWC, Layout.NCHW)):
            if len(shape) == 4 and not is_int:
                layout = Layout.NHWC if kind == "keras" else Layout.NCHW
            else:
                layout = Layout.NT if is_int else Layout.NF
        lo, hi = (float(array.min()), float(array.max())) if array.size else (0.0, 1.0)
        specs.append(TensorSpec(d.name, shape, d.dtype, layout,
                                Distribution.INTEGER if is_int else Distribution.UNIFORM,
                                (lo, hi + 1) if is_int else (lo, hi)))
        canonical[d.name] = array
        fixed.append(Declared(d.name, d.source_name, shape, d.dtype))
    return specs, canonical, fixed


def static_batch(inputs: Sequence[TensorSpec]) -> Optional[int]:
    """The fixed batch size every input declares, or None for a dynamic batch."""
    sizes = {t.shape[0] for t in inputs}
    return sizes.pop() if len(sizes) == 1 and None not in sizes else None


def output_specs(names: Sequence[str], outputs: Mapping[str, np.ndarray], kind: str) -> list[TensorSpec]:
    specs = []
    for name in names:
        a = np.asarray(outputs[name])
        layout = (Layout.NHWC if kind == "keras" else Layout.NCHW) if a.ndim == 4 else Layout.NF
        specs.append(TensorSpec(name, (None,) + tuple(a.shape[1:]), str(a.dtype), layout))
    return specs


# -- the metric -------------------------------------------------------------------------------------------

def choose_metric(requested: Optional[str], labels: Optional[np.ndarray], output: np.ndarray) -> tuple[str, float]:
    """(metric name, binary decision threshold). accuracy for class labels with class scores (or a
    single score for 0/1 labels), mse for float labels, none (numeric parity only) without labels."""
    requested = None if requested in (None, "auto") else str(requested).lower()
    if requested not in (None, *METRICS):
        raise UserModelError(f"--metric {requested!r}: choose accuracy, mse or none")
    output = np.asarray(output)
    threshold = 0.5 if output.size and output.min() >= 0.0 and output.max() <= 1.0 else 0.0
    if labels is None:
        if requested in ("accuracy", "mse"):
            raise SampleDataError(f"--metric {requested} needs labels: add an array named 'labels' to the sample data "
                                  f"(without labels the verdict is {NO_LABELS})")
        return "none", threshold
    if requested == "none":
        return "none", threshold
    integral = labels.dtype.kind in "biu" or (labels.dtype.kind == "f" and np.array_equal(labels, np.round(labels)))
    flat = labels.reshape(len(labels), -1)
    classes = output.ndim == 2 and output.shape[1] > 1 and flat.shape[1] == 1 and integral \
        and flat.min() >= 0 and flat.max() < output.shape[1]
    binary = output.reshape(len(output), -1).shape[1] == 1 and flat.shape[1] == 1 and integral \
        and set(np.unique(flat).tolist()) <= {0, 1}
    same_size = flat.size == output.size
    if requested == "accuracy" and not (classes or binary):
        raise SampleDataError(f"--metric accuracy needs class labels (integers in [0, classes)) and an output of "
                              f"class scores; the first output has shape {list(output.shape)}, the labels "
                              f"{list(labels.shape)} {labels.dtype}")
    if requested == "mse" and not same_size:
        raise SampleDataError(f"--metric mse needs labels shaped like the first output: labels {list(labels.shape)}, "
                              f"output {list(output.shape)}")
    if requested:
        return requested, threshold
    if labels.dtype.kind in "biu" and (classes or binary):
        return "accuracy", threshold
    if labels.dtype.kind == "f" and same_size:
        return "mse", threshold
    if classes or binary:
        return "accuracy", threshold
    raise SampleDataError(f"cannot choose a metric for labels {list(labels.shape)} {labels.dtype} and a first output "
                          f"of shape {list(output.shape)}: pass --metric accuracy, mse or none")
