"""Measure how much a TF.js bundle's self-test outputs legitimately differ between TF.js backends, and how far
the nearest swap lands: the basis of the TF.js self-test tolerance (deploy/_selftest.py tfjs_tolerance).

    .venv/bin/python scripts/tfjs_selftest_spread.py WEB_DEPLOY_DIR

For every TF.js bundle of WEB_DEPLOY_DIR (deployed by `edgeproof deploy --target web`, so each carries the
outputs TF.js wasm computed at deploy time, family "tfjs"), runs its probes again in Node on the wasm and
cpu backends, and runs the same probes through the nearest swap: the same model and framework at the
other float precision (fp32 <-> fp16, uint8 -> fp16). Prints one JSON object: per bundle the largest
|difference| from the recorded outputs per backend and for the swap, and the number of elements the
tolerance (atol + rtol * |expected|) leaves outside. The browser's own backends (wasm, cpu, webgl in
Chromium) are measured by tests/test_web_selftest.py into test-output/web_selftest.json.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

SWAP = {"fp32": "fp16", "fp16": "fp32", "uint8": "fp16"}


def _read_self_test(bundle: Path) -> tuple[dict, dict, dict]:
    from edgeproof.runtime._selftest import decode_tensor

    raw = json.loads((bundle / "selftest.json").read_text())
    inputs = {k: decode_tensor(v, k) for k, v in raw["inputs"].items()}
    outputs = {k: decode_tensor(v, k) for k, v in raw["outputs"].get("tfjs", {}).items()}
    return inputs, outputs, json.loads((bundle / "manifest.json").read_text())


def _outputs(bundle: Path, manifest: dict, inputs: dict, backend: str) -> dict:
    """The bundle's canonical outputs on canonical `inputs`, bound from the manifest as the runtime binds them."""
    from edgeproof.runtime._signature import bind, from_artifact, to_artifact
    from edgeproof.verify._tfjs_node import TfjsNodeRunner

    pairs = lambda ts: [(t["name"], t.get("canonical_layout", t["layout"])) for t in ts]  # noqa: E731
    tensors = lambda ts: [{**t, "name": t["tensor"]} for t in ts]  # noqa: E731
    ins = bind(pairs(manifest["inputs"]), tensors(manifest["inputs"]))
    outs = bind(pairs(manifest["outputs"]), tensors(manifest["outputs"]))
    with TfjsNodeRunner(backend) as runner:
        runner.load(bundle / manifest["model_file"])
        step = ins[0].static_batch or len(next(iter(inputs.values())))
        n = len(next(iter(inputs.values())))
        parts = [runner.predict({b.name: to_artifact(b, inputs[b.canonical][i:i + step]) for b in ins})
                 for i in range(0, n, step)]
    return {b.canonical: np.concatenate([from_artifact(b, p[b.name]) for p in parts]) for b in outs}


def _compare(got: dict, want: dict, tol: dict) -> dict:
    diffs = [np.abs(np.asarray(got[k], np.float64) - np.asarray(v, np.float64)) for k, v in want.items()]
    limits = [tol["atol"] + tol["rtol"] * np.abs(np.asarray(v, np.float64)) for v in want.values()]
    return {"max_abs_error": float(max(d.max() for d in diffs)),
            "outside": int(sum((d > lim).sum() for d, lim in zip(diffs, limits))),
            "elements": int(sum(d.size for d in diffs))}


def measure(site: Path) -> dict:
    rows = {}
    for manifest_path in sorted(site.glob("*/manifest.json")):
        bundle = manifest_path.parent
        inputs, recorded, manifest = _read_self_test(bundle)
        if manifest.get("artifact_target", "tfjs") != "tfjs" or not recorded:
            continue
        tol = manifest["self_test"]["tolerance"]
        row = {b: _compare(_outputs(bundle, manifest, inputs, b), recorded, tol) for b in ("wasm", "cpu")}
        swap = site / bundle.name.replace(f"-{manifest['mode']}", f"-{SWAP[manifest['mode']]}")
        if (swap / "manifest.json").is_file():
            swap_manifest = json.loads((swap / "manifest.json").read_text())
            row[f"swap {swap.name}"] = _compare(_outputs(swap, swap_manifest, inputs, "wasm"), recorded, tol)
        rows[bundle.name] = row
        print(bundle.name, {k: f"{v['max_abs_error']:.3g} ({v['outside']} out)" for k, v in row.items()}, file=sys.stderr)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("site", type=Path)
    args = p.parse_args()
    print(json.dumps(measure(args.site), indent=2))


if __name__ == "__main__":
    main()
