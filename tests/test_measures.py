"""The parity measures (verify/_measures.py: compare, worst) and the decisions and metrics every verdict is built
on (edgeproof/_metrics.py), on hand-computed cases: distances, cosine of zero vectors, NaN and inf outputs, ties
at the decision threshold and in argmax, and each Task standing for its decision rule. Unit tier: numpy only.

Every expected number below is worked out in the comment beside it, not read back from the code."""
from __future__ import annotations

import math

import numpy as np
import pytest

from edgeproof import ParityBudget
from edgeproof._metrics import (accuracy, agreement, as_rule, confident_fraction, decisions, metric_drop, mse,
                                METRICS)
from edgeproof._spec import Decision, Task
from edgeproof.verify import check_budget
from edgeproof.verify._measures import compare, worst

REF = np.array([[0.1, 0.9], [0.8, 0.2]])
# row 1 keeps its argmax (class 1), row 2 flips from class 0 to class 1
ART = np.array([[0.2, 0.7], [0.4, 0.6]])


# -- compare: distances and cosine ------------------------------------------------------------------------------

def test_identical_outputs_measure_zero_error_and_full_agreement():
    m = compare(Decision.ARGMAX, REF, REF.copy())
    assert m == {"max_abs_error": 0.0, "mean_abs_error": 0.0, "cosine": pytest.approx(1.0, abs=1e-15),
                 "top1_agreement": 1.0}


def test_distances_cosine_and_agreement_by_hand():
    m = compare(Decision.ARGMAX, REF, ART)
    # |diff| = [0.1, 0.2, 0.4, 0.4]: max 0.4, mean 1.1 / 4 = 0.275
    assert m["max_abs_error"] == pytest.approx(0.4)
    assert m["mean_abs_error"] == pytest.approx(0.275)
    # a.b = 0.02 + 0.63 + 0.32 + 0.12 = 1.09; |a|^2 = 0.01 + 0.81 + 0.64 + 0.04 = 1.5; |b|^2 = 0.04 + 0.49 + 0.16
    # + 0.36 = 1.05; cosine = 1.09 / sqrt(1.575) = 0.868533...
    assert m["cosine"] == pytest.approx(1.09 / math.sqrt(1.5 * 1.05), rel=1e-12)
    assert m["cosine"] == pytest.approx(0.868533, abs=1e-6)
    # argmax: reference [1, 0], artifact [1, 1]: one of two agree
    assert m["top1_agreement"] == 0.5


def test_cosine_is_of_the_flattened_outputs_not_per_row():
    # two rows, each exactly opposite in one coordinate: per row the cosines are 0.6 and 1.0, but the flattened
    # vectors [3, 4, 1, 0] and [3, -4, 1, 0] give (9 - 16 + 1) / 26 = -6 / 26
    m = compare(Decision.NONE, np.array([[3.0, 4.0], [1.0, 0.0]]), np.array([[3.0, -4.0], [1.0, 0.0]]))
    assert m["cosine"] == pytest.approx(-6 / 26)


def test_a_shape_mismatch_is_an_error_not_a_broadcast():
    with pytest.raises(ValueError, match=r"output shape \[2, 1\] differs from the reference's \[2, 2\]"):
        compare(Decision.ARGMAX, REF, np.zeros((2, 1)))


@pytest.mark.parametrize("reference, artifact, cosine", [
    (np.zeros((2, 3)), np.zeros((2, 3)), 1.0),  # both all-zero: equal, so as similar as can be
    (np.zeros((2, 3)), np.full((2, 3), 1e-3), 0.0),  # the artifact answers where the reference is silent
    (np.ones((2, 3)), np.zeros((2, 3)), 0.0),  # the artifact lost its output: no direction to agree with
])
def test_cosine_of_zero_vectors_is_defined(reference, artifact, cosine):
    """The norm product is 0, so a @ b / (|a| |b|) is 0 / 0: compare defines it instead of returning NaN (which
    would fail every budget, including for an exact all-zero match)."""
    m = compare(Decision.NONE, reference, artifact)
    assert m["cosine"] == cosine and not math.isnan(m["cosine"])


def test_zero_vector_cosine_fails_the_cosine_budget_unless_identical():
    budget = ParityBudget(max_abs_error=1.0, min_cosine=0.99, max_metric_drop=1.0)
    silent = compare(Decision.NONE, np.ones((1, 4)), np.zeros((1, 4)))
    assert [e.measure for e in check_budget("m", "y", budget, silent, None, None)] == ["cosine on probes (min)"]
    same = compare(Decision.NONE, np.zeros((1, 4)), np.zeros((1, 4)))
    assert check_budget("m", "y", budget, same, None, None) == []


# -- compare: NaN and inf --------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_artifact_outputs_are_counted_not_measured(bad):
    art = ART.copy()
    art[1, 0] = bad  # 1 of 4 values
    m = compare(Decision.ARGMAX, REF, art)
    assert m["non_finite_fraction"] == 0.25
    assert m["max_abs_error"] is None and m["mean_abs_error"] is None and m["cosine"] is None
    assert m["top1_agreement"] == 0.0  # a NaN row has no decision worth agreeing with
    assert compare(Decision.NONE, REF, art)["top1_agreement"] is None  # no decisions at all


def test_non_finite_outputs_fail_the_budget_with_their_own_measure():
    art = np.full_like(REF, math.nan)
    m = compare(Decision.ARGMAX, REF, art)
    errors = check_budget("m", "y", ParityBudget(1.0, 0.0, 1.0, 0.0), m, None, None)
    assert len(errors) == 1 and errors[0].measure.startswith("non-finite") and errors[0].measured == 1.0


def test_a_nan_in_the_reference_fails_every_distance_budget():
    """compare() checks the artifact for non-finite values, not the reference; a NaN reference (a broken source
    model) still cannot pass: the largest error comes out NaN, which check_budget treats as over budget, and the
    cosine 0 (the NaN norm product is not > 0, so the zero-vector rule applies: the vectors are not equal)."""
    ref = REF.copy()
    ref[0, 0] = math.nan
    m = compare(Decision.ARGMAX, ref, ART)
    assert math.isnan(m["max_abs_error"]) and m["cosine"] == 0.0
    measures = {e.measure for e in check_budget("m", "y", ParityBudget(10.0, 0.5, 1.0), m, None, None)}
    assert measures == {"max_abs_error on probes", "cosine on probes (min)"}


# -- decisions: ties at the threshold, argmax ties, each Task's rule ------------------------------------------------

def test_threshold_ties_go_to_the_negative_class():
    """`> threshold`, as Keras' binary_accuracy (y_pred > threshold): exactly 0.5 is negative, the next float up
    positive. A reference exactly at the threshold and an artifact one ulp above it disagree."""
    at, above = 0.5, float(np.nextafter(0.5, 1.0))
    assert decisions(np.array([at, above, 0.4999]), Decision.THRESHOLD).tolist() == [0, 1, 0]
    assert agreement(np.array([at, 0.9]), np.array([above, 0.9]), Decision.THRESHOLD) == 0.5
    m = compare(Task.BINARY_CLASSIFICATION, np.array([[at], [0.9]]), np.array([[above], [0.9]]))
    assert m["top1_agreement"] == 0.5 and m["max_abs_error"] == pytest.approx(above - at)


def test_the_threshold_parameter_moves_the_boundary():
    out = np.array([[0.6], [0.75], [0.7]])
    assert decisions(out, Decision.THRESHOLD, threshold=0.7).tolist() == [0, 1, 0]  # 0.7 itself: not above
    assert compare(Decision.THRESHOLD, out, out * 0 + 0.65, threshold=0.7)["top1_agreement"] == pytest.approx(2 / 3)


def test_threshold_on_two_columns_reads_the_first():
    assert decisions(np.array([[0.9, 0.1], [0.2, 0.8]]), Decision.THRESHOLD).tolist() == [1, 0]


def test_argmax_ties_pick_the_first_class():
    """numpy's argmax returns the first of equal maxima, for the reference and the artifact alike, so an exact tie
    reproduced by the artifact agrees."""
    tied = np.array([[0.5, 0.5, 0.0], [0.2, 0.4, 0.4]])
    assert decisions(tied, Decision.ARGMAX).tolist() == [0, 1]
    assert agreement(tied, tied.copy(), Decision.ARGMAX) == 1.0
    # the artifact breaks the first tie the other way by 1e-7: that example no longer agrees
    assert agreement(tied, tied + [[0.0, 1e-7, 0.0], [0.0, 0.0, 0.0]], Decision.ARGMAX) == 0.5


def test_auto_picks_argmax_for_several_scores_and_threshold_for_one():
    assert decisions(np.array([[0.1, 0.7, 0.2]]), Decision.AUTO).tolist() == [1]
    assert decisions(np.array([[0.7], [0.3]]), Decision.AUTO).tolist() == [1, 0]
    assert decisions(np.array([0.7, 0.3]), Decision.AUTO).tolist() == [1, 0]  # 1-D: one score per example
    assert decisions(np.array([[0.7], [0.3]]), Decision.AUTO, threshold=0.8).tolist() == [0, 0]


@pytest.mark.parametrize("task, rule", [
    (Task.CLASSIFICATION, Decision.ARGMAX), (Task.TRANSLATION, Decision.ARGMAX),
    (Task.BINARY_CLASSIFICATION, Decision.THRESHOLD), (Task.REGRESSION, Decision.NONE),
    (Task.GENERATION, Decision.NONE), (Task.CUSTOM, Decision.NONE),
])
def test_a_task_stands_for_its_rule_in_compare(task, rule):
    assert as_rule(task) is rule
    ref, art = np.array([[0.2, 0.9], [0.6, 0.4]]), np.array([[0.3, 0.8], [0.4, 0.6]])
    assert compare(task, ref, art) == compare(rule, ref, art)
    # by hand: argmax [1, 0] vs [1, 1] -> 0.5; threshold on column 0: [0, 1] vs [0, 0] -> 0.5; none -> None
    assert compare(task, ref, art)["top1_agreement"] == (None if rule is Decision.NONE else 0.5)


def test_translation_agreement_is_per_token_position():
    """Logits [N, L, V]: one decision per (sentence, position), agreement over all of them."""
    ref = np.zeros((2, 3, 4))
    ref[:, :, 1] = 1.0  # every position predicts token 1
    art = ref.copy()
    art[0, 2, 3] = 2.0  # one of 6 positions now predicts token 3
    assert decisions(ref, Task.TRANSLATION).shape == (2, 3)
    assert compare(Task.TRANSLATION, ref, art)["top1_agreement"] == pytest.approx(5 / 6)


def test_an_unknown_rule_is_refused():
    with pytest.raises(ValueError):
        as_rule("majority-vote")


# -- worst: one summary over several outputs -----------------------------------------------------------------------

def test_worst_of_one_output_is_that_output_copied():
    row = compare(Decision.ARGMAX, REF, ART)
    summary = worst({"probabilities": row})
    assert summary == row and summary is not row


def test_worst_takes_the_largest_errors_the_smallest_cosine_and_the_first_outputs_agreement():
    rows = {"a": {"max_abs_error": 0.1, "mean_abs_error": 0.02, "cosine": 0.999, "top1_agreement": 0.75},
            "b": {"max_abs_error": 0.3, "mean_abs_error": 0.04, "cosine": 0.99, "top1_agreement": None}}
    # max(0.1, 0.3) = 0.3; mean of the means (0.02 + 0.04) / 2 = 0.03; min(0.999, 0.99) = 0.99; "a"'s agreement
    assert worst(rows) == {"max_abs_error": 0.3, "mean_abs_error": pytest.approx(0.03), "cosine": 0.99,
                           "top1_agreement": 0.75}


def test_worst_with_one_non_finite_output_has_no_distances():
    rows = {"a": compare(Decision.NONE, REF, ART),
            "b": compare(Decision.NONE, REF, np.array([[math.nan, 1.0], [1.0, 1.0]])),
            "c": compare(Decision.NONE, REF, np.array([[math.inf, math.nan], [1.0, 1.0]]))}
    # b: 1 of 4 values, c: 2 of 4: the worst fraction is 0.5
    assert worst(rows) == {"max_abs_error": None, "mean_abs_error": None, "cosine": None,
                           "non_finite_fraction": 0.5, "top1_agreement": None}


# -- the metrics built on the same decisions ----------------------------------------------------------------------

def test_accuracy_by_hand():
    scores = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])  # argmax 1, 0, 1, 0
    assert accuracy(scores, np.array([1, 0, 0, 0]), Decision.ARGMAX) == 75.0  # 3 of 4, in percent
    assert accuracy(scores, np.array([1.0, 0.0, 0.0, 0.0]), Task.CLASSIFICATION) == 75.0  # float labels rounded
    probs = np.array([[0.9], [0.5], [0.51], [0.2]])  # > 0.5: 1, 0, 1, 0
    assert accuracy(probs, np.array([1, 0, 0, 0]), Decision.THRESHOLD) == 75.0
    # float labels are thresholded at 0.5 too: [0.7, 0.5, 0.9, 0.1] -> [1, 0, 1, 0], all four right
    assert accuracy(probs, np.array([0.7, 0.5, 0.9, 0.1]), Task.BINARY_CLASSIFICATION) == 100.0


def test_accuracy_needs_a_decision_rule():
    with pytest.raises(ValueError, match="needs a decision rule"):
        accuracy(np.array([[1.0]]), np.array([1]), Task.REGRESSION)


def test_mse_metric_drop_and_confident_fraction_by_hand():
    # errors 1, -2, 0.5 -> squares 1, 4, 0.25 -> mean 5.25 / 3 = 1.75
    assert mse(np.array([[2.0], [0.0], [1.5]]), np.array([1.0, 2.0, 1.0])) == pytest.approx(1.75)
    # higher is better (accuracy): 98.5 -> 97.9 is a drop of 0.6; lower is better (mse): 1.0 -> 1.2 is 0.2 worse
    assert metric_drop(METRICS["accuracy"], 98.5, 97.9) == pytest.approx(0.6)
    assert metric_drop(METRICS["mse"], 1.0, 1.2) == pytest.approx(0.2)
    assert metric_drop(METRICS["accuracy"], 90.0, 91.0) == pytest.approx(-1.0)  # better is a negative drop
    probs = np.array([[0.95, 0.05], [0.4, 0.6], [0.05, 0.95], [0.9, 0.1]])
    # max >= 0.9 for rows 0, 2 and 3 (0.9 itself counts): 75 %, classes {0, 1}
    assert confident_fraction(probs, 0.9) == {"confident_fraction": 75.0, "classes_present": [0, 1],
                                              "all_digits_present": False}
