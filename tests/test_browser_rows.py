"""The browser rows the default tier's session fixture leaves out (tests/fast_matrix.py FIXTURE_WITHOUT_BROWSER:
the translator, whose test split LiteRT.js decodes greedily in headless Chromium at 80-150 s per .tflite).
Tier `slow` (`make test-slow`, or `pytest -m slow tests/test_browser_rows.py`): the model's fast artifacts are
verified again with every browser runtime, and every row, native and in the browser, must be the one the
matrix pins, with its pinned reason."""
from __future__ import annotations

import shutil

import pytest

from edgeproof import Framework

from . import fast_matrix

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.stack]


@pytest.mark.parametrize("name", sorted(fast_matrix.FIXTURE_WITHOUT_BROWSER))
def test_browser_rows_the_fixture_leaves_out_get_their_pinned_verdicts(fast_verified, tmp_path, name):
    from edgeproof.train import model_dir
    from edgeproof.verify import load_verdicts
    from edgeproof.verify._parallel import VerifyOptions, verify_pairs

    artifacts, _ = fast_verified
    shutil.copytree(artifacts / name, tmp_path / name)
    pairs = [(name, f) for f in Framework]
    verify_pairs(pairs, VerifyOptions(str(tmp_path)), jobs=2)
    for _, framework in pairs:
        _, saved = load_verdicts(model_dir(tmp_path, name, framework))  # parity.json: each cell, then its browser rows
        assert [v.cell for v in saved] == fast_matrix.verdict_rows(name, framework.value, fixture=False)
        assert any(v.browser for v in saved), "no browser row ran"
        for v in saved:
            assert v.status.value in fast_matrix.allowed(name, framework.value, v.cell), f"{v.key}: {v.summary()}"
            if v.status.value != "pass":
                assert fast_matrix.evidence(name, framework.value, v.cell) in v.summary(), f"{v.key}: {v.summary()}"
