"""The distribution: one namespace, a numpy-only base install, and the runtime kept light."""
import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from .conftest import REPO, run_python

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
HEAVY = ("tensorflow", "torch", "onnx", "onnxruntime", "tf_keras", "keras", "jax")


def test_base_install_requires_numpy_only():
    requires = metadata.requires("edgeproof") or []
    base = [r for r in requires if "extra ==" not in r]
    assert [re.split(r"[<>=!~ ;\[]", r)[0].lower() for r in base] == ["numpy"]
    extras = set(metadata.metadata("edgeproof").get_all("Provides-Extra"))
    assert {"litert", "tflite", "pipeline", "test"} <= extras


# Packages that hold package data only, no Python (pyproject.toml: edgeproof.web_demo is the browser demo).
DATA_PACKAGES = {"edgeproof.web_demo"}


def test_every_python_package_folder_is_in_the_distribution():
    mapping = PYPROJECT["tool"]["setuptools"]["package-dir"]
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    found = set(DATA_PACKAGES)
    for package, folder in mapping.items():
        if package in DATA_PACKAGES:
            assert not list((REPO / folder).glob("*.py")), f"{folder} holds Python: make it a real package"
            continue
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder)
            found.add(".".join([package, *rel.parts]) if rel.parts else package)
    assert found == listed


def test_editable_install_maps_folders_into_the_namespace():
    import edgeproof.convert
    import edgeproof.runtime
    import edgeproof.train
    import edgeproof.verify

    assert Path(edgeproof.train.__file__).parent == REPO / "train"
    assert Path(edgeproof.convert.__file__).parent == REPO / "convert"
    assert Path(edgeproof.verify.__file__).parent == REPO / "verify"
    assert Path(edgeproof.runtime.__file__).parent == REPO / "runtime"


def test_lock_pins_what_design_md_requires():
    lock = (REPO / "requirements" / "pipeline.lock").read_text().lower().replace("_", "-")
    for pin in ("tensorflow==2.19.", "tf-keras==2.19.", "tensorflowjs==4.22.0", "ydf==0.12.0", "torch==2.13.0"):
        assert pin in lock, pin
    setuptools = re.search(r"^setuptools==(\d+)", lock, re.M)
    assert setuptools and int(setuptools.group(1)) < 81
    for line in lock.splitlines():
        if line and not line.startswith("#"):
            assert re.fullmatch(r"[A-Za-z0-9_.\-]+==[A-Za-z0-9_.+\-]+", line), f"not an exact pin: {line}"


def test_runtime_import_loads_no_heavy_framework():
    result = run_python(
        "import sys, edgeproof.runtime; "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.edge
def test_runtime_imports_in_the_edge_environment(edge_python):
    result = run_python(
        "import sys, numpy, edgeproof.runtime; "
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}); "
        "print(numpy.__version__, heavy)", python=edge_python)
    assert result.returncode == 0, result.stderr
    version, heavy = result.stdout.split(" ", 1)
    assert version.startswith("1.") and heavy.strip() == "[]"


@pytest.mark.edge
def test_edge_environment_holds_only_the_runtime_stack(edge_python):
    result = run_python(
        "from importlib import metadata; "
        "print(sorted({d.metadata['Name'].lower().replace('_', '-') for d in metadata.distributions()}))",
        python=edge_python)
    assert result.returncode == 0, result.stderr
    installed = set(eval(result.stdout))
    assert installed - {"pip", "setuptools", "wheel"} == {"edgeproof", "numpy", "tflite-runtime"}
