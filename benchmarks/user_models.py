"""`python -m benchmarks.user_models`: rerun the README's "Bring your own model" table. Builds the models of
tests/test_user_models.py (benchmarks/_user_models.py), writes each source file and its sample .npz into
--out, runs the real `edgeproof convert` on each in every precision, then `edgeproof deploy --target
pi`, and writes user_model_results.md and user_model_results.json there. Every number is read from what the
commands produced (conversion.json, parity.json, user_model.json, deploy/pi/index.json), except the
wall time, which is each convert command's, start to end."""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from edgeproof._util import csv_list

REPO = Path(__file__).resolve().parents[1]
ROWS = 200  # sample rows per model
WIDE_ROWS = 64  # `wide` is 34 MB in fp32: fewer rows keep its verification short
RESULTS = "user_model_results"


@dataclass(frozen=True)
class Case:
    name: str
    description: str  # the table's model column
    make: Callable[[Path], list[str]]  # writes the model and its sample data into a folder; returns convert's options


def _two_input(out: Path) -> list[str]:
    from ._user_models import two_input_keras, two_input_sample

    model = two_input_keras(out / "two_input.keras")
    np.savez(out / "two_input.npz", **two_input_sample(model, ROWS))
    return ["--keras", str(out / "two_input.keras"), "--sample-data", str(out / "two_input.npz")]


def _encoder(out: Path) -> list[str]:
    from ._user_models import encoder_sample, encoder_weights

    encoder_weights(out / "encoder.pt")
    np.savez(out / "encoder.npz", **encoder_sample(ROWS))
    return ["--torch", "benchmarks._user_models:tiny_encoder", "--weights", str(out / "encoder.pt"),
            "--sample-data", str(out / "encoder.npz")]


def _resblock(out: Path) -> list[str]:
    from ._user_models import resblock_onnx, resblock_sample

    block = resblock_onnx(out / "resblock.onnx")
    np.savez(out / "resblock.npz", **resblock_sample(block, ROWS))
    return ["--onnx", str(out / "resblock.onnx"), "--sample-data", str(out / "resblock.npz")]


def _lppool(out: Path) -> list[str]:
    from ._user_models import lppool_onnx, lppool_sample

    lppool_onnx(out / "lppool.onnx")
    np.savez(out / "lppool.npz", **lppool_sample(ROWS))
    return ["--onnx", str(out / "lppool.onnx"), "--sample-data", str(out / "lppool.npz")]


def _wide(out: Path) -> list[str]:
    from ._user_models import wide_keras, wide_sample

    wide_keras(out / "wide.keras")
    np.savez(out / "wide.npz", **wide_sample(WIDE_ROWS))
    return ["--keras", str(out / "wide.keras"), "--sample-data", str(out / "wide.npz")]


CASES = {c.name: c for c in (
    Case("two_input", "Keras functional, 2 inputs (image NHWC + features), 2 outputs, labels", _two_input),
    Case("encoder", "PyTorch, int64 ids + attention mask, LayerNorm, dict of 2 outputs, no labels", _encoder),
    Case("resblock", "ResNet-style block with BatchNorm, NCHW, `input.1`, labels; torch's legacy ONNX export",
         _resblock),
    Case("lppool", "hand-built ONNX graph with LpPool", _lppool),
    Case("wide", "Keras Dense 1024-2048-2048-1024 (8.4 M parameters)", _wide),
)}


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TF_USE_LEGACY_KERAS", "1")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def _edgeproof(args: Sequence[str], log: Path) -> tuple[int, float, list[str]]:
    """Run `python -m edgeproof ARGS` (an argument list, no shell) from the repository root, output to
    `log`; (exit code, wall seconds, the argument list)."""
    argv = [sys.executable, "-m", "edgeproof", *args]
    start = time.perf_counter()
    with open(log, "w") as f:
        f.write(f"$ {shlex.join(argv)}\n")
        f.flush()
        code = subprocess.run(argv, cwd=REPO, env=_env(), stdout=f, stderr=subprocess.STDOUT).returncode
    return code, time.perf_counter() - start, argv


def _read(path: Path) -> Optional[Any]:
    return json.loads(path.read_text()) if path.is_file() else None


def _last_line(log: Path) -> str:
    lines = [l for l in log.read_text(errors="replace").splitlines() if l.strip()]
    return lines[-1] if lines else ""


# -- one model's row, from its folder ----------------------------------------------------------------------------

def _route(route: str, onnx_backend: Optional[dict]) -> str:
    """`torch>onnx(dynamo, opset 20)>onnx2tf>tflite` -> `torch > onnx(dynamo, opset 20) > onnx2tf`, with the
    ONNX backends that failed before the one that worked."""
    parts = route.split(">")[:-1]
    if onnx_backend and onnx_backend.get("used") in parts:
        at = parts.index(onnx_backend["used"])
        failed = [f'{a["backend"]} fails ("{str(a["error"]).split(" (")[0].rstrip(".")[:80]}")'
                  for a in onnx_backend.get("attempts", []) if not a["ok"]]
        parts[at:at] = failed
    return " > ".join(parts)


def _fail_text(v: dict) -> str:
    """The broken budgets, the worst output per measure: `max_abs_error 0.44 (budget 0.1), cosine 0.96 (...)`."""
    worst: dict[str, tuple[float, float]] = {}
    for f in v.get("failures") or []:
        if f.get("measured") is None or f.get("limit") is None:
            continue
        measure = f["measure"].split(": ")[-1].replace(" on probes", "").replace(" (min)", "")
        old = worst.get(measure)
        if old is None or abs(f["measured"] - f["limit"]) > abs(old[0] - old[1]):
            worst[measure] = (f["measured"], f["limit"])
    if not worst:
        return str(v.get("reason") or "failed")
    return ", ".join(f"{m} {got:.2g} (budget {limit:.2g})" for m, (got, limit) in worst.items())


def _merged(notes: list[str]) -> list[str]:
    """`a: X`, `b: X` -> `a, b: X`."""
    by_text: dict[str, list[str]] = {}
    for note in notes:
        name, sep, text = note.partition(": ")
        by_text.setdefault(text if sep else note, []).append(name if sep else "")
    return [(", ".join(n for n in names if n) + ": " if any(names) else "") + text for text, names in by_text.items()]


def summarize(name: str, root: Path, code: int, wall: float, argv: list[str], log: Path) -> dict[str, Any]:
    """Everything the table says about one model, from conversion.json, parity.json and user_model.json."""
    row: dict[str, Any] = {"name": name, "description": CASES[name].description, "command": argv[1:],
                           "exit_code": code, "wall_s": round(wall, 1), "folder": str(root), "log": str(log)}
    conversion, parity, info = (_read(root / f) for f in ("conversion.json", "parity.json", "user_model.json"))
    if conversion is None or parity is None or info is None:
        row["error"] = _last_line(log)
        return row
    records = {f"{r['target']}/{r['mode']}": r for r in conversion["artifacts"]}
    verdicts = {f"{v['target']}/{v['mode']}": v for v in parity["artifacts"]}
    first = records.get("tflite/fp32") or next(iter(records.values()))
    artifacts = []
    for key, r in records.items():
        v = verdicts.get(key, {})
        probe = v.get("probe") or {}
        artifacts.append({"artifact": key, "status": v.get("status", "not verified"), "size_bytes": r["size_bytes"],
                          "convert_seconds": r.get("convert_seconds"), "verify_seconds": v.get("verify_seconds"),
                          "max_abs_error": probe.get("max_abs_error"), "cosine": probe.get("cosine"),
                          "metric": v.get("artifact_metric"), "failures": v.get("failures", []),
                          "reason": v.get("reason") or r.get("reason")})
    row.update({
        "source": conversion["source"]["kind"], "route": _route(first["route"], conversion.get("onnx_backend")),
        "onnx_backend": conversion.get("onnx_backend"), "metric": info["metric"], "examples": info["examples"],
        "reference_metric": parity["reference"].get("value"),
        "verdicts": dict(Counter(a["status"] for a in artifacts)), "artifacts": artifacts,
        "layout_changes": first.get("layout_changes", []),
        "seconds": {"source_export": first.get("source_export_seconds"),
                    "convert": round(sum(a["convert_seconds"] or 0.0 for a in artifacts), 1),
                    "verify": round(sum(a["verify_seconds"] or 0.0 for a in artifacts), 1)}})
    return row


def _verdict_cell(row: dict) -> str:
    by = {a["artifact"]: a for a in row["artifacts"]}
    passed = [a for a in by.values() if a["status"] == "pass"]
    cell = [f"{len(passed)} pass"]
    if row["metric"] != "none" and passed:
        values = sorted({round(a["metric"], 4) for a in passed if a["metric"] is not None})
        if values:
            span = f"{values[0]:.4g}" + (f"-{values[-1]:.4g}" if len(values) > 1 else " everywhere")
            cell[0] += f" ({row['metric']} {span})"
    for key, a in by.items():
        if a["status"] == "fail":
            cell.append(f"{key.replace('/', ' ')} fail ({_fail_text(a)})")
        elif a["status"] != "pass":
            cell.append(f"{key.replace('/', ' ')} {a['status']}")
    return ", ".join(cell)


def _kib(size: int) -> str:
    return f"{size / 1024:,.0f} KiB".replace(",", " ")


def _notes_cell(row: dict) -> str:
    by = {a["artifact"]: a for a in row["artifacts"]}
    notes = ["numeric parity only (no labels)"] if row["metric"] == "none" else []
    notes += _merged(row["layout_changes"])
    int8 = by.get("tflite/int8", {})
    if int8.get("max_abs_error") is not None:
        notes.append(f"tflite int8 max error {int8['max_abs_error']:.2g}")
    sizes = []
    for target, small in (("tflite", "int8"), ("tfjs", "uint8")):
        pair = [(m, by[f"{target}/{m}"]["size_bytes"]) for m in ("fp32", small)
                if by.get(f"{target}/{m}", {}).get("size_bytes")]
        if pair:
            sizes.append(f"{target} " + " / ".join(f"{m} {_kib(b)}" for m, b in pair))
    if sizes:
        notes.append("; ".join(sizes))
    if row["exit_code"]:
        notes.append(f"exit code {row['exit_code']}")
    return "; ".join(notes)


def markdown(results: dict[str, Any]) -> str:
    deploy = results["deploy"]
    refused = deploy.get("refused", [])
    lines = [
        "# Bring your own model: measured", "",
        f"Regenerate with `python -m benchmarks.user_models` (this run: `{results['command']}`, {results['date']}, "
        f"{results['machine']['cpu_count']} CPUs, {results['machine']['machine']}). `edgeproof convert` in every "
        f"precision, {ROWS} sample rows ({WIDE_ROWS} for `wide`); then `edgeproof deploy --target pi` made "
        f"{len(deploy.get('bundles', []))} bundles and refused {len(refused)}"
        + (": " + ", ".join(f"`{r['artifact']}`" for r in refused) if refused else "") + ".", "",
        "| model (as in `tests/test_user_models.py`) | source, route | verdicts | wall (s) | notes |",
        "|---|---|---|---|---|"]
    for row in results["models"]:
        model = f"`{row['name']}`: {row['description']}"
        if "artifacts" not in row:
            lines.append(f"| {model} | - | error: {row.get('error', '')} | {row['wall_s']:.0f} | exit code "
                         f"{row['exit_code']} |")
            continue
        lines.append(f"| {model} | {row['route']} | {_verdict_cell(row)} | {row['wall_s']:.0f} | {_notes_cell(row)} |")
    lines += ["", "Wall: each `edgeproof convert` command from start to end (Python and framework imports, the "
                  "export, every conversion, verification of every artifact in its own runtime, the report); "
                  "per-stage seconds, sizes, errors and verdicts per artifact are in user_model_results.json."]
    return "\n".join(lines) + "\n"


# -- the run -----------------------------------------------------------------------------------------------------

def _csv(value: str) -> list[str]:
    return csv_list(value) or []


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.user_models",
        description="Rerun the README's bring-your-own-model table: build the test models, run `edgeproof "
                    "convert` (every precision) and `edgeproof deploy --target pi` on them, write "
                    "user_model_results.md and user_model_results.json.")
    p.add_argument("--out", default="artifacts-user-models", metavar="DIR",
                   help="where the models, sample data, artifacts, logs and results go (default: %(default)s)")
    p.add_argument("--models", type=_csv, default=list(CASES), metavar="LIST",
                   help=f"comma-separated, from {','.join(CASES)} (default: all)")
    return p


def run(out: Path, names: Sequence[str], command: str) -> dict[str, Any]:
    from edgeproof._atomic import write_bytes_atomic

    out = out.resolve()
    artifacts, logs = out / "artifacts", out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, name in enumerate(names, 1):
        print(f"[{i}/{len(names)}] {name}: building the model and its sample data", flush=True)
        options = CASES[name].make(out)
        log = logs / f"convert-{name}.log"
        code, wall, argv = _edgeproof(["convert", *options, "--name", name, "--artifacts", str(artifacts)], log)
        source = options[0].lstrip("-")
        rows.append(summarize(name, artifacts / name / source, code, wall, argv, log))
        print(f"   edgeproof convert: exit {code}, {wall:.0f} s, {rows[-1].get('verdicts') or rows[-1].get('error')} "
              f"(log {log})", flush=True)
    converted = [r["name"] for r in rows if "artifacts" in r]
    deploy: dict[str, Any] = {"target": "pi"}
    if converted:
        log = logs / "deploy-pi.log"
        code, wall, argv = _edgeproof(["deploy", "--target", "pi", "--artifacts", str(artifacts),
                                       *[a for n in converted for a in ("--model", n)]], log)
        index = _read(artifacts / "deploy" / "pi" / "index.json") or {}
        deploy.update({"command": argv[1:], "exit_code": code, "wall_s": round(wall, 1),
                       "bundles": [b["bundle"] for b in index.get("bundles", []) if b["model"] in converted],
                       "refused": index.get("refused", [])})
        print(f"deploy --target pi: exit {code}, {len(deploy['bundles'])} bundles, {len(deploy['refused'])} refused",
              flush=True)
    results = {"command": command, "date": time.strftime("%Y-%m-%d"), "rows": ROWS, "wide_rows": WIDE_ROWS,
               "machine": {"cpu_count": os.cpu_count(), "machine": platform.machine(),
                           "python": platform.python_version()},
               "models": rows, "deploy": deploy}
    write_bytes_atomic(out / f"{RESULTS}.json", (json.dumps(results, indent=2) + "\n").encode())
    write_bytes_atomic(out / f"{RESULTS}.md", markdown(results).encode())
    print(f"results: {out / RESULTS}.md and .json", flush=True)
    return results


def main(argv: Optional[Sequence[str]] = None) -> int:
    for key, value in (("TF_USE_LEGACY_KERAS", "1"), ("TF_CPP_MIN_LOG_LEVEL", "2")):
        os.environ.setdefault(key, value)
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    unknown = [m for m in args.models if m not in CASES]
    if unknown or not args.models:
        parser.error(f"--models: unknown {unknown}; choose from {','.join(CASES)}")
    names = [n for n in CASES if n in args.models]
    results = run(Path(args.out), names, shlex.join(["python", "-m", "benchmarks.user_models", *argv]))
    return 0 if all("artifacts" in r for r in results["models"]) else 1


if __name__ == "__main__":
    sys.exit(main())
