import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EDGE_PYTHON = REPO / ".venv-edge" / "bin" / "python"
TEST_OUTPUT = REPO / "test-output"

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TFDF_DISABLE_WELCOME_MESSAGE", "1")  # else tensorflowjs -> tfdf imports IPython


def run_python(code: str, python: str | Path = sys.executable, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run code in a fresh interpreter (so sys.modules reflects only what that code imported)."""
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=timeout, cwd=REPO)


@pytest.fixture
def edge_python() -> Path:
    if not EDGE_PYTHON.exists():
        pytest.fail(f"{EDGE_PYTHON} is missing: run `scripts/setup.sh edge` (make test does it)")
    return EDGE_PYTHON


@pytest.fixture(scope="session")
def test_output() -> Path:
    TEST_OUTPUT.mkdir(exist_ok=True)
    return TEST_OUTPUT


@pytest.fixture(scope="session")
def fast_trained(tmp_path_factory):
    """All ten reference models trained once on their fast profiles, shared by the test modules."""
    from edgeproof import Framework, training_order
    from edgeproof.train import train

    artifacts = tmp_path_factory.mktemp("fast-artifacts")
    results = {(name, f.value): train(name, f, "fast", artifacts=artifacts)
               for name in training_order() for f in Framework}
    return artifacts, results
