"""Operator report of a .tflite: which ops it uses, whether all are TFLite builtins (Flex /
SELECT_TF_OPS models do not run on a stock Android or Pi runtime), and the GPU-delegate report."""
from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import tempfile
from collections import Counter
from typing import Any


@contextlib.contextmanager
def _capture_fd_stdout():
    """Capture what C++ code prints to file descriptor 1 (the Analyzer prints there)."""
    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 1)
        buffer = io.StringIO()
        try:
            with contextlib.redirect_stdout(buffer):
                yield buffer
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
            tmp.seek(0)
            buffer.write(tmp.read().decode("utf-8", "replace"))


def op_report(model_content: bytes) -> dict[str, Any]:
    from edgeproof._frameworks import import_tensorflow
    from edgeproof.runtime._interpreter import _import_interpreter_class

    interp = _import_interpreter_class("ai_edge_litert")(model_content=model_content)
    ops = Counter(op["op_name"] for op in interp._get_ops_details())
    custom = sorted(name for name in ops if name.startswith("Flex") or name == "CUSTOM" or not name.isupper())
    tf = import_tensorflow()
    with _capture_fd_stdout() as out:
        tf.lite.experimental.Analyzer.analyze(model_content=model_content, gpu_compatibility=True)
    text = out.getvalue()
    gpu_ok = "looks compatible with GPU delegate" in text
    gpu_issues = sorted(set(m.strip() for m in re.findall(r"GPU COMPATIBILITY WARNING:?(.+)", text)))
    return {"ops": dict(sorted(ops.items())), "op_count": int(sum(ops.values())), "builtin_only": not custom,
            "non_builtin_ops": custom, "transposes": int(ops.get("TRANSPOSE", 0)),
            "gpu_delegate_compatible": gpu_ok, "gpu_delegate_issues": gpu_issues}
