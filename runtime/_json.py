"""JSON files of a bundle read as hostile input: bounded size, bounded nesting, strict numbers."""
from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any, Callable

# Bundle JSON files: the manifest is a few KiB; preprocessing.json holds vocabularies (the
# translator's two 8000-word vocabularies are ~200 KiB). 64 MiB is far above both.
MAX_JSON_BYTES = 64 * 2**20
# Nesting: the deepest real structure is ~5 levels (manifest -> verdict -> failures -> entry).
MAX_DEPTH = 64


# The recursion limit json's C decoder runs under. Some libraries raise the interpreter's limit for good (onnx2tf
# sets it to 2**31 - 1 when imported), and then 100 000 nested '[' overflow the C stack: a segmentation fault, not a
# RecursionError. Far above MAX_DEPTH, far below what a thread's stack holds.
_DECODE_RECURSION_LIMIT = 2000


@contextlib.contextmanager
def _bounded_recursion():
    """The interpreter's recursion limit at most _DECODE_RECURSION_LIMIT (plus the caller's depth) while inside."""
    old = sys.getrecursionlimit()
    if old <= _DECODE_RECURSION_LIMIT:
        yield
        return
    try:
        sys.setrecursionlimit(_DECODE_RECURSION_LIMIT + len(_frames()))
    except RecursionError:  # already deeper than that: leave the limit alone
        yield
        return
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def _frames() -> list:
    frames, frame = [], sys._getframe()
    while frame is not None:
        frames.append(frame)
        frame = frame.f_back
    return frames


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number (strict JSON only)")


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of parsed JSON, iteratively (no recursion), stopping past `limit`."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
            stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


def read_json(path: Path, error: Callable[[str], Exception], max_bytes: int = MAX_JSON_BYTES,
              max_depth: int = MAX_DEPTH, fix: str = "the bundle is damaged, deploy it again") -> Any:
    """Parse `path` as strict JSON; every failure is `error(message)` naming the file and the fix.

    `fix` ends every message: what to do about a bad file of this kind.
    Python's json raises RecursionError on deeply nested input (100 000 '[' ): caught here, and
    anything nested deeper than `max_depth` is refused too.
    """
    try:
        size = path.stat().st_size
        raw = path.read_bytes() if size <= max_bytes else b""
    except OSError as err:
        raise error(f"{path}: cannot read it ({err.strerror or err})") from None
    if size > max_bytes:
        raise error(f"{path} is {size / 2**20:.1f} MiB, over the {max_bytes / 2**20:.0f} MiB limit for a "
                    f"bundle's JSON files; {fix}")
    try:
        text = raw.decode("utf-8")
        with _bounded_recursion():
            data = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise error(f"{path} is nested too deeply to be a bundle file or model; {fix}") from None
    except UnicodeDecodeError as err:
        raise error(f"{path} is not UTF-8 text ({err.reason} at byte {err.start}); {fix}") from None
    except ValueError as err:  # JSONDecodeError, NaN/Infinity
        raise error(f"{path} is not valid JSON ({err}); {fix}") from None
    if _depth(data, max_depth) > max_depth:
        raise error(f"{path} is nested more than {max_depth} levels deep; {fix}")
    return data
