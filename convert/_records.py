"""conversion.json: one record per (target, mode) cell of a model's conversion, written after each
conversion (merged over the cells it did not redo), read by verify, deploy, the reports and benchmarks."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Optional

from edgeproof._atomic import write_bytes_atomic
from edgeproof._quant import QuantConfig, QuantMode, Target, TARGET_MODES, all_configs
from edgeproof._spec import ModelContract

from ._artifact import ArtifactRecord

CONVERSION_JSON = "conversion.json"


def artifact_path(target: Target, mode: QuantMode, variant: Optional[str] = None) -> str:
    name = mode.value + (f"-{variant}" if variant else "")
    return f"tflite/{name}.tflite" if Target(target) is Target.TFLITE else f"tfjs/{name}/model.json"


def cell_order(cell: tuple[str, str, str]) -> tuple[int, str]:
    """Sort key of a (target, mode, variant) cell: the conversion matrix's order, each variant after its cell."""
    order = [(c.target.value, c.mode.value) for c in all_configs()]
    base = (cell[0], cell[1])
    return (order.index(base) if base in order else len(order), cell[2])


def requested_configs(spec: ModelContract, targets: Iterable[str], modes: Optional[Iterable[str]],
                      representative_samples: int = 256, int8_io: bool = False) -> list[QuantConfig]:
    targets = [Target(t) for t in targets]
    wanted = None if modes is None else {QuantMode(m) for m in modes}
    configs = []
    for target in targets:
        for mode in TARGET_MODES[target]:
            if wanted is not None and mode not in wanted:
                continue
            configs.append(QuantConfig(target, mode, representative_samples=representative_samples,
                                       int8_io=int8_io and mode is QuantMode.INT8))
    if not configs:
        raise ValueError(f"no (target, mode) pair matches targets {[t.value for t in targets]} and modes {modes}")
    return configs


def write_records(root: Path, records: list[ArtifactRecord], about: Optional[dict[str, Any]] = None) -> None:
    """conversion.json: these records merged over the earlier cells they did not redo, plus `about` (where
    the model came from, the ONNX backend attempts, notes)."""
    path = root / CONVERSION_JSON
    existing = {}
    if path.exists():
        try:
            existing = {(r["target"], r["mode"], r.get("variant") or ""): r
                        for r in json.loads(path.read_text())["artifacts"]}
        except (ValueError, KeyError, TypeError, AttributeError):  # unreadable: this conversion's records replace it
            existing = {}
    for r in records:
        existing[r.cell] = r.to_dict()
    rows = [existing[k] for k in sorted(existing, key=cell_order)]
    write_bytes_atomic(path, json.dumps({**(about or {}), "artifacts": rows}, indent=2).encode())


def load_records(root: Path) -> list[ArtifactRecord]:
    path = Path(root) / CONVERSION_JSON
    if not path.exists():
        return []
    return [ArtifactRecord.from_dict(r) for r in json.loads(path.read_text())["artifacts"]]


def conversion_table(records: list[ArtifactRecord]) -> str:
    lines = ["| model | framework | artifact | route | size | convert (s) | ops |", "|---|---|---|---|---|---|---|"]
    for r in records:
        if r.status != "ok":
            lines.append(f"| {r.model} | {r.framework} | {r.key} | {r.route} | - | - | unsupported: {r.reason} |")
            continue
        if r.ops is None:
            ops = "TF.js graph model"
        else:
            ops = f"{r.ops['op_count']} ops, " + ("builtin only" if r.ops["builtin_only"] else
                                                   f"**needs {', '.join(r.ops['non_builtin_ops'])}**")
        lines.append(f"| {r.model} | {r.framework} | {r.key} | {r.route} | {r.size_bytes / 1024:.0f} KiB | "
                     f"{r.convert_seconds:.1f} | {ops} |")
    return "\n".join(lines)


def read_about(root: Path) -> dict[str, Any]:
    """conversion.json's description of the conversion besides its cells: source, onnx_backend, notes."""
    path = Path(root) / CONVERSION_JSON
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if k != "artifacts"} if isinstance(data, dict) else {}
