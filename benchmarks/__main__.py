"""`python -m benchmarks`: regenerate benchmarks/RESULTS.md, results.json and the charts."""
from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import Optional, Sequence

from edgeproof._util import csv_list

HERE = Path(__file__).resolve().parent


def _csv(value: str) -> list[str]:
    return csv_list(value) or []


def _threads(value: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in _csv(value))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--threads takes numbers like 1,2 (got {value!r})") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Latency, size and accuracy of every deployed artifact, side by side with the source "
                    "framework, ONNX Runtime, the browser runtimes and the machine's measured limits. Writes "
                    "RESULTS.md, results.json and PNG charts.")
    p.add_argument("--artifacts", default="artifacts", metavar="DIR",
                   help="artifacts folder with deploy/pi (or android) and deploy/web (default: %(default)s)")
    p.add_argument("--out", default=str(HERE), metavar="DIR", help="where the results go (default: benchmarks/)")
    p.add_argument("--runs", type=int, default=30, metavar="N",
                   help="interleaved rounds per model and thread count (default: %(default)s)")
    p.add_argument("--batch-ms", type=float, default=25.0, metavar="MS",
                   help="timed calls per contestant per round: about this many ms (default: %(default)s)")
    p.add_argument("--threads", type=_threads, default=(1, 2), metavar="LIST",
                   help="thread counts, comma-separated (default: 1,2)")
    p.add_argument("--models", type=_csv, metavar="LIST", help="only these models (default: every deployed one)")
    p.add_argument("--frameworks", type=_csv, metavar="LIST", help="only these source frameworks (keras,torch)")
    p.add_argument("--skip-peers", action="store_true", help="time only our bundles (no Keras, PyTorch, ONNX Runtime)")
    p.add_argument("--no-compile", action="store_true", help="skip torch.compile (its compilation takes minutes on 2 cores)")
    p.add_argument("--no-diagnose", action="store_true", help="skip the XNNPACK-off runs that explain int8 vs fp32")
    p.add_argument("--skip-browser", action="store_true", help="skip headless Chromium")
    p.add_argument("--browser-models", type=_csv, default=["mnist_cnn"], metavar="LIST",
                   help="models timed in the browser (default: mnist_cnn)")
    p.add_argument("--browser-runs", type=int, default=200, metavar="N",
                   help="steady-state runs per browser measurement, at most (default: %(default)s)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    from ._inventory import BenchmarkError
    from ._run import Options, run_benchmarks

    try:
        opts = Options(artifacts=Path(args.artifacts), out=Path(args.out), rounds=args.runs, batch_ms=args.batch_ms,
                       threads=args.threads, models=args.models, frameworks=args.frameworks,
                       peers=not args.skip_peers, compile=not args.no_compile, diagnose=not args.no_diagnose,
                       browser=not args.skip_browser, browser_models=tuple(args.browser_models),
                       browser_runs=args.browser_runs,
                       command=shlex.join(["python", "-m", "benchmarks"] + argv))
        run_benchmarks(opts)
    except BenchmarkError as err:
        print(f"benchmarks: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
