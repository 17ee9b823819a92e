"""What the fast profile must produce and prove, generated from the registry: every (model, framework) pair of
edgeproof.model_names() x Framework, every cell of its ModelSpec.modes, plus one browser row per converted
.tflite and browser runtime. The exceptions to "converted" and to "pass" are pinned here with their reasons, so a
cell that silently stops converting, or a verdict that silently changes, fails a test instead of being skipped.

Measured on the fast profile (tests/conftest.py's session fixtures) on 2026-11-24; see each exception's comment.
"""
from __future__ import annotations

from edgeproof import Framework, get_spec, model_names
from edgeproof.verify._browser_rows import BROWSER_RUNTIMES

FRAMEWORKS = tuple(f.value for f in Framework)
PAIRS = tuple((name, framework) for name in model_names() for framework in FRAMEWORKS)

# Cells the converter refuses, with words the record's reason must contain.
UNCONVERTIBLE: dict[tuple[str, str, str], str] = {
    # Full-int8 calibration of onnx2tf's unrolled PyTorch LSTM kills the TFLite converter (a segmentation fault,
    # contained by convert/_worker.py); also before the one-pipeline refactor (README: "int8 not convertible").
    ("imdb_lstm", "torch", "tflite/int8"): "crashed (SIGSEGV)",
}

BROWSER = "litertjs-wasm"
# Models whose browser rows the default tier's session fixture (tests/conftest.py fast_verified) does not run:
# LiteRT.js wasm in headless Chromium decodes the translator's test split greedily, 80-150 s per .tflite, about
# 16 CPU-minutes for its 8 rows (the whole rest of the matrix's browser rows takes less; measured 2026-11-24,
# docs/tests.md). tests/test_browser_rows.py (tier `slow`) runs them and checks them against this matrix.
FIXTURE_WITHOUT_BROWSER = frozenset({"translator"})
# Models whose TF.js cells the default tier's side-by-side test (tests/test_verify.py) verifies again for fp32 only
# (every TFLite cell still goes again): under Node one TF.js cell of theirs takes 12-22 s (the LSTM over 500
# reviews, the translator's greedy decoding), against 0.1-1.2 s for the other models' (verify of the ten fast
# pairs, jobs=2, 2026-11-24). Their remaining TF.js cells go again in the slow tier's twin of that test.
SIDE_BY_SIDE_TFJS_FP32_ONLY = frozenset({"imdb_lstm", "translator"})
_MAYBE_INCONCLUSIVE = frozenset({"pass", "inconclusive"})
_NOT_RUN = "could not load the model"

# Verdicts other than "pass" for converted cells: (the outcomes allowed, words the verdict's summary must contain
# when it is not a pass). Native rows are keyed by cell ("tflite/int8"), browser rows by
# "tflite/int8 in litertjs-wasm". Measured values quoted are from the fast profile's parity.json (2026-11-24).
NOT_PASS: dict[tuple[str, str, str], tuple[frozenset[str], str]] = {
    # Full-int8 (per-tensor int8 activations through softmax and LayerNorm) of the fast translator loses the argmax:
    # top-1 agreement on the probes 0.66 (Keras) / 0.40 (PyTorch) against a budget of 0.9, PyTorch's BLEU drop 1.8
    # (budget 1.0). The repair ladder (16x8 activations) is what makes int8 pass; the fixtures do not run it.
    ("translator", "keras", "tflite/int8"): (frozenset({"fail"}), "top-1 agreement on the probes"),
    ("translator", "torch", "tflite/int8"): (frozenset({"fail"}), "top-1 agreement on the probes"),
    ("translator", "keras", f"tflite/int8 in {BROWSER}"): (frozenset({"fail"}), "top-1 agreement on the probes"),
    ("translator", "torch", f"tflite/int8 in {BROWSER}"): (frozenset({"fail"}), "top-1 agreement on the probes"),
    # LiteRT.js wasm's hybrid (dynamic-range) kernels are not native ai_edge_litert's on the Keras translator's
    # graph: logits move by up to 4.8 (natively 0.057), probe top-1 agreement 0.75 < 0.9. The PyTorch route's
    # graph (onnx2tf's) gives the native numbers. The gate keeps that .tflite off the web, as it should.
    ("translator", "keras", f"tflite/dynamic in {BROWSER}"): (frozenset({"fail"}), "top-1 agreement on the probes"),
    # The Keras LSTM converts to TFLite's fused UNIDIRECTIONAL_SEQUENCE_LSTM with variable (state) tensors, which
    # LiteRT.js 2.5.3 cannot load ("Failed to load model from buffer"); onnx2tf's PyTorch LSTM is unrolled and runs.
    **{("imdb_lstm", "keras", f"tflite/{mode} in {BROWSER}"): (frozenset({"unsupported"}), _NOT_RUN)
       for mode in ("fp32", "fp16", "dynamic", "int8")},
    # 8-bit cells whose 95 % interval of the metric drop (paired bootstrap, verify/_stats.py) already reaches past
    # half the budget on the small fast test split: pass here, but on another CPU (other int8 kernels) a few
    # flipped examples can put the budget inside the interval, which is `inconclusive` (not a pass, not a fail).
    # imdb_lstm Keras int8: 500 reviews, drop 0.0 in [-0.6, 0.6] points, budget 1.0.
    ("imdb_lstm", "keras", "tflite/int8"): (_MAYBE_INCONCLUSIVE, "inconclusive"),
    # mnist_gan PyTorch int8: 1000 samples judged, drop 0.2 in [-0.2, 0.6] points of confident fraction, budget 1.0.
    ("mnist_gan", "torch", "tflite/int8"): (_MAYBE_INCONCLUSIVE, "inconclusive"),
    ("mnist_gan", "torch", f"tflite/int8 in {BROWSER}"): (_MAYBE_INCONCLUSIVE, "inconclusive"),
}


# The second route's cells, after the cell they are a variant of: every PyTorch model's fp32 TFLite also goes
# through litert-torch (convert/_litert_torch.py; `scripts/setup.sh all` installs its environment, .venv-litert).
SECOND_ROUTE: dict[str, dict[str, str]] = {"torch": {"tflite/fp32": "tflite/fp32-litert-torch"}}


def cells(name: str, framework: str) -> list[str]:
    """The conversion cells of a model, in conversion.json's order: ModelSpec.modes, target by target, each
    followed by its second-route variant for this framework."""
    spec = get_spec(name)
    plain = [f"{getattr(t, 'value', t)}/{getattr(m, 'value', m)}" for t, modes in spec.modes.items() for m in modes]
    extra = SECOND_ROUTE.get(framework, {})
    return [c for cell in plain for c in [cell] + ([extra[cell]] if cell in extra else [])]


def conversion(name: str, framework: str) -> dict[str, str]:
    """cell -> the record status the fast profile must give ("ok" or "unsupported")."""
    return {c: "unsupported" if (name, framework, c) in UNCONVERTIBLE else "ok" for c in cells(name, framework)}


def converted(name: str, framework: str, target: str | None = None) -> list[str]:
    return [c for c, status in conversion(name, framework).items()
            if status == "ok" and (target is None or c.startswith(target + "/"))]


def browser_rows(name: str, framework: str, fixture: bool = True) -> list[str]:
    """The browser rows: every converted .tflite in every browser runtime verify uses (`fixture`: as the default
    tier's session fixture verifies, without the FIXTURE_WITHOUT_BROWSER models' rows)."""
    if fixture and name in FIXTURE_WITHOUT_BROWSER:
        return []
    return [f"{c} in {runtime}" for runtime in BROWSER_RUNTIMES for c in converted(name, framework, "tflite")]


def verdict_rows(name: str, framework: str, fixture: bool = True) -> list[str]:
    """Every row parity.json must hold, in its order: each cell (conversion order) followed by its browser rows."""
    browser = browser_rows(name, framework, fixture)
    return [row for c in cells(name, framework) for row in [c] + [b for b in browser if b.split(" in ")[0] == c]]


def allowed(name: str, framework: str, row: str) -> frozenset[str]:
    """The verdicts a row may have: unsupported for a cell that does not convert, else pass unless pinned."""
    cell = row.split(" in ")[0]
    if conversion(name, framework)[cell] == "unsupported":
        return frozenset({"unsupported"})
    return NOT_PASS.get((name, framework, row), (frozenset({"pass"}), ""))[0]


def evidence(name: str, framework: str, row: str) -> str:
    """Words a non-passing verdict's summary must contain (its pinned reason)."""
    cell = row.split(" in ")[0]
    if (name, framework, cell) in UNCONVERTIBLE:
        return UNCONVERTIBLE[name, framework, cell]
    return NOT_PASS[name, framework, row][1]


def stale_exceptions() -> list[tuple[str, str, str]]:
    """Exceptions that no longer name a row of the registry (a renamed model or mode): they must be removed."""
    rows = {(n, f, r) for n, f in PAIRS for r in verdict_rows(n, f, fixture=False)}
    return sorted(k for k in list(UNCONVERTIBLE) + list(NOT_PASS) if k not in rows)
