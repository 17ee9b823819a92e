"""The converter calls of one model, in a worker process (see _worker), and one record per cell written
under the model's folder: ok, or unsupported with the converter's reason. Shared by every Source."""
from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Optional

from edgeproof._atomic import replacing_dir, write_bytes_atomic
from edgeproof._quant import QuantConfig, Target

from ._artifact import ArtifactRecord
from ._records import artifact_path


class ConverterRefused(RuntimeError):
    """A converter call that failed in the worker; its message is already the converter's reason."""


def _first_line(err: BaseException) -> str:
    """The converter's reason in one readable line (MLIR errors carry pages of call-site noise)."""
    import re

    text = " ".join(str(err).split())
    messages = []
    for m in re.findall(r"error: ((?:(?!error: |loc\().)+)", text):
        m = m.strip().rstrip(".\\n ")
        if m and m not in messages and not m.startswith("loc("):
            messages.append(m)
    text = "; ".join(messages) if messages else text
    if isinstance(err, ConverterRefused):
        return text[:500]
    return f"{type(err).__name__}: {text[:500]}" if text else type(err).__name__


def _run_converters(saved_model: Path, tfjs_saved_model: Path, jobs: list, configs: list[QuantConfig],
                    calibration: Optional[dict]) -> list:
    """One JobOutcome per job; TF.js jobs read `tfjs_saved_model` when it differs (a dynamic-batch export)."""
    from ._worker import run_jobs

    if tfjs_saved_model == saved_model:
        return run_jobs(saved_model, jobs, calibration)
    tfjs_jobs = {id(j) for j, c in zip(jobs, configs) if c.target is Target.TFJS}
    lite = [j for j in jobs if id(j) not in tfjs_jobs]
    first = run_jobs(saved_model, lite, calibration) if lite else []
    second = run_jobs(tfjs_saved_model, [j for j in jobs if id(j) in tfjs_jobs], calibration)
    return [(second if id(j) in tfjs_jobs else first).pop(0) for j in jobs]


def _keep(config: QuantConfig, out: Path, record: ArtifactRecord, root: Path, describe) -> None:
    """Describe the converted artifact in `out` and move it to its place under `root`."""
    from ._ops import op_report
    from ._tfjs import check_tfjs_model
    from ._tflite import describe_tensors

    rel = artifact_path(config.target, config.mode, record.variant)
    if config.target is Target.TFLITE:
        content = out.read_bytes()
        record.inputs, record.outputs, record.layout_changes = describe(config.target, describe_tensors(content))
        record.ops = op_report(content)
        record.size_bytes = len(content)
        write_bytes_atomic(root / rel, content)
        return
    folder = (root / rel).parent
    signature = check_tfjs_model(out)
    with replacing_dir(folder) as tmp:
        shutil.copytree(out, tmp, dirs_exist_ok=True)
    record.size_bytes = sum(p.stat().st_size for p in folder.iterdir())
    record.inputs, record.outputs, record.layout_changes = describe(config.target, signature)


def _drop_stale(root: Path, config: QuantConfig, variant: Optional[str] = None) -> None:
    """An artifact from an earlier run must not outlive a cell that failed now."""
    rel = artifact_path(config.target, config.mode, variant)
    stale = root / rel if config.target is Target.TFLITE else (root / rel).parent
    if stale.is_dir():
        shutil.rmtree(stale)
    elif stale.exists():
        stale.unlink()


def convert_cells(model: str, framework: str, root: Path, configs: list[QuantConfig], saved_model: Path,
                  calibration: Optional[dict], route_prefix: list[str], notes: list[str], source_seconds: float,
                  describe, say, tfjs_saved_model: Optional[Path] = None,
                  variants: Optional[list[dict]] = None) -> list[ArtifactRecord]:
    """The converter calls in a worker process (see _worker), then one record per cell, written under `root`
    (ok, or unsupported: the converter's reason). `describe(target, described)` turns what the artifact
    says about its tensors (TFLite: (inputs, outputs) dicts; TF.js: its signature) into
    (inputs, outputs, layout_changes). `variants`: per config, {"variant", "recipe", "options"} of a variant
    cell (a repair recipe), or None for the plain cell."""
    from ._worker import Job

    variants = variants or [None] * len(configs)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
    jobs = [Job(c.target.value, c.mode.value, str(staging / f"{c.target.value}-{c.mode.value}-{k}"),
                c.representative_samples, c.int8_io, options=(v or {}).get("options"))
            for k, (c, v) in enumerate(zip(configs, variants))]
    say(f"[{model}/{framework}] converting {', '.join(c.key for c in configs)}", flush=True)
    start = time.perf_counter()
    outcomes = _run_converters(saved_model, tfjs_saved_model or saved_model, jobs, configs, calibration)
    worker_seconds = time.perf_counter() - start  # includes the workers' start-up (TensorFlow import)
    cells_seconds = sum(o.seconds or 0.0 for o in outcomes)
    say(f"   converter calls: {cells_seconds:.1f} s, worker start-up and TensorFlow import: "
        f"{max(worker_seconds - cells_seconds, 0.0):.1f} s", flush=True)
    records = []
    for config, job, outcome, variant in zip(configs, jobs, outcomes, variants):
        name = (variant or {}).get("variant")
        record = ArtifactRecord(model, framework, config.target.value, config.mode.value,
                                ">".join(route_prefix + [config.target.value]), status="ok",
                                path=artifact_path(config.target, config.mode, name), notes=list(notes),
                                convert_seconds=None if outcome.seconds is None else round(outcome.seconds, 2),
                                source_export_seconds=round(source_seconds, 2), variant=name,
                                recipe=(variant or {}).get("recipe"))
        try:
            if outcome.error:
                raise ConverterRefused(outcome.error)
            _keep(config, Path(job.out), record, root, describe)
            say(f"   {record.key}: ok ({record.size_bytes / 1024:.0f} KiB)", flush=True)
        except Exception as err:  # the converter's reason is the product here: report it, go on
            record.status, record.path, record.reason = "unsupported", None, _first_line(err)
            record.convert_seconds, record.layout_changes = None, []
            _drop_stale(root, config, name)
            say(f"   {record.key}: unsupported: {record.reason}", flush=True)
        records.append(record)
    shutil.rmtree(staging, ignore_errors=True)
    return records
