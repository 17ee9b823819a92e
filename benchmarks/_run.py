"""The benchmark run: inventory -> machine limits -> graph facts -> one worker per thread count ->
browser -> results.json, charts and RESULTS.md."""
from __future__ import annotations

import datetime as _dt
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from ._inventory import BenchmarkError, Inventory, artifact_files, cell_mode, gzip_size, load_inventory

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS_JSON = "results.json"
RESULTS_MD = "RESULTS.md"
SCHEMA_VERSION = 1
WORKER_TIMEOUT_S = 3600


@dataclass
class Options:
    artifacts: Path = Path("artifacts")
    out: Path = HERE
    rounds: int = 30  # interleaving rounds per model and thread count
    batch_ms: float = 25.0  # timed calls per contestant per round: about this long
    threads: tuple[int, ...] = (1, 2)
    models: Optional[list[str]] = None
    frameworks: Optional[list[str]] = None
    peers: bool = True
    compile: bool = True  # torch.compile (slow to compile on 2 cores)
    diagnose: bool = True  # XNNPACK-off runs of every .tflite (1 thread), to explain int8 vs fp32
    browser: bool = True
    browser_models: tuple[str, ...] = ("mnist_cnn",)
    browser_runs: int = 200
    command: str = "python -m benchmarks"

    def __post_init__(self) -> None:
        self.artifacts, self.out = Path(self.artifacts), Path(self.out)
        if not self.threads or any(t < 1 for t in self.threads):
            raise BenchmarkError(f"--threads needs positive counts, got {list(self.threads)}")
        if self.rounds < 1:
            raise BenchmarkError(f"--runs must be at least 1, got {self.rounds}")


# -- per-artifact facts from the files -------------------------------------------------------------
def _verdict_summary(v: Optional[dict[str, Any]]) -> dict[str, Any]:
    if not v:
        return {"verdict": "not verified"}
    failures = v.get("failures") or []
    return {"verdict": v.get("status"), "metric": v.get("metric"), "metric_value": v.get("artifact_metric"),
            "reference_metric": v.get("reference_metric"), "metric_drop": v.get("metric_drop"),
            "test_agreement": v.get("test_agreement"), "verify_latency_ms": v.get("latency_ms"),
            "failures": [f"{f.get('measure')} {f['measured']:.4g} (limit {f['limit']:.4g})" for f in failures
                         if isinstance(f.get("measured"), (int, float)) and isinstance(f.get("limit"), (int, float))]}


def artifact_rows(inv: Inventory, say: Callable[[str], None]) -> list[dict[str, Any]]:
    """One row per converted artifact: size, gzip size, conversion time, verdict + metric, deploy
    status, and for .tflite the MACs, byte breakdown and XNNPACK delegation read from the file."""
    from . import _graph

    rows = []
    for g in inv.groups:
        deployed = {b.key: b for b in g.native + g.web}
        for r in g.conversion:
            key = f"{r['target']}/{cell_mode(r)}"
            row: dict[str, Any] = {"model": g.model, "framework": g.framework, "target": r["target"],
                                   "mode": cell_mode(r),
                                   "key": key, "route": r.get("route"), "status": r.get("status"),
                                   "reason": r.get("reason"), "size_bytes": r.get("size_bytes"),
                                   "convert_seconds": r.get("convert_seconds"),
                                   "source_export_seconds": r.get("source_export_seconds"),
                                   "bundle": deployed[key].name if key in deployed else None,
                                   **_verdict_summary(g.verdict(key))}
            files = artifact_files(g.root, r["path"]) if r.get("status") == "ok" and r.get("path") else []
            if files:
                row["file_bytes"] = {p.name: p.stat().st_size for p in files}
                row["size_bytes"] = sum(row["file_bytes"].values())
                row["gzip_bytes"] = gzip_size(files)
            if files and r["target"] == "tflite":
                try:
                    macs = _graph.count_macs(files[0])
                    row["macs"], row["macs_by_op"], row["macs_notes"] = macs.macs, macs.by_op, macs.notes
                    row["bytes_by_kind"] = _graph.buffer_bytes(files[0])
                    row["delegation"] = _graph.delegation(files[0])
                except Exception as err:  # a file the reader cannot walk: the row says so
                    row["graph_error"] = f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
            rows.append(row)
        say(f"  {g.key}: {len(g.conversion)} artifacts read ({len(g.native)} TFLite and {len(g.web)} TF.js bundles deployed)")
    return rows


# -- the workers ---------------------------------------------------------------------------------------
def _job_groups(inv: Inventory, opts: Options, threads: int) -> list[dict[str, Any]]:
    return [{"model": g.model, "framework": g.framework,
             "checkpoint": str(g.checkpoint.resolve()) if g.checkpoint else None,
             "onnx": str(g.onnx.resolve()) if g.onnx and opts.peers else None,
             "diagnose": opts.diagnose and threads == 1,
             "bundles": [{"path": str(b.path.resolve()), "mode": b.mode} for b in g.native]}
            for g in inv.groups if g.native]


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.setdefault("TF_USE_LEGACY_KERAS", "1")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("TFDF_DISABLE_WELCOME_MESSAGE", "1")
    return env


def _spawn(job_path: Path, log: Path) -> int:
    """Run one worker on a job file, stderr to `log`; its exit code (-1 when it hit the time limit)."""
    with open(log, "w", encoding="utf-8") as err:
        try:
            return subprocess.run([sys.executable, "-m", "benchmarks._worker", str(job_path)], stderr=err,
                                  env=_worker_env(), cwd=str(REPO), timeout=WORKER_TIMEOUT_S).returncode
        except subprocess.TimeoutExpired:
            return -1


def run_workers(inv: Inventory, opts: Options, say: Callable[[str], None]) -> tuple[list[dict], list[dict]]:
    """(records, errors): one worker process per thread count; a worker that dies is restarted after
    the group it died in, which is reported with the tail of its stderr."""
    records: list[dict] = []
    errors: list[dict] = []
    need_tf = True  # Keras peers, and the floors build their empty .tflite with the TF converter
    need_torch = opts.peers and any(g.framework == "torch" for g in inv.groups)
    with tempfile.TemporaryDirectory(prefix="edgeproof-bench-") as tmp:
        for threads in opts.threads:
            remaining = _job_groups(inv, opts, threads)
            floors = True
            attempt = 0
            while remaining or floors:
                attempt += 1
                results = Path(tmp) / f"threads{threads}-{attempt}.jsonl"
                job = {"threads": threads, "plan": {"rounds": opts.rounds, "batch_ms": opts.batch_ms},
                       "results": str(results), "groups": remaining, "floors": floors, "peers": opts.peers,
                       "compile": opts.compile, "torch_macs": threads == opts.threads[0] and opts.peers,
                       "need_tf": need_tf, "need_torch": need_torch}
                job_path = Path(tmp) / f"job{threads}-{attempt}.json"
                job_path.write_text(json.dumps(job), encoding="utf-8")
                log = Path(tmp) / f"worker{threads}-{attempt}.log"
                say(f"worker: {threads} thread(s), {len(remaining)} model(s)")
                code = _spawn(job_path, log)
                done = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines()] \
                    if results.exists() else []
                records += [d for d in done if d.get("kind") in ("group", "floors", "start")]
                finished = {(d["model"], d["framework"]) for d in done if d.get("kind") == "group"}
                floors = floors and not any(d.get("kind") == "floors" for d in done)
                left = [g for g in remaining if (g["model"], g["framework"]) not in finished]
                if code == 0:
                    break
                tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-8:]
                if not any(d.get("kind") == "start" for d in done):  # died before measuring anything
                    errors.append({"threads": threads, "where": "start-up", "exit_code": code, "stderr_tail": tail})
                    say(f"worker: {threads} thread(s) did not start (exit {code}): {' / '.join(tail[-2:])}")
                    break
                where = f"{left[0]['model']}/{left[0]['framework']}" if left else "the floors"
                errors.append({"threads": threads, "where": where, "exit_code": code, "stderr_tail": tail})
                say(f"worker: {threads} thread(s) died in {where} (exit {code}); going on without it")
                if left:
                    remaining = left[1:]
                else:
                    floors = False
    return records, errors


# -- assembling ------------------------------------------------------------------------------------------
def _profile(inv: Inventory) -> Optional[str]:
    for g in inv.groups:
        ref = g.parity.get("reference") or {}
        if ref.get("profile"):
            return ref["profile"]
    return None


def merge_timings(rows: list[dict[str, Any]], records: list[dict[str, Any]]) -> None:
    """Copy each TFLite artifact's own timings (runtime, invoke, XNNPACK off) into its row."""
    by_key = {(r["model"], r["framework"], r["key"]): r for r in rows}
    for rec in records:
        if rec.get("kind") != "group":
            continue
        for c in rec["contestants"]:
            if c["kind"] not in ("ours", "invoke", "no-xnnpack") or not c.get("mode"):
                continue
            row = by_key.get((rec["model"], rec["framework"], f"tflite/{c['mode']}"))
            if row is None:
                continue
            t = row.setdefault("timing", {}).setdefault(str(rec["threads"]), {})
            prefix = {"ours": "", "invoke": "invoke_", "no-xnnpack": "no_xnnpack_"}[c["kind"]]
            if c.get("error"):
                t[prefix + "error"] = c["error"]
                continue
            s = c.get("steady") or {}
            t[prefix + "p50_ms"], t[prefix + "p99_ms"], t[prefix + "n"] = s.get("p50_ms"), s.get("p99_ms"), s.get("n")
            if c["kind"] == "ours":
                t["load_ms"], t["first_ms"] = c.get("load_ms"), c.get("first_ms")


def peer_ratios(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """peer p50 / our p50 for every (our artifact, peer) pair measured in the same interleaved run."""
    out = []
    from ._timing import ratio

    for rec in records:
        if rec.get("kind") != "group":
            continue
        ours = [c for c in rec["contestants"] if c["kind"] == "ours" and c.get("steady")]
        peers = [c for c in rec["contestants"] if c["kind"] == "peer"]
        for o in ours:
            for p in peers:
                r = ratio((p.get("steady") or {}).get("p50_ms"), o["steady"]["p50_ms"])
                out.append({"model": rec["model"], "framework": rec["framework"], "threads": rec["threads"],
                            "ours": o["name"], "mode": o["mode"], "peer": p["name"],
                            "ours_p50_ms": o["steady"]["p50_ms"], "peer_p50_ms": (p.get("steady") or {}).get("p50_ms"),
                            "ratio": None if r is None else round(r, 3), "peer_error": p.get("error")})
    return out


def limit_rows(rows: list[dict[str, Any]], limits, floors: dict[str, Any]) -> list[dict[str, Any]]:
    """Per TFLite artifact and thread count: the compute-bound time at the measured peak, the time to
    stream its weights from DRAM and the fraction of the compute limit its invoke() reaches. A model is
    tiny when its fp32 compute limit on one thread is under 3x the empty model's per-call floor; for
    those the multiple of that floor is what matters."""
    from ._limits import compute_floor_ms, fraction_of_limit, stream_ms

    one = min(int(t) for t in floors) if floors else 1
    runtime_floor_1 = (floors.get(str(one)) or {}).get("empty tflite (runtime)")
    fp32_macs = {(r["model"], r["framework"]): r.get("macs") for r in rows if r["key"] == "tflite/fp32"}
    out = []
    for row in rows:
        if row["target"] != "tflite" or not row.get("timing"):
            continue
        model_limit = compute_floor_ms(fp32_macs.get((row["model"], row["framework"])) or row.get("macs"),
                                       limits.peak(one, "fp32"))
        tiny = model_limit is not None and runtime_floor_1 is not None and model_limit < 3 * runtime_floor_1
        weights = sum(v for k, v in (row.get("bytes_by_kind") or {}).items() if k != "graph+metadata") or None
        for threads, t in sorted(row["timing"].items()):
            peak = limits.peak(int(threads), row["mode"])
            limit = compute_floor_ms(row.get("macs"), peak)
            floor = (floors.get(threads) or {}).get("empty tflite invoke")
            runtime_floor = (floors.get(threads) or {}).get("empty tflite (runtime)")
            measured = t.get("invoke_p50_ms") or t.get("p50_ms")
            out.append({"model": row["model"], "framework": row["framework"], "mode": row["mode"],
                        "threads": int(threads), "macs": row.get("macs"), "peak_gops": peak,
                        "peak_kind": "int8 GEMM" if row["mode"] in ("int8", "dynamic") else "fp32 sgemm",
                        "compute_limit_ms": limit, "weights_bytes": weights,
                        "dram_stream_ms": stream_ms(weights, limits.copy_gbps), "invoke_p50_ms": measured,
                        "runtime_p50_ms": t.get("p50_ms"),
                        "achieved_gops": (2 * row["macs"] / (measured * 1e6)) if row.get("macs") and measured else None,
                        "fraction_of_limit": fraction_of_limit(measured, limit), "tiny": tiny,
                        "floor_invoke_ms": floor, "floor_runtime_ms": runtime_floor,
                        "times_runtime_floor": (t.get("p50_ms") / runtime_floor) if runtime_floor and t.get("p50_ms") else None})
    return out


def _floors(records: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for rec in records:
        if rec.get("kind") == "floors":
            out[str(rec["threads"])] = {c["name"]: c["steady"]["p50_ms"] for c in rec["contestants"] if c.get("steady")}
    return out


def _macs_check(inv: Inventory, rows: list[dict[str, Any]], records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """MACs per model/framework from the fp32 .tflite, beside torch's FlopCounterMode count."""
    out = []
    torch_counts = {(r["model"], r["framework"]): (r.get("torch_macs"), r.get("torch_uncounted_ops") or [])
                    for r in records if r.get("kind") == "group" and r.get("torch_macs") is not None}
    for g in inv.groups:
        fp32 = next((r for r in rows if r["model"] == g.model and r["framework"] == g.framework
                     and r["key"] == "tflite/fp32" and r.get("macs")), None)
        torch_count, uncounted = torch_counts.get((g.model, g.framework), (None, []))
        out.append({"model": g.model, "framework": g.framework, "tflite_macs": fp32 and fp32["macs"],
                    "tflite_notes": fp32 and fp32.get("macs_notes"), "torch_macs": torch_count,
                    "torch_uncounted_ops": uncounted})
    return out


def run_benchmarks(opts: Options, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Measure everything and write results.json, the charts and RESULTS.md into opts.out."""
    from . import _machine
    from ._limits import measure_machine
    from ._report import write_report
    from ._targets import evaluate_targets

    start = time.perf_counter()
    inv = load_inventory(opts.artifacts, opts.models, opts.frameworks)
    opts.out.mkdir(parents=True, exist_ok=True)
    say(f"edgeproof benchmarks: {len(inv.groups)} model/framework pairs from {opts.artifacts} "
        f"(TFLite bundles from deploy/{inv.native_target}), threads {list(opts.threads)}")
    load_start = _machine.load_average()
    machine = _machine.describe_machine()
    say(f"machine: {machine['cpu']}, {machine['usable_cpus']} usable CPUs, load average {load_start}")
    limits = measure_machine(opts.threads)
    say(f"limits: sgemm {limits.sgemm_gflops} GFLOP/s, int8 GEMM {limits.int8_gops} GOP/s, "
        f"copy {limits.copy_gbps} GB/s ({limits.blas})")
    say("reading artifacts (sizes, gzip, MACs, XNNPACK delegation, verdicts)")
    rows = artifact_rows(inv, say)
    records, worker_errors = run_workers(inv, opts, say)
    merge_timings(rows, records)
    floors = _floors(records)
    browser = _browser_results(inv, opts, say)
    versions = next((r.get("versions") for r in records if r.get("kind") == "start"), {})
    results = {
        "schema_version": SCHEMA_VERSION,
        "generated": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": opts.command, "artifacts": str(opts.artifacts), "profile": _profile(inv),
        "native_target": inv.native_target,
        "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(opts).items()
                     if k not in ("artifacts", "out", "command")},
        "machine": {**machine, "worker_versions": versions},
        "load_average": {"start": load_start},
        "limits": limits.to_dict(),
        "artifacts_table": rows,
        "groups": [r for r in records if r.get("kind") == "group"],
        "peers": peer_ratios(records),
        "floors": floors,
        "limit_rows": [],
        "macs": _macs_check(inv, rows, records),
        "browser": browser,
        "conversion": {"pipeline": inv.pipeline_timing},
        "worker_errors": worker_errors,
    }
    results["limit_rows"] = limit_rows(rows, limits, floors)
    results["targets"] = evaluate_targets(results)
    results["load_average"]["end"] = _machine.load_average()
    results["wall_seconds"] = round(time.perf_counter() - start, 1)
    (opts.out / RESULTS_JSON).write_text(json.dumps(results, indent=1, default=str) + "\n", encoding="utf-8")
    written = write_report(results, opts.out)
    say(f"wrote {opts.out / RESULTS_JSON}, {', '.join(str(p) for p in written)} in {results['wall_seconds']:.0f} s")
    return results


def _browser_results(inv, opts: Options, say: Callable[[str], None]) -> dict[str, Any]:
    """The browser runtimes' rows (headless Chromium), or why there are none."""
    if not opts.browser:
        return {"skipped": "--skip-browser"}
    from ._browser import run_browser

    say(f"browser: headless Chromium on {list(opts.browser_models)}")
    try:
        return run_browser(inv.groups, opts.browser_models, opts.threads, runs=opts.browser_runs,
                           rounds=opts.rounds, batch_ms=opts.batch_ms, say=say)
    except BenchmarkError as err:
        say(f"browser: {err}")
        return {"rows": [], "error": str(err)}
