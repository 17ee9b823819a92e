"""`edgeproof doctor`: what this machine has of what edgeproof needs, one line per check, with the fix when
something is missing. Exit status 1 when a piece the main job (`edgeproof pipeline`: train, convert, verify
incl. TF.js under Node, deploy) cannot run without is missing, else 0.

Required: Python >= 3.9, the pipeline stack importable (tensorflow, tf_keras, tensorflowjs, torch, onnx,
onnx2tf, ai_edge_litert), node + npm, the JS packages found or installable, ai-edge-litert's interpreter.
Reported, not required: the Python version the locks are proven on (3.11), Debian's chromium (the in-browser
verdict rows and the browser tests), .venv-edge and tflite-runtime (the Raspberry Pi stand-in), .venv-litert
(litert-torch, PyTorch models' second TFLite route), GPUs.

The heavy imports run in one child process (sys.executable), so a module that crashes the interpreter is a
failed check rather than a dead doctor, and TensorFlow's start-up noise stays in the child's stderr.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Optional, Sequence

__all__ = ["Check", "CheckStatus", "collect_checks", "run_doctor"]

# (import name, distribution name) of the pipeline stack, in the order they are imported by the child.
# ai_edge_litert is checked with the interpreters (its Interpreter class must load, not just the package).
STACK = (("tensorflow", "tensorflow"), ("tf_keras", "tf-keras"), ("tensorflowjs", "tensorflowjs"),
         ("torch", "torch"), ("onnx", "onnx"), ("onnx2tf", "onnx2tf"))
CHROMIUM = "/usr/bin/chromium"  # Debian's chromium, what Playwright drives here (DESIGN.md)
CHILD_TIMEOUT_S = 600.0         # importing TensorFlow + torch takes ~20 s on 2 busy cores; bounded anyway
_ROOT = Path(__file__).resolve().parents[1]

# The child: import each stack module, then each interpreter, then ask TensorFlow and torch for GPUs; one
# JSON line per result on stdout, flushed, so a crash part-way still leaves the earlier answers.
_CHILD = r"""
import importlib, json, sys
from importlib import metadata

def say(**row):
    print(json.dumps(row), flush=True)

def error(err):
    first = str(err).splitlines()[0][:200] if str(err).strip() else ""
    return f"{type(err).__name__}: {first}"

def version(dist, module):
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return getattr(module, "__version__", "?")

for name, dist in json.loads(sys.argv[1]):
    try:
        module = importlib.import_module(name)
        say(kind="module", name=name, ok=True, version=version(dist, module))
    except BaseException as err:  # a module may raise anything while importing, SystemExit included
        say(kind="module", name=name, ok=False, error=error(err))
for name, (module_name, attr) in json.loads(sys.argv[2]).items():
    try:
        obj = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
        top = sys.modules[module_name.split(".")[0]]
        say(kind="interpreter", name=name, ok=True, version=version(name.replace("_", "-"), top))
    except BaseException as err:
        say(kind="interpreter", name=name, ok=False, error=error(err))
try:
    import tensorflow as tf
    say(kind="gpu", name="tensorflow", ok=True, devices=[d.name for d in tf.config.list_physical_devices("GPU")])
except BaseException as err:
    say(kind="gpu", name="tensorflow", ok=False, error=f"{type(err).__name__}")
try:
    import torch
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    say(kind="gpu", name="torch", ok=True, devices=[torch.cuda.get_device_name(i) for i in range(n)])
except BaseException as err:
    say(kind="gpu", name="torch", ok=False, error=f"{type(err).__name__}")
"""


class CheckStatus(str, Enum):
    OK = "ok"
    INFO = "info"   # a fact, nothing to fix (e.g. no GPU: training runs on the CPU)
    WARN = "warn"   # missing, but the main job runs without it
    FAIL = "FAIL"   # missing, and the main job cannot run: exit status 1


@dataclass(frozen=True)
class Check:
    name: str
    status: CheckStatus
    detail: str
    fix: Optional[str] = None

    def line(self) -> str:
        fix = f"  -> fix: {self.fix}" if self.fix and self.status in (CheckStatus.WARN, CheckStatus.FAIL) else ""
        return f"{self.status.value:<4}  {self.name:<16} {self.detail}{fix}"


def _checkout() -> Optional[Path]:
    """The repository root when edgeproof runs from a checkout (editable install), else None."""
    return _ROOT if (_ROOT / "pyproject.toml").is_file() and (_ROOT / "web_demo").is_dir() else None


def _stack_fix() -> str:
    if _checkout():
        return "scripts/setup.sh main"
    return 'pip install "edgeproof[pipeline]" (pinned: pip install -c requirements/pipeline.lock "edgeproof[pipeline]")'


def _tool_version(exe: str, *args: str) -> str:
    try:
        run = subprocess.run([exe, *args], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"? ({type(err).__name__})"
    text = (run.stdout or run.stderr).strip().splitlines()
    return text[0][:80] if text else f"? (exit {run.returncode})"


def check_python() -> list[Check]:
    v = sys.version_info
    text = f"{v.major}.{v.minor}.{v.micro} ({sys.executable})"
    if v < (3, 9):
        return [Check("python", CheckStatus.FAIL, text, "install Python 3.11 (edgeproof needs >= 3.9)")]
    if (v.major, v.minor) != (3, 11):
        return [Check("python", CheckStatus.WARN, text + "; the pinned stack is proven on CPython 3.11",
                      "use Python 3.11 for the pipeline (PYTHON=python3.11 scripts/setup.sh main)")]
    return [Check("python", CheckStatus.OK, text)]


def _child_rows() -> tuple[list[dict], str]:
    from edgeproof.runtime._interpreter import INTERPRETER_ORDER

    interpreters = {k: v for k, v in INTERPRETER_ORDER.items() if k != "tensorflow"}
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_USE_LEGACY_KERAS": "1", "TFDF_DISABLE_WELCOME_MESSAGE": "1"}
    try:
        run = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(STACK), json.dumps(interpreters)],
                             capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, env=env)
    except subprocess.TimeoutExpired as err:
        out = err.stdout.decode() if isinstance(err.stdout, bytes) else (err.stdout or "")
        rows = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
        return rows, f"timed out after {CHILD_TIMEOUT_S:.0f} s"
    rows = [json.loads(x) for x in run.stdout.splitlines() if x.startswith("{")]
    died = f"the interpreter died (exit {run.returncode})" if run.returncode else ""
    return rows, died


def check_stack_interpreters_gpus() -> list[Check]:
    """The pipeline stack, the TFLite interpreters of this environment and GPU visibility, from one child."""
    rows, died = _child_rows()
    seen = {(r["kind"], r["name"]): r for r in rows}
    checks = []
    for name, dist in STACK:
        row = seen.get(("module", name))
        if row is None:
            checks.append(Check(name, CheckStatus.FAIL, f"not checked: {died or 'no answer'} before importing it",
                                _stack_fix()))
        elif row["ok"]:
            checks.append(Check(name, CheckStatus.OK, f"{row['version']}"))
        else:
            checks.append(Check(name, CheckStatus.FAIL, f"cannot import ({row['error']})", _stack_fix()))
    for name, label, required in (("ai_edge_litert", "ai-edge-litert", True), ("tflite_runtime", "tflite-runtime",
                                                                               False)):
        checks.append(_interpreter_check(seen.get(("interpreter", name)), label, required, died))
    for name in ("tensorflow", "torch"):
        checks.append(_gpu_check(seen.get(("gpu", name)), name))
    return checks


def _interpreter_check(row: Optional[dict], label: str, required: bool, died: str) -> Check:
    name = label
    if row is not None and row["ok"]:
        return Check(name, CheckStatus.OK, f"{row['version']}: its Interpreter loads in this environment")
    reason = row["error"] if row is not None else (died or "not checked")
    if required:
        return Check(name, CheckStatus.FAIL, f"its Interpreter does not load ({reason}); verify runs every .tflite "
                                             f"in it", _stack_fix())
    if _edge_python():  # its place: an environment with numpy<2 (it crashes under numpy 2)
        return Check(name, CheckStatus.INFO, "not in this environment; the Pi stand-in has it (.venv-edge below)")
    where = "scripts/setup.sh edge" if _checkout() else "or set EDGEPROOF_EDGE_PYTHON to such an environment's python"
    return Check(name, CheckStatus.WARN, f"not in this environment ({reason}) and no Pi stand-in found",
                 f'pip install "edgeproof[tflite]" in an environment with numpy<2 ({where})')


def _gpu_check(row: Optional[dict], framework: str) -> Check:
    name = f"GPU ({framework})"
    if row is None or not row["ok"]:
        return Check(name, CheckStatus.INFO, f"not checked ({framework} does not import)")
    if row["devices"]:
        return Check(name, CheckStatus.OK, f"{len(row['devices'])} visible: {', '.join(row['devices'])}")
    if shutil.which("nvidia-smi"):
        return Check(name, CheckStatus.WARN, "none visible, but nvidia-smi exists: a GPU is not used",
                     f"install {framework}'s CUDA build and the NVIDIA driver it needs")
    return Check(name, CheckStatus.INFO, "none: training runs on the CPU")


def check_node() -> list[Check]:
    from ._js import NODE_FIX

    checks = []
    for tool in ("node", "npm"):
        exe = shutil.which(tool)
        if exe is None:
            checks.append(Check(tool, CheckStatus.FAIL, "not on PATH: TF.js artifacts are verified under Node",
                                NODE_FIX))
        else:
            checks.append(Check(tool, CheckStatus.OK, f"{_tool_version(exe, '--version')} ({exe})"))
    return checks


def check_js_deps() -> list[Check]:
    from ._js import NODE_FIX, JsDepsError, JsSource, find_js_modules

    npm_found = shutil.which("npm") is not None
    try:
        found = find_js_modules()
    except JsDepsError as err:
        return [Check("JS packages", CheckStatus.FAIL, str(err), "reinstall edgeproof")]
    if found.source is not JsSource.MISSING:
        return [Check("JS packages", CheckStatus.OK, f"{found.source.value}: {found.detail}")]
    if not npm_found:
        return [Check("JS packages", CheckStatus.FAIL, f"{found.detail}, which needs npm", NODE_FIX)]
    return [Check("JS packages", CheckStatus.INFO, found.detail + " (from npm's cache, or the network)")]


def check_chromium() -> list[Check]:
    exe = CHROMIUM if Path(CHROMIUM).is_file() else shutil.which("chromium")
    fix = "apt-get install chromium (Debian's; scripts/setup.sh browser)"
    if exe is None:
        return [Check("chromium", CheckStatus.WARN, "not found: the in-browser verdict rows (LiteRT.js) become "
                                                   "'unsupported' and the browser tests cannot run", fix)]
    try:
        from importlib import metadata

        playwright = f", playwright {metadata.version('playwright')}"
    except Exception:  # PackageNotFoundError or a broken metadata folder: report it, go on
        return [Check("chromium", CheckStatus.WARN, f"{exe}, but the playwright package is missing",
                      'pip install playwright (part of "edgeproof[test]")')]
    return [Check("chromium", CheckStatus.OK, f"{_tool_version(exe, '--version')} ({exe}){playwright}")]


def _edge_python() -> Optional[Path]:
    candidates = [os.environ.get("EDGEPROOF_EDGE_PYTHON")]
    if _checkout():
        candidates.append(str(_checkout() / ".venv-edge" / "bin" / "python"))
    return next((Path(c) for c in candidates if c and Path(c).is_file()), None)


def check_edge_venv() -> list[Check]:
    python = _edge_python()
    if python is None:
        if _checkout() is None:
            return [Check(".venv-edge", CheckStatus.INFO, "not in a checkout (set EDGEPROOF_EDGE_PYTHON to a "
                                                          "tflite-runtime environment's python to use one)")]
        return [Check(".venv-edge", CheckStatus.WARN, "missing: the Pi stand-in (numpy<2 + tflite-runtime 2.14) for "
                                                      "the edge tests and the Pi self-test", "scripts/setup.sh edge")]
    code = ("import numpy, tflite_runtime; from tflite_runtime.interpreter import Interpreter; "
            "print(f'numpy {numpy.__version__}, tflite-runtime {tflite_runtime.__version__}')")
    try:
        run = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as err:
        run = None
        reason = type(err).__name__
    if run is not None and run.returncode == 0:
        return [Check(".venv-edge", CheckStatus.OK, f"{run.stdout.strip()}: its Interpreter loads ({python})")]
    if run is not None:
        lines = (run.stderr or "").strip().splitlines()
        reason = lines[-1][:200] if lines else f"exit {run.returncode}"
    return [Check(".venv-edge", CheckStatus.WARN, f"{python}: tflite-runtime does not load ({reason})",
                  "scripts/setup.sh edge (recreate it: rm -rf .venv-edge first)")]


def check_litert_venv() -> list[Check]:
    """The litert-torch environment (convert/_litert_torch.py: PyTorch models' second TFLite route)."""
    from edgeproof.convert._litert_torch import litert_python  # where convert looks, so both find the same one

    python, why = litert_python()
    if python is None and why.endswith("=off"):
        return [Check(".venv-litert", CheckStatus.INFO, f"{why}: PyTorch models take the ONNX route only")]
    if python is None:
        return [Check(".venv-litert", CheckStatus.WARN, f"missing: PyTorch models take the ONNX route only (no "
                                                        f"tflite/fp32-litert-torch cell): {why}",
                      "scripts/setup.sh litert")]
    code = "import torch, litert_torch, importlib.metadata as m; print('litert-torch', m.version('litert-torch'))"
    try:
        run = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=300)
        reason = ((run.stderr or "").strip().splitlines() or [f"exit {run.returncode}"])[-1][:200]
    except (OSError, subprocess.TimeoutExpired) as err:
        run, reason = None, type(err).__name__
    if run is not None and run.returncode == 0:
        return [Check(".venv-litert", CheckStatus.OK, f"{run.stdout.strip()} imports ({python})")]
    return [Check(".venv-litert", CheckStatus.WARN, f"{python}: litert-torch does not import ({reason})",
                  "scripts/setup.sh litert (recreate it: rm -rf .venv-litert first)")]


# The checks, in the order they are printed (fast ones first: the stack's imports take the longest).
CHECKS = (check_python, check_node, check_js_deps, check_stack_interpreters_gpus, check_chromium, check_edge_venv,
          check_litert_venv)


def collect_checks() -> list[Check]:
    """Every check, in the order they are printed."""
    return [check for group in CHECKS for check in group()]


def summary(checks: Sequence[Check]) -> str:
    failed = [c.name for c in checks if c.status is CheckStatus.FAIL]
    warned = sum(c.status is CheckStatus.WARN for c in checks)
    if failed:
        return f"doctor: the main job cannot run here: {', '.join(failed)} missing or broken (fixes above)"
    return f"doctor: the main job can run here ({len(checks)} checks, {warned} warning{'' if warned == 1 else 's'})"


def run_doctor() -> int:
    """Print one line per check as it completes, then a summary; 1 when a required piece is missing, else 0."""
    print(f"edgeproof doctor ({sys.executable})", flush=True)
    checks: list[Check] = []
    for group in CHECKS:
        for check in group():
            checks.append(check)
            print(check.line(), flush=True)
    print(summary(checks), flush=True)
    return 1 if any(c.status is CheckStatus.FAIL for c in checks) else 0
