"""Task metrics, framework-neutral: every model (and later every artifact) is judged through a
`predict(inputs: dict[name, array]) -> array` callable on canonical-layout numpy inputs."""
from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from edgeproof import _metrics
from edgeproof._spec import ModelSpec, Task
from edgeproof._util import batched

from edgeproof.runtime._decode import greedy_decode

from ._taskdata import TaskData

Predict = Callable[[dict[str, np.ndarray]], np.ndarray]
Decode = Callable[[np.ndarray, int, int], np.ndarray]  # (source ids, bos, eos) -> generated ids
CONFIDENCE = 0.9


def test_outputs(spec: ModelSpec, predict: Predict, data: TaskData, decode: Optional[Decode] = None,
                 batch_size: int = 256) -> np.ndarray:
    """The model's outputs on the whole test split: predictions, or for the translator the greedy
    decoded ids (`decode` replaces the Python loop, e.g. with TF.js decoding in Node)."""
    if spec.task is Task.TRANSLATION:
        pre = data.preprocessing
        if decode is None:
            return greedy_decode(predict, data.x_test["source_ids"], pre["bos"], pre["eos"], batch_size=batch_size)
        return decode(data.x_test["source_ids"], pre["bos"], pre["eos"])
    return batched(predict, data.x_test, batch_size)


def score(spec: ModelSpec, outputs: np.ndarray, data: TaskData, predict: Optional[Predict] = None,
          judge: Optional[Predict] = None) -> dict[str, Any]:
    """The spec's task metric from test-split outputs, plus task-specific details."""
    if spec.task is Task.REGRESSION:
        result: dict[str, Any] = {"mse": _metrics.mse(outputs, data.y_test),
                                  "trivial_mse": float(np.mean((data.y_train.mean() - data.y_test) ** 2))}
        (name, x_train), = data.x_train.items()
        if predict is not None and x_train.shape[1:] == (1,):  # 1-D: compare the line with least squares
            at = predict({name: np.array([[0.0], [1.0]], dtype=np.float32)})[:, 0]
            design = np.hstack([x_train.astype(np.float64), np.ones((len(x_train), 1))])
            (w_ls, b_ls), *_ = np.linalg.lstsq(design, data.y_train[:, 0].astype(np.float64), rcond=None)
            result.update(weight=float(at[1] - at[0]), bias=float(at[0]), lstsq_weight=float(w_ls),
                          lstsq_bias=float(b_ls), weight_error=float(abs(at[1] - at[0] - w_ls)),
                          bias_error=float(abs(at[0] - b_ls)))
        return result
    if spec.task in (Task.CLASSIFICATION, Task.BINARY_CLASSIFICATION):
        return {"accuracy": _metrics.accuracy(outputs, data.y_test, spec.decision_rule, spec.threshold)}
    if spec.task is Task.TRANSLATION:
        hypotheses = _hypotheses(outputs, data)
        return {"bleu": _metrics.bleu(hypotheses, data.extras["test_references"]),
                "examples": [{"source": s, "reference": r, "hypothesis": h} for s, r, h in
                             zip(data.extras["test_sources"][:5], data.extras["test_references"][:5], hypotheses[:5])]}
    if spec.task is Task.GENERATION:
        return _metrics.confident_fraction(_judged(outputs, judge), CONFIDENCE)
    raise ValueError(f"no evaluation for task {spec.task}")


def _hypotheses(outputs: np.ndarray, data: TaskData) -> list[str]:
    from edgeproof._tokenizers import tokenizer_from_dict

    target = tokenizer_from_dict(data.preprocessing["target_tokenizer"])
    return [target.decode(row) for row in outputs]


def _judged(outputs: np.ndarray, judge: Optional[Predict]) -> np.ndarray:
    """The judge classifier's probabilities on generated samples (pixels in [-1, 1])."""
    if judge is None:
        raise ValueError("the GAN is judged by the project's mnist_cnn: train mnist_cnn first "
                         "(edgeproof train --model mnist_cnn --framework keras)")
    return batched(judge, {"image": ((outputs.reshape(-1, 28, 28, 1) + 1.0) / 2.0).astype(np.float32)})


def samples(spec: ModelSpec, outputs: np.ndarray, data: TaskData, judge: Optional[Predict] = None) -> _metrics.Samples:
    """The task metric as per-example values (for its confidence interval): the aggregate of all of them is
    the metric `score` reports."""
    if spec.task is Task.REGRESSION:
        return _metrics.mse_samples(outputs, data.y_test)
    if spec.task in (Task.CLASSIFICATION, Task.BINARY_CLASSIFICATION):
        return _metrics.accuracy_samples(outputs, data.y_test, spec.decision_rule, spec.threshold)
    if spec.task is Task.TRANSLATION:
        return _metrics.bleu_samples(_hypotheses(outputs, data), data.extras["test_references"])
    if spec.task is Task.GENERATION:
        return _metrics.fraction_samples(_judged(outputs, judge).max(-1) >= CONFIDENCE)
    raise ValueError(f"no evaluation for task {spec.task}")


def evaluate(spec: ModelSpec, predict: Predict, data: TaskData, judge: Optional[Predict] = None) -> dict[str, Any]:
    """The spec's task metric on the test split, plus task-specific details."""
    return score(spec, test_outputs(spec, predict, data), data, predict, judge)
