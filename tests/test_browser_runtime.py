"""edgeproof.verify._browser_runtime: .tflite and TF.js artifacts run in headless Chromium (LiteRT.js,
TF.js), compared with the TFLite interpreter (ai-edge-litert) on the spec's probe inputs.

The artifacts are the session's fast mnist_cnn / imdb_lstm conversions (tests/conftest.py). One
browser serves the module. Nothing here asserts a timing: speedups are printed.
"""
from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.stack]

# The longest dot product in mnist_cnn: Dense over the flattened 3 x 3 x 64 = 576 features (the 3 x 3
# convolutions sum 9 x 64 = 576 terms too). LiteRT.js's XNNPACK (128-bit wasm SIMD) and the native one
# (AVX2) add those terms in different orders; each order is within n * eps * sum|terms| of the exact
# sum, so two orders differ by at most 2 * n * eps relative to the output's scale. The outputs are
# softmax probabilities (scale 1), hence:
FP32_ATOL = 2 * 576 * float(np.finfo(np.float32).eps)  # 1.4e-4


@pytest.fixture(scope="module")
def browser():
    from edgeproof.verify._browser_runtime import BrowserRunner

    with BrowserRunner() as runner:
        yield runner


@pytest.fixture(scope="module")
def tflite_dir(fast_converted):
    from edgeproof.train import model_dir

    artifacts, _ = fast_converted
    return lambda model, framework="keras": model_dir(artifacts, model, framework)


def _native(path, feed: dict[str, np.ndarray], threads: int = 1) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(str(path), num_threads=threads)
    it.allocate_tensors()
    for d in it.get_input_details():
        it.set_tensor(d["index"], feed[d["name"]])
    it.invoke()
    (out,) = it.get_output_details()
    return it.get_tensor(out["index"])


def _input_name(path) -> str:
    from ai_edge_litert.interpreter import Interpreter

    (d,) = Interpreter(str(path)).get_input_details()
    return d["name"]


def _probe_rows(model: str):
    from edgeproof import get_spec

    (name, probes), = get_spec(model).probe_inputs().items()
    return [probes[i:i + 1] for i in range(len(probes))]


def _last_dequantize_scale(path) -> float:
    """The scale of the int8 tensor that the model's final DEQUANTIZE turns into its float output."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(str(path))
    ops = [op for op in it._get_ops_details() if op["op_name"] == "DEQUANTIZE"]
    out_index = it.get_output_details()[0]["index"]
    (last,) = [op for op in ops if out_index in op["outputs"]]
    details = {d["index"]: d for d in it.get_tensor_details()}
    return float(details[last["inputs"][0]]["quantization"][0])


def test_litertjs_fp32_equals_ai_edge_litert(browser, tflite_dir):
    path = tflite_dir("mnist_cnn") / "tflite" / "fp32.tflite"
    name = _input_name(path)
    info = browser.load(path, "litertjs-wasm", threads=1)
    assert [i["name"] for i in info.inputs] == [name]
    worst, seen = 0.0, []
    # one loaded model, row after row: LiteRT.js keeps its input tensors and writes each row into them
    # (web_demo/src/litert.js inputTensor), so a stale buffer would give an earlier row's answer here
    for row in _probe_rows("mnist_cnn"):
        (got,) = browser.predict({name: row}).values()
        want = _native(path, {name: row})
        assert got.dtype == want.dtype and got.shape == want.shape
        worst = max(worst, float(np.abs(got - want).max()))
        seen.append(got)
    spread = max(float(np.abs(s - seen[0]).max()) for s in seen)
    assert spread > 100 * FP32_ATOL, f"the probe rows give outputs within {spread:.3g} of each other: no test of reuse"
    print(f"LiteRT.js {info.version} fp32 vs ai-edge-litert: max |diff| {worst:.3g} (budget {FP32_ATOL:.3g})")
    assert worst <= FP32_ATOL


CONCURRENT_RUNS_JS = r"""
async ({ url, rows }) => {
  const { compileTflite } = await import('./src/litert.js');
  const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
  const m = await compileTflite(bytes, { accelerator: 'wasm', threads: 1 });
  try {
    const d = m.inputs[0];
    const feeds = rows.map((r) => ({ [d.tensor]: { shape: d.shape, data: Float32Array.from(r) } }));
    const together = await Promise.all(feeds.map((f) => m.run(f)));  // started in one task: they overlap
    const alone = [];
    for (const f of feeds) alone.push(await m.run(f));
    const flat = (outs) => outs.map((o) => Array.from(Object.values(o)[0].data));
    return { together: flat(together), alone: flat(alone) };
  } finally {
    m.delete();
  }
}
"""


def test_overlapping_litertjs_runs_each_get_their_own_input(browser, tflite_dir):
    """LiteRT.js keeps a model's input tensors and writes each call's input into them; its run() yields between
    taking the inputs and computing, so runs started together must be queued, or one computes on another's input
    (the demo starts a self-test and a prediction at once). Each of four overlapping runs must equal that row run
    alone."""
    import shutil

    path = tflite_dir("mnist_cnn") / "tflite" / "fp32.tflite"
    page = browser._page_for(1)
    shutil.copy(path, browser.site / "overlap.tflite")
    rows = [row.reshape(-1).astype(float).tolist() for row in _probe_rows("mnist_cnn")[:4]]
    got = page.evaluate(CONCURRENT_RUNS_JS, {"url": f"{browser.url}/overlap.tflite", "rows": rows})
    together, alone = np.array(got["together"]), np.array(got["alone"])
    assert together.shape == alone.shape == (4, 10)
    assert np.abs(alone - alone[0]).max() > 100 * FP32_ATOL  # the rows differ, so a mix-up would show
    np.testing.assert_array_equal(together, alone)


def test_litertjs_int8_within_one_quantization_step(browser, tflite_dir):
    path = tflite_dir("mnist_cnn") / "tflite" / "int8.tflite"
    step = _last_dequantize_scale(path)  # one int8 step of the output, before it is dequantized
    name = _input_name(path)
    browser.load(path, "litertjs-wasm", threads=1)
    worst = 0.0
    for row in _probe_rows("mnist_cnn"):
        (got,) = browser.predict({name: row}).values()
        worst = max(worst, float(np.abs(got - _native(path, {name: row})).max()))
    print(f"LiteRT.js int8 vs ai-edge-litert: max |diff| {worst:.3g}, one quantization step {step:.3g}")
    assert worst <= step * (1 + 1e-6)  # the 1e-6: float rounding of the dequantized step itself


def test_truncated_tflite_is_a_typed_error(browser, tflite_dir, tmp_path):
    from edgeproof.verify._browser_runtime import RuntimeUnsupportedError

    whole = (tflite_dir("mnist_cnn") / "tflite" / "fp32.tflite").read_bytes()
    cut = tmp_path / "cut.tflite"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(RuntimeUnsupportedError, match="not a complete .tflite file") as err:
        browser.load(cut, "litertjs-wasm", threads=1)
    assert err.value.runtime == "litertjs-wasm" and str(err.value) == err.value.reason


def test_fused_lstm_is_refused_with_litertjs_reason(browser, tflite_dir):
    """The Keras route's UNIDIRECTIONAL_SEQUENCE_LSTM keeps its state in variable tensors, which
    LiteRT.js 2.5.3 cannot load: the error carries LiteRT.js's own log line."""
    from edgeproof.verify._browser_runtime import RuntimeUnsupportedError

    with pytest.raises(RuntimeUnsupportedError, match="Variable tensors not yet supported"):
        browser.load(tflite_dir("imdb_lstm") / "tflite" / "fp32.tflite", "litertjs-wasm", threads=1)


def test_two_threads_really_run_two(browser, tflite_dir):
    """LiteRT.js and TF.js wasm both report 2 threads when asked for 2 (TF.js 4.22 said 1 before the
    fix in web_demo/src/tfjs_threads.js). The speedups are measured and printed, not asserted."""
    env = browser.environment(threads=2)
    assert env["isolated"], "the harness page must be cross-origin isolated for wasm threads"
    tflite = tflite_dir("mnist_cnn") / "tflite" / "fp32.tflite"
    tfjs = tflite_dir("mnist_cnn") / "tfjs" / "fp32" / "model.json"
    feed = _probe_rows("mnist_cnn")[0]
    medians = {}
    for threads in (1, 2):
        info = browser.load(tflite, "litertjs-wasm", threads=threads)
        assert info.threads == threads and info.extra["threaded_build"] is True
        medians["litertjs", threads] = browser.time({_input_name(tflite): feed}, warmup=5, repeats=50)["median_ms"]
        info = browser.load(tfjs, "tfjs-wasm", threads=threads)
        assert info.threads == threads, f"TF.js wasm runs {info.threads} threads when asked for {threads}"
        medians["tfjs", threads] = browser.time({info.inputs[0]["name"]: feed}, warmup=5, repeats=50)["median_ms"]
    for rt in ("litertjs", "tfjs"):
        print(f"{rt} wasm mnist_cnn fp32: 1 thread {medians[rt, 1]:.3f} ms, 2 threads {medians[rt, 2]:.3f} ms, "
              f"speedup {medians[rt, 1] / medians[rt, 2]:.2f}x")


def test_webgpu_runs_or_says_why(browser, tflite_dir):
    """No GPU here: LiteRT.js's and TF.js's webgpu paths must refuse with the reason, not fail; with an
    adapter they must give ai-edge-litert's numbers."""
    from edgeproof.verify._browser_runtime import RuntimeUnsupportedError

    problem = browser.environment()["webgpu"]
    path = tflite_dir("mnist_cnn") / "tflite" / "fp32.tflite"
    row = _probe_rows("mnist_cnn")[0]
    if problem is not None:
        print(f"WebGPU here: {problem}")
        tfjs = tflite_dir("mnist_cnn") / "tfjs" / "fp32" / "model.json"
        for runtime, model in (("litertjs-webgpu", path), ("tfjs-webgpu", tfjs)):
            with pytest.raises(RuntimeUnsupportedError) as err:
                browser.load(model, runtime)
            assert err.value.reason == problem
    else:
        browser.load(path, "litertjs-webgpu")
        (got,) = browser.predict({_input_name(path): row}).values()
        # WebGPU may compute in fp16: 2^-10 relative, on probabilities of scale 1
        assert np.abs(got - _native(path, {_input_name(path): row})).max() <= 2 ** -10


def test_wire_format_is_exact():
    """Arrays travel as raw little-endian bytes: NaN payloads, -0.0, denormals and extremes survive."""
    from edgeproof.verify._browser_runtime import BrowserRuntimeError, _decode, _encode

    x = np.array([np.nan, -0.0, 1e-45, np.finfo(np.float32).max, -1.5, 0.1], np.float32)
    wire = _encode("x", x, "float32")
    assert base64.b64decode(wire["data"]) == x.tobytes()
    assert _decode("x", wire).tobytes() == x.tobytes()
    ids = np.array([[0, 9999, 2**31 - 1]], np.int64)
    assert _decode("t", _encode("t", ids, "int32")).tolist() == ids.tolist()
    with pytest.raises(BrowserRuntimeError, match="do not fit"):
        _encode("t", np.array([2**31], np.int64), "int32")


def test_browser_predictor_binds_canonical_inputs(browser, tflite_dir):
    """BrowserPredictor (what verify's verdict rows use): the spec's 16 probes in one canonical batch
    come back as canonical outputs equal to the interpreter's, row for row (LiteRT.js pins the dynamic
    batch to 1, so the predictor runs the rows one by one); a model LiteRT.js cannot run says why."""
    from edgeproof import get_spec
    from edgeproof.convert import load_records
    from edgeproof.verify._browser_predictor import BrowserPredictor
    from edgeproof.verify._browser_runtime import RuntimeUnsupportedError

    spec, root = get_spec("mnist_cnn"), tflite_dir("mnist_cnn")
    record = next(r for r in load_records(root) if r.target == "tflite" and r.mode == "fp32")
    predictor = BrowserPredictor(browser, spec, record, root, "litertjs-wasm")
    try:
        probes = spec.probe_inputs()
        (got,) = predictor(probes).values()
        path = root / record.path
        want = np.concatenate([_native(path, {_input_name(path): row}) for row in _probe_rows("mnist_cnn")])
        assert got.shape == want.shape == (len(probes["image"]), 10)
        assert np.abs(got - want).max() <= FP32_ATOL
        assert predictor.runtime.startswith("LiteRT.js wasm") and predictor.latency_ms(probes, repeats=5) > 0
    finally:
        predictor.close()
    lstm = next(r for r in load_records(tflite_dir("imdb_lstm")) if r.target == "tflite" and r.mode == "fp32")
    with pytest.raises(RuntimeUnsupportedError, match="Variable tensors"):
        BrowserPredictor(browser, get_spec("imdb_lstm"), lstm, tflite_dir("imdb_lstm"), "litertjs-wasm")


def test_greedy_steps_bring_back_only_their_position(browser, tflite_dir):
    """Greedy decoding in the browser asks the page for step t's logits alone ([n, vocab], not [n, T, vocab]:
    1/32 of the data across the DevTools protocol for the translator). The fast PyTorch translator's fp32 .tflite
    in LiteRT.js: each position equals the whole output's slice exactly, and decoding 8 test sentences that way
    gives the ids decoding from the whole logits gives."""
    from edgeproof import get_spec
    from edgeproof.convert import load_records
    from edgeproof.runtime._decode import greedy_decode
    from edgeproof.train.models.translator import BOS, EOS
    from edgeproof.verify._browser_predictor import BrowserPredictor
    from edgeproof.verify._browser_rows import _InBrowser

    spec, root = get_spec("translator"), tflite_dir("translator", "torch")
    record = next(r for r in load_records(root) if r.target == "tflite" and r.mode == "fp32")
    predictor = BrowserPredictor(browser, spec, record, root, "litertjs-wasm")
    try:
        probes = {k: v[:5] for k, v in spec.probe_inputs().items()}
        whole = predictor(probes)["logits"]
        assert whole.ndim == 3
        for t in (0, 7, whole.shape[1] - 1):
            np.testing.assert_array_equal(predictor(probes, position=t)["logits"], whole[:, t])
        src = spec.probe_inputs()["source_ids"][:8]
        pre = {"bos": BOS, "eos": EOS}
        stepwise = _InBrowser(predictor, "logits").decode(src, pre["bos"], pre["eos"])
        full = greedy_decode(lambda x: predictor(x)["logits"], src, pre["bos"], pre["eos"])
        assert stepwise.tolist() == full.tolist()
    finally:
        predictor.close()


def test_closing_a_browser_that_already_died_is_not_an_error():
    """The main job (default profile) crashed at the end of a model's LiteRT.js rows with Playwright's
    "connection closed" raised by BrowserRunner.close(): the rows were recorded, only the cleanup failed."""
    from contextlib import ExitStack

    from edgeproof.verify._browser_runtime import BrowserRunner

    def dead():
        raise RuntimeError("Playwright connection closed")

    runner = BrowserRunner.__new__(BrowserRunner)
    runner._stack, runner._page = ExitStack(), object()
    runner._stack.callback(dead)
    runner.close()
    assert runner._stack is None and runner._page is None
    runner.close()  # a second close does nothing


def test_page_calls_are_bounded_in_bytes_not_only_in_rows():
    """The default translator's LiteRT.js rows killed the Playwright driver: 1024 rows of [32, 8000] float32 logits
    per page call is a 1.3 GB reply. With a fake runner that records each call (no Chromium), every call of such a
    model stays within BLOCK_BYTES, the rows come back whole and in order, for a pinned batch and a dynamic one."""
    from types import SimpleNamespace

    from edgeproof.verify._browser_predictor import BLOCK_BYTES, BrowserPredictor
    from edgeproof.verify._browser_runtime import LoadInfo

    class Runner:
        def __init__(self, batch: int):
            self.batch, self.calls = batch, []

        def load(self, path, runtime, threads, keep_others=False):
            return LoadInfo(runtime, 1, 0.0, [{"name": "src", "dtype": "int32", "shape": [self.batch, 32]}],
                            [{"name": "logits", "dtype": "float32", "shape": [self.batch, 32, 8000]}])

        def use(self, info):
            pass

        def _answer(self, feed):
            src = feed["src"]
            self.calls.append(src.nbytes + src.shape[0] * 32 * 8000 * 4)
            return {"logits": np.broadcast_to(src[:, :1, None].astype(np.float32), (len(src), 32, 8000))}

        def predict(self, feed):
            assert len(feed["src"]) == self.batch
            return self._answer(feed)

        def predict_split(self, feed, step, position=None):
            assert len(feed["src"]) % step == 0 and position is None
            return self._answer(feed)

    tensor = lambda name, shape, dtype: {"name": name, "shape": shape, "dtype": dtype, "layout": "NT"}  # noqa: E731
    contract = SimpleNamespace(inputs=[SimpleNamespace(name="src", layout="NT")],
                               outputs=[SimpleNamespace(name="logits", layout="NT")])
    record = SimpleNamespace(path="model.tflite", inputs=[SimpleNamespace(**tensor("src", [-1, 32], "int32"))],
                             outputs=[SimpleNamespace(**tensor("logits", [-1, 32, 8000], "float32"))])
    src = np.arange(300 * 32, dtype=np.int32).reshape(300, 32)
    for batch in (1, -1):
        runner = Runner(batch)
        got = BrowserPredictor(runner, contract, record, Path("."), "litertjs-wasm")({"src": src})["logits"]
        assert got.shape == (300, 32, 8000) and (got[:, 0, 0] == src[:, 0]).all()
        assert len(runner.calls) > 1 and max(runner.calls) <= BLOCK_BYTES, runner.calls


def test_a_browser_that_dies_mid_row_is_named_on_that_row_and_the_rest(monkeypatch, tmp_path):
    """verify's browser rows with a fake runner and predictor (no Chromium): the first row passes; on the second the
    page dies in predict, and from then on every call fails with "connection closed", the unload after it too. The
    second row fails with predict's error (before, the unload's error replaced it, escaped the row and marked every
    row "the browser could not be started"); the third fails naming the closed connection."""
    from types import SimpleNamespace

    import edgeproof.verify._browser_predictor as predictor_module
    import edgeproof.verify._browser_runtime as runtime_module
    from edgeproof.verify import ArtifactVerdict, Status
    from edgeproof.verify._browser_rows import browser_rows

    class Runner:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass

    dead = []

    def call(method):
        if dead:
            raise runtime_module.BrowserRuntimeError(f"the harness page failed in {method}: connection closed")

    class Predictor:
        runtime = "fake"

        def __init__(self, browser, contract, record, root, runtime):
            call("load")
            self.record = record

        def __call__(self, inputs):
            call("predict")
            if self.record.path == "b.tflite":
                dead.append(True)
                raise runtime_module.BrowserRuntimeError("the harness page failed in predict: Target crashed")
            return {"y": inputs["x"]}

        def close(self):
            call("drop")

    monkeypatch.setattr(runtime_module, "BrowserRunner", Runner)
    monkeypatch.setattr(predictor_module, "BrowserPredictor", Predictor)
    records = [SimpleNamespace(target="tflite", status="ok", path=f"{c}.tflite") for c in "abc"]
    natives = [ArtifactVerdict("m", "keras", "tflite", c, "keras", Status.PASS, path=f"{c}.tflite") for c in "abc"]
    for c in "abc":
        (tmp_path / f"{c}.tflite").write_bytes(b"x")

    def judge(row, record, outputs):
        row.status = Status.PASS
        return "ok"

    contract = SimpleNamespace(outputs=[SimpleNamespace(name="y")])
    rows = browser_rows(contract, records, natives, tmp_path, lambda p: p({"x": np.ones(1)}), judge,
                        lambda *a, **k: None, runtimes=("litertjs-wasm",))
    assert [(r.mode, r.status) for r in rows] == [("a", Status.PASS), ("b", Status.FAIL), ("c", Status.FAIL)]
    assert "predict: Target crashed" in rows[1].reason and "connection closed" not in rows[1].reason, rows[1].reason
    assert "load: connection closed" in rows[2].reason, rows[2].reason
