"""The torch route's LSTM in TFLite, two forms (and any given .tflite: the litert-torch route's) side by side with ONNX
Runtime, measured in one process.

onnx2tf writes an ONNX LSTM as a WHILE loop over tensor lists (the form the pipeline ships today for the zoo's
imdb_lstm/torch); with `enable_rnn_unroll` it writes every time step as builtin ops instead. This script converts
one ONNX graph (the zoo model's exported, pre-passed `model.onnx`) both ways, checks each against ONNX Runtime on
the same inputs, and times the three interleaved (ai-edge-litert's interpreter, bare invoke(); ONNX Runtime's
run()), at 1 and 2 threads: medians over rounds, ratios from the same run.

    python -m benchmarks.lstm_forms --onnx ARTIFACTS/imdb_lstm/torch/model.onnx [--out benchmarks/LSTM_FORMS.md]
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from typing import Optional, Sequence
from pathlib import Path

import numpy as np

ROUNDS, CALLS = 15, 20


def _tflite(onnx_path: Path, work: Path, unroll: bool, mode: str) -> bytes:
    from edgeproof._quant import QuantConfig
    from edgeproof.convert._onnx_backends import OnnxBackend, onnx_to_saved_model
    from edgeproof.convert._tflite import convert_saved_model

    saved = work / f"saved_model_{'unrolled' if unroll else 'loop'}"
    onnx_to_saved_model(onnx_path, saved, OnnxBackend.ONNX2TF,
                        {"not_use_onnxsim": True, **({"enable_rnn_unroll": True} if unroll else {})})
    return convert_saved_model(saved, QuantConfig("tflite", mode))


def _interpreter(content: bytes, threads: int):
    from ai_edge_litert.interpreter import Interpreter  # the runtime the pipeline verifies with

    interpreter = Interpreter(model_content=content, num_threads=threads)
    interpreter.allocate_tensors()
    return interpreter


def _feed(interpreter, x: np.ndarray) -> None:
    (detail,) = interpreter.get_input_details()
    interpreter.set_tensor(detail["index"], x.astype(detail["dtype"]))


def _output(interpreter) -> np.ndarray:
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def _time(contestants: dict, rounds: int = ROUNDS, calls: int = CALLS) -> dict[str, float]:
    """Median seconds per call of each contestant, rounds interleaved."""
    samples: dict[str, list[float]] = {k: [] for k in contestants}
    for fn in contestants.values():
        fn()  # warm-up
    for _ in range(rounds):
        for name, fn in contestants.items():
            start = time.perf_counter()
            for _ in range(calls):
                fn()
            samples[name].append((time.perf_counter() - start) / calls)
    return {k: float(np.median(v)) for k, v in samples.items()}


def _ops(content: bytes) -> str:
    ops = [op["op_name"] for op in _interpreter(content, 1)._get_ops_details()]
    top = sorted(set(ops), key=lambda op: -ops.count(op))[:4]
    return f"{len(ops)} ops ({', '.join(f'{op} x{ops.count(op)}' for op in top)})"


def measure(onnx_path: Path, mode: str = "fp32", extra: Optional[dict[str, Path]] = None) -> dict:
    """The loop and unrolled forms converted here from `onnx_path`, plus `extra` .tflite files by name (the
    litert-torch route's artifact), timed against ONNX Runtime on the same token ids."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(onnx_path))
    (graph_input,) = model.graph.input
    shape = [d.dim_value or 1 for d in graph_input.type.tensor_type.shape.dim]
    dtype = onnx.helper.tensor_dtype_to_np_dtype(graph_input.type.tensor_type.elem_type)
    x = np.random.default_rng(0).integers(1, 1000, size=shape).astype(dtype)  # token ids
    with tempfile.TemporaryDirectory(prefix="lstm-forms-") as tmp:
        forms = {name: _tflite(onnx_path, Path(tmp), unroll, mode) for name, unroll in
                 (("loop", False), ("unrolled", True))}
    forms.update({name: path.read_bytes() for name, path in (extra or {}).items()})
    result = {"mode": mode, "input": shape, "forms": {}, "threads": {}}
    for threads in (1, 2):
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        reference = session.run(None, {graph_input.name: x})[0]
        contestants = {"onnxruntime fp32": lambda: session.run(None, {graph_input.name: x})}
        for name, content in forms.items():
            interpreter = _interpreter(content, threads)
            _feed(interpreter, x)
            interpreter.invoke()
            error = float(np.max(np.abs(_output(interpreter).astype(np.float64) - reference)))
            result["forms"][name] = {"bytes": len(content), "ops": _ops(content), "max_abs_error_vs_ort": error}
            contestants[f"tflite {mode} {name}"] = interpreter.invoke
        result["threads"][threads] = _time(contestants)
    return result


def report(result: dict, onnx_path: Path, seconds: float, extra: Sequence[str] = ()) -> str:
    mode = result["mode"]
    lines = ["# The torch route's LSTM in TFLite: its forms vs ONNX Runtime", "",
             f"Generated by `python -m benchmarks.lstm_forms --onnx {onnx_path}"
             + "".join(f" --tflite {e}" for e in extra) + f"` ({seconds:.0f} s); input "
             f"{result['input']}. Medians over {ROUNDS} interleaved rounds of {CALLS} calls, one process, bare "
             "`invoke()` / `InferenceSession.run()`; the ratios come from the same run.", "",
             "| form | size | ops | max error vs ONNX Runtime |", "|---|---|---|---|"]
    for name, form in result["forms"].items():
        lines.append(f"| tflite {mode} {name} | {form['bytes'] / 1024:.0f} KiB | {form['ops']} | "
                     f"{form['max_abs_error_vs_ort']:.2g} |")
    lines += ["", "| threads | contestant | median | vs onnxruntime fp32 |", "|---|---|---|---|"]
    for threads, times in result["threads"].items():
        base = times["onnxruntime fp32"]
        for name, t in times.items():
            lines.append(f"| {threads} | {name} | {t * 1e3:.2f} ms | {t / base:.2f}x |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--onnx", type=Path, required=True, help="an ONNX graph with an LSTM and one input")
    parser.add_argument("--mode", default="fp32", choices=["fp32", "dynamic"])
    parser.add_argument("--out", type=Path, default=None, help="write the markdown table here")
    parser.add_argument("--tflite", action="append", default=[], metavar="NAME=FILE",
                        help="another form of the same model to time beside them, e.g. litert-torch="
                             "ARTIFACTS/imdb_lstm/torch/tflite/fp32-litert-torch.tflite (repeatable)")
    args = parser.parse_args(argv)
    extra = dict(item.split("=", 1) for item in args.tflite if "=" in item)
    bad = [item for item in args.tflite if "=" not in item] + [p for p in extra.values() if not Path(p).is_file()]
    if bad:
        print(f"lstm_forms: error: --tflite {bad[0]}: give NAME=FILE with an existing .tflite", file=sys.stderr)
        return 2
    if not args.onnx.is_file():
        print(f"lstm_forms: error: {args.onnx} is not a file; give the zoo model's model.onnx "
              "(artifacts/imdb_lstm/torch/model.onnx after `edgeproof convert`)", file=sys.stderr)
        return 2
    start = time.perf_counter()
    result = measure(args.onnx, args.mode, {name: Path(p) for name, p in extra.items()})
    text = report(result, args.onnx, time.perf_counter() - start, args.tflite)
    if args.out:
        tmp = args.out.with_name(args.out.name + ".tmp")
        tmp.write_text(text)
        shutil.move(tmp, args.out)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
