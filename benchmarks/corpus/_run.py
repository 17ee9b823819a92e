"""The corpus runner: each model in its own `python -m benchmarks.corpus._worker` process with a time limit (a hang
or a crash ends that model only), then one row per model read from what the pipeline wrote (conversion.json,
parity.json) and the worker's results/NAME.json. A cell is always one of: pass, fail (with the typed budget
failures), unsupported (with the pipeline's reason), or "no artifact" (the conversion raised or timed out: the
reason is the error's first line)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from ._entry import CELLS
from ._registry import get

REPO = Path(__file__).resolve().parents[2]
NO_ARTIFACT = "no artifact"
STATUSES = ("pass", "fail", "unsupported", NO_ARTIFACT)
MAX_JSON_BYTES = 64 << 20  # conversion.json / parity.json / results are small; refuse anything absurd


def _env(venv_path: bool = False) -> dict[str, str]:
    """The worker's environment. venv_path puts the interpreter's bin folder first on PATH, as an activated venv
    does: onnx2tf runs `onnxsim` by name in a subprocess, and skips the simplification (with a warning only) when
    it is not on PATH."""
    env = dict(os.environ)
    if venv_path:
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    for key, value in (("TF_USE_LEGACY_KERAS", "1"), ("TF_CPP_MIN_LOG_LEVEL", "2"), ("HF_HUB_OFFLINE", "1"),
                       ("TFDF_DISABLE_WELCOME_MESSAGE", "1"), ("TOKENIZERS_PARALLELISM", "false")):
        env.setdefault(key, value)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def _read_json(path: Path) -> Optional[Any]:
    if not path.is_file() or path.stat().st_size > MAX_JSON_BYTES:
        return None
    try:
        return json.loads(path.read_text(errors="replace"))
    except ValueError:
        return None


def first_line(text: Any, limit: int = 300) -> str:
    text = " ".join(str(text or "").split())
    return text[:limit]


def run_worker(name: str, out: Path, timeout_s: float, say: Callable[[str], None] = print,
               venv_path: bool = False, repair: bool = False) -> dict[str, Any]:
    """One model, in a subprocess (its own process group, killed whole on timeout); returns the worker's exit
    code, wall time and whether it timed out. Output goes to out/logs/NAME.log."""
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{name}.log"
    argv = [sys.executable, "-m", "benchmarks.corpus._worker", name, "--out", str(out)] + (["--repair"] if repair else [])
    start = time.perf_counter()
    timed_out = False
    with open(log, "w") as f:
        f.write(f"$ {' '.join(argv)}\n")
        f.flush()
        proc = subprocess.Popen(argv, cwd=REPO, env=_env(venv_path), stdout=f, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)  # the worker and what it started (onnx2tf, node) - only ours
            code = proc.wait()
    return {"exit_code": code, "wall_s": round(time.perf_counter() - start, 1), "timed_out": timed_out,
            "log": str(log)}


def _failure_text(verdict: dict) -> str:
    """`max_abs_error 0.00016 (budget 0.0001); cosine 0.97 (budget 0.99)`: the worst per measure."""
    worst: dict[str, tuple[float, float]] = {}
    for f in verdict.get("failures") or []:
        if f.get("measured") is None or f.get("limit") is None:
            continue
        measure = str(f["measure"]).split(": ")[-1].replace(" on probes", "").replace(" (min)", "")
        old = worst.get(measure)
        if old is None or abs(f["measured"] - f["limit"]) > abs(old[0] - old[1]):
            worst[measure] = (f["measured"], f["limit"])
    if not worst:
        return first_line(verdict.get("reason") or "failed")
    return "; ".join(f"{m} {got:.3g} (budget {limit:.3g})" for m, (got, limit) in worst.items())


_KEY_PHRASES = (r"TF Select ops: \w+(?:, \w+)*", r"Unsupported Ops in the model before optimization \w+(?:, \w+)*",
                r"Lowering tensor list ops is failed")


def _short(reason: str, limit: int = 300) -> str:
    """The converter's boilerplate cut to what names the cause: `... TF Select ops: Erf ...` -> that phrase first."""
    import re

    for pattern in _KEY_PHRASES:
        match = re.search(pattern, reason)
        if match:
            return f"{match.group(0)} ({reason[:limit - len(match.group(0)) - 3]})"[:limit]
    return reason[:limit]


def _cell(record: Optional[dict], verdict: Optional[dict]) -> dict[str, Any]:
    if verdict is None and record is None:
        return {"status": NO_ARTIFACT, "reason": "the pipeline wrote no record for this cell"}
    v, r = verdict or {}, record or {}
    status = v.get("status") or ("unsupported" if r.get("status") in ("unsupported", "failed") else "not verified")
    probe = v.get("probe") or {}
    cell = {"status": status, "route": r.get("route") or v.get("route"), "max_abs_error": probe.get("max_abs_error"),
            "cosine": probe.get("cosine"), "metric": v.get("artifact_metric"), "runtime": v.get("runtime"),
            "failures": v.get("failures") or [], "size_bytes": r.get("size_bytes") or v.get("size_bytes")}
    if status == "fail":
        cell["reason"] = _failure_text(v)
    elif status != "pass":
        cell["reason"] = _short(first_line(v.get("reason") or r.get("reason") or status, 1000))
    return cell


def _route(conversion: dict) -> str:
    routes = [a.get("route") for a in conversion.get("artifacts", []) if a.get("route")]
    route = routes[0].rsplit(">", 1)[0] if routes else "?"
    backend = conversion.get("onnx_backend") or {}
    failed = [f"{a.get('backend')} failed" for a in backend.get("attempts", []) if not a.get("ok")]
    return " > ".join(route.split(">")) + (f" (after {', '.join(failed)})" if failed else "")


def summarize(name: str, out: Path, proc: dict[str, Any]) -> dict[str, Any]:
    """The model's row: entry facts, build, source check, route, the seven cells."""
    entry = get(name)
    result = _read_json(out / "results" / f"{name}.json") or {}
    row: dict[str, Any] = {**entry.describe(), **proc, "build": result.get("build"),
                           "source_check": result.get("source_check"), "convert": result.get("convert")}
    row["output_max_abs"] = max((o.get("max_abs", 0.0) for o in (result.get("source_check") or {}).values()),
                                default=None)
    error = None
    if proc.get("timed_out"):
        error = f"timed out after {proc['wall_s']:.0f} s (limit)"
    elif result.get("build_error"):
        error = f"build failed: {result['build_error']['type']}: {first_line(result['build_error']['message'])}"
    elif not result:
        error = f"the worker crashed (exit code {proc.get('exit_code')}); see {proc.get('log')}"
    elif result.get("convert") and not result["convert"].get("ok"):
        e = result["convert"]["error"]
        error = f"{e['type']}: {first_line(e['message'], 2000)}"
    kind = (result.get("build") or {}).get("kind") or entry.source.value
    folder = out / "artifacts" / name / kind
    conversion, parity = _read_json(folder / "conversion.json"), _read_json(folder / "parity.json")
    if error is not None or conversion is None or parity is None:
        reason = error or "conversion.json / parity.json missing"
        row.update(route="-", cells={c: {"status": NO_ARTIFACT, "reason": first_line(reason)} for c in CELLS},
                   error=reason)
        return row
    records = {f"{a['target']}/{a['mode']}": a for a in conversion.get("artifacts", []) if not a.get("variant")}
    rows = [a for a in parity.get("artifacts", []) if isinstance(a, dict)]
    # a cell's verdict is its native one (the TFLite interpreter, TF.js under Node); LiteRT.js rows in Chromium and
    # repair variants are rows of their own, which once overwrote the native row here
    verdicts = {f"{a['target']}/{a['mode']}": a for a in rows if not a.get("browser") and not a.get("variant")}
    variants = {f"{a['target']}/{a['mode']}-{a['variant']}": a for a in rows if a.get("variant") and not a.get("browser")}
    browsers = {}
    for a in rows:
        if a.get("browser") and not a.get("variant"):
            browsers.setdefault(f"{a['target']}/{a['mode']}", {})[a["browser"]] = a.get("status")
    row.update(route=_route(conversion), onnx_backend=conversion.get("onnx_backend"),
               cells={c: {**_cell(records.get(c), verdicts.get(c)), "browsers": browsers.get(c, {})} for c in CELLS},
               reference=parity.get("reference"))
    repairs = _read_json(folder / "repair.json")
    if isinstance(repairs, list):
        row["repairs"] = [_repair_row(o, variants) for o in repairs if isinstance(o, dict)]
    return row


def _repair_row(outcome: dict, verdicts: dict) -> dict[str, Any]:
    """One ladder: the cell, its outcome, the chosen variant's verdict and what each rung gave."""
    chosen = verdicts.get(outcome.get("chosen") or "") or {}
    return {"cell": outcome.get("cell"), "status": outcome.get("status"), "chosen": outcome.get("chosen"),
            "chosen_probe": chosen.get("probe"), "chosen_size_bytes": chosen.get("size_bytes"),
            "tried": [{"cell": t.get("cell"), "verdict": first_line(t.get("verdict"), 240)}
                      for t in outcome.get("tried") or []]}


PROC_KEYS = ("exit_code", "wall_s", "timed_out", "log")


def resummarize(previous: dict[str, Any], out: Path) -> list[dict[str, Any]]:
    """The rows again, from an earlier run's corpus.json (its process facts) and the files on disk, with the current
    summarize(): a changed table format needs no rerun."""
    return [summarize(r["name"], out.resolve(), {k: r.get(k) for k in PROC_KEYS}) for r in previous["models"]]


def run_models(names: Sequence[str], out: Path, timeout_s: float, say: Callable[[str], None] = print,
               venv_path: bool = False, repair: bool = False) -> list[dict[str, Any]]:
    out = out.resolve()
    rows = []
    for i, name in enumerate(names, 1):
        say(f"[{i}/{len(names)}] {name}: build + convert_user_model (all 7 cells), limit {timeout_s:.0f} s")
        proc = run_worker(name, out, timeout_s, say, venv_path, repair)
        row = summarize(name, out, proc)
        counts = {s: sum(c["status"] == s for c in row["cells"].values()) for s in STATUSES}
        summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        say(f"   {name}: {summary} in {proc['wall_s']:.0f} s; route {row['route']}"
            + (f"; {first_line(row['error'])}" if row.get("error") else ""))
        rows.append(row)
    return rows
