"""litert-torch (Google's maintained PyTorch -> TFLite converter) as a second TFLite route for torch sources,
beside torch -> ONNX -> TensorFlow -> TFLite. Its cell is the variant `tflite/fp32-litert-torch`: converted,
verified by the same gate and deployed like any other cell, so a model the ONNX route cannot convert (or
converts imprecisely) still gets a proven .tflite, and the report says which route each artifact took.

litert-torch declares torch<2.15 and ai-edge-litert 2.3 but pulls jax, transformers and an xdsl that the
pipeline's lock cannot take (`pip install -c requirements/pipeline.lock litert-torch` is ResolutionImpossible), so
it lives in its own environment (`scripts/setup.sh litert` -> .venv-litert, requirements/litert.lock) and runs
there as a script (`_litert_worker.py`): this process wraps the module so that it takes the contract's canonical
inputs by name (NHWC images permuted inside) and returns its outputs by name, traces it with torch.export, and
hands the program and one example to the worker. Only TFLite fp32 is made this way; the quantized cells stay on
the SavedModel route, whose converters calibrate and attribute them."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from edgeproof._spec import Layout, TensorSpec

VARIANT = "litert-torch"
PYTHON_ENV = "EDGEPROOF_LITERT_PYTHON"  # the environment's python; "off" turns the route off
TIMEOUT_ENV = "EDGEPROOF_LITERT_TIMEOUT"  # seconds per conversion (default 900)
WORKER = Path(__file__).with_name("_litert_worker.py")
SETUP_HINT = ("scripts/setup.sh litert creates .venv-litert; or set EDGEPROOF_LITERT_PYTHON to a python with "
              "litert-torch")


class LitertRefused(RuntimeError):
    """litert-torch could not convert the program; the message is its reason."""


@dataclass
class TorchProgram:
    """A torch source as litert-torch gets it: the module, its inputs in forward()'s order (canonical, as the
    contract has them, and as the module takes them) and its outputs' names."""

    module: Any
    inputs: Sequence[TensorSpec]
    native: Sequence[TensorSpec]
    outputs: Sequence[str]
    structure: str = "tensor"  # what forward() returns: tensor | dict | sequence


def litert_python() -> tuple[Optional[Path], str]:
    """(the litert-torch environment's python, "") or (None, why the route is not tried)."""
    chosen = os.environ.get(PYTHON_ENV, "").strip()
    if chosen.lower() == "off":
        return None, f"{PYTHON_ENV}=off"
    if chosen:
        path = Path(chosen)
        return (path, "") if path.is_file() else (None, f"{PYTHON_ENV}={chosen} is not a file ({SETUP_HINT})")
    for base in (Path(sys.prefix).parent, Path.cwd()):  # beside this environment (the repo's .venv), or here
        path = base / ".venv-litert" / "bin" / "python"
        if path.is_file():
            return path, ""
    return None, f"no litert-torch environment ({SETUP_HINT})"


def _canonical(program: TorchProgram):
    """The module taking the canonical inputs by keyword and returning {output name: tensor}."""
    import torch

    names = [t.name for t in program.inputs]
    permute = [len(t.shape) == 4 and t.layout is Layout.NHWC and n.layout is Layout.NCHW
               for t, n in zip(program.inputs, program.native)]
    outputs, structure = list(program.outputs), program.structure

    class Canonical(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, **inputs):
            out = self.net(*[inputs[n].permute(0, 3, 1, 2) if p else inputs[n] for n, p in zip(names, permute)])
            flat = [out] if structure == "tensor" else list(out.values()) if structure == "dict" else list(out)
            return dict(zip(outputs, flat))

    return Canonical(program.module).eval()


def _timeout() -> float:
    text = os.environ.get(TIMEOUT_ENV, "900")
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise LitertRefused(f"{TIMEOUT_ENV}={text!r} is not a number of seconds > 0; unset it or give e.g. 900")
    return value


def _reason(stderr: str, returncode: int) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line[len("ERROR: "):] for line in lines if line.startswith("ERROR: ")]
    if errors:
        return errors[-1][:600]
    return f"the litert-torch worker exited with {returncode}: {(lines[-1] if lines else 'no output')[:400]}"


def convert_program(program: TorchProgram, sample: dict[str, np.ndarray], out: Path, python: Path,
                    timeout: Optional[float] = None) -> dict[str, str]:
    """`program` traced on `sample` (canonical inputs, one batch) and converted by litert-torch into `out`;
    returns the versions the worker converted with ({"litert-torch": ..., "torch": ..., "ai-edge-litert": ...})."""
    import torch

    timeout = timeout or _timeout()
    kwargs = {k: torch.from_numpy(np.ascontiguousarray(sample[k])) for k in (t.name for t in program.inputs)}
    with tempfile.TemporaryDirectory(prefix=".litert-", dir=out.parent) as tmp:
        try:
            with torch.no_grad():
                exported = torch.export.export(_canonical(program), (), kwargs, strict=False)
        except Exception as err:
            raise LitertRefused(f"torch.export could not trace the module: {type(err).__name__}: "
                                f"{' '.join(str(err).split())[:400]}") from None
        torch.export.save(exported, os.path.join(tmp, "program.pt2"))
        np.savez(os.path.join(tmp, "sample.npz"), **{k: v.numpy() for k, v in kwargs.items()})
        args = [str(python), str(WORKER), os.path.join(tmp, "program.pt2"), os.path.join(tmp, "sample.npz"), str(out)]
        try:
            proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=tmp)
        except subprocess.TimeoutExpired:
            raise LitertRefused(f"litert-torch did not finish in {timeout:.0f} s ({TIMEOUT_ENV})") from None
    if proc.returncode != 0 or not out.is_file():
        raise LitertRefused(_reason(proc.stderr, proc.returncode))
    return _versions(proc.stdout)


def _versions(stdout: str) -> dict[str, str]:
    import json

    for line in reversed(stdout.splitlines()):
        if line.startswith("VERSIONS: "):
            try:
                found = json.loads(line[len("VERSIONS: "):])
            except ValueError:
                return {}
            return {str(k): str(v)[:40] for k, v in found.items()} if isinstance(found, dict) else {}
    return {}


def litert_cell(source: Any, root: Path, configs: Sequence[Any], notes: list[str], describe, say) -> list:
    """The `tflite/fp32-litert-torch` record of a torch source whose requested cells include TFLite fp32 ([] for
    other sources); when the route cannot be tried, [] and a note saying why (in conversion.json and the log)."""
    import time

    from edgeproof._quant import QuantMode, Target

    from ._artifact import ArtifactRecord
    from ._cells import _drop_stale, _keep
    from ._records import artifact_path

    config = next((c for c in configs if c.target is Target.TFLITE and c.mode is QuantMode.FP32), None)
    program = source.torch_program() if config is not None else None
    if program is None:
        return []
    python, why = litert_python()
    label = f"[{source.name}/{source.framework}]"
    if python is None:
        notes.append(f"litert-torch route not tried: {why}")
        say(f"{label} litert-torch route not tried: {why}", flush=True)
        return []
    say(f"{label} PyTorch -> TFLite with litert-torch ({python})", flush=True)
    record = ArtifactRecord(source.name, source.framework, config.target.value, config.mode.value,
                            "torch>litert-torch>tflite", status="ok",
                            path=artifact_path(config.target, config.mode, VARIANT),
                            variant=VARIANT, recipe={"route": VARIANT},
                            notes=[n for n in notes if not n.startswith("litert-torch")])
    probes = source.contract.probe_inputs()
    batch = source.static_batch or 1
    staged = root / f".litert-{os.getpid()}.tflite"
    start = time.perf_counter()
    try:
        record.recipe.update(convert_program(program, {k: v[:batch] for k, v in probes.items()}, staged, python))
        record.convert_seconds = round(time.perf_counter() - start, 2)
        _keep(config, staged, record, root, describe)
        say(f"   {record.key}: ok ({record.size_bytes / 1024:.0f} KiB, {record.convert_seconds:.0f} s)", flush=True)
    except Exception as err:  # litert-torch's reason is the product here: the ONNX route's cells stand
        record.status, record.path = "unsupported", None
        record.reason = str(err) if isinstance(err, LitertRefused) else f"{type(err).__name__}: {str(err)[:500]}"
        _drop_stale(root, config, VARIANT)
        say(f"   {record.key}: unsupported: {record.reason}", flush=True)
    finally:
        staged.unlink(missing_ok=True)
    return [record]
