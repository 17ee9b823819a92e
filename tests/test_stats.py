"""Statistically sound verdicts: exact McNemar p-values, paired bootstrap intervals, and the pass / fail /
inconclusive decision against a budget, on hand-computed cases."""
from __future__ import annotations

import numpy as np
import pytest

from edgeproof._metrics import Samples, accuracy_samples, bleu, bleu_samples, mse_samples
from edgeproof._spec import Decision
from edgeproof.verify._stats import judge_drop, mcnemar_exact, paired_bootstrap


def _accuracy(correct) -> Samples:
    c = np.asarray(correct, np.float64)
    return Samples(c, lambda v: float(np.mean(v) * 100), c.astype(np.int64), np.zeros(len(c), np.int64))


def test_mcnemar_exact_matches_the_binomial_by_hand():
    assert mcnemar_exact(0, 0) == 1.0
    # 5 flips all one way: 2 * (1/2)^5 = 0.0625
    assert mcnemar_exact(5, 0) == pytest.approx(0.0625)
    # 3 vs 1: 2 * (C(4,0) + C(4,1)) / 16 = 10/16
    assert mcnemar_exact(3, 1) == pytest.approx(0.625)
    assert mcnemar_exact(10, 10) == 1.0  # symmetric: capped at 1


def test_identical_decisions_have_a_zero_width_interval_and_pass():
    ref = _accuracy([1] * 90 + [0] * 10)
    stats = judge_drop(ref, ref, higher_is_better=True, budget=1.0)
    assert (stats.drop, stats.low, stats.high) == (0.0, 0.0, 0.0) and stats.decision == "pass"
    assert stats.mcnemar == {"worse": 0, "better": 0, "p": 1.0}


def test_a_large_drop_on_many_examples_fails():
    ref = _accuracy([1] * 1000)
    art = _accuracy([1] * 900 + [0] * 100)  # 10 points worse on 1000 examples: far beyond a 1-point budget
    stats = judge_drop(ref, art, True, budget=1.0)
    assert stats.drop == pytest.approx(10.0) and stats.low > 1.0 and stats.decision == "fail"
    assert stats.mcnemar["worse"] == 100 and stats.mcnemar["p"] < 1e-20


def test_a_small_split_cannot_decide_and_says_how_many_examples_would():
    # 1 flip in 50 examples: a 2-point drop whose interval (0 .. about 6) contains a 1-point budget
    ref = _accuracy([1] * 50)
    art = _accuracy([1] * 49 + [0])
    stats = judge_drop(ref, art, True, budget=1.0)
    assert stats.decision == "inconclusive" and stats.low <= 1.0 < stats.high
    assert stats.needed_examples is not None and stats.needed_examples > 50


def test_the_interval_contains_the_point_estimate_and_lower_is_better_metrics_flip_sign():
    rng = np.random.default_rng(1)
    ref_err = rng.uniform(0, 1, 400)
    ref = Samples(ref_err, lambda v: float(np.mean(v)))
    art = Samples(ref_err + 0.05, lambda v: float(np.mean(v)))  # every error 0.05 larger: mse worse by 0.05
    drop, low, high = paired_bootstrap(ref, art, higher_is_better=False)
    assert drop == pytest.approx(0.05) and low == pytest.approx(0.05) and high == pytest.approx(0.05)


def test_per_example_samples_aggregate_to_the_metric():
    outputs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    s = accuracy_samples(outputs, np.array([0, 1, 1, 1]), Decision.ARGMAX)
    assert s.aggregate(s.values) == 75.0 and list(s.decisions) == [1, 1, 0, 1]
    m = mse_samples(np.array([[1.0], [3.0]]), np.array([[0.0], [1.0]]))
    assert m.aggregate(m.values) == pytest.approx((1 + 4) / 2)
    hyps, refs = ["a man rides a bike .", "two dogs play ."], ["a man is riding a bike .", "two dogs are playing ."]
    b = bleu_samples(hyps, refs)
    assert b.aggregate(b.values) == pytest.approx(bleu(hyps, refs))
