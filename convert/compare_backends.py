"""Compare the two ONNX -> TensorFlow backends on the torch models (fp32 TFLite):

    python -m edgeproof.convert.compare_backends --artifacts artifacts --out backends.md

Per model and backend: whether it converts (and why not), operator count, TRANSPOSE count, size.
Each backend writes into its own copy of the model's folder, so the pipeline's artifacts stay intact."""
from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from edgeproof._registry import training_order
from edgeproof.train import model_dir

from ._api import convert
from ._onnx_backends import OnnxBackend


def compare(artifacts: Path | str, models: list[str] | None = None) -> list[dict]:
    rows = []
    for name in training_order(models):
        source = model_dir(artifacts, name, "torch") / "checkpoint"
        if not (source / "checkpoint.json").exists():
            continue
        for backend in OnnxBackend:
            with tempfile.TemporaryDirectory() as tmp:
                shutil.copytree(source, model_dir(tmp, name, "torch") / "checkpoint")
                row = {"model": name, "backend": backend.value}
                try:
                    (r,) = convert(name, "torch", targets=["tflite"], modes=["fp32"], onnx_backend=backend,
                                   artifacts=tmp, progress=False)
                except Exception as err:  # the ONNX->TF step itself failed
                    r, row["reason"] = None, " ".join(str(err).split())[:200]
                if r is not None and r.status == "ok":
                    row.update(converts=True, ops=r.ops["op_count"], transposes=r.ops["transposes"],
                               size_kib=round(r.size_bytes / 1024), builtin_only=r.ops["builtin_only"],
                               input_layout=r.inputs[0].layout)
                else:
                    row.update(converts=False, reason=row.get("reason") or (r.reason if r else ""))
                rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| model | backend | converts | ops | transposes | size (KiB) | builtin only | input layout |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["converts"]:
            lines.append(f"| {r['model']} | {r['backend']} | yes | {r['ops']} | {r['transposes']} | {r['size_kib']} | "
                         f"{'yes' if r['builtin_only'] else 'no'} | {r['input_layout']} |")
        else:
            lines.append(f"| {r['model']} | {r['backend']} | no: {r['reason']} | - | - | - | - | - |")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", default="artifacts")
    parser.add_argument("--model", action="append")
    parser.add_argument("--out", help="also write the table to this Markdown file (converters are chatty on stdout)")
    args = parser.parse_args()
    table = markdown(compare(args.artifacts, args.model))
    if args.out:
        Path(args.out).write_text(table + "\n")
    print(table)
