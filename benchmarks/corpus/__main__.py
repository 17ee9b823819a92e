"""`python -m benchmarks.corpus [--models a,b] [--fast] --out DIR`: build every corpus model (cached by a hash of its
file), run each through `edgeproof.convert_user_model` in all seven cells in its own process with a time limit, and
write corpus.json + CORPUS.md into DIR; a run over the whole corpus also rewrites benchmarks/CORPUS.md and
benchmarks/corpus.json (a partial run never overwrites them)."""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

BENCHMARKS = Path(__file__).resolve().parents[1]


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def pipeline_hash() -> str:
    """sha256 (12 hex) of the pipeline's Python files (edgeproof/, convert/, verify/): the run records it at its start
    and end, so a table made while the pipeline changed says so."""
    import hashlib

    repo = BENCHMARKS.parent
    digest = hashlib.sha256()
    for folder in ("edgeproof", "convert", "verify"):
        for path in sorted((repo / folder).glob("*.py")):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.corpus",
        description="Run the real-model corpus (benchmarks/corpus/*.py) through convert_user_model in all 7 cells "
                    "and write the model x cell table.")
    p.add_argument("--out", default="artifacts-corpus", metavar="DIR",
                   help="models (cached), artifacts, logs, results (default: %(default)s)")
    p.add_argument("--models", type=_csv, metavar="LIST", help="comma-separated corpus models (default: all)")
    p.add_argument("--fast", action="store_true", help="only the models tagged 'fast' (the CI subset)")
    p.add_argument("--timeout", type=float, default=900.0, metavar="S",
                   help="time limit per model, build + convert + verify (default: %(default)s)")
    p.add_argument("--venv-path", action="store_true",
                   help="put this interpreter's bin folder first on PATH, as an activated venv does (onnx2tf runs "
                        "`onnxsim` by name and silently skips it when it is not on PATH)")
    p.add_argument("--repair", action="store_true",
                   help="after each model, the repair ladder (`edgeproof repair`) on its failing 8-bit cells; the "
                        "table then says what it repaired")
    p.add_argument("--list", action="store_true", help="list the corpus and exit")
    p.add_argument("--resummarize", action="store_true",
                   help="rewrite the tables from DIR/corpus.json and the files in DIR without running anything")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    from . import CorpusError, entries, names
    from ._run import resummarize, run_models
    from ._table import markdown, totals

    try:
        everything = names()
    except CorpusError as err:
        print(f"benchmarks.corpus: error: {err}", file=sys.stderr)
        return 2
    if args.list:
        for e in entries():
            print(f"{e.name:28s} {e.family.value:22s} {e.source.value:6s} {e.export.exporter}"
                  + (f" opset {e.export.opset}" if e.export.opset else "") + (" [fast]" if e.fast else ""))
        return 0
    chosen = names(fast=args.fast)
    if args.models:
        unknown = [m for m in args.models if m not in everything]
        if unknown:
            print(f"benchmarks.corpus: error: --models: unknown {unknown}; choose from {','.join(everything)} "
                  f"(`python -m benchmarks.corpus --list`)", file=sys.stderr)
            return 2
        chosen = [m for m in chosen if m in args.models]
    if not chosen or args.timeout <= 0:
        print("benchmarks.corpus: error: nothing to run (check --models / --fast) or --timeout <= 0", file=sys.stderr)
        return 2
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    command = shlex.join(["python", "-m", "benchmarks.corpus", *argv])
    print(f"corpus: {len(chosen)} models -> {out}", flush=True)
    started = pipeline_hash()
    if args.resummarize:
        previous = out / "corpus.json"
        if not previous.is_file():
            print(f"benchmarks.corpus: error: {previous} is missing: run without --resummarize first", file=sys.stderr)
            return 2
        earlier = json.loads(previous.read_text())
        rows = resummarize(earlier, out)
        chosen = [r["name"] for r in rows]
        command = earlier["meta"]["command"]
    else:
        rows = run_models(chosen, out, args.timeout, say=lambda s: print(s, flush=True), venv_path=args.venv_path,
                          repair=args.repair)
    meta = {"command": command, "venv_path": bool(args.venv_path), "date": time.strftime("%Y-%m-%d"),
            "timeout_s": args.timeout, "pipeline_hash_start": started, "pipeline_hash_end": pipeline_hash(),
            "machine": f"{os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}"}
    if args.resummarize:  # the run's own facts, not today's
        meta = {**earlier["meta"], "resummarized": time.strftime("%Y-%m-%d %H:%M")}
    payload = {"meta": meta, "totals": totals(rows), "models": rows}
    text, table = json.dumps(payload, indent=2, default=str) + "\n", markdown(rows, meta)
    targets = [out] + ([BENCHMARKS] if set(chosen) == set(everything) else [])
    for folder in targets:
        (folder / "corpus.json").write_text(text)
        (folder / "CORPUS.md").write_text(table)
    t = totals(rows)
    print(f"corpus: {t['passed']}/{t['cells']} cells pass; "
          + "; ".join(f"{k} {v['passed']}/{v['total']}" for k, v in t["by_type"].items())
          + f"; tables in {', '.join(str(f / 'CORPUS.md') for f in targets)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
