"""Full profiles reach DESIGN.md's quality bars (slow: about an hour and a half on a 2-core CPU).

    make test-slow        # or: .venv/bin/pytest -m slow tests/test_quality_bars.py

Writes test-output/quality_bars.md, the table the README reports."""
import pytest

from edgeproof import Framework, training_order
from edgeproof.train import report, train

pytestmark = [pytest.mark.slow, pytest.mark.stack]

CASES = [(name, f.value) for name in training_order() for f in Framework]


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory, test_output):
    path = tmp_path_factory.mktemp("full")
    yield path
    (test_output / "quality_bars.md").write_text(report.markdown(report.collect(path)) + "\n")


@pytest.mark.parametrize("name,framework", CASES)
def test_full_profile_meets_the_quality_bar(artifacts, name, framework):
    result = train(name, framework, "full", artifacts=artifacts)
    assert result.quality_bar_met, (f"{name} ({framework}): {result.metric} {result.metric_value:.4g} "
                                    f"misses the bar: {result.quality_bar}")
