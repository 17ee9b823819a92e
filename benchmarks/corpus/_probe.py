"""Where onnx2tf breaks on a corpus model: runs the onnx2tf CLI on an ONNX source's file with the sample data's
shapes fixed (`-ois`, batch 1) and non-image inputs kept as they are (`-kat`), with the interpreter's bin folder on
PATH (so that onnx2tf's `onnxsim` subprocess runs), and prints onnx2tf's ERROR lines, which name the ONNX node it
failed on. `python -m benchmarks.corpus._probe --out DIR NAME [NAME...]` (DIR: the corpus runner's --out, whose
models/ are read); onnx2tf's whole output goes to DIR/probe/NAME.log. onnx2tf runs on a copy: its onnxsim step
rewrites the file it is given in place."""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ._worker import build_cached

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def probe(name: str, out: Path, timeout_s: float = 600) -> list[str]:
    built, _, _ = build_cached(name, out)  # the corpus runner's cached build (built now if missing)
    if built.kind.value != "onnx":
        return [f"{name}: a {built.kind.value} source (probe takes the ONNX sources only)"]
    with np.load(built.sample, allow_pickle=False) as z:
        shapes = {k: z[k].shape for k in z.files if k not in ("labels", "y")}
    folder = out / "probe"
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / f"{name}.onnx"  # onnx2tf's onnxsim step rewrites its input file in place: never the source
    shutil.copyfile(built.model, copy)
    argv = [str(Path(sys.executable).parent / "onnx2tf"), "-i", str(copy), "-o", str(folder / f"{name}_saved_model"),
            "-ois", *[f"{k}:{','.join(str(d) for d in (1,) + tuple(s[1:]))}" for k, s in shapes.items()]]
    keep = [k for k, s in shapes.items() if len(s) != 4]
    if keep:
        argv += ["-kat", *keep]
    try:
        env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, env=env)
        text = ANSI.sub("", done.stdout + done.stderr)
    except subprocess.TimeoutExpired:
        text = f"onnx2tf timed out after {timeout_s:.0f} s"
    (folder / f"{name}.log").write_text(" ".join(argv) + "\n" + text)
    errors = [l.strip() for l in text.splitlines() if "ERROR" in l or "Error" in l][:12]
    return errors or [l for l in text.splitlines() if l.strip()][-3:]


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.corpus._probe")
    p.add_argument("--out", required=True)
    p.add_argument("names", nargs="+")
    args = p.parse_args(argv)
    for name in args.names:
        print(f"== {name}")
        for line in probe(name, Path(args.out).resolve()):
            print(f"   {line[:400]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
