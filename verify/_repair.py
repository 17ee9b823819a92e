"""The repair ladder: an 8-bit artifact that did not pass gets candidates, each converted and proven by the same
gate (probes and the task metric on the evaluation set, in its own runtime); the ladder stops at the first
passing one, which is its own cell (e.g. `tflite/int8-16x8`) with its recipe in conversion.json, parity.json and
the bundle manifest, while the original cell stays visible as failed. An artifact that passes is left alone
(its attribution is still recorded).

TFLite full int8: more calibration (4x the examples; skipped when the calibration set has no more examples than
the plain cell used), then int16 activations with int8 weights (16x8), then 16x8 with float kernels for the ops
that have no 16x8 kernel (tried only when plain 16x8 could not be converted), then mixed precision keeping the
worst layers in float (1, 2, 4, 8 of them, worst first by the attribution: error relative to the tensor's typical
value, which finds the tensors whose scale a mask or an outlier set), then every op in float except the
compute-heavy ones (`matmuls`: the weights and nearly all the arithmetic stay int8; attention masks, softmax and
LayerNorm statistics, which int8 loses, do not).
TFLite dynamic range: the worst hybrid layers (by the output error each adds alone) compute in float from their
int8 weights, 1, 2, 4, 8 of them, then every one (weight-only int8: the on-the-fly int8 activations are gone).
TF.js uint8: the worst weight tensors kept at 16 bits (float16): 1, 2, 4, 8 of them.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from edgeproof._atomic import write_bytes_atomic
from edgeproof._quant import QuantConfig
from edgeproof.convert import Source, load_records
from edgeproof.convert._api import convert_variants, dynamic_attribution, int8_attribution

from . import _attribution
from ._api import load_verdicts, verify_source
from ._browser_rows import BROWSER_RUNTIMES
from ._verdict import ArtifactVerdict, Status

REPAIR_JSON = "repair.json"
CALIBRATION_FACTOR = 4
PLAIN_SAMPLES = QuantConfig.representative_samples  # the plain int8 cell's calibration examples
FLOAT_COUNTS = (1, 2, 4, 8)
# the ops that hold the weights and nearly all the arithmetic; the `matmuls` rung keeps only these in int8
COMPUTE_OPS = frozenset({"FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "BATCH_MATMUL", "TRANSPOSE_CONV",
                         "CONV_3D", "GATHER", "EMBEDDING_LOOKUP"})


@dataclass
class RepairOutcome:
    cell: str  # e.g. "tflite/int8"
    status: str  # "left alone: passes" | "repaired" | "not repaired" | "not attempted: ..."
    chosen: Optional[str] = None  # the passing variant's cell
    tried: list[dict[str, Any]] = field(default_factory=list)  # {"cell", "recipe", "verdict"}
    attribution: Optional[str] = None  # path of the attribution JSON
    speed: Optional[dict[str, Any]] = None  # the chosen artifact against fp32 and dynamic, one run
    browsers: dict[str, str] = field(default_factory=dict)  # the chosen .tflite's verdict in each browser runtime


@dataclass(frozen=True)
class Rung:
    name: str  # the variant: tflite/int8-<name>
    recipe: dict
    only_if_unsupported: Optional[str] = None  # tried only when this earlier rung could not be converted
    options: Optional[dict] = None  # the converter worker's options; TFLite rungs: the recipe itself

    def worker_options(self) -> dict:
        return self.options if self.options is not None else {"recipe": self.recipe}


def _tflite_ladder(layers: list[dict], more_calibration: bool = True) -> Iterator[Rung]:
    """The rungs in the order tried."""
    if more_calibration:
        calibration = {"kind": "calibration", "samples": PLAIN_SAMPLES * CALIBRATION_FACTOR}
        yield Rung("calib", calibration)
    yield Rung("16x8", {"kind": "16x8"})
    fallback = {"kind": "16x8", "float_fallback": True}
    yield Rung("16x8f", fallback, only_if_unsupported="16x8")
    worst = [r["tensor"] for r in layers]
    for k in FLOAT_COUNTS:
        if k <= len(worst):
            recipe = {"kind": "mixed", "float_layers": worst[:k],
                      "float_layers_source": [r.get("source") for r in layers[:k]]}
            yield Rung(f"mixed{k}", recipe)
    light = sorted({r["op"] for r in layers} - COMPUTE_OPS)
    if light and any(r["op"] in COMPUTE_OPS for r in layers):
        recipe = {"kind": "mixed", "float_ops": light}
        yield Rung("matmuls", recipe)


def _dynamic_ladder(layers: list[dict], more_calibration: bool = True) -> Iterator[Rung]:
    """Dynamic range: the worst hybrid layers compute in float (their weights still int8), then all of them
    (weight-only int8)."""
    worst = [r["tensor"] for r in layers]
    for k in FLOAT_COUNTS:
        if k < len(worst):
            yield Rung(f"mixed{k}", {"kind": "dynamic-mixed", "float_layers": worst[:k],
                                     "float_layers_source": [r.get("source") for r in layers[:k]]})
    if worst:
        yield Rung("weights", {"kind": "dynamic-mixed", "all_layers": True})


def _tfjs_ladder(weights: list[dict], more_calibration: bool = True) -> Iterator[Rung]:
    worst = [r["tensor"] for r in weights]
    for k in FLOAT_COUNTS:
        if k <= len(worst):
            recipe = {"kind": "mixed", "float_weights": worst[:k]}
            yield Rung(f"mixed{k}", recipe, options={"dtype_map": {"float16": worst[:k], "uint8": True}})


LADDERS = {"tflite/int8": _tflite_ladder, "tflite/dynamic": _dynamic_ladder, "tfjs/uint8": _tfjs_ladder}
# a passing dynamic-range model gets no attribution: it builds and runs one model per layer
ATTRIBUTED_WHEN_PASSING = frozenset({"tflite/int8", "tfjs/uint8"})


def _attribute(source: Source, root: Path, verdict: ArtifactVerdict, natives: dict) -> dict[str, Any]:
    fp32 = natives.get(f"{verdict.target}/fp32")
    payload: dict[str, Any] = {"cell": verdict.cell, "split": _attribution.split(
        fp32.probe.get("max_abs_error") if fp32 else None, verdict.probe.get("max_abs_error"))}
    if verdict.cell == "tflite/dynamic":
        payload["layers"] = _attribution.tflite_layers(root, dynamic_attribution(source, root))
    elif verdict.target == "tflite":
        payload["layers"] = _attribution.tflite_layers(root, int8_attribution(source, root))
    else:
        payload["weights"] = _attribution.tfjs_weights(root / "tfjs" / "fp32" / "model.json", root / verdict.path)
    _attribution.save(root, verdict.cell, payload)
    return payload


def _climb(source: Source, root: Path, verdict: ArtifactVerdict, ladder, state: dict, say) -> RepairOutcome:
    outcome = RepairOutcome(verdict.cell, "not repaired")
    unsupported: set[str] = set()
    for rung in ladder:
        if rung.only_if_unsupported and rung.only_if_unsupported not in unsupported:
            continue
        recipe = rung.recipe
        (record,) = convert_variants(source, root, [(verdict.target, verdict.mode, {
            "variant": rung.name, "recipe": recipe, "options": rung.worker_options()})], progress=False)
        if record.status != "ok":
            unsupported.add(rung.name)
            outcome.tried.append({"cell": record.key, "recipe": recipe, "verdict": f"unsupported: {record.reason}"})
            say(f"   repair {verdict.key} -> {record.key}: unsupported: {record.reason}", flush=True)
            continue
        # a .tflite candidate that passes natively is proven in the browser runtimes too (the web demo runs .tflite
        # files in LiteRT.js, and deploy --target web ships one only on a passing row); failing ones are not
        result = verify_source(source, root, cells=[record.key], baseline=state.get("baseline"), say=say,
                               browsers=BROWSER_RUNTIMES if verdict.target == "tflite" else (),
                               browser_only_passing=True)
        state["baseline"] = result.baseline
        (candidate,) = [v for v in result.verdicts if not v.browser]
        outcome.tried.append({"cell": record.key, "recipe": recipe, "verdict": candidate.summary()})
        if candidate.status is Status.PASS:
            outcome.status, outcome.chosen = "repaired", record.key
            outcome.browsers = {v.browser: v.summary() for v in result.verdicts if v.browser}
            if verdict.target == "tflite":
                outcome.speed = _speed_of(source, root, record.key)
            break
    return outcome


def _more_calibration(source: Source) -> bool:
    """Whether the calibration set has more examples than the plain int8 cell used (else more calibration is the
    same conversion again)."""
    arrays = source.calibration(PLAIN_SAMPLES * CALIBRATION_FACTOR)
    return len(next(iter(arrays.values()))) > PLAIN_SAMPLES


def _speed_of(source: Source, root: Path, chosen: str) -> Optional[dict]:
    from ._speed import compare_speed

    records = {r.key: r for r in load_records(root) if r.status == "ok"}
    try:
        return compare_speed(source.contract, records, chosen, root, source.contract.probe_inputs())
    except (RuntimeError, ValueError, OSError) as err:  # the timing is a report, never a verdict
        return {"error": f"{type(err).__name__}: {str(err)[:200]}"}


def repair_model(source: Source, root: Path, say: Callable[..., None] = print,
                 cells: Optional[list[str]] = None) -> list[RepairOutcome]:
    """Attribution for every 8-bit artifact of the model in `root`, and the ladder for those that did not pass
    (`cells`: only these, the others' earlier outcomes kept); writes root/repair.json and returns the outcomes."""
    root = Path(root)
    check_cells(cells)
    natives = {v.cell: v for v in load_verdicts(root)[1] if not v.browser and not v.variant}
    converted = {r.key for r in load_records(root) if r.status == "ok" and not r.variant}
    outcomes, state = [], {}
    for cell, ladder_of in LADDERS.items():
        if cells and cell not in cells:
            continue
        verdict = natives.get(cell)
        if verdict is None or cell not in converted or verdict.status is Status.UNSUPPORTED:
            continue
        if verdict.status is Status.PASS and cell not in ATTRIBUTED_WHEN_PASSING:
            outcomes.append(RepairOutcome(cell, "left alone: passes"))
            continue
        try:
            payload = _attribute(source, root, verdict, natives)
        except (RuntimeError, ValueError, OSError, KeyError) as err:
            outcomes.append(RepairOutcome(cell, f"not attempted: attribution failed ({str(err)[:200]})"))
            continue
        attribution = str(Path(_attribution.ATTRIBUTION_DIR) / (cell.replace("/", "-") + ".json"))
        if verdict.status is Status.PASS:
            outcomes.append(RepairOutcome(cell, "left alone: passes", attribution=attribution))
            continue
        say(f"[{source.name}/{source.framework}] repairing {cell} ({verdict.summary()})", flush=True)
        ladder = ladder_of(payload.get("layers") or payload.get("weights") or [], _more_calibration(source))
        outcome = _climb(source, root, verdict, ladder, state, say)
        outcome.attribution = attribution
        outcomes.append(outcome)
    kept = [o for o in _earlier_outcomes(root) if cells and o.get("cell") not in cells]
    write_bytes_atomic(root / REPAIR_JSON, json.dumps(kept + [asdict(o) for o in outcomes], indent=1).encode())
    _rewrite_report(source, root)
    return outcomes


def check_cells(cells: Optional[list[str]]) -> None:
    unknown = sorted(set(cells or ()) - set(LADDERS))
    if unknown:
        raise ValueError(f"no repair ladder for {', '.join(unknown)}: the cells with one are {', '.join(LADDERS)}")


def _earlier_outcomes(root: Path) -> list[dict]:
    try:
        earlier = json.loads((root / REPAIR_JSON).read_text())
    except (OSError, ValueError):
        return []
    return [o for o in earlier if isinstance(o, dict)] if isinstance(earlier, list) else []


def _rewrite_report(source: Source, root: Path) -> None:
    """report.md again, now with the attribution and what the ladder tried."""
    from ._api import ModelVerification, Reference
    from ._model_report import write_model_report

    reference, verdicts = load_verdicts(root)
    if reference is not None:
        write_model_report(root, source, ModelVerification(Reference(**reference), verdicts))
