"""`edgeproof doctor`, run as a user runs it (a subprocess of the installed command): it passes on this
machine, and a missing piece prints its fix line and exits 1. The pieces are taken away the way they go
missing for real: node and npm off PATH, and an ai_edge_litert whose import fails (a package earlier on
sys.path that raises, as a wheel built for another numpy or glibc does)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.stack  # the doctor imports the heavy stack (in a child process): ~15-20 s a run


def _doctor(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    run = subprocess.run([sys.executable, "-m", "edgeproof", "doctor"], capture_output=True, text=True, timeout=600,
                         env=env, cwd=cwd)
    print(run.stdout, run.stderr[-2000:])
    return run


def _line(out: str, name: str) -> str:
    lines = [line for line in out.splitlines() if line[6:].startswith(name + " ")]
    assert len(lines) == 1, f"no single line for {name!r} in:\n{out}"
    return lines[0]


def test_doctor_passes_here(tmp_path):
    run = _doctor(dict(os.environ), tmp_path)
    assert run.returncode == 0, run.stdout
    for name in ("python", "node", "npm", "JS packages", "tensorflow", "tf_keras", "tensorflowjs", "torch", "onnx",
                 "onnx2tf", "ai-edge-litert", "chromium", ".venv-edge", ".venv-litert"):
        assert _line(run.stdout, name).startswith("ok "), _line(run.stdout, name)
    for name in ("tflite-runtime", "GPU (tensorflow)", "GPU (torch)"):
        _line(run.stdout, name)  # reported, whatever the answer
    assert "checkout" in _line(run.stdout, "JS packages")
    assert run.stdout.strip().splitlines()[-1].startswith("doctor: the main job can run here")
    assert "Traceback" not in run.stdout + run.stderr


def test_node_missing_from_path_is_a_fix_line_and_exit_1(tmp_path):
    """PATH holds only this Python's folder: no node, no npm (the doctor finds Python by sys.executable)."""
    assert shutil.which("node", path=str(Path(sys.executable).parent)) is None, "node sits beside python here"
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    run = _doctor(env, tmp_path)
    assert run.returncode == 1, run.stdout
    node = _line(run.stdout, "node")
    assert node.startswith("FAIL") and "fix: install Node.js 18+" in node, node
    assert _line(run.stdout, "npm").startswith("FAIL")
    assert _line(run.stdout, "tensorflow").startswith("ok ")  # the rest is still checked
    assert "the main job cannot run here: node, npm" in run.stdout.strip().splitlines()[-1]
    assert "Traceback" not in run.stdout + run.stderr


def test_broken_tflite_interpreter_is_a_fix_line_and_exit_1(tmp_path):
    fake = tmp_path / "shadow" / "ai_edge_litert"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text('raise ImportError("libLiteRt.so: cannot open shared object file (simulated)")\n')
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(fake.parent), os.environ.get("PYTHONPATH")]))}
    run = _doctor(env, tmp_path)
    assert run.returncode == 1, run.stdout
    line = _line(run.stdout, "ai-edge-litert")
    assert line.startswith("FAIL") and "simulated" in line and "fix: scripts/setup.sh main" in line, line
    assert _line(run.stdout, "node").startswith("ok ")
    assert "ai-edge-litert" in run.stdout.strip().splitlines()[-1]



def test_a_litert_environment_without_litert_torch_is_a_warning_with_its_fix(tmp_path):
    """The second PyTorch route is not required: a broken environment for it is a warning, exit 0."""
    run = _doctor({**os.environ, "EDGEPROOF_LITERT_PYTHON": sys.executable}, tmp_path)
    assert run.returncode == 0, run.stdout
    line = _line(run.stdout, ".venv-litert")
    assert line.startswith("warn") and "No module named 'litert_torch'" in line, line
    assert "-> fix: scripts/setup.sh litert" in line, line
