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
    import json
    import shutil

    from edgeproof import Framework, training_order
    from edgeproof.train import TrainResult, train

    artifacts = tmp_path_factory.mktemp("fast-artifacts")
    reuse = os.environ.get("EDGEPROOF_TEST_REUSE_TRAINED")
    if reuse:  # developer shortcut: a fast-artifacts folder made earlier by these fixtures (never set in CI);
        # conversion and verification are reused too when every model has them
        print(f"\nEDGEPROOF_TEST_REUSE_TRAINED: reusing the fast artifacts in {reuse}, not training")
        shutil.copytree(reuse, artifacts, dirs_exist_ok=True)
        return artifacts, {(n, f.value): TrainResult(**json.loads(
            (artifacts / n / f.value / "training" / "metrics.json").read_text()))
            for n in training_order() for f in Framework}
    results = {(name, f.value): train(name, f, "fast", artifacts=artifacts)
               for name in training_order() for f in Framework}
    return artifacts, results


@pytest.fixture(scope="session")
def fast_converted(fast_trained):
    """Every fast-trained model converted to every TFLite and TF.js precision (shared, read-only)."""
    from edgeproof import Framework, training_order
    from edgeproof.convert import convert

    from edgeproof.convert import load_records
    from edgeproof.train import model_dir

    artifacts, _ = fast_trained
    if os.environ.get("EDGEPROOF_TEST_REUSE_TRAINED") and all(  # developer shortcut, see fast_trained
            (model_dir(artifacts, n, f) / "conversion.json").exists() for n in training_order() for f in Framework):
        return artifacts, {(n, f.value): load_records(model_dir(artifacts, n, f))
                           for n in training_order() for f in Framework}
    records = {(name, f.value): convert(name, f, artifacts=artifacts, representative_samples=64, progress=False)
               for name in training_order() for f in Framework}
    return artifacts, records


@pytest.fixture(scope="session")
def fast_verified(fast_converted):
    """Every fast artifact verified in its own runtime (TF.js under Node), parity.json written."""
    from edgeproof import Framework, training_order
    from edgeproof.train import model_dir
    from edgeproof.verify import ModelVerification, Reference, load_verdicts

    artifacts, _ = fast_converted
    if os.environ.get("EDGEPROOF_TEST_REUSE_TRAINED") and all(  # developer shortcut, see fast_trained
            (model_dir(artifacts, n, f) / "parity.json").exists() for n in training_order() for f in Framework):
        loaded = {(n, f.value): load_verdicts(model_dir(artifacts, n, f)) for n in training_order() for f in Framework}
        return artifacts, {k: ModelVerification(Reference(**ref), verdicts) for k, (ref, verdicts) in loaded.items()}
    from edgeproof.verify._parallel import VerifyOptions, verify_pairs

    pairs = [(name, f) for name in training_order() for f in Framework]
    # two models at a time, one thread each: the parallel path the pipeline uses (test_verify checks it
    # against verifying one model after another)
    results = verify_pairs(pairs, VerifyOptions(str(artifacts)), jobs=2)
    return artifacts, {(name, f.value): r for (name, f), r in zip(pairs, results)}
