"""Run converter calls in a child process, one job at a time.

Two reasons: the TFLite converter can die with a segmentation fault (seen: full-int8 calibration
of onnx2tf's LSTM graph), which must become an `unsupported` cell rather than end the pipeline;
and the TF.js converter needs TF_ENABLE_ONEDNN_OPTS=0 (see _tfjs), which only takes effect
before TensorFlow is imported."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from edgeproof._orphan import exit_with_parent


@dataclass
class Job:
    kind: str  # "tflite" | "tfjs" | "onnx2tf" | "onnx-tf" ("crash" kills the worker: used by the tests)
    mode: str
    out: str  # .tflite file, or TF.js folder, or the SavedModel folder (ONNX -> TensorFlow)
    representative_samples: int = 256
    int8_io: bool = False
    options: Optional[dict] = None  # onnx2tf's extra keyword arguments


@dataclass
class JobOutcome:
    """One job's result: `error` is None when it succeeded, else the reason; `seconds` is its own
    wall time in the worker (None when the worker died on it)."""

    error: Optional[str] = None
    seconds: Optional[float] = None
    notes: list = field(default_factory=list)


def run_jobs(saved_model: Path, jobs: list[Job], calibration: Optional[dict[str, np.ndarray]] = None,
             timeout: int = 3600) -> list[JobOutcome]:
    """Run the jobs in a child process (restarted after a crash); one JobOutcome per job."""
    results = [JobOutcome() for _ in jobs]
    pending = list(range(len(jobs)))
    with tempfile.TemporaryDirectory(prefix="edgeproof-convert-") as tmp:
        calib_path = None
        if calibration is not None:
            calib_path = str(Path(tmp) / "calibration.npz")
            np.savez(calib_path, **calibration)
        while pending:
            spec_path = Path(tmp) / "jobs.json"
            spec_path.write_text(json.dumps({"saved_model": str(saved_model), "calibration": calib_path,
                                             "jobs": [asdict(jobs[i]) for i in pending]}))
            env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0", "TF_USE_LEGACY_KERAS": "1",
                   "TF_CPP_MIN_LOG_LEVEL": "3", "TFDF_DISABLE_WELCOME_MESSAGE": "1",
                   # onnx2tf runs `onnxsim` by name: this interpreter's scripts first, as in an activated venv
                   "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
            proc = subprocess.run([sys.executable, "-m", "edgeproof.convert._worker", str(spec_path)],
                                  capture_output=True, text=True, env=env, timeout=timeout)
            done = {}
            for line in proc.stdout.splitlines():
                if line.startswith('{"job"'):
                    row = json.loads(line)
                    done[row["job"]] = JobOutcome(row["error"], row.get("seconds"), row.get("notes") or [])
            for k, index in enumerate(pending):
                if k in done:
                    results[index] = done[k]
            finished = [pending[k] for k in done]
            rest = [i for i in pending if i not in finished]
            if rest and proc.returncode != 0:  # the worker died on the first unfinished job
                results[rest[0]] = JobOutcome(_death_reason(proc))
                rest = rest[1:]
            elif rest:
                for i in rest:
                    results[i] = JobOutcome("the converter process ended without reporting this job")
                rest = []
            pending = rest
    return results


def _death_reason(proc: subprocess.CompletedProcess) -> str:
    code = proc.returncode
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the converter crashed ({name}) on this conversion"
    tail = " ".join(proc.stderr.split()[-50:])
    return f"the converter process failed (exit {code}): {tail}"


def _run_one(saved_model: Path, job: Job, calibration) -> list:
    """Run one job; returns its notes. For ONNX -> TensorFlow jobs `saved_model` is the ONNX file."""
    from edgeproof._quant import QuantConfig

    if job.kind == "crash":  # lets the tests prove that a dying converter is contained
        os.kill(os.getpid(), signal.SIGSEGV)
    if job.kind in ("onnx2tf", "onnx-tf"):
        from ._onnx_backends import onnx_to_saved_model_reported

        return onnx_to_saved_model_reported(saved_model, Path(job.out), job.kind, job.options)
    if job.kind == "attribution":
        from ._recipes import layer_attribution, write_json

        write_json(Path(job.out), layer_attribution(saved_model, calibration, job.representative_samples))
        return []
    if job.kind == "dynamic-attribution":
        from ._dynamic_mixed import dynamic_attribution
        from ._recipes import write_json

        files = {k: Path(job.options[k]).read_bytes() for k in ("dynamic", "fp32")}
        write_json(Path(job.out), dynamic_attribution(files["dynamic"], files["fp32"], calibration))
        return []
    if job.kind == "tflite" and (job.options or {}).get("recipe"):
        from ._recipes import convert_with_recipe

        Path(job.out).write_bytes(convert_with_recipe(saved_model, job.options["recipe"], calibration))
    elif job.kind == "tflite":
        from ._tflite import convert_saved_model

        config = QuantConfig("tflite", job.mode, representative_samples=job.representative_samples,
                             int8_io=job.int8_io)
        content = convert_saved_model(saved_model, config, calibration)
        Path(job.out).write_bytes(content)
    else:
        from ._tfjs import convert_in_process

        convert_in_process(saved_model, Path(job.out), job.mode, (job.options or {}).get("dtype_map"))
    return []


def _main(spec_path: str) -> int:
    exit_with_parent()
    spec = json.loads(Path(spec_path).read_text())
    calibration = dict(np.load(spec["calibration"])) if spec["calibration"] else None
    for k, raw in enumerate(spec["jobs"]):
        start = time.perf_counter()
        notes: list = []
        try:
            notes = _run_one(Path(spec["saved_model"]), Job(**raw), calibration)
            error = None
        except (Exception, SystemExit) as err:  # reported to the parent, per job (onnx2tf may sys.exit())
            error = f"{type(err).__name__}: {' '.join(str(err).split())}" if str(err) else type(err).__name__
        print(json.dumps({"job": k, "error": error, "seconds": round(time.perf_counter() - start, 3),
                          "notes": notes}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1]))
