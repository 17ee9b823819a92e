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


def _without_default_delegates(name: str) -> Any:
    """The interpreter module's OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES."""
    module_name, attr_path = INTERPRETER_ORDER[name]
    module: Any = importlib.import_module(module_name)
    holder = module.lite.experimental if name == "tensorflow" else module
    return holder.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES


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
        try:
            interp = cls(model_path=str(model_path), num_threads=num_threads)
            interp.allocate_tensors()
        except (ValueError, RuntimeError) as err:
            if "delegate" not in str(err).lower() and "xnnpack" not in str(err).lower():
                raise
            # The file is valid; the default delegate (XNNPACK) declined a node. Run on the builtin kernels.
            interp = cls(model_path=str(model_path), num_threads=num_threads,
                         experimental_op_resolver_type=_without_default_delegates(name))
            interp.allocate_tensors()
            interp.edgeproof_fallback = f"without XNNPACK (it declined: {str(err).splitlines()[0][:120]})"
        return name, interp
    raise InterpreterNotFoundError(
        "no TFLite interpreter could be imported (" + "; ".join(errors) + "). Install one: "
        "pip install 'edgeproof[litert]' (ai-edge-litert) or 'edgeproof[tflite]' (tflite-runtime on older Pi images)"
    )
