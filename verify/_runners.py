"""Artifacts as numpy predict functions over canonical inputs, each in its own runtime: .tflite in the
TFLite interpreter (ai-edge-litert), TF.js graph models in real TF.js under Node. Every predictor returns
every output, by the contract's output names; a translator's also decodes greedily in its own runtime."""
from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

import numpy as np

from edgeproof._spec import ModelContract, Task
from edgeproof.convert._artifact import ArtifactRecord
from edgeproof.runtime._decode import greedy_decode
from edgeproof.runtime._signature import bind, from_artifact, to_artifact
from edgeproof.runtime._tflite_runner import TFLiteRunner

from ._preflight import preflight

if TYPE_CHECKING:
    from ._tfjs_node import TfjsNodeRunner

Arrays = dict[str, np.ndarray]


def canonical(contract: ModelContract) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    return ([(t.name, t.layout.value) for t in contract.inputs], [(t.name, t.layout.value) for t in contract.outputs])


class ArtifactPredictor:
    """`predict(canonical inputs) -> {output name: array}`, `decode(source ids, bos, eos)` for a translator
    (greedy, in the artifact's runtime) and `latency_ms()` for one inference of a single example."""

    runtime: str
    first: str  # the first output's name: the one a task metric and greedy decoding read

    def __call__(self, inputs: Arrays) -> Arrays:
        raise NotImplementedError

    def decode(self, source_ids: np.ndarray, bos: int, eos: int) -> np.ndarray:
        return greedy_decode(lambda x: self(x)[self.first], source_ids, bos, eos)

    def latency_ms(self, example: Arrays, repeats: int = 20) -> float:
        for _ in range(3):
            self(example)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            self(example)
            times.append((time.perf_counter() - start) * 1e3)
        return statistics.median(times)


class TFLitePredictor(ArtifactPredictor):
    def __init__(self, contract: ModelContract, record: ArtifactRecord, root: Path, num_threads: int = 2,
                 probes: Optional[Arrays] = None):
        ins, outs = canonical(contract)
        if probes is not None:  # a crash of the interpreter must cost this verdict, not the verification
            preflight(root / record.path, ins, outs, [vars(t) for t in record.inputs], [vars(t) for t in record.outputs],
                      probes, f"{contract.name}/{record.framework}/{record.key}")
        self.runner = TFLiteRunner(root / record.path, ins, outs, [vars(t) for t in record.inputs],
                                   [vars(t) for t in record.outputs], interpreter="ai_edge_litert",
                                   num_threads=num_threads)
        fallback = getattr(self.runner._interp, "edgeproof_fallback", None)
        self.runtime = (f"{self.runner.interpreter_name} ({num_threads} thread{'s' * (num_threads != 1)})"
                        + (f" {fallback}" if fallback else ""))
        self.first = contract.outputs[0].name

    def __call__(self, inputs: Arrays) -> Arrays:
        return self.runner(inputs)


class TfjsPredictor(ArtifactPredictor):
    """A TF.js graph model in a Node process (TfjsNodeRunner), fed through the same signature binding."""

    def __init__(self, contract: ModelContract, record: ArtifactRecord, root: Path, runner: "TfjsNodeRunner"):
        ins, outs = canonical(contract)
        self.inputs = bind(ins, [vars(t) for t in record.inputs])
        self.outputs = bind(outs, [vars(t) for t in record.outputs])
        self.node = runner
        self.runtime = f"tfjs {runner.load(root / record.path)['backend']} (Node)"
        batches = {b.static_batch for b in self.inputs}
        self.static_batch = batches.pop() if len(batches) == 1 else None
        self.first = contract.outputs[0].name
        self.translates = contract.task is Task.TRANSLATION

    def _feed(self, inputs: Arrays) -> Arrays:
        return {b.name: to_artifact(b, inputs[b.canonical]) for b in self.inputs}

    def _run(self, feed: Arrays) -> Arrays:
        raw = self.node.predict(feed)
        return {b.canonical: from_artifact(b, raw[b.name]) for b in self.outputs}

    def __call__(self, inputs: Arrays) -> Arrays:
        feed = self._feed(inputs)
        n = len(next(iter(feed.values())))
        if self.static_batch is None or n == self.static_batch:
            return self._run(feed)
        step = self.static_batch
        parts = [self._run({k: v[i:i + step] for k, v in feed.items()}) for i in range(0, n, step)]
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def decode(self, source_ids: np.ndarray, bos: int, eos: int) -> np.ndarray:
        """Greedy decoding in Node (one request per chunk of sentences), as the browser demo decodes."""
        by_name = {b.canonical: b for b in self.inputs}
        out = next(b for b in self.outputs if b.canonical == self.first)
        return self.node.greedy(source_ids.astype(np.int32), source_name=by_name["source_ids"].name,
                                target_name=by_name["target_ids"].name, output_name=out.name, bos=bos, eos=eos)

    def latency_ms(self, example: Arrays, repeats: int = 20) -> float:
        return float(self.node.time(self._feed(example), warmup=3, repeats=repeats)["median_ms"])


def load_predictor(contract: ModelContract, record: ArtifactRecord, root: Path,
                   tfjs_runner: Optional["TfjsNodeRunner"], num_threads: int,
                   probes: Optional[Arrays] = None) -> ArtifactPredictor:
    """The artifact in its runtime; a .tflite is first run on `probes` in a child process (see _preflight)."""
    if tfjs_runner is None:
        return TFLitePredictor(contract, record, root, num_threads=num_threads, probes=probes)
    return TfjsPredictor(contract, record, root, tfjs_runner)


Predict = Callable[[Arrays], Arrays]
