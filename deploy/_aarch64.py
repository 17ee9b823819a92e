"""Prove Pi bundles on the Pi's own CPU architecture before they ship: `deploy --target pi --prove-aarch64`.

Every bundle's golden self-test (deploy/_selftest.py) runs in a Debian bookworm arm64 userland (CPython 3.11,
as on Raspberry Pi OS bookworm) under qemu-aarch64-static emulating a Raspberry Pi 4's Cortex-A72, once with
tflite-runtime 2.14 and once with ai-edge-litert (scripts/pi_userland.sh builds and caches the userland).
Each manifest then records, under "proven_on", the machine, Python, numpy and interpreter each run used and
its result; the Pi README lists them. A bundle that loads but fails its self-test there is refused: it
computes something else on the Pi's CPU than what the gate proved. A bundle an interpreter cannot load
(e.g. tflite-runtime 2.14 and a newer op version) is recorded as such, not refused: its manifest already
says which interpreter it needs.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from edgeproof._atomic import write_bytes_atomic
from edgeproof.errors import EdgeproofError

INTERPRETERS = ("tflite_runtime", "ai_edge_litert")
_SITE_VAR = {"tflite_runtime": "EDGEPROOF_AARCH64_SITE_TFLITE", "ai_edge_litert": "EDGEPROOF_AARCH64_SITE_LITERT"}
_USERLAND_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "pi_userland.sh"
RUN_TIMEOUT_S = 3600

# Runs inside the arm64 Python: only numpy, one interpreter and edgeproof.runtime are importable there.
_CHILD = textwrap.dedent("""
    import importlib.metadata as md, json, platform, sys
    import numpy as np
    from edgeproof.runtime import Model
    from edgeproof.runtime._selftest import self_test
    name = sys.argv[1]
    dist = {"tflite_runtime": "tflite-runtime", "ai_edge_litert": "ai-edge-litert"}[name]
    out = {"machine": platform.machine(), "python": platform.python_version(), "numpy": np.__version__,
           "interpreter": f"{name} {md.version(dist)}", "bundles": {}}
    for path in sys.argv[2:]:
        try:
            r = self_test(Model.load(path, interpreter=name, num_threads=1))
            err = r.max_abs_error if r.max_abs_error == r.max_abs_error and abs(r.max_abs_error) != float("inf") else None
            out["bundles"][path] = {"status": "pass" if r.passed else "fail", "max_abs_error": err,
                                    "summary": r.summary()}
        except Exception as err:  # reported per bundle: a model this interpreter cannot load is not a crash
            out["bundles"][path] = {"status": "not loadable", "summary": str(err)[:500]}
    print(json.dumps(out, default=float, allow_nan=False))
""")


class Aarch64Error(EdgeproofError):
    """The arm64 userland is missing or could not run."""


@dataclass(frozen=True)
class Userland:
    root: Path
    qemu: str
    cpu: str
    sites: dict[str, str]

    def command(self) -> list[str]:
        return [self.qemu, "-cpu", self.cpu, "-L", str(self.root), str(self.root / "usr/bin/python3.11")]

    def describe(self) -> str:
        return f"aarch64 (emulated: qemu-aarch64-static -cpu {self.cpu}, Debian bookworm arm64 userland)"


def find_userland(cache: Optional[Path] = None) -> Userland:
    """The cached arm64 userland (scripts/pi_userland.sh builds it on the first call: Debian's mirror and PyPI)."""
    cache = Path(cache or os.environ.get("EDGEPROOF_AARCH64_CACHE") or Path.home() / ".cache/edgeproof/aarch64")
    if not _USERLAND_SCRIPT.is_file():
        raise Aarch64Error(f"--prove-aarch64 needs scripts/pi_userland.sh from an edgeproof checkout "
                           f"(not found at {_USERLAND_SCRIPT})")
    run = subprocess.run(["bash", str(_USERLAND_SCRIPT), str(cache)], capture_output=True, text=True, timeout=1800)
    if run.returncode != 0:
        tail = run.stderr.strip().splitlines()[-1:] or [f"exit code {run.returncode}"]
        raise Aarch64Error(f"scripts/pi_userland.sh could not prepare the arm64 userland in {cache}: {tail[0]} "
                           f"(the first run needs Debian's mirror, PyPI and root for qemu-user-static)")
    env = dict(line.split("=", 1) for line in run.stdout.splitlines() if line.startswith("EDGEPROOF_"))
    return Userland(Path(env["EDGEPROOF_AARCH64_ROOT"]), env["EDGEPROOF_QEMU"], env["EDGEPROOF_QEMU_CPU"],
                    {i: env[_SITE_VAR[i]] for i in INTERPRETERS})


def runtime_site(dest: Path) -> Path:
    """edgeproof and edgeproof.runtime as plain folders: what the arm64 Python imports (numpy-only code)."""
    import edgeproof
    import edgeproof.runtime

    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    package = Path(edgeproof.__file__).parent
    shutil.copytree(package, dest / "edgeproof", ignore=ignore, symlinks=False)
    shutil.rmtree(dest / "edgeproof" / "runtime", ignore_errors=True)
    shutil.copytree(Path(edgeproof.runtime.__file__).parent, dest / "edgeproof" / "runtime", ignore=ignore)
    return dest


def run_self_tests(bundles: list[Path], userland: Userland) -> dict[str, dict[str, Any]]:
    """{interpreter: the arm64 run's report} for every bundle's self-test, one emulated Python per interpreter."""
    reports = {}
    with tempfile.TemporaryDirectory(prefix="edgeproof-aarch64-") as tmp:
        site = runtime_site(Path(tmp) / "site")
        for interpreter in INTERPRETERS:
            env = {**os.environ, "PYTHONPATH": f"{site}:{userland.sites[interpreter]}", "PYTHONDONTWRITEBYTECODE": "1"}
            run = subprocess.run([*userland.command(), "-c", _CHILD, interpreter, *map(str, bundles)], cwd=tmp,
                                 capture_output=True, text=True, env=env, timeout=RUN_TIMEOUT_S)
            if run.returncode != 0 or not run.stdout.strip():
                raise Aarch64Error(f"the arm64 Python with {interpreter} stopped (exit code {run.returncode}): "
                                   f"{(run.stderr.strip().splitlines() or ['no output'])[-1]}")
            reports[interpreter] = json.loads(run.stdout.strip().splitlines()[-1])
    return reports


def record_proofs(bundles: list[Path], reports: dict[str, dict[str, Any]], machine: str) -> dict[Path, str]:
    """Write each run into its bundle's manifest ("proven_on", atomically); returns {bundle: why it is refused}
    for bundles that loaded but failed their self-test on aarch64."""
    failed: dict[Path, str] = {}
    for bundle in bundles:
        manifest = json.loads((bundle / "manifest.json").read_text())
        runs = []
        for interpreter, report in reports.items():
            got = dict(report["bundles"].get(str(bundle), {"status": "not run", "summary": "missing from the report"}))
            got["summary"] = got["summary"].replace(f"{bundle}/", "").replace(str(bundle), bundle.name)
            runs.append({"machine": machine, "arch": report["machine"], "python": report["python"],
                         "numpy": report["numpy"], "interpreter": report["interpreter"], **got})
            if got["status"] == "fail":
                failed[bundle] = f"fails its self-test on {machine} with {report['interpreter']}: {got['summary']}"
        manifest["proven_on"] = runs
        write_bytes_atomic(bundle / "manifest.json", json.dumps(manifest, indent=2).encode())
    return failed


def proof_cell(run: dict[str, Any]) -> str:
    """One README table cell for a run recorded in "proven_on"."""
    if run["status"] == "pass":
        return f"pass (max \\|Δ\\| {run['max_abs_error'] or 0:.2g})"
    return f"{run['status']}: {run['summary'][:120]}".replace("|", "\\|")
