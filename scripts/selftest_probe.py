"""Run every bundle's golden self-test with one interpreter and save the raw outputs, in whatever
Python runs this (an x86 venv, .venv-edge, or arm64 CPython under qemu-aarch64-static): only
numpy, one TFLite interpreter and edgeproof.runtime are needed.

    python scripts/selftest_probe.py --interpreter tflite_runtime --threads 1 --out OUT.npz BUNDLE...

Prints one JSON object: {"machine", "python", "numpy", "interpreter", "threads", "bundles": [
{"bundle", "passed", "max_abs_error", "ratio", "seconds", "error"?}]}. OUT.npz holds each bundle's
actual self-test outputs as "<bundle folder name>/<output name>" (numeric arrays, no pickle).
Exit 0 when every self-test ran (passed or not), 2 when a bundle could not be loaded.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("bundles", nargs="+", type=Path)
    p.add_argument("--interpreter", default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, help="write the actual outputs here (.npz)")
    args = p.parse_args(argv)

    from edgeproof.runtime import Model
    from edgeproof.runtime._selftest import load_self_test, self_test

    from edgeproof.errors import EdgeproofError

    report = {"machine": platform.machine(), "python": platform.python_version(), "numpy": np.__version__,
              "interpreter": args.interpreter, "threads": args.threads, "bundles": []}
    arrays: dict[str, np.ndarray] = {}
    code = 0
    for bundle in args.bundles:
        start = time.perf_counter()
        try:
            model = Model.load(bundle, interpreter=args.interpreter, num_threads=args.threads)
            result = self_test(model)
            inputs, _, _ = load_self_test(model)
            for name, value in model.predict_all(inputs).items():
                arrays[f"{bundle.name}/{name}"] = np.asarray(value)
        except (EdgeproofError, ValueError) as err:
            report["bundles"].append({"bundle": bundle.name, "passed": False, "error": str(err)})
            code = 2
            continue
        report["interpreter"] = model.interpreter
        finite = (lambda v: v if np.isfinite(v) else None)  # strict JSON: no Infinity
        report["bundles"].append({"bundle": bundle.name, "passed": result.passed,
                                  "max_abs_error": finite(result.max_abs_error), "ratio": finite(result.ratio),
                                  "tolerance": result.tolerance, "seconds": round(time.perf_counter() - start, 3)})
    if args.out:
        np.savez(args.out, **arrays)
    print(json.dumps(report))
    return code


if __name__ == "__main__":
    sys.exit(main())
