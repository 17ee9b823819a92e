"""What a .tflite computes and holds, read from the model itself (numpy + ai-edge-litert only):

- `count_macs`: multiply-accumulates per inference, walked op by op over the flatbuffer with the
  tensor shapes the interpreter really uses for a batch of 1 (WHILE bodies times their trip count);
- `buffer_bytes`: the file's bytes by constant-buffer dtype, the rest being graph and metadata;
- `delegation`: how many ops XNNPACK (the interpreter's default delegate) takes, and which it leaves.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

# Ops that carry multiply-accumulates; everything else (elementwise, softmax, pooling, reshapes)
# is counted as zero MACs: a convention, they are a small share of the arithmetic in these models.
MAC_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "FULLY_CONNECTED", "BATCH_MATMUL",
           "UNIDIRECTIONAL_SEQUENCE_LSTM", "WHILE")


def _schema():
    from ai_edge_litert import schema_py_generated as schema

    return schema


@dataclass
class MacCount:
    macs: Optional[int]  # None when the count is not possible (a loop with an unknown trip count)
    by_op: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"macs": self.macs, "by_op": self.by_op, "notes": self.notes}


def _names(schema) -> dict[int, str]:
    return {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}


def _op_name(model, op, names: dict[int, str]) -> str:
    code = model.operatorCodes[op.opcodeIndex]
    return names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "CUSTOM")


def _load(path: Path):
    return _schema().ModelT.InitFromPackedBuf(Path(path).read_bytes(), 0)


class _Shapes:
    """Tensor shapes of every subgraph after one batch-1 invoke on zeros (no delegate, every tensor
    kept); falls back to the flatbuffer's static shapes where the interpreter cannot say."""

    def __init__(self, path: Path, model):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        self.model = model
        self.interp = Interpreter(model_path=str(path), experimental_preserve_all_tensors=True,
                                  experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        for d in self.interp.get_input_details():
            sig = d.get("shape_signature", d["shape"])
            if any(int(s) < 0 for s in sig):
                self.interp.resize_tensor_input(d["index"], [max(int(s), 1) for s in sig])
        self.interp.allocate_tensors()
        for d in self.interp.get_input_details():
            self.interp.set_tensor(d["index"], np.zeros(d["shape"], dtype=d["dtype"]))
        self.interp.invoke()

    def shape(self, index: int, subgraph: int) -> Optional[tuple[int, ...]]:
        if index < 0:
            return None
        try:
            return tuple(int(d) for d in self.interp._get_tensor_details(index, subgraph)["shape"])
        except (ValueError, KeyError, IndexError):
            t = self.model.subgraphs[subgraph].tensors[index]
            return tuple(int(d) for d in t.shape) if t.shape is not None else None

    def value(self, index: int) -> Optional[np.ndarray]:
        """A main-graph tensor's value after the invoke (None when not readable)."""
        try:
            return np.asarray(self.interp.get_tensor(index))
        except ValueError:
            return None


def _prod(shape: Optional[Sequence[int]]) -> int:
    return int(math.prod(shape)) if shape is not None else 0


def op_macs(name: str, ins: Sequence[Optional[tuple[int, ...]]], outs: Sequence[Optional[tuple[int, ...]]],
            options: Any = None) -> int:
    """MACs of one op from its input and output shapes (TFLite conventions for weight layouts)."""
    out = outs[0] if outs else None
    if name == "FULLY_CONNECTED":  # weights [units, depth]
        return _prod(out) * ins[1][-1]
    if name == "CONV_2D":  # weights [out_ch, kh, kw, in_ch per group]
        _, kh, kw, cin = ins[1]
        return _prod(out) * kh * kw * cin
    if name == "DEPTHWISE_CONV_2D":  # weights [1, kh, kw, out_ch]
        return _prod(out) * ins[1][1] * ins[1][2]
    if name == "TRANSPOSE_CONV":  # inputs: output_shape, weights [out_ch, kh, kw, in_ch], input
        _, kh, kw, _ = ins[1]
        return _prod(ins[2]) * kh * kw * ins[1][0]
    if name == "BATCH_MATMUL":
        a = ins[0]
        adj_x = bool(getattr(options, "adjX", False))
        return _prod(out) * (a[-2] if adj_x else a[-1])
    if name == "UNIDIRECTIONAL_SEQUENCE_LSTM":
        x = ins[0]
        steps_batch = x[0] * x[1]  # [batch, time, in] or [time, batch, in]
        gates = 4 if ins[1] is not None else 3  # no input gate: CIFG
        hidden, features = ins[2]  # input_to_forget_weights
        recurrent = ins[6][1]  # recurrent_to_forget_weights [hidden, output]
        projection = _prod(ins[16]) if len(ins) > 16 and ins[16] is not None else 0
        return steps_batch * (gates * hidden * (features + recurrent) + projection)
    return 0


def _trip_count(model, op, shapes: _Shapes, names: dict[int, str]) -> Optional[int]:
    """A WHILE's trip count: the loop variable its condition compares, final minus initial value
    (read from the interpreter after the invoke); None when the condition is not that simple."""
    cond = model.subgraphs[op.builtinOptions.condSubgraphIndex]
    for cop in cond.operators:
        if _op_name(model, cop, names) not in ("LESS", "LESS_EQUAL", "GREATER", "GREATER_EQUAL"):
            continue
        cond_inputs = list(cond.inputs)
        for tensor in cop.inputs:
            if tensor not in cond_inputs:
                continue
            k = cond_inputs.index(tensor)
            start, end = shapes.value(int(op.inputs[k])), shapes.value(int(op.outputs[k]))
            if start is None or end is None or start.size != 1 or end.size != 1:
                continue
            trips = abs(int(end.reshape(())) - int(start.reshape(())))
            if trips:
                return trips
    return None


def _subgraph_macs(model, index: int, shapes: _Shapes, names: dict[int, str], count: MacCount,
                   multiplier: int = 1) -> Optional[int]:
    total = 0
    graph = model.subgraphs[index]
    for op in graph.operators:
        name = _op_name(model, op, names)
        if name == "WHILE":
            trips = _trip_count(model, op, shapes, names)
            if trips is None:
                count.notes.append("a WHILE loop with a trip count that cannot be read: MACs not counted")
                return None
            count.notes.append(f"WHILE body counted {trips} times (its trip count after one invoke)")
            body = _subgraph_macs(model, op.builtinOptions.bodySubgraphIndex, shapes, names, count, multiplier * trips)
            if body is None:
                return None
            total += body
            continue
        if name not in MAC_OPS:
            continue
        ins = [shapes.shape(int(i), index) for i in op.inputs]
        outs = [shapes.shape(int(i), index) for i in op.outputs]
        macs = op_macs(name, ins, outs, op.builtinOptions) * multiplier
        count.by_op[name] = count.by_op.get(name, 0) + macs
        total += macs
    return total


def count_macs(path: Path | str) -> MacCount:
    """Multiply-accumulates of one batch-1 inference of a .tflite, from its ops and tensor shapes."""
    model = _load(Path(path))
    names = _names(_schema())
    count = MacCount(None)
    shapes = _Shapes(Path(path), model)
    count.macs = _subgraph_macs(model, 0, shapes, names, count)
    return count


def buffer_bytes(path: Path | str) -> dict[str, int]:
    """File bytes by the dtype of the constant tensors stored in them, plus 'graph+metadata' (the rest)."""
    schema = _schema()
    raw = Path(path).read_bytes()
    model = schema.ModelT.InitFromPackedBuf(raw, 0)
    dtypes = {v: k.lower() for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    seen: set[int] = set()
    out: Counter[str] = Counter()
    for graph in model.subgraphs:
        for t in graph.tensors:
            if t.buffer <= 0 or t.buffer in seen or t.buffer >= len(model.buffers):
                continue
            buf = model.buffers[t.buffer]
            size = len(buf.data) if buf.data is not None else int(getattr(buf, "size", 0) or 0)
            if size:
                seen.add(t.buffer)
                out[dtypes.get(t.type, "other")] += size
    out["graph+metadata"] = len(raw) - sum(out.values())
    return dict(out)


def op_counts(path: Path | str) -> dict[str, int]:
    """Op name -> count over every subgraph."""
    model = _load(Path(path))
    names = _names(_schema())
    return dict(Counter(_op_name(model, op, names) for g in model.subgraphs for op in g.operators))


def delegation(path: Path | str, num_threads: int = 1) -> dict[str, Any]:
    """Ops of the main graph that the default delegate (XNNPACK) takes vs leaves to builtin kernels.

    The interpreter lists the original nodes and, after them, one DELEGATE node per partition; a
    partition's ops are those reached walking back from its outputs until its inputs.
    """
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path), num_threads=num_threads)
    interp.allocate_tensors()
    details = interp._get_ops_details()
    originals = [d for d in details if d["op_name"] != "DELEGATE"]
    producer = {int(t): d["index"] for d in originals for t in d["outputs"]}
    by_index = {d["index"]: d for d in originals}
    delegated: set[int] = set()
    partitions = [d for d in details if d["op_name"] == "DELEGATE"]
    for part in partitions:
        stop = {int(t) for t in part["inputs"]}
        stack = [int(t) for t in part["outputs"]]
        while stack:
            t = stack.pop()
            op = producer.get(t)
            if t in stop or op is None or op in delegated:
                continue
            delegated.add(op)
            stack.extend(int(i) for i in by_index[op]["inputs"] if int(i) >= 0)
    left = Counter(d["op_name"] for d in originals if d["index"] not in delegated)
    return {"ops": len(originals), "partitions": len(partitions), "delegated": len(delegated),
            "left": dict(sorted(left.items()))}
