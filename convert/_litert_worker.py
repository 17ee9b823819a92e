"""litert-torch in its own environment (.venv-litert: torch + litert-torch, no TensorFlow, no edgeproof): reads a
torch.export program and its sample inputs written by edgeproof (convert/_litert_torch.py), converts it to a
.tflite with litert-torch and writes it atomically. Run as a script:

    python _litert_worker.py PROGRAM.pt2 SAMPLE.npz OUT.tflite

Exit 0, the file and one line `VERSIONS: {json}` on stdout (litert-torch, torch, ai-edge-litert), or exit 1 and
one line `ERROR: <type>: <message>` on stderr. Imports only torch, numpy and litert_torch, so that it runs in an
environment without edgeproof's dependencies."""
from __future__ import annotations

import os
import sys


def convert(program: str, sample: str, out: str) -> None:
    import importlib.metadata as metadata
    import json

    import numpy as np
    import torch

    import litert_torch

    exported = torch.export.load(program)
    with np.load(sample, allow_pickle=False) as arrays:
        kwargs = {name: torch.from_numpy(np.ascontiguousarray(arrays[name])) for name in arrays.files}
    edge = litert_torch.convert(exported.module(), sample_kwargs=kwargs)
    tmp = f"{out}.tmp-{os.getpid()}"
    try:
        edge.export(tmp)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    versions = {name: metadata.version(name) for name in ("litert-torch", "torch", "ai-edge-litert")}
    print("VERSIONS: " + json.dumps(versions), flush=True)



def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("ERROR: usage: _litert_worker.py PROGRAM.pt2 SAMPLE.npz OUT.tflite", file=sys.stderr)
        return 2
    try:
        convert(*argv)
    except BaseException as err:  # noqa: BLE001 - one line for the parent, whatever went wrong
        text = " ".join(str(err).split())[:600]
        print(f"ERROR: {type(err).__name__}: {text}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
