"""Read a .npy holding a 1-D object array of integer lists (Keras' imdb.npz: x_train, x_test) WITHOUT
unpickling: numpy stores object arrays as a pickle, and `np.load(..., allow_pickle=True)` would run
whatever that pickle says. Here the pickle stream is parsed by hand by a tiny stack machine that
knows only the opcodes such an array uses, accepts only the three numpy callables it references
(ndarray reconstruction and dtype) as inert names, and builds nothing but lists of ints.
"""
from __future__ import annotations

import struct
from typing import IO, Any

import numpy as np

ALLOWED_GLOBALS = {("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "_reconstruct"),
                   ("numpy", "ndarray"), ("numpy", "dtype")}
MAX_STREAM_BYTES = 1 << 30


class ObjectArrayError(ValueError):
    """The stream is not a plain object array of integer lists (or uses a construct we refuse)."""


class _Call:
    """An inert record of a REDUCE (callable, args) and its BUILD state; never called."""

    __slots__ = ("args", "func", "state")

    def __init__(self, func: tuple, args: Any):
        self.func, self.args, self.state = func, args, None


_MARK = object()


def _global(module: str, name: str) -> tuple:
    if (module, name) not in ALLOWED_GLOBALS:
        raise ObjectArrayError(f"the pickle references {module}.{name}; only numpy array reconstruction is accepted")
    return ("global", module, name)


def _pop_mark(stack: list, marks: list) -> list:
    start = marks.pop()
    items = stack[start:]
    del stack[start:]
    return items


def parse_pickle(data: bytes) -> Any:
    """Evaluate the restricted pickle `data`; returns the top object (an inert _Call for an ndarray)."""
    stack: list = []
    marks: list = []
    memo: dict = {}
    pos, end = 0, len(data)
    unpack_from = struct.unpack_from
    append = stack.append
    while pos < end:
        op = data[pos]
        pos += 1
        if op == 0x4B:  # BININT1 'K'
            append(data[pos])
            pos += 1
        elif op == 0x4D:  # BININT2 'M'
            append(data[pos] | data[pos + 1] << 8)
            pos += 2
        elif op == 0x4A:  # BININT 'J'
            append(unpack_from("<i", data, pos)[0])
            pos += 4
        elif op == 0x65:  # APPENDS 'e'
            items = _pop_mark(stack, marks)
            stack[-1].extend(items)
        elif op == 0x28:  # MARK '('
            marks.append(len(stack))
        elif op == 0x5D:  # EMPTY_LIST ']'
            append([])
        elif op == 0x94:  # MEMOIZE
            memo[len(memo)] = stack[-1]
        elif op == 0x95:  # FRAME (8-byte length; frames only delimit, the opcodes continue)
            pos += 8
        elif op == 0x2E:  # STOP '.'
            if len(stack) != 1 or marks:
                raise ObjectArrayError("malformed pickle (stack not empty at STOP)")
            return stack[0]
        else:
            pos = _rare(op, data, pos, stack, marks, memo)
    raise ObjectArrayError("truncated pickle (no STOP)")


def _rare(op: int, data: bytes, pos: int, stack: list, marks: list, memo: dict) -> int:
    """The opcodes that occur a handful of times per array (header, dtype, memo traffic)."""
    if op in _LITERALS:
        return _literal(op, data, pos, stack)
    return _structure(op, data, pos, stack, marks, memo)


_LITERALS = {0x80, 0x8C, 0x58, 0x43, 0x42, 0x93, 0x63, 0x8A, 0x4E, 0x88, 0x89}


def _literal(op: int, data: bytes, pos: int, stack: list) -> int:
    """Protocol marker, strings, bytes, big ints, constants and the (allowed) global names."""
    u = struct.unpack_from
    if op == 0x80:  # PROTO
        return pos + 1
    if op in (0x8C, 0x58):  # SHORT_BINUNICODE, BINUNICODE 'X'
        width = 1 if op == 0x8C else 4
        n = data[pos] if width == 1 else u("<I", data, pos)[0]
        stack.append(data[pos + width:pos + width + n].decode("utf-8"))
        return pos + width + n
    if op in (0x43, 0x42):  # SHORT_BINBYTES 'C', BINBYTES 'B'
        width = 1 if op == 0x43 else 4
        n = data[pos] if width == 1 else u("<I", data, pos)[0]
        stack.append(bytes(data[pos + width:pos + width + n]))
        return pos + width + n
    if op == 0x93:  # STACK_GLOBAL
        name, module = stack.pop(), stack.pop()
        stack.append(_global(module, name))
        return pos
    if op == 0x63:  # GLOBAL 'c': "module\nname\n"
        a = data.index(b"\n", pos)
        b = data.index(b"\n", a + 1)
        stack.append(_global(data[pos:a].decode(), data[a + 1:b].decode()))
        return b + 1
    if op == 0x8A:  # LONG1
        n = data[pos]
        stack.append(int.from_bytes(data[pos + 1:pos + 1 + n], "little", signed=True))
        return pos + 1 + n
    stack.append({0x4E: None, 0x88: True, 0x89: False}[op])  # NONE, NEWTRUE, NEWFALSE
    return pos


def _structure(op: int, data: bytes, pos: int, stack: list, marks: list, memo: dict) -> int:
    """Tuples, single appends, the memo, and REDUCE/BUILD (recorded, never executed)."""
    u = struct.unpack_from
    if op in (0x85, 0x86, 0x87):  # TUPLE1-3
        n = op - 0x84
        items = tuple(stack[-n:])
        del stack[-n:]
        stack.append(items)
    elif op == 0x74:  # TUPLE 't'
        stack.append(tuple(_pop_mark(stack, marks)))
    elif op == 0x29:  # EMPTY_TUPLE ')'
        stack.append(())
    elif op == 0x61:  # APPEND 'a'
        item = stack.pop()
        stack[-1].append(item)
    elif op in (0x71, 0x72):  # BINPUT 'q', LONG_BINPUT 'r'
        memo[data[pos] if op == 0x71 else u("<I", data, pos)[0]] = stack[-1]
        return pos + (1 if op == 0x71 else 4)
    elif op in (0x68, 0x6A):  # BINGET 'h', LONG_BINGET 'j'
        key = data[pos] if op == 0x68 else u("<I", data, pos)[0]
        if key not in memo:
            raise ObjectArrayError(f"malformed pickle (memo {key} read before it was written)")
        stack.append(memo[key])
        return pos + (1 if op == 0x68 else 4)
    elif op == 0x52:  # REDUCE 'R': record the call, never make it
        args, func = stack.pop(), stack.pop()
        if not (isinstance(func, tuple) and func[:1] == ("global",)):
            raise ObjectArrayError("malformed pickle (REDUCE on something that is not an allowed numpy callable)")
        stack.append(_Call(func, args))
    elif op == 0x62:  # BUILD 'b'
        state = stack.pop()
        if not isinstance(stack[-1], _Call):
            raise ObjectArrayError("malformed pickle (BUILD on something that is not an array)")
        stack[-1].state = state
    else:
        raise ObjectArrayError(f"unsupported pickle opcode 0x{op:02x} at byte {pos - 1}; refusing to go on")
    return pos


def read_int_lists(f: IO[bytes], size: int, where: str) -> np.ndarray:
    """A .npy stream (`size` bytes) holding a 1-D object array of int lists -> the same object array,
    rebuilt from the parsed lists only. ObjectArrayError for anything else."""
    if size > MAX_STREAM_BYTES:
        raise ObjectArrayError(f"{where}: {size} bytes is over the {MAX_STREAM_BYTES} byte limit")
    fmt = np.lib.format
    try:
        version = fmt.read_magic(f)
        shape, _, dtype = (fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0)(f)
    except Exception as err:  # numpy's header parser raises ValueError, SyntaxError, tokenize errors...
        raise ObjectArrayError(f"{where}: not a valid .npy header ({type(err).__name__}: {err})") from None
    if dtype != np.dtype(object) or len(shape) != 1:
        raise ObjectArrayError(f"{where}: expected a 1-D object array, got {dtype} {shape}")
    try:
        top = parse_pickle(f.read())
    except ObjectArrayError as err:
        raise ObjectArrayError(f"{where}: {err}") from None
    except (IndexError, KeyError, TypeError, AttributeError, ValueError, struct.error) as err:
        raise ObjectArrayError(f"{where}: truncated or malformed pickle ({type(err).__name__}: {err})") from None
    state = top.state if isinstance(top, _Call) and top.func[2] == "_reconstruct" else None
    if not (isinstance(state, tuple) and len(state) == 5 and state[1] == tuple(shape)):
        raise ObjectArrayError(f"{where}: the pickle does not describe a {shape} array")
    rows = state[4]
    if not isinstance(rows, list) or len(rows) != shape[0] or not all(
            type(r) is list and all(type(v) is int for v in r) for r in rows):
        raise ObjectArrayError(f"{where}: the array's elements are not lists of integers")
    out = np.empty(len(rows), dtype=object)
    for i, row in enumerate(rows):
        out[i] = row
    return out
