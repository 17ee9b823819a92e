"""Truncated and garbled .tflite files are a ModelFileError, never a crash (issue 19 item 4).

The defect: under tflite-runtime 2.14 (the Pi stand-in .venv-edge) a truncated .tflite whose manifest
hash matches made `edgeproof run` die with SIGSEGV (rc 139, no message). The runtime now validates
the flatbuffer (runtime/_flatbuffer.py, pure Python) before any interpreter sees it. Proven here in
.venv-edge (tflite-runtime 2.14) and .venv (ai-edge-litert) on copies of real bundles."""
from __future__ import annotations

import json
import random
import signal
import subprocess
import textwrap
from pathlib import Path

import pytest
from edgeproof.runtime._flatbuffer import FlatbufferError, _Reader, validate_tflite
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .bundle_fixtures import REPO, build_pi_bundles, copy_bundle, rehash

pytestmark = pytest.mark.stack
BUNDLES = ("mnist_cnn-keras-int8", "mnist_cnn-keras-fp32")
TRUNCATIONS = 15  # per model: cut points spread over the file
GARBLES = 40  # per model: 1-4 random bytes changed in the flatbuffer's structure (not in weights)


def _structure_bytes(data: bytes) -> list[int]:
    """Offsets outside the constant buffers' data: tables, vtables, vectors, strings."""
    r = _Reader(data)
    model = r.table(r.deref(0, "root"), "model")
    inside = bytearray(len(data))
    for b in model.tables(4, "buffer"):
        start, count = b.byte_vector(0)
        inside[start:start + count] = b"\1" * count
    return [i for i in range(8, len(data)) if not inside[i]]


@pytest.fixture(scope="module")
def corrupted(tmp_path_factory) -> dict[str, list[Path]]:
    """Bundles whose model.tflite is truncated or garbled and whose manifest sha256 was recomputed
    (what passes the checksum check: an attacker, or a copy that broke before hashing)."""
    out = build_pi_bundles(tmp_path_factory.getbasetemp() / "h19-bundles")
    base = tmp_path_factory.mktemp("corrupt")
    rng = random.Random(19)
    made: dict[str, list[Path]] = {"truncated": [], "garbled": []}
    for name in BUNDLES:
        data = (out / name / "model.tflite").read_bytes()
        structure = _structure_bytes(data)
        variants = [("truncated", data[:int(len(data) * (k + 0.5) / TRUNCATIONS)]) for k in range(TRUNCATIONS)]
        for _ in range(GARBLES):
            blob = bytearray(data)
            for _ in range(rng.randint(1, 4)):
                blob[rng.choice(structure)] = rng.randrange(256)
            variants.append(("garbled", bytes(blob)))
        for i, (kind, blob) in enumerate(variants):
            bundle = copy_bundle(out, name, base / f"{name}-{kind}-{i:03d}")
            (bundle / "model.tflite").write_bytes(blob)
            rehash(bundle, "model.tflite")
            made[kind].append(bundle)
    return made


CHILD = textwrap.dedent("""
    import json, sys
    import numpy as np
    from edgeproof.errors import EdgeproofError
    from edgeproof.runtime import Model
    if sys.argv[2] == "unprotected":  # the control: the runtime as it was, no flatbuffer check
        import edgeproof.runtime._tflite_runner as R
        R.validate_tflite = lambda path: None
    for bundle in sys.argv[3:]:
        print(json.dumps({"bundle": bundle, "started": True}), flush=True)
        try:
            model = Model.load(bundle, interpreter=sys.argv[1])
            model(np.zeros((2, 28, 28), np.uint8))
            outcome = "ok"
        except (EdgeproofError, ValueError) as err:
            outcome = type(err).__name__
        print(json.dumps({"bundle": bundle, "outcome": outcome}), flush=True)
""")


def _run(python: Path, interpreter: str, bundles: list[Path], mode: str = "protected") -> tuple[int, list[dict]]:
    run = subprocess.run([str(python), "-c", CHILD, interpreter, mode, *map(str, bundles)], capture_output=True,
                         text=True, timeout=600, cwd=REPO)
    return run.returncode, [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]


def _outcomes(lines: list[dict]) -> dict[str, str]:
    return {line["bundle"]: line["outcome"] for line in lines if "outcome" in line}


ENVS = [pytest.param(".venv-edge", "tflite_runtime", id="tflite-runtime-2.14"),
        pytest.param(".venv", "ai_edge_litert", id="ai-edge-litert")]


@pytest.mark.parametrize("venv, interpreter", ENVS)
def test_truncated_models_are_model_file_errors(corrupted, venv, interpreter):
    python = REPO / venv / "bin" / "python"
    if not python.exists():
        pytest.fail(f"{python} is missing: run `scripts/setup.sh edge` / `main`")
    code, lines = _run(python, interpreter, corrupted["truncated"])
    assert code == 0, f"the runtime died (rc {code}) on {lines[-1]['bundle'] if lines else '?'}"
    outcomes = _outcomes(lines)
    assert len(outcomes) == len(corrupted["truncated"])
    assert set(outcomes.values()) == {"ModelFileError"}, outcomes


@pytest.mark.parametrize("venv, interpreter", ENVS)
def test_garbled_models_never_crash_the_runtime(corrupted, venv, interpreter):
    """Structure garbling: refused by the validator, refused by the interpreter, or (a change that
    keeps the model well-formed, e.g. a tensor name) it runs; never a signal."""
    python = REPO / venv / "bin" / "python"
    code, lines = _run(python, interpreter, corrupted["garbled"])
    assert code == 0, f"the runtime died (rc {code}) on {lines[-1]['bundle'] if lines else '?'}"
    outcomes = _outcomes(lines)
    assert len(outcomes) == len(corrupted["garbled"])
    assert set(outcomes.values()) <= {"ok", "ModelFileError", "InputError", "BundleError"}, outcomes
    assert list(outcomes.values()).count("ModelFileError") >= len(outcomes) // 4, outcomes  # most are refused


def test_control_without_the_check_tflite_runtime_segfaults(corrupted):
    """The defect, reproduced: the same truncated bundles with the flatbuffer check switched off
    kill tflite-runtime 2.14 with a signal (this is what the check prevents)."""
    python = REPO / ".venv-edge" / "bin" / "python"
    code, _ = _run(python, "tflite_runtime", corrupted["truncated"], mode="unprotected")
    assert code in (-signal.SIGSEGV, -signal.SIGBUS), f"expected a crash without the check, got rc {code}"


def test_the_message_names_the_file_and_the_fix(corrupted):
    from edgeproof.runtime import Model, ModelFileError

    with pytest.raises(ModelFileError, match=r"model.tflite is not a valid TFLite model \(.*(outside the file|"
                                             r"truncated).*\); convert it again"):
        Model.load(corrupted["truncated"][3])


def test_every_real_bundle_model_validates(corrupted, tmp_path_factory):
    """No false alarms: every .tflite the pipeline deployed passes the check."""
    out = build_pi_bundles(tmp_path_factory.getbasetemp() / "h19-bundles")
    models = sorted(out.glob("*/model.tflite"))
    assert models
    for path in models:
        summary = validate_tflite(path)
        assert summary.subgraphs >= 1 and summary.operators >= 1 and summary.signature_keys == ["serving_default"]


@pytest.fixture(scope="module")
def intact(tmp_path_factory) -> bytes:
    out = build_pi_bundles(tmp_path_factory.getbasetemp() / "h19-bundles")
    return (out / BUNDLES[0] / "model.tflite").read_bytes()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_byte_mutation_is_validated_or_a_flatbuffer_error(intact, tmp_path, data):
    """Pure Python: whatever the bytes, the validator returns or raises FlatbufferError (never
    IndexError, struct.error, MemoryError...)."""
    blob = bytearray(intact)
    for _ in range(data.draw(st.integers(1, 6))):
        blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        del blob[data.draw(st.integers(0, len(blob))):]
    path = tmp_path / "m.tflite"
    path.write_bytes(bytes(blob))
    try:
        validate_tflite(path)
    except FlatbufferError:
        pass
