"""Dynamic-range TFLite with chosen layers back in float: the repair recipe `dynamic-mixed` and its attribution.

A dynamic-range .tflite stores each large weight as int8. The ops with a hybrid kernel (fully connected,
convolutions, batch matmul) take float activations and quantize them to int8 on the fly, row by row; that
rounding and the weights' own rounding are the artifact's error. Feeding an op its int8 weight through a DEQUANTIZE
makes it run its float kernel on float activations, the weight still stored as int8 (the file barely grows); every
other op stays as the converter made it. With every hybrid op so treated the model is weight-only int8.

Attribution: for each hybrid op, the model's output error against the fp32 .tflite when that op alone keeps its
int8 weight (every other hybrid op in float), over a few calibration examples: the error the layer adds by itself.
Rows are ranked worst first; the repair ladder keeps the worst 1, 2, 4, 8 in float.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Optional

import numpy as np

ATTRIBUTION_EXAMPLES = 8  # inputs per candidate model: each hybrid op costs one model build and this many runs


@dataclass(frozen=True)
class HybridOp:
    subgraph: int
    op: str  # the TFLite op type, e.g. FULLY_CONNECTED
    tensor: str  # the op's output tensor name: what the recipe and the report call the layer
    weight: int  # the int8 weight's tensor index in the subgraph
    weight_name: str = ""  # that weight's tensor name: names the layer when its output is a model output


def _schema():
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    return schema, flatbuffer_utils


def _op_names(schema) -> dict[int, str]:
    return {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}


def hybrid_ops(model) -> list[HybridOp]:
    """Every op of the model (a flatbuffer object) with a float output and a constant int8 input."""
    schema, _ = _schema()
    names, out = _op_names(schema), []
    for g, graph in enumerate(model.subgraphs):
        for op in graph.operators:
            if op.outputs is None or not len(op.outputs) or graph.tensors[op.outputs[0]].type != schema.TensorType.FLOAT32:
                continue
            for t in (op.inputs if op.inputs is not None else ()):
                tensor = graph.tensors[t] if t >= 0 else None
                data = model.buffers[tensor.buffer].data if tensor is not None and tensor.buffer else None
                if tensor is not None and tensor.type == schema.TensorType.INT8 and data is not None and len(data):
                    code = model.operatorCodes[op.opcodeIndex]
                    kind = names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "?")
                    out.append(HybridOp(g, kind, graph.tensors[op.outputs[0]].name.decode(), t, tensor.name.decode()))
                    break
    return out


def _dequantize_op(model, schema) -> int:
    """The index of the model's DEQUANTIZE operator code, added when the model has none."""
    for i, code in enumerate(model.operatorCodes):
        if max(code.builtinCode, code.deprecatedBuiltinCode) == schema.BuiltinOperator.DEQUANTIZE:
            return i
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.DEQUANTIZE
    code.version = 2  # int8 input
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def _float_from_int8(model, subgraph: int, weight: int, opcode: int) -> None:
    """A DEQUANTIZE of the int8 constant `weight` into a new float32 tensor, placed before the weight's first
    consumer; every consumer reads the float tensor instead."""
    schema, _ = _schema()
    graph = model.subgraphs[subgraph]
    source = graph.tensors[weight]
    tensor = schema.TensorT()
    tensor.shape, tensor.type, tensor.buffer = source.shape, schema.TensorType.FLOAT32, 0
    tensor.name = source.name + b"/dequantized"
    graph.tensors.append(tensor)
    index = len(graph.tensors) - 1
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = opcode, np.array([weight], np.int32), np.array([index], np.int32)
    consumers = [i for i, o in enumerate(graph.operators) if o.inputs is not None and weight in o.inputs]
    for i in consumers:
        graph.operators[i].inputs = np.where(graph.operators[i].inputs == weight, index, graph.operators[i].inputs)
    graph.operators.insert(consumers[0], op)


def float_layers(content: bytes, layers: Optional[Iterable[str]] = None) -> bytes:
    """The dynamic-range model `content` with the hybrid ops named in `layers` (output tensor names; None: every
    one, weight-only int8) computing in float: their weights stay stored as int8 and a DEQUANTIZE feeds them as
    float32 (which TFLite evaluates once, the weight being constant), so the op runs its float kernel on float
    activations."""
    schema, flatbuffer_utils = _schema()
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    ops = hybrid_ops(model)
    wanted, found, done = {op.tensor for op in ops} if layers is None else set(layers), set(), set()
    opcode = None
    for op in ops:
        if op.tensor not in wanted:
            continue
        found.add(op.tensor)
        if (op.subgraph, op.weight) not in done:  # a weight two ops share gets one DEQUANTIZE
            opcode = _dequantize_op(model, schema) if opcode is None else opcode
            _float_from_int8(model, op.subgraph, op.weight, opcode)
            done.add((op.subgraph, op.weight))
    if wanted - found:
        raise ValueError(f"no hybrid (int8-weight) op writes {sorted(wanted - found)[:3]} in this dynamic-range model")
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _runner(content: bytes):
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_content=content).get_signature_runner()
    details = runner.get_input_details()
    return lambda feed: runner(**{k: np.asarray(v, details[k]["dtype"]) for k, v in feed.items()})


def _examples(calibration: dict[str, np.ndarray], count: int) -> list[dict[str, np.ndarray]]:
    n = min(count, len(next(iter(calibration.values()))))
    return [{k: v[i:i + 1] for k, v in calibration.items()} for i in range(n)]


def _outputs(content: bytes, feeds: list[dict]) -> np.ndarray:
    """Every output of the model for every feed, flattened in signature-name order, as float64."""
    run = _runner(content)
    return np.concatenate([np.ravel(v) for f in feeds for _, v in sorted(run(f).items())]).astype(np.float64)


def _output_error(content: bytes, feeds: list[dict], ref: np.ndarray) -> tuple[float, float]:
    """(RMS error over the typical |reference value|, max abs error) of the model's outputs."""
    got = _outputs(content, feeds)
    typical = float(np.median(np.abs(ref[ref != 0]))) if np.any(ref != 0) else 1.0
    diff = got - ref
    return float(np.sqrt(np.mean(diff ** 2)) / typical), float(np.max(np.abs(diff)))


def dynamic_attribution(dynamic: bytes, fp32: bytes, calibration: dict[str, np.ndarray],
                        examples: int = ATTRIBUTION_EXAMPLES) -> list[dict[str, Any]]:
    """Per hybrid op of the dynamic-range model: the output error when it alone keeps int8 weights, worst first."""
    _, flatbuffer_utils = _schema()
    feeds = _examples(calibration, examples)
    reference = _outputs(fp32, feeds)
    ops = hybrid_ops(flatbuffer_utils.convert_bytearray_to_object(bytearray(dynamic)))
    names = [op.tensor for op in ops]
    floor, _ = _output_error(float_layers(dynamic), feeds, reference)
    rows = []
    for op in ops:
        relative, worst = _output_error(float_layers(dynamic, [n for n in names if n != op.tensor]), feeds, reference)
        rows.append({"tensor": op.tensor, "weight": op.weight_name, "op": op.op, "output_error": relative,
                     "added_output_error":
                     max(0.0, relative - floor), "max_abs_error": worst, "floor": floor})
    rows.sort(key=lambda r: -r["output_error"])
    return rows
