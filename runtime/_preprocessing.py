"""A bundle's preprocessing.json, read and checked as hostile input: an object whose fields (the ones
the runtime uses for the bundle's task) have the right types and sane ranges."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ._json import read_json
from ._manifest import BundleError, safe_member

_MAX_SIDE = 4096  # an image side; the models take 28
_MAX_LEN = 4096  # a token sequence
_MAX_LATENT = 65536


def _int(v: Any, lo: int, hi: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _ints(v: Any, n: int, lo: int, hi: int) -> bool:
    return isinstance(v, list) and len(v) == n and all(_int(d, lo, hi) for d in v)


# field -> (check, what it must be), by task; fields are optional (the runtime has defaults)
_CHECKS: dict[str, dict[str, tuple[Any, str]]] = {
    "classification": {
        "size": (lambda v: _ints(v, 2, 1, _MAX_SIDE), f"[height, width] with sides 1..{_MAX_SIDE}"),
        "channels": (lambda v: _int(v, 1, 4), "an integer 1..4"),
        "scale": (_number, "a finite number"), "offset": (_number, "a finite number")},
    "generation": {
        "latent_dim": (lambda v: _int(v, 1, _MAX_LATENT), f"an integer 1..{_MAX_LATENT}"),
        "output_shape": (lambda v: isinstance(v, list) and 1 <= len(v) <= 3 and all(_int(d, 1, _MAX_SIDE) for d in v),
                         "a list of 1-3 positive sides"),
        "output_scale": (_number, "a finite number"), "output_offset": (_number, "a finite number")},
    "translation": {
        "max_len": (lambda v: _int(v, 2, _MAX_LEN), f"an integer 2..{_MAX_LEN}"),
        "bos": (lambda v: _int(v, 0, 2**31 - 1), "a token id"), "eos": (lambda v: _int(v, 0, 2**31 - 1), "a token id"),
        "source_tokenizer": (lambda v: isinstance(v, dict), "an object"),
        "target_tokenizer": (lambda v: isinstance(v, dict), "an object")},
    "binary_classification": {"tokenizer": (lambda v: isinstance(v, dict), "an object")},
    "custom": {"value_ranges": (lambda v: isinstance(v, dict) and all(
        isinstance(r, list) and len(r) == 2 and all(_number(x) for x in r) for r in v.values()),
        "an object of [low, high] pairs")},
}
_REQUIRED = {"translation": ("max_len", "bos", "eos", "source_tokenizer", "target_tokenizer"),
             "binary_classification": ("tokenizer",)}


def parse_preprocessing(data: Any, task: str, where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise BundleError(f"{where}: preprocessing must be a JSON object, got {type(data).__name__}; "
                          f"rebuild the bundle with `edgeproof deploy`")
    for key in _REQUIRED.get(task, ()):
        if key not in data:
            raise BundleError(f"{where}: field {key!r} is missing (the {task} model needs it); rebuild the bundle")
    for key, (check, what) in _CHECKS.get(task, {}).items():
        if key in data and not check(data[key]):
            raise BundleError(f"{where}: field {key!r} must be {what}, got {data[key]!r:.60}; rebuild the bundle")
    return data


def load_preprocessing(bundle: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    path = safe_member(bundle, manifest["preprocessing_file"])
    return parse_preprocessing(read_json(path, BundleError), manifest["task"], str(path))
