"""Read and check a bundle's manifest.json: required fields, safe paths, sha256 of every file."""
from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path, PurePosixPath
from typing import Any, Mapping

from edgeproof.errors import EdgeproofError

from ._json import read_json

MANIFEST = "manifest.json"
FORMAT = "edgeproof-bundle"
SUPPORTED_VERSIONS = (1,)
TASKS = ("regression", "classification", "binary_classification", "generation", "translation", "custom")
_TENSOR_FIELDS = {"name": str, "tensor": str, "shape": list, "dtype": str, "layout": str}
DTYPES = ("float32", "float16", "float64", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
          "bool")
LAYOUTS = ("NHWC", "NCHW", "NF", "NT")
STATUSES = ("pass", "fail", "unsupported")
_SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_RANK = 8
MAX_DIM = 2**31 - 1
MAX_TENSORS = 64


class BundleError(EdgeproofError, ValueError):
    """A bundle that cannot be trusted or used: missing/garbled manifest, bad field, tampered file."""


def _require(d: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in d:
        raise BundleError(f"{where}: field {key!r} is missing; rebuild the bundle with `edgeproof deploy`")
    value = d[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise BundleError(f"{where}: field {key!r} must be {kind.__name__}, got {type(value).__name__} ({value!r:.60})")
    return value


def safe_member(bundle: Path, name: str) -> Path:
    """`name` as a path inside `bundle`; anything absolute or escaping the folder is refused."""
    if not isinstance(name, str) or not name or "\\" in name or "\0" in name:
        raise BundleError(f"{bundle}: invalid file name {name!r} in {MANIFEST}")
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts:
        raise BundleError(f"{bundle}: {MANIFEST} points outside the bundle ({name!r}); refusing to read it")
    path = (bundle / pure).resolve()
    if bundle.resolve() not in path.parents:
        raise BundleError(f"{bundle}: {MANIFEST} points outside the bundle ({name!r}); refusing to read it")
    return path


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


def _check_quantization(q: Any, name: str, where: str) -> None:
    scale, zero = (q.get("scale"), q.get("zero_point")) if isinstance(q, dict) else (None, None)
    if not (isinstance(scale, list) and scale and all(_is_number(v) and v > 0 for v in scale)
            and isinstance(zero, list) and len(zero) == len(scale) and all(_is_int(v) for v in zero)):
        raise BundleError(f"{where}: tensor {name!r} has invalid quantization parameters {q!r:.120} (needs positive "
                          f"finite scales and as many integer zero points)")


def _check_tensor(t: Any, where: str) -> None:
    if not isinstance(t, dict):
        raise BundleError(f"{where}: each tensor must be an object, got {type(t).__name__}")
    for key, kind in _TENSOR_FIELDS.items():
        _require(t, key, kind, where)
    name = t["name"]
    shape = t["shape"]
    if not (1 <= len(shape) <= MAX_RANK) or not all(_is_int(d) and -1 <= d <= MAX_DIM for d in shape):
        raise BundleError(f"{where}: tensor {name!r} has an invalid shape {shape!r:.80}")
    if t["dtype"] not in DTYPES:
        raise BundleError(f"{where}: tensor {name!r} has unknown dtype {t['dtype']!r:.40}; known: {', '.join(DTYPES)}")
    for key in ("layout", "canonical_layout"):
        if key in t and t[key] not in LAYOUTS:
            raise BundleError(f"{where}: tensor {name!r} has unknown {key} {t[key]!r:.40}; known: {', '.join(LAYOUTS)}")
    if t.get("quantization") is not None:
        _check_quantization(t["quantization"], name, where)


def _check_tensors(data: dict, key: str, where: str) -> None:
    tensors = _require(data, key, list, where)
    if not tensors:
        raise BundleError(f"{where}: {key!r} is empty")
    if len(tensors) > MAX_TENSORS:
        raise BundleError(f"{where}: {key!r} lists {len(tensors)} tensors (at most {MAX_TENSORS})")
    for t in tensors:
        _check_tensor(t, f"{where} {key}")
    for field in ("name", "tensor"):
        names = [t[field] for t in tensors]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise BundleError(f"{where}: {key} lists the {field} {dup[0]!r} more than once; a model's tensors have "
                              f"unique names")


def _check_labels(data: dict, where: str) -> None:
    labels = data.get("labels")
    if labels is None:
        return
    if not isinstance(labels, list) or not all(isinstance(v, str) for v in labels):
        raise BundleError(f"{where}: 'labels' must be a list of strings, got {labels!r:.60}")
    classes = data["outputs"][0]["shape"][-1]
    need = {"classification": classes, "binary_classification": 2}.get(data["task"])
    if need is not None and need > 0 and len(labels) != need:
        raise BundleError(f"{where}: 'labels' has {len(labels)} names but the model has {need} classes; "
                          f"rebuild the bundle with `edgeproof deploy`")


def _check_verdict(data: dict, where: str) -> None:
    verdict = _require(data, "verdict", dict, where)
    status = verdict.get("status")
    if status not in STATUSES:
        raise BundleError(f"{where}: verdict.status must be one of {', '.join(STATUSES)}, got {status!r:.40}; "
                          f"rebuild the bundle with `edgeproof deploy`")


def parse_manifest(data: Any, where: str = MANIFEST) -> dict[str, Any]:
    """Validate a manifest dict (types and required fields); returns it unchanged."""
    if not isinstance(data, dict):
        raise BundleError(f"{where}: the manifest must be a JSON object, got {type(data).__name__}")
    if data.get("format") != FORMAT:
        raise BundleError(f"{where}: not an edgeproof bundle manifest (format {data.get('format')!r}, "
                          f"expected {FORMAT!r})")
    version = _require(data, "format_version", int, where)
    if version not in SUPPORTED_VERSIONS:
        raise BundleError(f"{where}: bundle format version {version} is not supported by this runtime "
                          f"(supports {list(SUPPORTED_VERSIONS)}); upgrade edgeproof")
    for key in ("model", "framework", "mode", "model_file", "preprocessing_file"):
        _require(data, key, str, where)
    task = _require(data, "task", str, where)
    if task not in TASKS:
        raise BundleError(f"{where}: unknown task {task!r}; known: {', '.join(TASKS)}")
    for key in ("inputs", "outputs"):
        _check_tensors(data, key, where)
    files = _require(data, "files", dict, where)
    for name, entry in files.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str) \
                or not _SHA256.fullmatch(entry["sha256"]):
            raise BundleError(f"{where}: files[{name!r}] needs a 64-character hex sha256")
    for key in ("model_file", "preprocessing_file"):
        if data[key] not in files:
            raise BundleError(f"{where}: {key} {data[key]!r} is not listed in 'files' (no checksum)")
    _check_verdict(data, where)
    _check_labels(data, where)
    return data


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_manifest(bundle: Path | str, check_files: bool = True) -> dict[str, Any]:
    """The bundle's manifest, validated; with `check_files`, every listed file's sha256 too."""
    bundle = Path(bundle)
    path = bundle / MANIFEST
    if not bundle.is_dir():
        raise BundleError(f"{bundle} is not a bundle folder (expected a folder with {MANIFEST})")
    if not path.is_file():
        raise BundleError(f"{bundle} has no {MANIFEST}; build bundles with `edgeproof deploy --target pi`")
    data = read_json(path, BundleError)
    manifest = parse_manifest(data, str(path))
    if check_files:
        for name, entry in manifest["files"].items():
            member = safe_member(bundle, name)
            if not member.is_file():
                raise BundleError(f"{bundle}: {name} is listed in {MANIFEST} but missing")
            actual = sha256_of(member)
            if actual != entry["sha256"]:
                raise BundleError(f"{bundle}: {name} has sha256 {actual[:16]}..., the manifest says "
                                  f"{entry['sha256'][:16]}...: the file was modified or damaged; deploy the bundle again")
    return manifest
