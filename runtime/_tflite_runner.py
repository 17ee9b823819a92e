"""Run one .tflite on canonical inputs through its signature runner (numpy + an interpreter only)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from edgeproof.errors import EdgeproofError

from ._flatbuffer import FlatbufferError, validate_tflite
from ._interpreter import load_interpreter
from ._signature import InputError, TensorBinding, bind, from_artifact, to_artifact


class ModelFileError(EdgeproofError, ValueError):
    """A model file that is missing, truncated or not a TFLite flatbuffer."""


class TFLiteRunner:
    """A .tflite with its recorded signature: `runner({canonical name: array})` -> {canonical name: float32}.

    Handles layout changes, int8 input/output quantization and models exported with a static batch
    (those run example by example).
    """

    def __init__(self, path: Path | str, inputs: Sequence[tuple[str, str]], outputs: Sequence[tuple[str, str]],
                 recorded_inputs: Sequence[Mapping[str, Any]], recorded_outputs: Sequence[Mapping[str, Any]],
                 interpreter: Optional[str] = None, num_threads: Optional[int] = None):
        path = Path(path)
        if not path.is_file():
            raise ModelFileError(f"{path}: no such model file")
        try:  # before any interpreter sees it: tflite-runtime 2.14 segfaults on a truncated flatbuffer
            self.summary = validate_tflite(path)
        except FlatbufferError as err:
            raise ModelFileError(f"{path} is not a valid TFLite model ({err}); convert it again "
                                 f"(edgeproof convert) or restore the original file") from None
        except OSError as err:
            raise ModelFileError(f"{path}: cannot read the model file ({err.strerror or err})") from None
        try:
            self.interpreter_name, self._interp = load_interpreter(str(path), interpreter, num_threads)
            self._runner = self._interp.get_signature_runner()
        except (ValueError, RuntimeError) as err:
            if "Didn't find op for builtin opcode" in str(err):
                raise ModelFileError(f"{path} needs a newer TFLite runtime than {interpreter or 'the one installed'} "
                                     f"({str(err).splitlines()[0]}); install ai-edge-litert: "
                                     f"pip install \"edgeproof[litert]\"") from err
            raise ModelFileError(f"{path} is not a valid TFLite model ({str(err).splitlines()[0]}); "
                                 f"convert it again (edgeproof convert) or restore the original file") from err
        self.path = path
        self.inputs: list[TensorBinding] = bind(inputs, recorded_inputs)
        self.outputs: list[TensorBinding] = bind(outputs, recorded_outputs)
        batches = {b.static_batch for b in self.inputs}
        self.static_batch = batches.pop() if len(batches) == 1 else None

    def _run(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.summary.variables:  # e.g. a fused LSTM's h/c state tensors: every call starts from zero state,
            self._interp.reset_all_variables()  # as the (stateless) source model does; else examples leak into each other
        raw = self._runner(**feed)
        return {b.canonical: from_artifact(b, raw[b.name]) for b in self.outputs}

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = [b.canonical for b in self.inputs if b.canonical not in inputs]
        if missing:
            raise ValueError(f"missing inputs {missing}; the model takes "
                             f"{', '.join(b.describe() for b in self.inputs)}")
        feed = {b.name: to_artifact(b, inputs[b.canonical]) for b in self.inputs}
        batches = {b.canonical: len(feed[b.name]) for b in self.inputs}
        n = next(iter(batches.values()))
        if len(set(batches.values())) > 1:
            raise InputError(f"the inputs have different batch sizes {batches}; give every input the same number "
                             f"of examples")
        if n == 0:
            raise InputError(f"the batch is empty (0 examples in {', '.join(batches)}); give at least one example")
        if self.static_batch is None or n == self.static_batch:
            return self._run(feed)
        if n % self.static_batch:
            raise ValueError(f"{self.path.name} has a static batch of {self.static_batch}; got {n} examples")
        step = self.static_batch
        parts = [self._run({k: v[i:i + step] for k, v in feed.items()}) for i in range(0, n, step)]
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
