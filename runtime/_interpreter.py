"""Pick a TFLite interpreter: ai_edge_litert, then tflite_runtime, then tensorflow.lite."""
from __future__ import annotations

import importlib
from typing import Any, Optional

from edgeproof.errors import EdgeproofError

# name -> (module to import, attribute path to the Interpreter class)
INTERPRETER_ORDER: dict[str, tuple[str, str]] = {
    "ai_edge_litert": ("ai_edge_litert.interpreter", "Interpreter"),
    "tflite_runtime": ("tflite_runtime.interpreter", "Interpreter"),
    "tensorflow": ("tensorflow", "lite.Interpreter"),
}


class InterpreterNotFoundError(EdgeproofError, ImportError):
    pass


def _import_interpreter_class(name: str) -> Any:
    module_name, attr_path = INTERPRETER_ORDER[name]
    obj: Any = importlib.import_module(module_name)
    for attr in attr_path.split("."):
        obj = getattr(obj, attr)
    return obj


def load_interpreter(model_path: str, interpreter: Optional[str] = None, num_threads: Optional[int] = None):
    """Return `(interpreter_name, Interpreter)` for a .tflite file, tensors allocated.

    `interpreter` forces one of INTERPRETER_ORDER; by default the first importable one wins.
    """
    if interpreter not in (None, "auto") and interpreter not in INTERPRETER_ORDER:
        raise ValueError(f"unknown interpreter {interpreter!r}; choose one of {list(INTERPRETER_ORDER)}")
    names = [interpreter] if interpreter not in (None, "auto") else list(INTERPRETER_ORDER)
    errors = []
    for name in names:
        try:
            cls = _import_interpreter_class(name)
        except (ImportError, AttributeError) as err:
            errors.append(f"{name}: {err}")
            continue
        interp = cls(model_path=str(model_path), num_threads=num_threads)
        interp.allocate_tensors()
        return name, interp
    raise InterpreterNotFoundError(
        "no TFLite interpreter could be imported (" + "; ".join(errors) + "). Install one: "
        "pip install 'edgeproof[litert]' (ai-edge-litert) or 'edgeproof[tflite]' (tflite-runtime on older Pi images)"
    )
