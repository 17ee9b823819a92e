"""Budgets that scale with the model: max_abs_error per unit of the output's scale, never below 10x the source's
own float noise, and explicit overrides that are absolute. Hand-computed cases; the stack test below shows the
deliberately broken artifacts of test_verify.py are still caught, by how much, under the scaled budgets."""
from __future__ import annotations

import json

import numpy as np
import pytest

from edgeproof import ParityBudget, QuantMode
from edgeproof.verify._budgets import (NOISE_FACTOR, apply_overrides, effective, output_budget, output_scale,
                                       parse_overrides)

FP32 = ParityBudget(max_abs_error=1e-4, min_cosine=0.99999, max_metric_drop=0.05, min_top1_agreement=1.0)


def test_outputs_within_one_keep_the_absolute_budget():
    allowance = output_budget(FP32, np.array([[0.2, -0.9, 0.5]]), noise_floor=None)
    assert allowance.scale == 1.0 and allowance.max_abs_error == pytest.approx(1e-4) and allowance.basis == "scale"


def test_large_outputs_scale_the_budget():
    # logits up to 250: float32 resolves ~250 * 1.2e-7 = 3e-5, so 1e-4 absolute would be 3 ulps; 1e-4 x 250 is the
    # same relative precision as 1e-4 on a probability
    allowance = output_budget(FP32, np.array([[-250.0, 3.0]]), noise_floor=None)
    assert allowance.scale == 250.0 and allowance.max_abs_error == pytest.approx(2.5e-2)


def test_a_noisy_source_raises_the_budget_to_its_noise_floor():
    allowance = output_budget(FP32, np.array([[0.5]]), noise_floor=3e-5)
    assert allowance.basis == "noise floor" and allowance.max_abs_error == pytest.approx(NOISE_FACTOR * 3e-5)
    quiet = output_budget(FP32, np.array([[0.5]]), noise_floor=1e-7)  # 10 x 1e-7 < 1e-4: the scale wins
    assert quiet.basis == "scale" and quiet.max_abs_error == pytest.approx(1e-4)


def test_non_finite_reference_values_do_not_inflate_the_scale():
    assert output_scale(np.array([np.nan, np.inf, -2.0])) == 2.0
    assert output_scale(np.array([])) == 1.0


def test_an_overridden_max_abs_error_is_absolute():
    overrides = parse_overrides(["fp32.max_abs_error=1e-3", "*.min_cosine=0.9"])
    budgets = apply_overrides({QuantMode.FP32: FP32, QuantMode.INT8: FP32}, overrides)
    assert budgets[QuantMode.FP32].max_abs_error == 1e-3 and budgets[QuantMode.FP32].scaled is False
    assert budgets[QuantMode.INT8].min_cosine == 0.9 and budgets[QuantMode.INT8].scaled is True
    fixed = output_budget(budgets[QuantMode.FP32], np.array([[500.0]]), noise_floor=1.0)
    assert fixed.max_abs_error == 1e-3 and fixed.basis == "fixed"
    assert effective(budgets[QuantMode.FP32], fixed).min_cosine == 0.9


@pytest.mark.parametrize("raw, words", [
    ("fp32.max_abs_error", "MODE.FIELD=VALUE"),
    ("fp99.max_abs_error=1", "unknown precision 'fp99'"),
    ("fp32.tolerance=1", "FIELD one of"),
    ("fp32.max_abs_error=abc", "not a number"),
    ("fp32.max_abs_error=nan", "finite"),
])
def test_bad_overrides_say_what_is_wrong(raw, words):
    with pytest.raises(ValueError, match=words):
        parse_overrides([raw])


def test_the_cli_refuses_a_bad_budget_in_one_line(tmp_path, capsys):
    from edgeproof import cli

    code = cli.main(["verify", "--budget", "fp32.max_abs_error=x", "--artifacts", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "not a number" in err[0], err


@pytest.mark.stack
def test_broken_artifacts_miss_the_scaled_budgets_by_orders_of_magnitude(fast_verified, test_output):
    """Every fast fp32 verdict records its allowance per output and where it came from; the noise floors are
    measured at conversion. The deliberately broken artifacts of test_verify.py fail these same budgets (see
    there); this test pins that honest fp32 artifacts stay well inside them and writes the margins."""
    artifacts, results = fast_verified
    rows = []
    for (name, framework), result in results.items():
        about = json.loads((artifacts / name / framework / "conversion.json").read_text())
        assert about["noise_methods"], f"{name}/{framework}: no noise floor was measured"
        for v in result.verdicts:
            if v.mode != "fp32" or v.status.value == "unsupported":
                continue
            per_output = v.budget["per_output"]
            assert set(per_output) == set(v.details["per_output"])
            for output, allowance in per_output.items():
                measured = v.details["per_output"][output]["max_abs_error"]
                rows.append((name, framework, v.target, output, measured, allowance["max_abs_error"],
                             allowance["noise_floor"], allowance["basis"]))
    assert rows
    lines = ["| model | framework | target | output | max error | allowance | noise floor | basis |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]:.3g} | {r[5]:.3g} | {r[6] or 0:.3g} | {r[7]} |" for r in rows]
    (test_output / "fp32_budget_margins.md").write_text("\n".join(lines) + "\n")
    # Honest fp32 conversions of the fast models: within their allowance (the verdicts pass).
    assert all(r[4] <= r[5] for r in rows), [r for r in rows if r[4] > r[5]]
