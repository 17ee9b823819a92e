"""Run a .tflite once in a child process before verification loads it in this one: an interpreter that
aborts or segfaults on an artifact (seen: ai-edge-litert aborting on a full-int8 transformer) becomes a
failed verdict naming the signal, instead of ending the whole verification.

    python -m edgeproof.verify._preflight MODEL.tflite SIGNATURE.json PROBES.npz   (exit 0: it ran)
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from edgeproof.errors import ArtifactRunError

TIMEOUT_S = 600


def preflight(path: Path, inputs, outputs, recorded_inputs, recorded_outputs, probes: dict[str, np.ndarray],
              label: str) -> None:
    """Raise ArtifactRunError when the interpreter dies (or hangs) running `path` on the probes."""
    with tempfile.TemporaryDirectory(prefix="edgeproof-preflight-") as tmp:
        signature = Path(tmp) / "signature.json"
        signature.write_text(json.dumps({"inputs": inputs, "outputs": outputs, "recorded_inputs": recorded_inputs,
                                         "recorded_outputs": recorded_outputs}))
        np.savez(Path(tmp) / "probes.npz", **probes)
        try:
            proc = subprocess.run([sys.executable, "-m", "edgeproof.verify._preflight", str(path), str(signature),
                                   str(Path(tmp) / "probes.npz")], capture_output=True, text=True, timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise ArtifactRunError(label, f"the TFLite interpreter did not finish the probes in {TIMEOUT_S} s") from None
    if proc.returncode < 0:
        try:
            name = signal.Signals(-proc.returncode).name
        except ValueError:
            name = f"signal {-proc.returncode}"
        raise ArtifactRunError(label, f"the TFLite interpreter crashed ({name}) running this artifact on the probes")


def _main(path: str, signature: str, probes: str) -> int:
    from edgeproof.runtime._tflite_runner import TFLiteRunner

    sig = json.loads(Path(signature).read_text())
    with np.load(probes) as data:
        feed = {k: data[k] for k in data.files}
    try:
        runner = TFLiteRunner(path, [tuple(x) for x in sig["inputs"]], [tuple(x) for x in sig["outputs"]],
                              sig["recorded_inputs"], sig["recorded_outputs"], interpreter="ai_edge_litert",
                              num_threads=1)
        runner(feed)
    except Exception:  # an ordinary error is the in-process run's to report, with its message
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(_main(*sys.argv[1:4]))
