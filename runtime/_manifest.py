"""Read and check a bundle's manifest.json: required fields, safe paths, sha256 of every file."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path, PurePosixPath
from typing import Any, Mapping

from edgeproof.errors import EdgeproofError

MANIFEST = "manifest.json"
FORMAT = "edgeproof-bundle"
SUPPORTED_VERSIONS = (1,)
TASKS = ("regression", "classification", "binary_classification", "generation", "translation", "custom")
_TENSOR_FIELDS = {"name": str, "tensor": str, "shape": list, "dtype": str, "layout": str}


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


def _check_tensor(t: Any, where: str) -> None:
    if not isinstance(t, dict):
        raise BundleError(f"{where}: each tensor must be an object, got {type(t).__name__}")
    for key, kind in _TENSOR_FIELDS.items():
        _require(t, key, kind, where)
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= -1 for d in t["shape"]):
        raise BundleError(f"{where}: tensor {t['name']!r} has an invalid shape {t['shape']!r}")
    q = t.get("quantization")
    if q is not None:
        if not isinstance(q, dict) or not q.get("scale") or not isinstance(q.get("zero_point"), list):
            raise BundleError(f"{where}: tensor {t['name']!r} has invalid quantization parameters {q!r}")


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
        tensors = _require(data, key, list, where)
        if not tensors:
            raise BundleError(f"{where}: {key!r} is empty")
        for t in tensors:
            _check_tensor(t, f"{where} {key}")
    files = _require(data, "files", dict, where)
    for name, entry in files.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str) or len(entry["sha256"]) != 64:
            raise BundleError(f"{where}: files[{name!r}] needs a 64-character sha256")
    for key in ("model_file", "preprocessing_file"):
        if data[key] not in files:
            raise BundleError(f"{where}: {key} {data[key]!r} is not listed in 'files' (no checksum)")
    _require(data, "verdict", dict, where)
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
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BundleError(f"{path} is not valid JSON ({err}); the bundle is damaged, deploy it again") from None
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
