"""The Pi's own CPU (issue 19 "what to build" 3): the Pi tarball from `edgeproof deploy --target pi`,
unpacked into a Debian bookworm arm64 userland (CPython 3.11, as Raspberry Pi OS bookworm) and run
under qemu-aarch64-static (Cortex-A72, a Raspberry Pi 4's core) with tflite-runtime 2.14 and with
ai-edge-litert 2.3.0: every bundle's self-test passes, its outputs match x86's, and a bundle whose
model was swapped fails.

Tier: `pytest -m aarch64` (marker declared in pyproject.toml). The userland comes from
scripts/pi_userland.sh, cached under $EDGEPROOF_AARCH64_CACHE (default ~/.cache/edgeproof/aarch64):
about 1.5 minutes and 300 MB to build the first time (needs Debian's mirror, PyPI, and root for
apt-get install qemu-user-static), a stamp check after that. Measured cost: docs/hostile-inputs.md.
"""
from __future__ import annotations

import json
import os
import subprocess
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
from edgeproof.runtime._selftest import _compare

from .bundle_fixtures import REPO, build_pi_bundles, copy_bundle, rehash

pytestmark = [pytest.mark.aarch64, pytest.mark.stack]
PROBE = REPO / "scripts" / "selftest_probe.py"
INTERPRETERS = ("tflite_runtime", "ai_edge_litert")


@pytest.fixture(scope="session")
def userland() -> dict[str, str]:
    cache = os.environ.get("EDGEPROOF_AARCH64_CACHE", str(Path.home() / ".cache" / "edgeproof" / "aarch64"))
    start = time.perf_counter()
    run = subprocess.run(["bash", str(REPO / "scripts" / "pi_userland.sh"), cache], capture_output=True, text=True,
                         timeout=1800)
    if run.returncode != 0:
        pytest.fail(f"scripts/pi_userland.sh could not build the arm64 userland in {cache} (it needs Debian's "
                    f"mirror and PyPI the first time, and root to apt-get install qemu-user-static):\n"
                    f"{run.stderr[-3000:]}")
    env = dict(line.split("=", 1) for line in run.stdout.splitlines() if line.startswith("EDGEPROOF_"))
    env["setup_s"] = f"{time.perf_counter() - start:.1f}"
    return env


@pytest.fixture(scope="session")
def unpacked(tmp_path_factory) -> tuple[Path, list[Path]]:
    """(the deploy folder, the bundles of the Pi tarball unpacked as a user would: tar xzf)."""
    from edgeproof.deploy._device_packages import PI_TARBALL

    out = build_pi_bundles(tmp_path_factory.getbasetemp() / "h19-bundles")
    dest = tmp_path_factory.mktemp("pi-home")
    with tarfile.open(out / PI_TARBALL) as tar:
        tar.extractall(dest, filter="data")
    bundles = sorted(p.parent for p in (dest / "bundles").glob("*/manifest.json"))
    assert len(bundles) == 8, bundles
    return out, bundles


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    """edgeproof + edgeproof.runtime as `pip install edgeproof` lays them out (pure Python): the folder
    `deploy --prove-aarch64` puts on the arm64 Python's path."""
    from edgeproof.deploy._aarch64 import runtime_site

    return runtime_site(tmp_path_factory.mktemp("site"))


def _probe(command: list[str], pythonpath: str, interpreter: str, bundles: list[Path], out: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": pythonpath, "PYTHONDONTWRITEBYTECODE": "1"}
    start = time.perf_counter()
    run = subprocess.run([*command, str(PROBE), "--interpreter", interpreter, "--threads", "1", "--out", str(out),
                          *map(str, bundles)], capture_output=True, text=True, env=env, timeout=1800)
    assert run.returncode in (0, 2), f"{interpreter} died (rc {run.returncode}): {run.stderr[-3000:]}"
    report = json.loads(run.stdout.splitlines()[-1])
    report["wall_s"] = round(time.perf_counter() - start, 1)
    report["arrays"] = dict(np.load(out, allow_pickle=False))
    return report


def _aarch64(userland, site, interpreter, bundles, out) -> dict:
    root = userland["EDGEPROOF_AARCH64_ROOT"]
    qemu = [userland["EDGEPROOF_QEMU"], "-cpu", userland["EDGEPROOF_QEMU_CPU"], "-L", root, f"{root}/usr/bin/python3.11"]
    extra = userland["EDGEPROOF_AARCH64_SITE_TFLITE" if interpreter == "tflite_runtime" else "EDGEPROOF_AARCH64_SITE_LITERT"]
    report = _probe(qemu, f"{site}:{extra}", interpreter, bundles, out)
    assert report["machine"] == "aarch64" and report["python"].startswith("3.11"), report
    return report


@pytest.fixture(scope="session")
def aarch64_runs(userland, unpacked, site, tmp_path_factory) -> dict[str, dict]:
    _, bundles = unpacked
    work = tmp_path_factory.mktemp("aarch64-runs")
    return {i: _aarch64(userland, site, i, bundles, work / f"{i}.npz") for i in INTERPRETERS}


@pytest.fixture(scope="session")
def x86_runs(unpacked, site, tmp_path_factory) -> dict[str, dict]:
    _, bundles = unpacked
    work = tmp_path_factory.mktemp("x86-runs")
    pythons = {"tflite_runtime": REPO / ".venv-edge/bin/python", "ai_edge_litert": REPO / ".venv/bin/python"}
    return {i: _probe([str(p)], str(site), i, bundles, work / f"{i}.npz") for i, p in pythons.items()}


def test_every_bundle_passes_its_self_test_on_aarch64(aarch64_runs, userland, test_output):
    summary = {"userland_setup_s": float(userland["setup_s"]), "cpu": userland["EDGEPROOF_QEMU_CPU"], "runs": {}}
    for interpreter, report in aarch64_runs.items():
        assert report["interpreter"] == interpreter
        for b in report["bundles"]:
            if "error" in b:  # dynamic-range FULLY_CONNECTED v12 is newer than tflite-runtime 2.14
                assert interpreter == "tflite_runtime" and b["bundle"].endswith("-dynamic"), b
                assert "needs a newer TFLite runtime" in b["error"], b
            else:
                assert b["passed"], (interpreter, b)
        summary["runs"][interpreter] = {"wall_s": report["wall_s"],
                                        "seconds_per_bundle": {b["bundle"]: b.get("seconds") for b in report["bundles"]}}
    (test_output / "aarch64.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


def test_aarch64_outputs_match_x86(aarch64_runs, x86_runs, unpacked):
    """Each interpreter's aarch64 outputs against its own x86 outputs, under the bundle's own self-test
    tolerance (the rule derived in deploy/_selftest.py)."""
    _, bundles = unpacked
    tolerance = {b.name: json.loads((b / "manifest.json").read_text())["self_test"]["tolerance"] for b in bundles}
    compared = 0
    for interpreter in INTERPRETERS:
        arm, x86 = aarch64_runs[interpreter]["arrays"], x86_runs[interpreter]["arrays"]
        assert set(arm) == set(x86)
        for key in arm:
            tol = tolerance[key.split("/")[0]]
            max_err, outside, _, capped = _compare(arm[key], x86[key], tol)
            assert capped and outside <= tol["outlier_fraction"] * x86[key].size, (interpreter, key, max_err, outside)
            compared += 1
    assert compared == 8 + 6  # ai-edge-litert runs all 8 bundles; tflite-runtime 2.14 the 6 non-dynamic ones


SWAPS = [("mnist_cnn-keras-int8", "mnist_cnn-keras-fp32"), ("mnist_cnn-keras-fp16", "mnist_cnn-keras-fp32"),
         ("mnist_gan-keras-fp32", "mnist_gan-keras-fp16"), ("mnist_gan-keras-int8", "mnist_gan-keras-fp32")]


@pytest.mark.parametrize("interpreter", INTERPRETERS)
def test_a_swapped_model_fails_its_self_test_on_aarch64(userland, unpacked, site, tmp_path, interpreter):
    out, _ = unpacked
    swapped = []
    for bundle, donor in SWAPS:
        dest = copy_bundle(out, bundle, tmp_path / f"{bundle}-swapped")
        (dest / "model.tflite").write_bytes((out / donor / "model.tflite").read_bytes())
        rehash(dest, "model.tflite")
        swapped.append(dest)
    report = _aarch64(userland, site, interpreter, swapped, tmp_path / "swapped.npz")
    assert [b["passed"] for b in report["bundles"]] == [False] * len(SWAPS), report["bundles"]


def test_deploy_prove_aarch64_records_every_bundle_in_its_manifest_and_the_readme(userland, unpacked, tmp_path):
    """`deploy --target pi --prove-aarch64` on the same artifacts: each manifest records both interpreters' runs on
    the emulated Cortex-A72, every bundle an interpreter loads passes there, and the README's table lists them."""
    from edgeproof.deploy import deploy

    out, _ = unpacked
    artifacts = out.parent / "artifacts"
    if not artifacts.is_dir():
        pytest.skip("EDGEPROOF_TEST_BUNDLES reused prebuilt bundles: no artifacts to deploy again")  # said in output
    start = time.perf_counter()
    result = deploy("pi", artifacts=artifacts, out=tmp_path / "pi", progress=False, prove_aarch64=True,
                    aarch64_cache=Path(userland["EDGEPROOF_AARCH64_ROOT"]).parent)
    assert result.bundles and not [r for r in result.refused if "aarch64" in r.reason], result.refused
    for bundle in result.bundles:
        runs = json.loads((bundle / "manifest.json").read_text())["proven_on"]
        assert [r["interpreter"].split()[0] for r in runs] == list(INTERPRETERS)
        assert all(r["arch"] == "aarch64" and r["python"].startswith("3.11") for r in runs), runs
        assert all(r["status"] == "pass" for r in runs if r["status"] != "not loadable"), runs
        assert any(r["status"] == "pass" for r in runs), runs  # ai-edge-litert loads every bundle
    readme = (tmp_path / "pi" / "README.md").read_text()
    assert all(f"| {b.name} | " in readme.split("## Proven on aarch64")[1] for b in result.bundles)
    print(f"deploy --prove-aarch64: {len(result.bundles)} bundles in {time.perf_counter() - start:.0f} s")
