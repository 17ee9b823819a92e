"""Small helpers every stage shares, each defined once: the one-line error text, comma lists, running a
predict function in slices, and the TensorFlow dtype names of graph signatures. numpy only."""
from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, Union

import numpy as np

Arrays = dict[str, np.ndarray]
Output = Union[np.ndarray, Arrays]

# TensorFlow DataType enum names (TF.js model.json signatures, GraphDefs) -> numpy dtype names.
TF_DTYPES = {"DT_FLOAT": "float32", "DT_HALF": "float16", "DT_DOUBLE": "float64", "DT_INT32": "int32",
             "DT_INT64": "int64", "DT_INT8": "int8", "DT_UINT8": "uint8", "DT_BOOL": "bool"}


def one_line(err: BaseException, limit: int = 400) -> str:
    """An exception as one readable line, `Type: message`, whitespace folded, at most `limit` characters."""
    text = " ".join(str(err).split())
    return (f"{type(err).__name__}: {text}" if text else type(err).__name__)[:limit]


def csv_list(value: Optional[str]) -> Optional[list[str]]:
    """`"a, b,,c"` -> `["a", "b", "c"]`; None stays None (the option was not given)."""
    return None if value is None else [v.strip() for v in str(value).split(",") if v.strip()]


def batched(predict: Callable[[Arrays], Output], inputs: Mapping[str, np.ndarray], step: int = 256) -> Any:
    """`predict` over inputs of any length in slices of `step` examples (a fixed-batch model: exactly
    its batch). Returns what `predict` returns, concatenated: an array, or a dict of arrays."""
    n = len(next(iter(inputs.values())))
    parts = [predict({k: v[i:i + step] for k, v in inputs.items()}) for i in range(0, n, step)]
    if isinstance(parts[0], Mapping):
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return np.concatenate(parts)


def in_slices(predict: Callable[[Arrays], Output], step: int) -> Callable[[Arrays], Output]:
    """`predict` made to take any number of examples, `step` at a time."""
    return lambda inputs: batched(predict, inputs, step)


def scaled_error(got: np.ndarray, reference: np.ndarray, relative: float) -> tuple[float, float]:
    """(max abs error, allowed error) of `got` against `reference`, the allowance `relative` x the reference's
    scale (its largest |value|, at least 1): a graph-level check that a converter kept the computation."""
    ref = np.asarray(reference, np.float64)
    error = float(np.max(np.abs(np.asarray(got, np.float64) - ref))) if ref.size else 0.0
    return error, relative * max(1.0, float(np.max(np.abs(ref))) if ref.size else 1.0)
