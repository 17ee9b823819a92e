"""Task metrics and decisions, defined once for every model (zoo or user's own): training's evaluation,
verification's task metric and top-1 agreement all come from here. numpy only (BLEU imports sacrebleu
when it is asked for)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Union

import numpy as np

from ._spec import Decision, Metric, Task

NO_LABELS = "numeric parity only: no labels"

# The metrics a model may be judged by, by name. Zoo specs name theirs; users' models pick one of the
# first three (from their labels, or --metric).
METRICS = {
    "accuracy": Metric("accuracy", higher_is_better=True, unit="% of the test examples"),
    "mse": Metric("mse", higher_is_better=False, unit="mean squared error"),
    "none": Metric("none", higher_is_better=False, unit=NO_LABELS),
}

_TASK_RULES = {Task.CLASSIFICATION: Decision.ARGMAX, Task.TRANSLATION: Decision.ARGMAX,
               Task.BINARY_CLASSIFICATION: Decision.THRESHOLD}


def as_rule(rule: Union[Decision, Task, str]) -> Decision:
    """A Decision; a Task stands for its usual rule (classification: argmax, binary: threshold...)."""
    if isinstance(rule, Task):
        return _TASK_RULES.get(rule, Decision.NONE)
    return Decision(rule)


def decisions(outputs: np.ndarray, rule: Union[Decision, Task], threshold: float = 0.5) -> Optional[np.ndarray]:
    """The decision each example's output stands for (class, yes/no, next token), or None (no rule)."""
    rule = as_rule(rule)
    outputs = np.asarray(outputs)
    if rule is Decision.AUTO:
        rule = Decision.ARGMAX if outputs.ndim == 2 and outputs.shape[1] > 1 else Decision.THRESHOLD
        if rule is Decision.THRESHOLD:
            return (outputs.reshape(len(outputs)) > threshold).astype(np.int64)
    if rule is Decision.ARGMAX:
        return outputs.argmax(-1)
    if rule is Decision.THRESHOLD:
        return ((outputs if outputs.ndim == 1 else outputs[..., 0]) > threshold).astype(np.int64)
    return None


def agreement(reference: np.ndarray, artifact: np.ndarray, rule: Union[Decision, Task],
              threshold: float = 0.5) -> Optional[float]:
    """Fraction of decisions the artifact shares with the reference (None: the model makes none)."""
    a, b = decisions(reference, rule, threshold), decisions(artifact, rule, threshold)
    return None if a is None else float(np.mean(a == b))


def accuracy(outputs: np.ndarray, labels: np.ndarray, rule: Union[Decision, Task], threshold: float = 0.5) -> float:
    """Percent of examples whose decision equals the label (binary labels: 0/1, or floats above 0.5)."""
    made = decisions(outputs, rule, threshold)
    if made is None:
        raise ValueError("accuracy needs a decision rule (argmax or threshold)")
    labels = np.asarray(labels).reshape(len(made))
    if labels.dtype.kind == "f":
        labels = (labels > 0.5) if as_rule(rule) is Decision.THRESHOLD else np.round(labels)
    return float(np.mean(made == labels.astype(np.int64)) * 100)


def mse(outputs: np.ndarray, targets: np.ndarray) -> float:
    """Mean squared error, in float64."""
    out = np.asarray(outputs, np.float64).reshape(len(outputs), -1)
    return float(np.mean((out - np.asarray(targets, np.float64).reshape(out.shape)) ** 2))


def bleu(hypotheses: list[str], references: list[str]) -> float:
    import sacrebleu

    return float(sacrebleu.corpus_bleu(hypotheses, [references]).score)


def confident_fraction(probabilities: np.ndarray, confidence: float) -> dict:
    """A judge classifier's view of generated samples: how many it is confident about, which classes."""
    confident = probabilities.max(-1) >= confidence
    classes = sorted(set(probabilities.argmax(-1)[confident].tolist()))
    return {"confident_fraction": float(confident.mean() * 100), "classes_present": classes,
            "all_digits_present": len(classes) == 10}


def metric_drop(metric: Metric, reference: float, artifact: float) -> float:
    """How much worse the artifact is, in the metric's unit (positive = worse)."""
    return reference - artifact if metric.higher_is_better else artifact - reference


# -- per-example values, for intervals and tests (verify/_stats.py) --------------------------------------------

@dataclass(frozen=True)
class Samples:
    """A metric as per-example values and the aggregate that turns any subset of them into the metric."""

    values: np.ndarray  # [n, ...]: per-example values (correct 0/1, squared error, BLEU n-gram statistics...)
    aggregate: Callable[[np.ndarray], float]  # values[subset] -> the metric on that subset
    decisions: Optional[np.ndarray] = None  # per-example correct (1) / wrong (0), where the metric has decisions
    classes: Optional[np.ndarray] = None  # per-example label, for per-class changes


def _percent(values: np.ndarray) -> float:
    return float(np.mean(values) * 100) if len(values) else float("nan")


def _mean(values: np.ndarray) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def accuracy_samples(outputs: np.ndarray, labels: np.ndarray, rule: Union[Decision, Task],
                     threshold: float = 0.5) -> Samples:
    made = decisions(outputs, rule, threshold)
    truth = np.asarray(labels).reshape(len(made))
    if truth.dtype.kind == "f":
        truth = (truth > 0.5) if as_rule(rule) is Decision.THRESHOLD else np.round(truth)
    correct = (made == truth.astype(np.int64)).astype(np.float64)
    return Samples(correct, _percent, correct.astype(np.int64), truth.astype(np.int64))


def mse_samples(outputs: np.ndarray, targets: np.ndarray) -> Samples:
    out = np.asarray(outputs, np.float64).reshape(len(outputs), -1)
    errors = np.mean((out - np.asarray(targets, np.float64).reshape(out.shape)) ** 2, axis=1)
    return Samples(errors, _mean)


def fraction_samples(flags: np.ndarray) -> Samples:
    """A percentage of examples with a property (the GAN: samples its judge is confident about)."""
    return Samples(np.asarray(flags, np.float64).reshape(-1), _percent)


def bleu_samples(hypotheses: list[str], references: list[str]) -> Samples:
    """Per-sentence BLEU statistics (n-gram matches and totals, lengths); corpus BLEU of any subset of them."""
    from sacrebleu.metrics import BLEU

    metric = BLEU()  # corpus_bleu's defaults (exp smoothing), so the aggregate of all rows equals bleu()
    rows = metric._extract_corpus_statistics(list(hypotheses), [list(references)])  # [sys, ref, correct, total]

    def corpus(values: np.ndarray) -> float:
        if not len(values):
            return float("nan")
        return float(metric._compute_score_from_stats(values.sum(axis=0).tolist()).score)

    return Samples(np.asarray(rows, np.float64), corpus)
