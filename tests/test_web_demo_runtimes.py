"""The demo's runtime control (TF.js cpu/wasm/webgl/webgpu and LiteRT.js wasm/webgpu in every panel),
TF.js wasm with the threads it is asked for, the sentiment panel on LiteRT.js, and the panel for users'
own bundles (inputs from .npy / .npz / an image), in headless Debian Chromium.

The site: the session's fast mnist_cnn and imdb_lstm artifacts deployed for the web and for the Pi, the
Pi's .tflite bundles added as web bundles (`<model>-<framework>-tflite-<mode>`, "artifact_target":
"tflite", as `deploy --target web` writes them), and copies of the mnist_cnn bundles as a user's own
model ("my_digits", task "custom"). Screenshots go to test-output/web_demo_runtimes/.
"""
from __future__ import annotations

import io
import json
import statistics

import numpy as np
import pytest

from .browser_util import add_tflite_bundles, add_user_bundles, browser_page, draw_digit, page_with_errors, serve

pytestmark = [pytest.mark.browser, pytest.mark.stack]

MODELS = ("mnist_cnn", "imdb_lstm")
REVIEW = ("An absolutely brilliant film. The acting is superb, the story is moving and beautiful, and the ending "
          "is perfect. One of the best movies I have ever seen. A masterpiece.")


def _with_self_test(bundle) -> None:
    """Give a .tflite bundle the golden self-test the deploy gate writes (deploy/_selftest.py), unless
    it has one already."""
    from edgeproof import get_spec
    from edgeproof.deploy._selftest import stamp_bundle

    if "self_test" not in json.loads((bundle / "manifest.json").read_text()):
        stamp_bundle(bundle, get_spec("mnist_cnn").probe_inputs(n=4))


class Site:
    def __init__(self, page, errors, folder, artifacts):
        self.page, self.errors, self.folder, self.artifacts = page, errors, folder, artifacts
        self.index = json.loads((folder / "index.json").read_text())

    def manifest(self, bundle: str) -> dict:
        return json.loads((self.folder / bundle / "manifest.json").read_text())

    def bundles(self, model: str, target: str) -> list[dict]:
        return [b for b in self.index["bundles"] if b["model"] == model and b.get("artifact_target", "tfjs") == target]

    def panel(self, model: str):
        return self.page.locator(f"#panel-{model}")

    def select(self, model: str, **selection) -> None:
        self.page.evaluate("([m, s]) => window.edgeproof.panels[m].select(s)", [model, selection])
        self.page.evaluate("window.edgeproof.idle()")

    def last(self, model: str):
        return self.page.evaluate("(m) => window.edgeproof.panels[m].last", model)

    def error_text(self, model: str) -> str:
        box = self.panel(model).locator("[data-role=error]")
        return box.inner_text() if box.is_visible() else ""

    def reference(self, model: str, framework: str):
        from edgeproof.train import load_checkpoint, model_dir, predictor_for

        return predictor_for(load_checkpoint(model_dir(self.artifacts, model, framework) / "checkpoint"))


@pytest.fixture(scope="module")
def site(fast_verified, tmp_path_factory):
    from edgeproof.deploy._gate import deploy
    from edgeproof.deploy._site import build_site

    artifacts, _ = fast_verified
    root = tmp_path_factory.mktemp("web-runtimes")
    web, pi = root / "web", root / "pi"
    deploy("web", artifacts=artifacts, out=web, models=list(MODELS), progress=False)
    deploy("pi", artifacts=artifacts, out=pi, models=list(MODELS), progress=False)
    add_tflite_bundles(web, pi)
    add_user_bundles(web, {"mnist_cnn-keras-tflite-fp32": "my_digits-keras-tflite-fp32",
                           "mnist_cnn-keras-fp32": "my_digits-keras-fp32"}, "my_digits")
    _with_self_test(web / "my_digits-keras-tflite-fp32")
    build_site(web)
    with serve(web) as url, browser_page() as (page, errors):
        page.set_viewport_size({"width": 1280, "height": 900})
        page.set_default_timeout(120_000)
        page.goto(f"{url}/index.html")
        page.wait_for_function("window.edgeproof !== undefined")
        page.evaluate("window.edgeproof.ready")
        yield Site(page, errors, web, artifacts)


def _out(test_output):
    out = test_output / "web_demo_runtimes"
    out.mkdir(exist_ok=True)
    return out


def _within_budget(manifest: dict, reference: np.ndarray, got: np.ndarray, what: str) -> None:
    from edgeproof._spec import Task
    from edgeproof.verify._measures import compare

    m = compare(Task(manifest["task"]), reference, got)
    budget = manifest["verdict"]["budget"]
    assert m["max_abs_error"] <= budget["max_abs_error"], f"{what}: max |error| {m['max_abs_error']:.3g}"
    assert m["cosine"] >= budget["min_cosine"], f"{what}: cosine {m['cosine']:.6f}"


def test_runtime_control_runs_each_tflite_on_litertjs_and_shows_its_own_verdict(site, test_output):
    """In the digits panel: every runtime is offered, an unavailable one disabled with its reason; on
    LiteRT.js every deployed .tflite precision runs, the panel names that bundle, shows that bundle's
    verdict (the native TFLite one, not the TF.js bundle's) and gives the reference model's answer."""
    from edgeproof.train._data import load_mnist

    page, panel = site.page, site.panel("mnist_cnn")
    options = panel.locator("select[name=backend] option")
    assert options.evaluate_all("os => os.map(o => o.value)") == ["wasm", "webgl", "cpu", "webgpu", "litertjs-wasm",
                                                                  "litertjs-webgpu"]
    notes = panel.locator("[data-role=notes]").inner_text()
    for value in ("webgpu", "litertjs-webgpu", "webgl"):
        why = page.evaluate("(b) => window.edgeproof.backendProblem(b)", value)
        if why is not None:  # no GPU here: webgpu has no adapter; the page says so instead of failing
            assert panel.locator(f"select[name=backend] option[value={value}]").is_disabled()
            assert f"{value}: unavailable in this browser: {why}" in notes
            assert f"{value}: unavailable ({why})" in page.locator("#environment").inner_text()
    panel.get_by_role("button", name="Clear").click()
    draw_digit(page, panel.locator("[data-role=pad]"), load_mnist()["x_test"][0])
    page.evaluate("window.edgeproof.idle()")
    stats = panel.locator("[data-role=stats]")
    tflite = site.bundles("mnist_cnn", "tflite")
    assert {b["mode"] for b in tflite} >= {"fp32", "int8"}, tflite
    # a precision runs its plain cell's bundle; a variant (the litert-torch route's fp32) is the fallback when
    # only it passed, so here, where both pass, the panel must name the plain one
    assert any(b.get("variant") == "litert-torch" for b in tflite), tflite
    for b in (b for b in tflite if not b.get("variant")):
        site.select("mnist_cnn", backend="litertjs-wasm", framework=b["framework"], mode=b["mode"])
        assert site.error_text("mnist_cnn") == ""
        assert stats.get_attribute("data-bundle") == b["bundle"]
        assert stats.get_attribute("data-backend") == "litertjs-wasm"
        manifest = site.manifest(b["bundle"])
        verdict = panel.locator("[data-role=verdict]").inner_text()
        assert manifest["verdict"]["status"].upper() in verdict and manifest["verdict"]["runtime"] in verdict
        last = site.last("mnist_cnn")
        image = np.asarray(last["input"]["image"]["data"], np.float32).reshape(1, 28, 28, 1)
        _within_budget(manifest, site.reference("mnist_cnn", b["framework"])({"image": image}),
                       np.asarray([last["probabilities"]], np.float32), f"{b['bundle']} on LiteRT.js")
    panel.scroll_into_view_if_needed()
    panel.screenshot(path=str(_out(test_output) / "digits-litertjs.png"))
    # back to TF.js: the TF.js bundle and its verdict
    site.select("mnist_cnn", backend="wasm", mode="fp32")
    tfjs = site.bundles("mnist_cnn", "tfjs")[0]["bundle"]
    assert stats.get_attribute("data-bundle").endswith("-fp32") and "tflite" not in stats.get_attribute("data-bundle")
    assert site.manifest(tfjs)["verdict"]["runtime"] in panel.locator("[data-role=verdict]").inner_text()
    assert site.errors == [], site.errors


def test_tfjs_wasm_runs_the_threads_asked_for(site):
    """?threads=N reaches TF.js wasm: tf.wasm.getThreadsCount() equals it (4.22 alone gives
    hardwareConcurrency / 2, i.e. 1 on a 2-core machine). One page per count: the pool is per page."""
    page = site.page
    cores = page.evaluate("navigator.hardwareConcurrency")
    url = page.url.split("?")[0]
    for threads in (1, 2):
        other, errors = page_with_errors(page.context.browser)
        try:
            other.goto(f"{url}?threads={threads}")
            other.wait_for_function("window.edgeproof !== undefined")
            other.evaluate("window.edgeproof.ready")
            bundle = site.bundles("mnist_cnn", "tfjs")[0]["bundle"]
            other.evaluate("(b) => window.edgeproof.runBundle(b, 'wasm', {image: {dtype: 'float32', "
                           "shape: [1, 28, 28, 1], data: new Array(784).fill(0.5)}})", bundle)
            assert other.evaluate("tf.wasm.getThreadsCount()") == threads
            assert other.evaluate("navigator.hardwareConcurrency") == cores  # the real value is back
            assert f"CPU threads for wasm: {threads}" in other.locator("#environment").inner_text()
            assert errors == [], errors
        finally:
            other.close()


def test_sentiment_panel_on_litertjs(site, test_output):
    """The sentiment panel on LiteRT.js: the .tflite LiteRT.js can run gives the reference model's
    probability and its time per review is measured in the page (printed, not asserted); the one it
    cannot run (the Keras route's fused LSTM) is refused with LiteRT.js's own reason."""
    from edgeproof._tokenizers import ImdbTokenizer

    panel = site.panel("imdb_lstm")
    ran = []
    for b in site.bundles("imdb_lstm", "tflite"):
        if b["mode"] != "fp32" or b.get("variant"):  # the panel runs the plain cell's bundle of a precision
            continue
        site.select("imdb_lstm", backend="litertjs-wasm", framework=b["framework"], mode="fp32")
        panel.locator("textarea").fill(REVIEW)
        times = []
        for _ in range(6):
            panel.get_by_role("button", name="Analyze sentiment").click()
            site.page.evaluate("window.edgeproof.idle()")
            last = site.last("imdb_lstm")
            if last is None or last["bundle"] != b["bundle"]:
                break
            times.append(last["ms"])
        error = site.error_text("imdb_lstm")
        if error:
            assert "Variable tensors not yet supported" in error, error
            verdict = panel.locator("[data-role=runtime-verdict]").inner_text()
            assert verdict.startswith("UNSUPPORTED") and "Variable tensors not yet supported" in verdict, verdict
            print(f"{b['bundle']} on LiteRT.js: {error}")
            continue
        pre = json.loads((site.folder / b["bundle"] / "preprocessing.json").read_text())
        tok = ImdbTokenizer.from_dict(pre["tokenizer"])
        ids = tok.encode(REVIEW)
        p_ref = float(site.reference("imdb_lstm", b["framework"])({"tokens": ids[None]}).ravel()[0])
        p_page = float(panel.locator("[data-role=probability]").inner_text())
        # the page shows 4 decimals: 5e-5 of rounding on top of the bundle's budget
        assert abs(p_page - p_ref) <= site.manifest(b["bundle"])["verdict"]["budget"]["max_abs_error"] + 5e-5
        ran.append(b["bundle"])
        print(f"{b['bundle']} on LiteRT.js wasm: {statistics.median(times[1:]):.1f} ms per review "
              f"(median of {len(times) - 1} runs after the first; all: {[round(t, 1) for t in times]})")
    assert ran, "no imdb_lstm .tflite ran on LiteRT.js"
    panel.screenshot(path=str(_out(test_output) / "sentiment-litertjs.png"))
    assert site.errors == [], site.errors


def _npy(array: np.ndarray, version=None) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, version=version, allow_pickle=False)
    return buf.getvalue()


def test_npy_reader_takes_plain_arrays_and_refuses_the_rest(site):
    """web_demo/src/npy.js, on bytes NumPy wrote: v1 and v2 headers, the five dtypes it takes (int64
    as int32), and one clear refusal for each thing it does not take."""
    parse = "([b64, name]) => { const s = atob(b64); const u = Uint8Array.from(s, (c) => c.charCodeAt(0)); " \
            "try { const a = window.edgeproof.npy.parseNpy(u, name); return {dtype: a.dtype, shape: a.shape, " \
            "data: Array.from(a.data)}; } catch (e) { return {error: e.message}; } }"
    import base64

    def run(data: bytes, name="x.npy"):
        return site.page.evaluate(parse, [base64.b64encode(data).decode(), name])

    x = np.arange(6, dtype=np.float32).reshape(2, 3) / 4
    for arr, version in ((x, (1, 0)), (x, (2, 0)), (x.astype(np.int32), None), (x.astype(np.int64) * 3, None),
                         (np.arange(5, dtype=np.uint8), None), (np.arange(-2, 3, dtype=np.int8), None)):
        got = run(_npy(arr, version))
        assert got.get("shape") == list(arr.shape) and got["data"] == arr.ravel().tolist(), (arr.dtype, version, got)
    for arr, why in ((x.astype(np.float64), "dtype <f8"), (x.astype(">f4"), "big-endian"),
                     (np.asfortranarray(x), "Fortran-order"), (np.array([2**40], np.int64), "does not fit in int32")):
        assert why in run(_npy(arr)).get("error", ""), (arr.dtype, why)
    assert "needs 24 data bytes, the file has 20" in run(_npy(x)[:-4]).get("error", "")
    assert "not a .npy file" in run(b"PK\x03\x04 not numpy").get("error", "")


def _upload(site: Site, path) -> None:
    """Choose `path` in the user-model panel's file input; wait until it ran or said why not."""
    site.page.evaluate("window.edgeproof.panels.custom.last = null")
    site.panel("custom").locator("input[type=file]").set_input_files(str(path))
    site.page.wait_for_function("window.edgeproof.panels.custom.last !== null"
                                " || document.querySelector('#panel-custom [data-role=error]').textContent !== ''")
    site.page.evaluate("window.edgeproof.idle()")


def test_user_model_panel(site, test_output, tmp_path):
    """A user's own bundle (task "custom"): an .npy, an .npz (stored and compressed) and a PNG all give
    the reference model's class, shown as an array and as bars, with the bundle's own verdict, on
    LiteRT.js and on TF.js; a file it cannot take is refused with one clear message."""
    from PIL import Image

    from edgeproof.train._data import load_mnist

    pixels = load_mnist()["x_test"][0]
    x = (pixels.astype(np.float32) / 255)[None, :, :, None]
    (tmp_path / "digit.npy").write_bytes(_npy(x))
    np.savez(tmp_path / "digit.npz", image=x)
    np.savez_compressed(tmp_path / "digitz.npz", image=x)
    Image.fromarray(pixels).save(tmp_path / "digit.png")
    (tmp_path / "wrong.npz").write_bytes((tmp_path / "digit.npz").read_bytes().replace(b"image.npy", b"other.npy"))
    want = int(np.argmax(site.reference("mnist_cnn", "keras")({"image": x})))
    panel = site.panel("custom")
    assert panel.locator("select[name=model]").input_value() == "my_digits"
    for backend in ("litertjs-wasm", "wasm"):
        site.select("custom", backend=backend, mode="fp32")
        for name in ("digit.npy", "digit.npz", "digitz.npz", "digit.png"):
            _upload(site, tmp_path / name)
            assert site.error_text("custom") == "", (backend, name, site.error_text("custom"))
            (probs,) = site.last("custom")["outputs"].values()
            assert int(np.argmax(probs["data"])) == want, (backend, name, probs)
            assert panel.locator("[data-role=bars] .bar-row.best .bar-label").inner_text() == str(want)
            assert panel.locator("[data-role=array]").inner_text().startswith("[")
        bundle = panel.locator("[data-role=stats]").get_attribute("data-bundle")
        assert bundle.startswith("my_digits-") and ("tflite" in bundle) == (backend == "litertjs-wasm")
        manifest = site.manifest(bundle)
        assert manifest["task"] == "custom"
        assert manifest["verdict"]["runtime"] in panel.locator("[data-role=verdict]").inner_text()
    panel.scroll_into_view_if_needed()
    panel.screenshot(path=str(_out(test_output) / "user-model.png"))
    _upload(site, tmp_path / "wrong.npz")
    assert "has no array named image" in site.error_text("custom")
    # the bundle's golden self-test, run here on LiteRT.js: the gate's outputs within its tolerance
    site.select("custom", backend="litertjs-wasm", mode="fp32")
    assert site.manifest(panel.locator("[data-role=stats]").get_attribute("data-bundle")).get("self_test")
    site.page.evaluate("window.edgeproof.panels.custom.last = null")
    panel.get_by_role("button", name="Run the bundle's self-test").click()
    site.page.evaluate("window.edgeproof.idle()")
    assert site.error_text("custom") == "" and site.last("custom") is not None, site.error_text("custom")
    assert panel.locator("[data-role=selftest-result]").inner_text() == "Self-test passed", panel.inner_text()
    panel.screenshot(path=str(_out(test_output) / "user-model-selftest.png"))
    assert site.errors == [], site.errors
