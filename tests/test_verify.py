"""Parity verification: every fast artifact proven in its own runtime; broken artifacts are caught
with the right typed error; budgets are enforced at their edges; the report covers every artifact."""
from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

from edgeproof import Framework, ParityBudget, ParityError, get_spec, model_names
from edgeproof.train import model_dir
from edgeproof.verify import ArtifactVerdict, Status, check_budget, load_verdicts, verify
from edgeproof.verify._browser_rows import BROWSER_RUNTIMES

from . import fast_matrix
from .conftest import skip_self_comparison

pytestmark = pytest.mark.stack
FRAMEWORKS = list(fast_matrix.FRAMEWORKS)


def copy_model(artifacts, tmp_path, name: str, framework: str):
    """A private copy of one model's folder (plus mnist_cnn, the GAN's judge), safe to break."""
    dest = tmp_path / "artifacts"
    for model, fw in {(name, framework), ("mnist_cnn", "keras")}:
        shutil.copytree(model_dir(artifacts, model, fw), model_dir(dest, model, fw), dirs_exist_ok=True)
    return dest


# -- budgets at their edges (pure) ---------------------------------------------------------------

BUDGET = ParityBudget(max_abs_error=0.1, min_cosine=0.99, max_metric_drop=1.0, min_top1_agreement=0.95)


def probe(max_abs=0.0, cosine=1.0, top1=1.0):
    return {"max_abs_error": max_abs, "mean_abs_error": max_abs / 2, "cosine": cosine, "top1_agreement": top1}


def test_values_exactly_at_the_limits_pass():
    assert check_budget("a", "y", BUDGET, probe(0.1, 0.99), drop=1.0, test_agreement=0.95) == []


@pytest.mark.parametrize("measure, kwargs", [
    ("max_abs_error", dict(p=probe(max_abs=0.1 + 1e-9))),
    ("cosine", dict(p=probe(cosine=0.99 - 1e-9))),
    ("task metric drop", dict(drop=1.0 + 1e-9)),
    ("top-1 agreement on the test split", dict(agree=0.95 - 1e-9)),
    ("top-1 agreement on the probes", dict(p=probe(top1=0.9), agree=None)),
    ("max_abs_error", dict(p=probe(max_abs=math.nan))),
    ("cosine", dict(p=probe(cosine=math.nan))),
    ("non-finite", dict(p={**probe(), "non_finite_fraction": 0.25})),
])
def test_just_past_a_limit_fails_with_a_typed_error(measure, kwargs):
    errors = check_budget("m/keras/tflite/int8", "probabilities", BUDGET, kwargs.get("p", probe()),
                          drop=kwargs.get("drop", 0.0), test_agreement=kwargs.get("agree", 1.0))
    assert len(errors) == 1 and isinstance(errors[0], ParityError)
    err = errors[0]
    assert measure in err.measure
    assert err.artifact == "m/keras/tflite/int8" and err.output == "probabilities"
    assert "m/keras/tflite/int8" in str(err) and "budget" in str(err)


# -- every reference artifact -----------------------------------------------------------------------

def _measured(v) -> None:
    """A verdict that ran: its runtime, numbers, file hashes and budget are all there."""
    if v.browser:  # e.g. "LiteRT.js wasm 2.5.3 in headless Chromium (1 thread)" for litertjs-wasm
        assert v.runtime.startswith({"litertjs-wasm": "LiteRT.js wasm"}[v.browser]), (v.cell, v.runtime)
    else:
        assert v.runtime.startswith("ai_edge_litert" if v.target == "tflite" else "tfjs"), (v.cell, v.runtime)
    assert v.artifact_metric is not None and v.latency_ms > 0, v.cell
    assert v.probe["max_abs_error"] >= 0 or v.probe.get("non_finite_fraction"), v.cell
    assert v.files and all(len(h) == 64 for h in v.files.values()), v.cell
    if v.status is Status.FAIL:
        assert v.failures or v.reason, v.summary()
    else:  # pass, or inconclusive: every budget held, the metric drop's interval straddles its budget
        assert not v.failures and (v.status is Status.PASS) == (v.reason is None), v.summary()


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("name", model_names())
def test_every_artifact_gets_its_pinned_verdict_with_its_numbers(fast_verified, name, framework):
    """parity.json holds exactly the rows the registry defines (every cell, every browser row of a converted
    .tflite), each with a verdict in its pinned set (tests/fast_matrix.py: pass unless pinned otherwise, with the
    reason); an unsupported cell carries the converter's own reason, every other row its measurements."""
    from edgeproof.convert import load_records

    artifacts, _ = fast_verified
    spec = get_spec(name)
    root = model_dir(artifacts, name, framework)
    reference, saved = load_verdicts(root)
    assert reference["model"] == name and reference["test_examples"] > 0
    assert [v.cell for v in saved] == fast_matrix.verdict_rows(name, framework)  # no repair variants: not run here
    records = {r.key: r for r in load_records(root)}
    for v in saved:
        assert v.status.value in fast_matrix.allowed(name, framework, v.cell), f"{v.key}: {v.summary()}"
        assert v.budget["max_abs_error"] == spec.budget(v.mode).max_abs_error, v.cell
        if v.status is not Status.PASS:  # for its pinned reason
            assert fast_matrix.evidence(name, framework, v.cell) in v.summary(), f"{v.key}: {v.summary()}"
        if v.status is Status.UNSUPPORTED and not v.browser:
            assert v.reason == records[v.cell].reason and not v.files, v.cell  # the converter's reason, verbatim
        elif v.status is not Status.UNSUPPORTED:  # it ran (unsupported browser rows: LiteRT.js's reason above)
            _measured(v)
            assert v.test_examples == reference["test_examples"], v.cell


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("name", model_names())
def test_parity_json_holds_what_verification_returned(fast_verified, name, framework):
    skip_self_comparison("verified", "comparing parity.json with the verdicts")
    artifacts, results = fast_verified
    _, saved = load_verdicts(model_dir(artifacts, name, framework))
    # parity.json lists each cell followed by its browser rows; verification returns the native rows first
    assert [v.cell for v in saved] == fast_matrix.verdict_rows(name, framework)
    returned = results[name, framework].verdicts
    assert len(returned) == len(saved) and {v.cell: v.to_dict() for v in saved} == {v.cell: v.to_dict() for v in returned}


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("name", model_names())
def test_float_artifacts_pass_in_both_runtimes(fast_verified, name, framework):
    """fp32 (the conversion itself) and fp16 must pass their budgets in both runtimes. fp16 caught a
    real bug: the translator's -1e9 attention mask became -inf in half precision (TF.js BLEU 0)."""
    _, results = fast_verified
    by_key = {v.cell: v for v in results[name, framework].verdicts}
    for key in ("tflite/fp32", "tfjs/fp32", "tflite/fp16", "tfjs/fp16"):
        assert by_key[key].status is Status.PASS, f"{key}: {by_key[key].summary()}"


def _same_numbers(alone, together, where: str) -> None:
    """Two verifications of one artifact agree. Decisions and metrics are compared exactly (a count of examples,
    or BLEU of identical translations, does not move with float noise; measured identical on every fast cell), the
    probe distances to float32 noise: 1e-6 of the output's scale (a few ulps of float32, eps 1.2e-7, per output)
    or 1e-4 relative, whichever is larger."""
    assert (alone.status, alone.test_agreement, alone.metric_drop is None) == \
        (together.status, together.test_agreement, together.metric_drop is None), where
    assert alone.artifact_metric == pytest.approx(together.artifact_metric, rel=1e-9, abs=1e-12), where
    if alone.status is Status.UNSUPPORTED:
        assert alone.reason == together.reason, where
        return
    scale = max(1.0, max((a.get("scale") or 1.0) for a in (together.budget.get("per_output") or {"": {}}).values()))
    for key in ("max_abs_error", "mean_abs_error", "cosine"):
        a, b = alone.probe.get(key), together.probe.get(key)
        assert (a is None) == (b is None), (where, key)
        if a is not None:
            assert a == pytest.approx(b, rel=1e-4, abs=1e-6 * scale), (where, key, a, b)
    assert [f.measure for f in alone.failures] == [f.measure for f in together.failures], where


def _verify_one_at_a_time(artifacts, tmp_path, pairs, tfjs_fp32_only=frozenset()):
    """verify_pairs of `pairs` in this process, one after another (jobs=1, the default 2 threads), on a copy of
    their folders; for the models in `tfjs_fp32_only`, every TFLite cell and the TF.js fp32 cell."""
    from edgeproof.verify._parallel import VerifyOptions, verify_pairs

    dest = tmp_path / "artifacts"
    for name, framework in pairs:
        shutil.copytree(model_dir(artifacts, name, framework), model_dir(dest, name, framework))
    full = [(n, Framework(f)) for n, f in pairs if n not in tfjs_fp32_only]
    short = [(n, Framework(f)) for n, f in pairs if n in tfjs_fp32_only]
    results = dict(zip(full, verify_pairs(full, VerifyOptions(str(dest), browsers=()), jobs=1)))
    for p, lite, js in zip(short, verify_pairs(short, VerifyOptions(str(dest), targets=("tflite",), browsers=()), jobs=1),
                           verify_pairs(short, VerifyOptions(str(dest), targets=("tfjs",), modes=("fp32",),
                                                             browsers=()), jobs=1)):
        assert (lite.reference.model, lite.reference.framework) == (js.reference.model, js.reference.framework)
        results[p] = type(lite)(lite.reference, lite.verdicts + js.verdicts)
    return [results[n, Framework(f)] for n, f in pairs]


def _check_side_by_side(parallel, pairs, one_by_one, tfjs_fp32_only=frozenset()) -> None:
    assert [(r.reference.model, r.reference.framework) for r in one_by_one] == list(pairs)
    for (name, framework), alone in zip(pairs, one_by_one):
        together = {v.cell: v for v in parallel[name, framework].verdicts}
        expected = [c for c in fast_matrix.cells(name, framework)
                    if name not in tfjs_fp32_only or c.startswith("tflite/") or c == "tfjs/fp32"]
        assert [v.cell for v in alone.verdicts] == expected
        assert alone.reference.value == pytest.approx(parallel[name, framework].reference.value, rel=1e-9)
        for v in alone.verdicts:
            _same_numbers(v, together[v.cell], f"{name}/{framework}/{v.cell}")


def test_verifying_side_by_side_gives_the_verdicts_of_one_at_a_time(fast_verified, tmp_path):
    """The session fixture verified every pair two at a time in spawned worker processes (verify_pairs, jobs=2,
    cpu_count // 2 TFLite threads each). Here EVERY pair goes again one after another in this process (jobs=1, the
    default 2 threads), TFLite and TF.js: the same verdicts and numbers, results in the order asked for. The two
    runs' thread counts differ or not depending on the machine; nothing here depends on them. Browser rows are not
    verified again (they run in Chromium, not in the worker pool). For the two sequence models every TFLite cell
    and TF.js fp32 go again here, and all their TF.js cells in the slow tier's twin below: their TF.js cells take
    12-22 s each under Node (fast_matrix.SIDE_BY_SIDE_TFJS_FP32_ONLY)."""
    artifacts, parallel = fast_verified
    short = fast_matrix.SIDE_BY_SIDE_TFJS_FP32_ONLY
    _check_side_by_side(parallel, fast_matrix.PAIRS,
                        _verify_one_at_a_time(artifacts, tmp_path, fast_matrix.PAIRS, short), short)


@pytest.mark.slow
def test_verifying_side_by_side_every_cell_of_every_pair(fast_verified, tmp_path):
    """The twin of the test above with nothing left out: every cell of every pair, TF.js included."""
    artifacts, parallel = fast_verified
    _check_side_by_side(parallel, fast_matrix.PAIRS, _verify_one_at_a_time(artifacts, tmp_path, fast_matrix.PAIRS))


def test_a_bad_jobs_count_is_refused(tmp_path):
    from edgeproof.verify._parallel import VerifyOptions, verify_pairs

    with pytest.raises(ValueError, match="--jobs must be at least 1"):
        verify_pairs([("linreg", Framework.KERAS)], VerifyOptions(str(tmp_path)), jobs=0)


def test_the_report_lists_every_artifact(fast_verified):
    from edgeproof.verify._report import write_report

    artifacts, results = fast_verified
    paths = write_report(artifacts)
    text_md, text_html = paths["md"].read_text(), paths["html"].read_text()
    assert "Legend" in text_md and "<h2>Legend</h2>" in text_html
    from edgeproof.verify._report import HEADER

    rows = [line for line in text_md.splitlines() if line.startswith("| ") and line.count(" | ") == len(HEADER) - 1
            and (" | tflite " in line or " | tfjs " in line)]
    expected = sum(len(fast_matrix.verdict_rows(n, f)) for n, f in fast_matrix.PAIRS)  # browser rows included
    assert len(rows) == expected
    for (name, framework), result in results.items():
        for v in result.verdicts:
            artifact = v.cell.replace("/", " ", 1)  # "tflite fp32", "tflite fp32 in litertjs-wasm"
            assert f"<td>{artifact}</td>" in text_html, artifact
            assert f"| {name} | {framework} | {artifact} |" in text_md, artifact
    # the metric-vs-size chart has its points: coloured pixels (matplotlib's blank axes, ticks and labels are grey
    # levels only; a size threshold would not tell, a blank 4-panel figure is already over 10 KB)
    import matplotlib.image

    rgb = matplotlib.image.imread(str(paths["png"]))[..., :3]
    assert (rgb.max(-1) - rgb.min(-1) > 0.3).any(), "the chart has no coloured point"
    payload = json.loads(paths["json"].read_text())
    assert sum(len(m["artifacts"]) for m in payload) == expected
    assert "Keras vs PyTorch" in text_md


# -- deliberately broken artifacts ------------------------------------------------------------------

def _native_and_browser_fail(verdicts):
    """The native verdict of the one broken .tflite verified, after checking that it failed and that its browser
    rows (verify proves every .tflite in LiteRT.js too) did not pass either. Returns the native verdict."""
    (native,) = [v for v in verdicts if v.browser is None]
    browser = [v for v in verdicts if v.browser is not None]
    assert native.status is Status.FAIL, native.summary()
    assert [v.browser for v in browser] == list(BROWSER_RUNTIMES)
    assert all(v.status is not Status.PASS for v in browser), [v.summary() for v in browser]
    return native


def _perturb_tflite_dense(tflite_path, keras_kernel: np.ndarray, rng) -> None:
    """Add noise to one Dense kernel inside a .tflite, found by its exact bytes (TFLite stores [out, in])."""
    content = bytearray(tflite_path.read_bytes())
    needle = np.ascontiguousarray(keras_kernel.T.astype(np.float32)).tobytes()
    at = content.find(needle)
    assert at >= 0, "the Dense kernel's bytes were not found in the .tflite"
    noisy = keras_kernel.T + rng.normal(0, 0.5, keras_kernel.T.shape).astype(np.float32)
    content[at:at + len(needle)] = np.ascontiguousarray(noisy.astype(np.float32)).tobytes()
    tflite_path.write_bytes(bytes(content))


def test_weights_perturbed_after_conversion_are_caught(fast_verified, tmp_path):
    from edgeproof.train import load_checkpoint

    artifacts, _ = fast_verified
    dest = copy_model(artifacts, tmp_path, "mnist_cnn", "keras")
    root = model_dir(dest, "mnist_cnn", "keras")
    dense = load_checkpoint(root / "checkpoint").model.layers[-1].get_weights()[0]
    _perturb_tflite_dense(root / "tflite" / "fp32.tflite", dense, np.random.default_rng(0))
    result = verify("mnist_cnn", "keras", artifacts=dest, targets=["tflite"], modes=["fp32"], progress=False)
    v = _native_and_browser_fail(result.verdicts)
    with pytest.raises(ParityError) as info:
        v.raise_for_status()
    assert info.value.artifact == "mnist_cnn/keras/tflite/fp32" and info.value.output == "probabilities"
    assert info.value.measured > info.value.limit
    assert {f.measure for f in v.failures} >= {"max_abs_error on probes"}


def test_perturbed_tfjs_weights_are_caught(fast_verified, tmp_path):
    artifacts, _ = fast_verified
    dest = copy_model(artifacts, tmp_path, "linreg", "torch")
    folder = model_dir(dest, "linreg", "torch") / "tfjs" / "fp32"
    (group,) = json.loads((folder / "model.json").read_text())["weightsManifest"]
    (shard,) = group["paths"]
    data = bytearray((folder / shard).read_bytes())
    offset = 0
    for w in group["weights"]:  # scale the float weights only (int32 shape constants live here too)
        size = int(np.prod(w["shape"])) * 4
        if w["dtype"] == "float32":
            values = np.frombuffer(bytes(data[offset:offset + size]), np.float32) * 1.5
            data[offset:offset + size] = values.astype(np.float32).tobytes()
        offset += size
    (folder / shard).write_bytes(bytes(data))
    (v,) = verify("linreg", "torch", artifacts=dest, targets=["tfjs"], modes=["fp32"], progress=False).verdicts
    assert v.status is Status.FAIL
    assert "task metric drop on the test split" in {f.measure for f in v.failures}
    assert isinstance(v.errors()[0], ParityError)


def test_an_artifact_reading_images_in_the_wrong_layout_is_caught(fast_verified, tmp_path):
    """The same trained CNN, exported with its input read transposed (H and W swapped): it runs, and
    only the comparison with the reference shows that it is wrong."""
    from edgeproof._frameworks import import_tf_keras
    from edgeproof._quant import QuantConfig
    from edgeproof.convert._saved_model import export_keras
    from edgeproof.convert._tflite import convert_saved_model
    from edgeproof.train import load_checkpoint

    keras = import_tf_keras()
    artifacts, _ = fast_verified
    dest = copy_model(artifacts, tmp_path, "mnist_cnn", "keras")
    root = model_dir(dest, "mnist_cnn", "keras")
    spec = get_spec("mnist_cnn")
    net = load_checkpoint(root / "checkpoint").model
    image = keras.Input((28, 28, 1), name="image")
    wrong = keras.Model(image, net(keras.layers.Permute((2, 1, 3))(image)))
    export_keras(wrong, spec.inputs, lambda out: {spec.outputs[0].name: out}, tmp_path / "sm")
    (root / "tflite" / "fp32.tflite").write_bytes(convert_saved_model(tmp_path / "sm", QuantConfig("tflite", "fp32")))
    v = _native_and_browser_fail(verify("mnist_cnn", "keras", artifacts=dest, targets=["tflite"], modes=["fp32"],
                                        progress=False).verdicts)
    measures = {f.measure for f in v.failures}
    assert "top-1 agreement on the test split (min)" in measures and "task metric drop on the test split" in measures


def test_int8_calibrated_on_garbage_is_caught(fast_verified, tmp_path, monkeypatch):
    from edgeproof.convert import _source_zoo as _api, convert

    artifacts, _ = fast_verified
    dest = copy_model(artifacts, tmp_path, "mnist_cnn", "torch")
    garbage = {"image": np.full((32, 28, 28, 1), 1e-3, np.float32)}  # ranges 1000x too small
    monkeypatch.setattr(_api, "calibration_inputs", lambda *a, **k: garbage)
    (record,) = convert("mnist_cnn", "torch", targets=["tflite"], modes=["int8"], artifacts=dest, progress=False)
    assert record.status == "ok"
    v = _native_and_browser_fail(verify("mnist_cnn", "torch", artifacts=dest, targets=["tflite"], modes=["int8"],
                                        progress=False).verdicts)
    assert "task metric drop on the test split" in {f.measure for f in v.failures}
    drop = next(f for f in v.failures if f.measure == "task metric drop on the test split")
    # calibration ranges 1000x too small saturate every activation: accuracy falls toward chance (~10 %), a drop of
    # tens of points against a 1-point budget; 10x the budget separates that from an ordinary int8 miss
    assert drop.measured > 10 * drop.limit


def test_a_corrupt_artifact_is_a_failed_verdict_not_a_crash(fast_verified, tmp_path):
    from edgeproof.errors import ArtifactRunError

    artifacts, _ = fast_verified
    dest = copy_model(artifacts, tmp_path, "linreg", "keras")
    path = model_dir(dest, "linreg", "keras") / "tflite" / "fp16.tflite"
    path.write_bytes(path.read_bytes()[:100])
    v = _native_and_browser_fail(verify("linreg", "keras", artifacts=dest, targets=["tflite"], modes=["fp16"],
                                        progress=False).verdicts)
    assert "could not run" in v.reason
    with pytest.raises(ArtifactRunError, match="linreg/keras/tflite/fp16"):
        v.raise_for_status()


def test_verify_without_conversion_says_what_to_run(tmp_path):
    from edgeproof.verify import NotConvertedError

    with pytest.raises(NotConvertedError, match="edgeproof convert --model linreg --framework torch"):
        verify("linreg", "torch", artifacts=tmp_path, progress=False)


def test_a_cell_verified_again_drops_its_old_browser_rows(tmp_path):
    """parity.json merges a run over earlier rows, but the browser rows of a cell verified again proved the
    artifact as it was: they go (verify without browser runtimes must not leave a stale LiteRT.js pass)."""
    from edgeproof.verify import ModelVerification, Reference
    from edgeproof.verify._api import write_parity

    def row(mode, browser=None):
        return ArtifactVerdict("m", "keras", "tflite", mode, "route", Status.PASS, browser=browser)

    ref = Reference("m", "keras", "fast", "accuracy", 0.9, {}, 10, 4)
    first = [row("fp32"), row("fp32", "litertjs-wasm"), row("fp16"), row("fp16", "litertjs-wasm")]
    write_parity(tmp_path, ModelVerification(ref, first))
    write_parity(tmp_path, ModelVerification(ref, [row("fp32")]))  # fp32 again, no browser runtime
    rows = json.loads((tmp_path / "parity.json").read_text())["artifacts"]
    assert [(r["mode"], r.get("browser")) for r in rows] == [("fp32", None), ("fp16", None), ("fp16", "litertjs-wasm")]
