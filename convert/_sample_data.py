"""Sample data for a user's own model: a .npz of inputs (keyed by input name) and optional labels.

The arrays are the model's inputs for int8 calibration, the fixed probes and the evaluation; an
array named `labels` (or `y`) holds labels. With a single-input model any one other array is that
input, whatever its name. Nothing here imports TensorFlow or PyTorch.
"""
from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Union

import numpy as np

from edgeproof.errors import ModelFileNotFoundError, SampleDataError

LABEL_KEYS = ("labels", "y")
SampleSource = Union[str, Path, Mapping[str, np.ndarray]]


@dataclass
class SampleData:
    inputs: dict[str, np.ndarray]  # in the file's order
    labels: Optional[np.ndarray]
    where: str  # the file, or "sample_data" for arrays given in Python

    @property
    def count(self) -> int:
        return len(next(iter(self.inputs.values())))

    def head(self, n: int) -> dict[str, np.ndarray]:
        return {k: v[:n] for k, v in self.inputs.items()}


def sanitize(name: str) -> str:
    """A tensor name every converter and runtime accepts (onnx-tf breaks on `input.1`; TensorFlow op names may not
    start with `_`, and onnx-tf lost track of an input `___1`, what `图像.1` became)."""
    clean = re.sub(r"[^A-Za-z0-9_]", "_", name.split(":")[0]).lstrip("_") or "tensor"
    return clean if not clean[0].isdigit() else f"t_{clean}"


def load_sample_data(source: SampleSource) -> SampleData:
    """Read the .npz (or take a dict of arrays); check there is at least one input array and that
    every array has the same number of examples."""
    if isinstance(source, Mapping):
        arrays, where = {str(k): np.asarray(v) for k, v in source.items()}, "sample_data"
    else:
        path = Path(source)
        where = str(path)
        if not path.exists():
            raise ModelFileNotFoundError(f"sample data {path} does not exist")
        if path.is_dir() or not zipfile.is_zipfile(path):
            raise SampleDataError(f"sample data {path} is not a .npz file (numpy.savez): save the inputs with "
                                  f"np.savez('{path.stem}.npz', input_name=array, ..., labels=labels)")
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except Exception as err:  # truncated archive, object arrays...
            raise SampleDataError(f"sample data {path} cannot be read ({type(err).__name__}: "
                                  f"{' '.join(str(err).split())[:200]})") from None
    labels = None
    for key in LABEL_KEYS:
        if key in arrays:
            labels = arrays.pop(key)
            break
    if not arrays:
        raise SampleDataError(f"{where} holds no input arrays (only {list(LABEL_KEYS)} are taken as labels)")
    counts = {k: (v.shape[0] if v.ndim else None) for k, v in arrays.items()}
    if labels is not None:
        counts["labels"] = labels.shape[0] if labels.ndim else None
    if None in counts.values() or len(set(counts.values())) != 1:
        raise SampleDataError(f"{where}: every array needs the same number of examples along its first axis, got "
                              + ", ".join(f"{k} {list(arrays[k].shape) if k in arrays else list(labels.shape)}"
                                          for k in counts))
    if counts[next(iter(arrays))] == 0:
        raise SampleDataError(f"{where} holds no examples")
    for k, v in arrays.items():
        if v.dtype.kind not in "biuf":
            raise SampleDataError(f"{where}: array {k!r} has dtype {v.dtype}; inputs must be numbers")
    return SampleData(arrays, labels, where)
