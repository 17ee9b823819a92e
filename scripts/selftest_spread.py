"""Measure how much one bundle's outputs legitimately differ between TFLite interpreters, thread
counts and CPUs: the basis of the self-test tolerance (deploy/_selftest.py default_tolerance).

    .venv/bin/python scripts/selftest_spread.py DEPLOY_DIR [--work DIR] [--aarch64-cache DIR] [--no-aarch64]

Copies the bundles of DEPLOY_DIR, gives each a self-test (the spec's probes through the artifact,
as the deploy gate does), then runs scripts/selftest_probe.py in every environment:
  x86-64:  .venv (ai-edge-litert 2.3.0) and .venv-edge (tflite-runtime 2.14.0), 1 and 4 threads
  aarch64: the Debian bookworm arm64 userland of scripts/pi_userland.sh under qemu-aarch64-static,
           with tflite-runtime 2.14.0 and with ai-edge-litert 2.3.0, 1 thread
and prints, per bundle and per mode, the largest |difference| between any two runs of an output
element, plus each run's wall time. Output: one JSON object on stdout (and WORK/spread.json).
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PROBE = REPO / "scripts" / "selftest_probe.py"


def runtime_site(dest: Path) -> Path:
    """edgeproof + edgeproof.runtime as plain folders (what `pip install edgeproof` puts on a Pi for
    the runtime), so every environment runs the same code from PYTHONPATH: deploy --prove-aarch64's own."""
    from edgeproof.deploy._aarch64 import runtime_site as deploy_runtime_site

    shutil.rmtree(dest, ignore_errors=True)
    return deploy_runtime_site(dest)


def stamp(deploy: Path, work: Path) -> list[Path]:
    from edgeproof.deploy._selftest import stamp_bundle

    from edgeproof import get_spec
    from edgeproof._atomic import visible_children

    bundles = []
    for src in visible_children(deploy, "manifest.json"):
        dest = work / "bundles" / src.name
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(src, dest)
        manifest = json.loads((dest / "manifest.json").read_text())
        stamp_bundle(dest, get_spec(manifest["model"]).probe_inputs())
        bundles.append(dest)
    return bundles


def aarch64_env(cache: Path) -> dict[str, str]:
    run = subprocess.run(["bash", str(REPO / "scripts" / "pi_userland.sh"), str(cache)], capture_output=True,
                         text=True, check=True)
    return dict(line.split("=", 1) for line in run.stdout.splitlines() if line.startswith("EDGEPROOF_"))


def environments(site: Path, aarch64: dict[str, str] | None) -> list[tuple[str, list[str], str, int, str]]:
    """(label, command prefix, interpreter, threads, PYTHONPATH) for every run."""
    envs = []
    for threads in (1, 4):
        envs.append((f"x86 ai_edge_litert t{threads}", [str(REPO / ".venv/bin/python")], "ai_edge_litert", threads,
                     str(site)))
        envs.append((f"x86 tflite_runtime t{threads}", [str(REPO / ".venv-edge/bin/python")], "tflite_runtime", threads,
                     str(site)))
    if aarch64:
        root = aarch64["EDGEPROOF_AARCH64_ROOT"]
        qemu = [aarch64["EDGEPROOF_QEMU"], "-cpu", aarch64["EDGEPROOF_QEMU_CPU"], "-L", root, f"{root}/usr/bin/python3.11"]
        envs.append(("aarch64 tflite_runtime t1", qemu, "tflite_runtime", 1,
                     f"{site}:{aarch64['EDGEPROOF_AARCH64_SITE_TFLITE']}"))
        envs.append(("aarch64 ai_edge_litert t1", qemu, "ai_edge_litert", 1,
                     f"{site}:{aarch64['EDGEPROOF_AARCH64_SITE_LITERT']}"))
    return envs


def run_env(label, prefix, interpreter, threads, pythonpath, bundles, out: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": pythonpath, "PYTHONDONTWRITEBYTECODE": "1"}
    start = time.perf_counter()
    run = subprocess.run([*prefix, str(PROBE), "--interpreter", interpreter, "--threads", str(threads), "--out",
                          str(out), *map(str, bundles)], capture_output=True, text=True, env=env, timeout=3600)
    wall = time.perf_counter() - start
    if run.returncode not in (0, 2):
        raise RuntimeError(f"{label}: selftest_probe failed ({run.returncode}): {run.stderr[-2000:]}")
    report = json.loads(run.stdout.splitlines()[-1])
    return {"label": label, "wall_s": round(wall, 1), "report": report, "npz": str(out)}


def _steps(bundle: Path) -> dict[str, float]:
    from edgeproof.runtime._flatbuffer import validate_tflite

    return {k: v for k, v in validate_tflite(bundle / "model.tflite").output_steps.items() if v}


def _pair(a: np.ndarray, b: np.ndarray, step: float | None) -> dict[str, float]:
    err = np.abs(a.astype(np.float64) - b.astype(np.float64))
    out = {"max": float(err.max(initial=0.0)), "mean": float(err.mean()) if err.size else 0.0}
    if step:
        out["max_steps"] = round(out["max"] / step, 2)
        out["beyond_1_step"] = float((err > 1.001 * step).mean())
    return out


def _worst(pairs: list[dict[str, float]]) -> dict[str, float]:
    return {k: max(p.get(k, 0.0) for p in pairs) for k in pairs[0]} if pairs else {}


def spreads(runs: list[dict], bundles: list[Path]) -> dict[str, dict]:
    """Per bundle output: the worst difference between runs of one interpreter family (x86/aarch64,
    threads) and between families (ai-edge-litert vs tflite-runtime 2.14)."""
    arrays = {r["label"]: dict(np.load(r["npz"], allow_pickle=False)) for r in runs}
    steps = {b.name: _steps(b) for b in bundles}
    out: dict[str, dict] = {}
    for key in sorted(set().union(*arrays.values())):
        bundle, output = key.split("/", 1)
        step = steps.get(bundle, {}).get(output)
        have = [(label, a[key]) for label, a in arrays.items() if key in a]
        within, across = [], []
        for (la, a), (lb, b) in itertools.combinations(have, 2):
            same = la.split()[1] == lb.split()[1]
            (within if same else across).append(_pair(a, b, step))
        out.setdefault(bundle, {})[output] = {"step": step, "within_family": _worst(within),
                                              "across_families": _worst(across)}
    return out


def swaps(bundles: list[Path]) -> dict[str, dict]:
    """The same network's other precisions put into each bundle (x86 ai-edge-litert): how far their
    outputs are from the bundle's recorded ones: what the tolerance must still catch."""
    from edgeproof.runtime import Model
    from edgeproof.runtime._selftest import load_self_test

    out = {}
    for bundle in bundles:
        model = Model.load(bundle, interpreter="ai_edge_litert")
        inputs, expected, _ = load_self_test(model)
        steps = _steps(bundle)
        for donor in bundles:
            if donor == bundle or donor.name.rsplit("-", 1)[0] != bundle.name.rsplit("-", 1)[0]:
                continue
            got = Model.load(donor, interpreter="ai_edge_litert").predict_all(inputs)
            out[f"{bundle.name} <- {donor.name.rsplit('-', 1)[1]}"] = {
                name: _pair(got[name], want, steps.get(name)) for name, want in expected["ai_edge_litert"].items()}
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("deploy", type=Path, help="a deploy folder (edgeproof deploy --target pi)")
    p.add_argument("--work", type=Path, default=Path("/tmp/edgeproof-spread"))
    p.add_argument("--aarch64-cache", type=Path, default=Path.home() / ".cache" / "edgeproof" / "aarch64")
    p.add_argument("--no-aarch64", action="store_true")
    args = p.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    bundles = stamp(args.deploy, args.work)
    site = runtime_site(args.work / "site")
    aarch64 = None if args.no_aarch64 else aarch64_env(args.aarch64_cache)
    runs = [run_env(*env, bundles, args.work / f"run-{i}.npz") for i, env in enumerate(environments(site, aarch64))]
    per_bundle = spreads(runs, bundles)
    by_mode: dict[str, dict] = {}
    for bundle, outputs in per_bundle.items():
        mode = by_mode.setdefault(bundle.rsplit("-", 1)[1], {"within_family": [], "across_families": []})
        for o in outputs.values():
            for k in mode:
                if o[k]:
                    mode[k].append(o[k])
    by_mode = {m: {k: _worst(v) for k, v in d.items()} for m, d in by_mode.items()}
    result = {"by_mode": by_mode, "per_bundle": per_bundle, "swaps": swaps(bundles),
              "runs": [{"label": r["label"], "wall_s": r["wall_s"],
                        "loaded": [b["bundle"] for b in r["report"]["bundles"] if "error" not in b],
                        "not_loaded": {b["bundle"]: b["error"][:160] for b in r["report"]["bundles"] if "error" in b},
                        "self_test_passed": all(b.get("passed") for b in r["report"]["bundles"] if "error" not in b),
                        "seconds_per_bundle": {b["bundle"]: b.get("seconds") for b in r["report"]["bundles"]}}
                       for r in runs]}
    (args.work / "spread.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
