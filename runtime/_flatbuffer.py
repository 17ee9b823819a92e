"""A small pure-Python reader of the TFLite flatbuffer (schema.fbs), used to validate a .tflite before
any interpreter sees it: every table, vector and string reachable from the root lies inside the file,
every index (buffer, operator code, tensor, subgraph) is in range, and every constant tensor's buffer
holds exactly the bytes its shape and type need. tflite-runtime 2.14 does not verify the flatbuffer
and segfaults on a truncated file; this turns that into a ModelFileError. No TensorFlow, no flatbuffers
package: struct on a read-only mmap of the file.
"""
from __future__ import annotations

import math
import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

IDENTIFIER = b"TFL3"
# Element sizes of schema.fbs TensorType; None: variable size (strings, resources, variants).
# INT4 is packed two per byte (handled apart).
TENSOR_TYPE_SIZES: dict[int, Optional[int]] = {
    0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 5: None, 6: 1, 7: 2, 8: 8, 9: 1, 10: 8, 11: 16, 12: 8, 13: None, 14: None,
    15: 4, 16: 2, 17: None, 18: 2}
_INT4 = 17
MAX_DIMS = 16  # TFLite kernels support far fewer; a larger rank is a garbled shape
MAX_ELEMENTS = 2**40  # beyond any model a device runs; guards the size arithmetic
# Operator option tables that hold vectors or strings (read by the kernels), from schema.fbs:
# union type -> {field index: element size in bytes (0: a string)}. Other option tables hold
# scalars only; their inline bytes are bounds-checked with the table.
_OPTION_VECTORS = {3: {1: 4, 2: 4}, 17: {0: 4}, 30: {0: 4}, 111: {0: 0, 1: 0}, 115: {0: 4}}
_OPTION2_VECTORS = {
    2: {0: 8}, 3: {0: 8, 1: 8, 2: 8}, 4: {0: 8, 1: 8, 2: 8, 3: 8, 4: 1, 7: 8, 10: 8, 13: 8, 16: 4},
    5: {0: 0, 2: 0, 4: 4, 5: 1}, 6: {0: 8}, 7: {1: 8, 2: 8, 3: 8}, 9: {0: 8}, 10: {0: 8, 1: 8, 2: 8},
    12: {0: 8, 1: 8, 2: 8, 3: 8, 4: 4}, 13: {0: 8, 1: 8, 2: 8, 3: 8, 4: 8}, 16: {0: 8, 1: 8, 2: 8, 4: 8},
    17: {0: 8}, 21: {0: 0, 2: 1}, 23: {0: 4}}
_SPARSE_INDEX_SIZES = {1: 4, 2: 2, 3: 1}  # SparseIndexVector: Int32Vector, Uint16Vector, Uint8Vector
_DEQUANTIZE = 6  # BuiltinOperator.DEQUANTIZE
_QUANTIZED_TYPES = (3, 9)  # UINT8, INT8


class FlatbufferError(ValueError):
    """The file is not a well-formed TFLite flatbuffer (truncated, garbled, or not TFLite)."""


@dataclass
class ModelSummary:
    """What the validation read: enough to report and to cross-check a manifest."""

    version: int
    subgraphs: int
    tensors: int
    operators: int
    buffers: int
    op_versions: dict[int, int] = field(default_factory=dict)  # builtin code -> highest version
    signature_keys: list[str] = field(default_factory=list)
    # signature output name -> the int8/uint8 quantization step its values move in (the output's own
    # scale, or the scale of the quantized tensor a final DEQUANTIZE reads); None: a float output
    output_steps: dict[str, Optional[float]] = field(default_factory=dict)
    variables: int = 0  # variable (state) tensors, e.g. a fused LSTM's h and c: they persist across invokes


class _Reader:
    def __init__(self, buf):
        self.buf, self.size = buf, len(buf)

    def _need(self, pos: int, n: int, what: str) -> None:
        if pos < 0 or n < 0 or pos + n > self.size:
            raise FlatbufferError(f"{what} at byte {pos} (+{n}) lies outside the file ({self.size} bytes): "
                                  f"the file is truncated or garbled")

    def u8(self, pos: int, what: str = "a field") -> int:
        self._need(pos, 1, what)
        return self.buf[pos]

    def scalar(self, fmt: str, pos: int, what: str) -> int:
        self._need(pos, struct.calcsize(fmt), what)
        return struct.unpack_from(fmt, self.buf, pos)[0]

    def table(self, pos: int, what: str) -> "_Table":
        vtable = pos - self.scalar("<i", pos, what)
        vsize = self.scalar("<H", vtable, f"{what} vtable")
        osize = self.scalar("<H", vtable + 2, f"{what} vtable")
        if vsize < 4 or vsize % 2:
            raise FlatbufferError(f"{what}: corrupt vtable (size {vsize})")
        self._need(vtable, vsize, f"{what} vtable")
        self._need(pos, max(osize, 4), what)
        offsets = struct.unpack_from(f"<{(vsize - 4) // 2}H", self.buf, vtable + 4)
        for i, off in enumerate(offsets):
            if off and off >= osize:
                raise FlatbufferError(f"{what}: field {i} at offset {off} lies outside its table ({osize} bytes)")
        return _Table(self, pos, offsets, osize, what)

    def deref(self, pos: int, what: str) -> int:
        return pos + self.scalar("<I", pos, what)

    def vector(self, pos: int, elem: int, what: str) -> tuple[int, int]:
        """(start of the elements, count) of the vector whose uoffset is at `pos`."""
        start = self.deref(pos, what)
        count = self.scalar("<I", start, what)
        self._need(start + 4, count * elem, what)
        return start + 4, count


@dataclass
class _Table:
    r: _Reader
    pos: int
    offsets: tuple[int, ...]
    osize: int
    what: str

    def _field(self, index: int, size: int) -> Optional[int]:
        off = self.offsets[index] if index < len(self.offsets) else 0
        if not off:
            return None
        if off + size > self.osize:
            raise FlatbufferError(f"{self.what}: field {index} overruns its table")
        return self.pos + off

    def scalar(self, index: int, fmt: str, default: int = 0) -> int:
        pos = self._field(index, struct.calcsize(fmt))
        return default if pos is None else self.r.scalar(fmt, pos, f"{self.what} field {index}")

    def ints(self, index: int, fmt: str = "<i") -> list[int]:
        pos = self._field(index, 4)
        if pos is None:
            return []
        start, count = self.r.vector(pos, struct.calcsize(fmt), f"{self.what} field {index}")
        return list(struct.unpack_from(f"<{count}{fmt[-1]}", self.r.buf, start))

    def vector(self, index: int, elem: int) -> tuple[int, int]:
        """(start, count) of a vector field of `elem`-byte elements ((0, 0) when absent); 0: a string."""
        pos = self._field(index, 4)
        if pos is None:
            return 0, 0
        return self.r.vector(pos, max(elem, 1), f"{self.what} field {index}")

    def byte_vector(self, index: int) -> tuple[int, int]:
        pos = self._field(index, 4)
        return (0, 0) if pos is None else self.r.vector(pos, 1, f"{self.what} field {index}")

    def string(self, index: int) -> str:
        start, count = self.byte_vector(index)
        return bytes(self.r.buf[start:start + count]).decode("utf-8", "replace")

    def tables(self, index: int, name: str) -> list["_Table"]:
        pos = self._field(index, 4)
        if pos is None:
            return []
        start, count = self.r.vector(pos, 4, f"{self.what} {name}s")
        return [self.r.table(self.r.deref(start + 4 * i, name), f"{name} {i}") for i in range(count)]

    def sub_table(self, index: int, name: str) -> Optional["_Table"]:
        pos = self._field(index, 4)
        return None if pos is None else self.r.table(self.r.deref(pos, name), name)


def _check_buffer(r: _Reader, b: _Table, i: int) -> int:
    """A buffer's data size, its data inside the file (inline, or at offset/size for >2 GB models)."""
    _, inline = b.byte_vector(0)
    offset, size = b.scalar(1, "<Q"), b.scalar(2, "<Q")
    if offset > 1:  # 0 and 1 mean "no external data" in schema.fbs
        r._need(offset, size, f"buffer {i} data")
        return size
    return inline


def _check_quantization(quant: Optional[_Table], where: str) -> None:
    if quant is None:
        return
    quant.ints(0, "<f"), quant.ints(1, "<f")
    scales, zeros = quant.ints(2, "<f"), quant.ints(3, "<q")
    if zeros and len(zeros) != len(scales):
        raise FlatbufferError(f"{where}: {len(scales)} quantization scales but {len(zeros)} zero points")
    details = quant.sub_table(5, f"{where} quantization details")
    if details is not None and quant.scalar(4, "<B") == 1:  # CustomQuantization { custom: [ubyte] }
        details.byte_vector(0)


def _check_sparsity(sparsity: Optional[_Table], where: str) -> None:
    if sparsity is None:
        return
    sparsity.ints(0), sparsity.ints(1)
    for dim in sparsity.tables(2, f"{where} sparsity dimension"):
        for kind_field, table_field in ((2, 3), (4, 5)):
            sub = dim.sub_table(table_field, f"{where} sparse index")
            size = _SPARSE_INDEX_SIZES.get(dim.scalar(kind_field, "<B"))
            if sub is not None and size:
                sub.vector(0, size)


def _check_options(op: _Table, where: str) -> None:
    for type_field, table_field, vectors in ((3, 4, _OPTION_VECTORS), (11, 12, _OPTION2_VECTORS)):
        options = op.sub_table(table_field, f"{where} options")
        if options is None:
            continue
        for index, elem in vectors.get(op.scalar(type_field, "<B"), {}).items():
            options.vector(index, elem)


def _check_tensor(t: _Table, where: str, n_buffers: int, buffer_sizes: list[int]) -> None:
    shape = t.ints(0)
    kind = t.scalar(1, "<b")
    buffer = t.scalar(2, "<I")
    if kind not in TENSOR_TYPE_SIZES:
        raise FlatbufferError(f"{where}: unknown tensor type {kind}")
    if buffer >= n_buffers:
        raise FlatbufferError(f"{where}: buffer index {buffer} out of range ({n_buffers} buffers)")
    if len(shape) > MAX_DIMS or any(d < 0 for d in shape):
        raise FlatbufferError(f"{where}: invalid shape {shape[:MAX_DIMS + 1]}")
    elements = math.prod(shape)
    if elements > MAX_ELEMENTS:
        raise FlatbufferError(f"{where}: shape {shape} has {elements} elements")
    signature = t.ints(7)
    if signature and (len(signature) != len(shape) or any(d < -1 for d in signature)):
        raise FlatbufferError(f"{where}: shape signature {signature[:MAX_DIMS + 1]} does not fit shape {shape}")
    _check_quantization(t.sub_table(4, f"{where} quantization"), where)
    _check_sparsity(t.sub_table(6, f"{where} sparsity"), where)
    for variant in t.tables(9, f"{where} variant"):
        variant.ints(0)
    data = buffer_sizes[buffer]
    size = TENSOR_TYPE_SIZES[kind]
    if data and t.offsets[6:7] in ((), (0,)):  # a constant, dense tensor: its bytes must match its shape
        need = (elements + 1) // 2 if kind == _INT4 else (None if size is None else elements * size)
        if need is not None and data != need:
            raise FlatbufferError(f"{where}: constant data is {data} bytes, its shape {shape} needs {need}")


def _check_subgraph(g: _Table, gi: int, n_codes: int, n_buffers: int,
                    buffer_sizes: list[int]) -> tuple[int, int, int]:
    tensors = g.tables(0, f"subgraph {gi} tensor")
    for ti, t in enumerate(tensors):
        _check_tensor(t, f"subgraph {gi} tensor {ti}", n_buffers, buffer_sizes)
    variables = sum(1 for t in tensors if t.scalar(5, "<B"))
    for name, index in (("input", 1), ("output", 2)):
        bad = [i for i in g.ints(index) if not 0 <= i < len(tensors)]
        if bad:
            raise FlatbufferError(f"subgraph {gi}: {name} tensor index {bad[0]} out of range ({len(tensors)} tensors)")
    operators = g.tables(3, f"subgraph {gi} operator")
    for oi, op in enumerate(operators):
        where = f"subgraph {gi} operator {oi}"
        code = op.scalar(0, "<I")
        if code >= n_codes:
            raise FlatbufferError(f"{where}: operator code {code} out of range ({n_codes} codes)")
        for index in (1, 2, 8):
            bad = [i for i in op.ints(index) if not -1 <= i < len(tensors)]
            if bad:
                raise FlatbufferError(f"{where}: tensor index {bad[0]} out of range ({len(tensors)} tensors)")
        _check_options(op, where)
        op.byte_vector(5)
        op.byte_vector(7)
        big_offset, big_size = op.scalar(9, "<Q"), op.scalar(10, "<Q")
        if big_offset > 1:
            op.r._need(big_offset, big_size, f"{where} custom options")
    g.string(4)
    return len(tensors), len(operators), variables


def _tensor_step(t: _Table) -> Optional[float]:
    quant = t.sub_table(4, "quantization")
    scales = quant.ints(2, "<f") if quant is not None else []
    return float(max(scales)) if scales and t.scalar(1, "<b") in _QUANTIZED_TYPES else None


def _output_steps(g: _Table, codes: list[int], outputs: dict[str, int]) -> dict[str, Optional[float]]:
    """Signature output name -> quantization step of its values (see ModelSummary.output_steps)."""
    tensors = g.tables(0, "tensor")
    producer = {}
    for op in g.tables(3, "operator"):
        for out in op.ints(2):
            producer[out] = op
    steps: dict[str, Optional[float]] = {}
    for name, index in outputs.items():
        step = _tensor_step(tensors[index])
        op = producer.get(index)
        if step is None and op is not None and codes[op.scalar(0, "<I")] == _DEQUANTIZE and op.ints(1):
            step = _tensor_step(tensors[op.ints(1)[0]])
        steps[name] = step
    return steps


def validate_tflite(path: Path | str) -> ModelSummary:
    """Check the whole structure of a .tflite file; FlatbufferError says what is wrong and where."""
    path = Path(path)
    with open(path, "rb") as f:
        if path.stat().st_size < 8:
            raise FlatbufferError(f"the file has {path.stat().st_size} bytes: too short for a TFLite model")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            return _validate(_Reader(buf))


def _validate(r: _Reader) -> ModelSummary:
    if bytes(r.buf[4:8]) != IDENTIFIER:
        raise FlatbufferError(f"no TFLite file identifier (bytes 4-8 are {bytes(r.buf[4:8])!r}, expected "
                              f"{IDENTIFIER!r}): not a .tflite model")
    model = r.table(r.deref(0, "root table"), "model")
    codes = model.tables(1, "operator code")
    op_versions: dict[int, int] = {}
    builtins = []
    for c in codes:
        builtin = max(c.scalar(0, "<b"), c.scalar(3, "<i"))
        builtins.append(builtin)
        op_versions[builtin] = max(op_versions.get(builtin, 0), c.scalar(2, "<i", 1))
        c.string(1)
    buffers = model.tables(4, "buffer")
    sizes = [_check_buffer(r, b, i) for i, b in enumerate(buffers)]
    subgraphs = model.tables(2, "subgraph")
    if not subgraphs:
        raise FlatbufferError("the model has no subgraph")
    counts = [_check_subgraph(g, gi, len(codes), len(buffers), sizes) for gi, g in enumerate(subgraphs)]
    model.string(3)
    bad = [i for i in model.ints(5) if not 0 <= i < len(buffers)]
    if bad:
        raise FlatbufferError(f"metadata buffer index {bad[0]} out of range ({len(buffers)} buffers)")
    for mi, meta in enumerate(model.tables(6, "metadata")):
        meta.string(0)
        if meta.scalar(1, "<I") >= len(buffers):
            raise FlatbufferError(f"metadata {mi}: buffer index out of range")
    keys, steps = [], {}
    for si, sig in enumerate(model.tables(7, "signature")):
        g = sig.scalar(4, "<I")
        if g >= len(subgraphs):
            raise FlatbufferError(f"signature {si}: subgraph index {g} out of range ({len(subgraphs)} subgraphs)")
        outputs = {}
        for index, kind in ((0, "input"), (1, "output")):
            for tm in sig.tables(index, f"signature {si} {kind}"):
                if tm.scalar(1, "<I") >= counts[g][0]:
                    raise FlatbufferError(f"signature {si}: {kind} tensor index out of range")
                if kind == "output":
                    outputs[tm.string(0)] = tm.scalar(1, "<I")
        keys.append(sig.string(2))
        if si == 0:
            steps = _output_steps(subgraphs[g], builtins, outputs)
    return ModelSummary(model.scalar(0, "<I"), len(subgraphs), sum(c[0] for c in counts), sum(c[1] for c in counts),
                        len(buffers), op_versions, keys, steps, sum(c[2] for c in counts))
