"""Artifacts as numpy predict functions over canonical inputs, each in its own runtime:
.tflite in the TFLite interpreter (ai-edge-litert), TF.js graph models in real TF.js under Node."""
from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

import numpy as np

from edgeproof._spec import ModelSpec
from edgeproof.convert._artifact import ArtifactRecord
from edgeproof.runtime._signature import bind, from_artifact, to_artifact
from edgeproof.runtime._tflite_runner import TFLiteRunner

if TYPE_CHECKING:
    from ._tfjs_node import TfjsNodeRunner

Predict = Callable[[dict[str, np.ndarray]], np.ndarray]


def canonical(spec: ModelSpec) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    return ([(t.name, t.layout.value) for t in spec.inputs], [(t.name, t.layout.value) for t in spec.outputs])


class ArtifactPredictor:
    """`predict(canonical inputs) -> the model's (single) output`, plus `decode` for the translator
    and `latency_ms()` for one batch-1 inference."""

    runtime: str
    decode: Optional[Callable[[np.ndarray, int, int], np.ndarray]] = None

    def __call__(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def latency_ms(self, example: dict[str, np.ndarray], repeats: int = 20) -> float:
        raise NotImplementedError


class TFLitePredictor(ArtifactPredictor):
    def __init__(self, spec: ModelSpec, record: ArtifactRecord, root: Path, num_threads: int = 2):
        ins, outs = canonical(spec)
        self.runner = TFLiteRunner(root / record.path, ins, outs, [vars(t) for t in record.inputs],
                                   [vars(t) for t in record.outputs], interpreter="ai_edge_litert",
                                   num_threads=num_threads)
        self.runtime = f"{self.runner.interpreter_name} ({num_threads} thread{'s' * (num_threads != 1)})"
        self._output = spec.outputs[0].name

    def __call__(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        return self.runner(inputs)[self._output]

    def latency_ms(self, example: dict[str, np.ndarray], repeats: int = 20) -> float:
        for _ in range(3):
            self(example)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            self(example)
            times.append((time.perf_counter() - start) * 1e3)
        return statistics.median(times)


class TfjsPredictor(ArtifactPredictor):
    """A TF.js graph model in a Node process (TfjsNodeRunner), fed through the same signature binding."""

    def __init__(self, spec: ModelSpec, record: ArtifactRecord, root: Path, runner: "TfjsNodeRunner"):
        ins, outs = canonical(spec)
        self.inputs = bind(ins, [vars(t) for t in record.inputs])
        self.outputs = bind(outs, [vars(t) for t in record.outputs])
        self.node = runner
        loaded = runner.load(root / record.path)
        self.runtime = f"tfjs {loaded['backend']} (Node)"
        batches = {b.static_batch for b in self.inputs}
        self.static_batch = batches.pop() if len(batches) == 1 else None
        if spec.task.value == "translation":
            self.decode = self._decode

    def _run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        raw = self.node.predict(feed)
        out = self.outputs[0]
        return from_artifact(out, raw[out.name])

    def __call__(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        feed = {b.name: to_artifact(b, inputs[b.canonical]) for b in self.inputs}
        n = len(next(iter(feed.values())))
        if self.static_batch is None or n == self.static_batch:
            return self._run(feed)
        step = self.static_batch
        return np.concatenate([self._run({k: v[i:i + step] for k, v in feed.items()}) for i in range(0, n, step)])

    def _decode(self, source_ids: np.ndarray, bos: int, eos: int) -> np.ndarray:
        by_name = {b.canonical: b for b in self.inputs}
        return self.node.greedy(source_ids.astype(np.int32), source_name=by_name["source_ids"].name,
                                target_name=by_name["target_ids"].name, output_name=self.outputs[0].name,
                                bos=bos, eos=eos)

    def latency_ms(self, example: dict[str, np.ndarray], repeats: int = 20) -> float:
        feed = {b.name: to_artifact(b, example[b.canonical]) for b in self.inputs}
        return float(self.node.time(feed, warmup=3, repeats=repeats)["median_ms"])
