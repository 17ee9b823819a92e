"""What there is to benchmark in an artifacts folder: the deployed bundles, grouped per model and
framework, with their checkpoint, ONNX file, conversion records and verify verdicts.

Reads plain JSON files (manifest.json, conversion.json, parity.json, pipeline_timing.json); imports
no framework, so listing and error messages are instant.
"""
from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

from edgeproof.errors import EdgeproofError

PIPELINE_TIMING_JSON = "pipeline_timing.json"
NATIVE_TARGETS = ("pi", "android")  # deploy folders holding .tflite bundles, first found wins


class BenchmarkError(EdgeproofError):
    """The benchmarks cannot run on what was given (no artifacts folder, nothing deployed, bad option)."""


def cell_mode(row: dict[str, Any]) -> str:
    """The mode a benchmark row or contestant is labelled with: a variant cell (another route, a repair) is its own,
    `fp32-litert-torch`, so that it is timed and reported beside the plain `fp32`, not in its place."""
    return row["mode"] + (f"-{row['variant']}" if row.get("variant") else "")


@dataclass
class Bundle:
    """One deployed artifact: a bundle folder with its manifest."""

    name: str  # e.g. mnist_cnn-keras-int8
    deploy_target: str  # pi / android / web
    path: Path
    model: str
    framework: str
    mode: str
    artifact_target: str  # tflite / tfjs
    model_files: list[str]
    size_bytes: int
    verdict: str
    manifest: dict[str, Any] = field(repr=False)

    @property
    def key(self) -> str:
        return f"{self.artifact_target}/{self.mode}"


@dataclass
class Group:
    """One model in one source framework: everything the benchmark compares side by side."""

    model: str
    framework: str
    root: Path
    checkpoint: Optional[Path]
    onnx: Optional[Path]
    native: list[Bundle] = field(default_factory=list)  # .tflite bundles
    web: list[Bundle] = field(default_factory=list)  # TF.js bundles
    conversion: list[dict[str, Any]] = field(default_factory=list)  # conversion.json rows
    parity: dict[str, Any] = field(default_factory=dict)  # parity.json (reference + artifacts)

    @property
    def key(self) -> str:
        return f"{self.model}/{self.framework}"

    def record(self, artifact_key: str) -> Optional[dict[str, Any]]:
        return next((r for r in self.conversion if f"{r['target']}/{cell_mode(r)}" == artifact_key), None)

    def verdict(self, artifact_key: str) -> Optional[dict[str, Any]]:
        return next((v for v in self.parity.get("artifacts", [])
                     if f"{v['target']}/{cell_mode(v)}" == artifact_key and not v.get("browser")), None)


@dataclass
class Inventory:
    artifacts: Path
    native_target: Optional[str]
    groups: list[Group]
    pipeline_timing: Optional[dict[str, Any]]

    def group(self, model: str, framework: str) -> Optional[Group]:
        return next((g for g in self.groups if g.model == model and g.framework == framework), None)


def gzip_size(paths: Iterable[Path]) -> int:
    """Bytes after gzip -6 (the usual web-server level) of each file, summed: what goes over the wire."""
    return sum(len(gzip.compress(Path(p).read_bytes(), compresslevel=6, mtime=0)) for p in paths)


def artifact_files(root: Path, rel: str) -> list[Path]:
    """The files of one converted artifact: a .tflite, or a TF.js model.json with its weight shards."""
    path = Path(root) / rel
    if path.suffix == ".tflite" or not path.parent.is_dir():
        return [path] if path.is_file() else []
    return sorted(p for p in path.parent.iterdir() if p.is_file() and (p.name == path.name or p.suffix == ".bin"))


def _read_json(path: Path) -> Optional[Any]:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise BenchmarkError(f"{path} is not valid JSON ({err}); regenerate it (the stage that wrote it)") from None


def _bundle(folder: Path, deploy_target: str) -> Bundle:
    manifest = _read_json(folder / "manifest.json")
    if not isinstance(manifest, dict) or "model_file" not in manifest:
        raise BenchmarkError(f"{folder} has no usable manifest.json: deploy again with "
                             f"`edgeproof deploy --target {deploy_target}`")
    files = manifest.get("files", {})
    model_files = [n for n in files if n == manifest["model_file"] or n.endswith(".bin")]
    paths = [folder / n for n in model_files]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise BenchmarkError(f"{folder}: {', '.join(missing)} missing: deploy again with "
                             f"`edgeproof deploy --target {deploy_target}`")
    return Bundle(folder.name, deploy_target, folder, manifest["model"], manifest["framework"], cell_mode(manifest),
                  manifest.get("artifact_target", "tflite"), model_files, sum(p.stat().st_size for p in paths),
                  (manifest.get("verdict") or {}).get("status", "?"), manifest)


def _bundles(deploy: Path, target: str) -> list[Bundle]:
    index = _read_json(deploy / target / "index.json")
    if not isinstance(index, dict):
        return []
    out = []
    for entry in index.get("bundles", []):
        folder = deploy / target / entry["bundle"]
        if folder.is_dir():
            bundle = _bundle(folder, target)
            # the web site also carries the Pi's .tflite files for LiteRT.js: those are timed from the Pi
            # bundles (RESULTS.md, "Against native TFLite"), the web list is the TF.js models
            if target != "web" or bundle.artifact_target == "tfjs":
                out.append(bundle)
    return out


def load_inventory(artifacts: Path | str, models: Optional[Iterable[str]] = None,
                   frameworks: Optional[Iterable[str]] = None) -> Inventory:
    """Everything deployed under `artifacts`, optionally restricted to some models / frameworks.

    Raises BenchmarkError naming the command that fixes it when the folder, the deploy folders or
    the requested models are missing.
    """
    artifacts = Path(artifacts)
    if not artifacts.is_dir():
        raise BenchmarkError(f"artifacts folder {artifacts} does not exist: run `edgeproof pipeline --artifacts "
                             f"{artifacts}` first (or pass --artifacts DIR)")
    deploy = artifacts / "deploy"
    native_target = next((t for t in NATIVE_TARGETS if (deploy / t / "index.json").is_file()), None)
    if native_target is None:
        raise BenchmarkError(f"{deploy} holds no TFLite bundles: run `edgeproof deploy --target pi --artifacts "
                             f"{artifacts}` (and `--target web` for the browser rows) first")
    wanted_models = set(models) if models else None
    wanted_fw = set(frameworks) if frameworks else None
    native, web = _bundles(deploy, native_target), _bundles(deploy, "web")
    keys = sorted({(b.model, b.framework) for b in native + web})
    if wanted_models:
        unknown = wanted_models - {m for m, _ in keys}
        if unknown:
            raise BenchmarkError(f"nothing deployed for {sorted(unknown)} in {deploy}; deployed: "
                                 f"{sorted({m for m, _ in keys}) or 'none'}")
    groups = []
    for model, framework in keys:
        if (wanted_models and model not in wanted_models) or (wanted_fw and framework not in wanted_fw):
            continue
        root = artifacts / model / framework
        checkpoint = root / "checkpoint"
        onnx = root / "model.onnx"
        conversion = _read_json(root / "conversion.json") or {}
        groups.append(Group(model, framework, root, checkpoint if (checkpoint / "checkpoint.json").is_file() else None,
                            onnx if onnx.is_file() else None,
                            [b for b in native if (b.model, b.framework) == (model, framework)],
                            [b for b in web if (b.model, b.framework) == (model, framework)],
                            list(conversion.get("artifacts", [])), _read_json(root / "parity.json") or {}))
    if not groups:
        raise BenchmarkError(f"no deployed bundle matches --models {sorted(wanted_models or [])} "
                             f"--frameworks {sorted(wanted_fw or [])} in {deploy}")
    return Inventory(artifacts, native_target, groups, _read_json(artifacts / PIPELINE_TIMING_JSON))
