import pkgutil

import numpy as np
import pytest

import edgeproof
from edgeproof import Framework, Layout, QuantMode, Target, UnknownModelError, get_spec, model_names
from edgeproof._registry import register
from edgeproof.train import models as models_pkg

from .conftest import run_python

REFERENCE_MODELS = {"linreg", "mnist_cnn", "imdb_lstm", "mnist_gan", "translator"}


def test_reference_models_are_registered():
    assert REFERENCE_MODELS <= set(model_names())


def test_every_model_file_registers_one_spec_named_like_the_file():
    files = {m.name for m in pkgutil.iter_modules(models_pkg.__path__) if not m.name.startswith("_")}
    assert files == set(model_names())
    for name in files:
        module = __import__(f"edgeproof.train.models.{name}", fromlist=["SPEC"])
        assert module.SPEC is get_spec(name)


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(UnknownModelError) as err:
        get_spec("resnet9000")
    message = str(err.value)
    assert "resnet9000" in message
    for name in REFERENCE_MODELS:
        assert name in message


def test_registering_a_second_spec_under_a_taken_name_fails():
    spec = get_spec("linreg")
    clone = edgeproof.ModelSpec(**{**spec.__dict__})
    with pytest.raises(ValueError, match="registered twice"):
        register(clone)


def test_registry_imports_neither_tensorflow_nor_torch():
    result = run_python(
        "import sys, edgeproof; edgeproof.all_specs(); "
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'tensorflow', 'torch', 'onnx', 'tf_keras', 'keras'}); "
        "print(heavy)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("name", model_names())
class TestSpec:
    def test_probes_match_the_signature_and_are_deterministic(self, name):
        spec = get_spec(name)
        first, second = spec.probe_inputs(seed=0), spec.probe_inputs(seed=0)
        assert set(first) == {t.name for t in spec.inputs}
        for t in spec.inputs:
            arr = first[t.name]
            assert arr.dtype == np.dtype(t.dtype)
            assert arr.shape == (spec.probe_count,) + tuple(t.shape[1:])
            np.testing.assert_array_equal(arr, second[t.name])
            lo, hi = t.value_range
            if t.distribution is not edgeproof.Distribution.NORMAL:
                assert arr.min() >= lo and arr.max() <= hi
        assert not all(np.array_equal(first[k], spec.probe_inputs(seed=1)[k]) for k in first)

    def test_every_allowed_mode_has_a_budget_and_profiles_exist(self, name):
        spec = get_spec(name)
        for target, modes in spec.modes.items():
            assert modes, f"{name}: no modes for {target}"
            for mode in modes:
                budget = spec.budget(mode)
                assert budget.max_abs_error > 0 and 0 < budget.min_cosine <= 1 and budget.max_metric_drop >= 0
        for profile in ("fast", "default", "full"):
            assert spec.profile(profile).epochs >= 1
        with pytest.raises(ValueError, match="unknown profile"):
            spec.profile("huge")

    def test_torch_signature_uses_the_torch_layout(self, name):
        spec = get_spec(name)
        for keras_t, torch_t in zip(spec.input_signature(Framework.KERAS), spec.input_signature(Framework.TORCH)):
            if keras_t.layout is Layout.NHWC and spec.torch_layout is Layout.NCHW:
                n, h, w, c = keras_t.shape
                assert torch_t.shape == (n, c, h, w) and torch_t.layout is Layout.NCHW
            else:
                assert torch_t == keras_t


def test_budgets_tighten_with_precision():
    """fp32 is never held to a looser budget than fp16, nor fp16 than the 8-bit modes."""
    for spec in edgeproof.all_specs():
        b = spec.budgets
        assert b[QuantMode.FP32].max_abs_error <= b[QuantMode.FP16].max_abs_error <= b[QuantMode.INT8].max_abs_error
        assert b[QuantMode.FP32].max_metric_drop <= b[QuantMode.FP16].max_metric_drop <= b[QuantMode.INT8].max_metric_drop


def test_spec_rejects_a_mode_without_budget():
    spec = get_spec("linreg")
    budgets = {m: b for m, b in spec.budgets.items() if m is not QuantMode.INT8}
    with pytest.raises(ValueError, match="no parity budget"):
        edgeproof.ModelSpec(**{**spec.__dict__, "budgets": budgets})
    with pytest.raises(ValueError, match="do not exist for target"):
        edgeproof.ModelSpec(**{**spec.__dict__, "modes": {Target.TFJS: (QuantMode.INT8,)}})
