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

REUSE_ENV = "EDGEPROOF_TEST_REUSE_TRAINED"
# scripts/run_tests.py: where the fast-models process publishes its verified fast models for the late process, and the
# switch that turns a self-comparison skip into a failure there (CI must run every check somewhere)
PUBLISH_ENV = "EDGEPROOF_TEST_PUBLISH_FAST_MODELS"
NO_SELF_SKIP_ENV = "EDGEPROOF_TEST_REUSE_MUST_NOT_SKIP"
# Which session fixtures read their results back from a reused folder instead of computing them (developer
# shortcut, see fast_trained). A test that compares a fixture's in-memory results with the files it wrote must not
# run on loaded results: it would compare a file with itself. Use `loaded_from_disk(stage)`.
LOADED: dict[str, bool] = {"trained": False, "converted": False, "verified": False}


def loaded_from_disk(stage: str) -> bool:
    """True when the session fixture of `stage` (trained / converted / verified) read its results from the
    EDGEPROOF_TEST_REUSE_TRAINED folder rather than computing them in this session."""
    return LOADED[stage]


def skip_self_comparison(stage: str, what: str) -> None:
    """An explicit, printed skip for a check that would compare a reused file with itself."""
    if loaded_from_disk(stage) and os.environ.get(NO_SELF_SKIP_ENV):
        pytest.fail(f"{what} needs the fixtures computed in this process, but this is make test's late process "
                    f"(fixtures read back from disk): keep this test's module out of scripts/run_tests.py LATE")
    if loaded_from_disk(stage):
        pytest.skip(f"{REUSE_ENV} is set: the {stage} results were read back from the files, so {what} would compare "
                    f"them with themselves (in CI this check runs in make test's fast-models process)")


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
    import shutil

    from edgeproof import Framework, training_order
    from edgeproof.train import TrainResult, train

    artifacts = tmp_path_factory.mktemp("fast-artifacts")
    reuse = os.environ.get(REUSE_ENV)
    if reuse:  # a fast-artifacts folder made earlier by these fixtures (a developer shortcut, and make test's late
        # process: scripts/run_tests.py); conversion and verification are reused too when every model has them
        print(f"\nEDGEPROOF_TEST_REUSE_TRAINED: reusing the fast artifacts in {reuse}, not training")
        shutil.copytree(reuse, artifacts, dirs_exist_ok=True)
        LOADED["trained"] = True
        return artifacts, {(n, f.value): _reused_result(TrainResult, artifacts, n, f.value)
                           for n in training_order() for f in Framework}
    results = {(name, f.value): train(name, f, "fast", artifacts=artifacts)
               for name in training_order() for f in Framework}
    return artifacts, results


def _reused_result(result_class, artifacts: Path, name: str, framework: str):
    """A TrainResult read from a reused folder's metrics.json, its paths pointing into the session's copy (the
    file names the folder it was trained in, which may be gone or changed since)."""
    import json

    root = artifacts / name / framework
    fields = json.loads((root / "training" / "metrics.json").read_text())
    fields.update(checkpoint=str(root / "checkpoint"), metrics_path=str(root / "training" / "metrics.json"),
                  curve_path=str(root / "training" / "curve.png"))
    return result_class(**fields)


@pytest.fixture(scope="session")
def fast_converted(fast_trained):
    """Every fast-trained model converted to every TFLite and TF.js precision (shared, read-only)."""
    from edgeproof import Framework, training_order
    from edgeproof.convert import convert

    from edgeproof.convert import load_records
    from edgeproof.train import model_dir

    artifacts, _ = fast_trained
    if os.environ.get(REUSE_ENV) and all(  # developer shortcut, see fast_trained
            (model_dir(artifacts, n, f) / "conversion.json").exists() for n in training_order() for f in Framework):
        LOADED["converted"] = True
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
    if os.environ.get(REUSE_ENV) and all(  # developer shortcut, see fast_trained
            (model_dir(artifacts, n, f) / "parity.json").exists() for n in training_order() for f in Framework):
        LOADED["verified"] = True
        loaded = {(n, f.value): load_verdicts(model_dir(artifacts, n, f)) for n in training_order() for f in Framework}
        return artifacts, {k: ModelVerification(Reference(**ref), verdicts) for k, (ref, verdicts) in loaded.items()}
    from edgeproof.verify._parallel import VerifyOptions, verify_pairs

    from .fast_matrix import FIXTURE_WITHOUT_BROWSER

    pairs = [(name, f) for name in training_order() for f in Framework]
    # two models at a time, one thread each: the parallel path the pipeline uses (test_verify checks it
    # against verifying one model after another); the translator's browser rows are the slow tier's
    browser = [p for p in pairs if p[0] not in FIXTURE_WITHOUT_BROWSER]
    native = [p for p in pairs if p[0] in FIXTURE_WITHOUT_BROWSER]
    results = dict(zip(browser, verify_pairs(browser, VerifyOptions(str(artifacts)), jobs=2)))
    results.update(zip(native, verify_pairs(native, VerifyOptions(str(artifacts), browsers=()), jobs=2)))
    _publish(artifacts)
    return artifacts, {(name, f.value): results[name, f] for name, f in pairs}


def _publish(artifacts: Path) -> None:
    """scripts/run_tests.py: a snapshot of the freshly verified fast models in $EDGEPROOF_TEST_PUBLISH_FAST_MODELS,
    for its third pytest process (the late tests, which read them back with EDGEPROOF_TEST_REUSE_TRAINED); the file
    `ready` (the snapshot's path) is written last, atomically."""
    import shutil

    shared = os.environ.get(PUBLISH_ENV)
    if not shared:
        return
    snapshot = Path(shared) / "fast-artifacts"
    shutil.copytree(artifacts, snapshot)
    (Path(shared) / "ready.tmp").write_text(str(snapshot))
    os.replace(Path(shared) / "ready.tmp", Path(shared) / "ready")


# -- the halves `make test` runs side by side (scripts/run_tests.py) --------------------------------------------------
SESSION_FIXTURES = frozenset({"fast_trained", "fast_converted", "fast_verified"})
HALVES = ("fast-models", "independent")


def uses_fast_models(item: pytest.Item) -> bool:
    """True when the test needs the session's fast models (directly or through another fixture)."""
    return bool(SESSION_FIXTURES & set(getattr(item, "fixturenames", ())))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--half", choices=HALVES, default=None,
                     help="only the tests that use the session's fast models (fast-models: they train, convert and "
                          "verify them once, and every test that compares them in memory with their files runs here), "
                          "or only the others (independent); scripts/run_tests.py runs both halves at once")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    half = config.getoption("--half")
    if half is None:
        return
    keep = [it for it in items if uses_fast_models(it) == (half == "fast-models")]
    dropped = [it for it in items if uses_fast_models(it) != (half == "fast-models")]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = keep
