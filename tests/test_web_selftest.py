"""Issue 19, item 1 in the browser: every bundle the demo loads runs its golden self-test (selftest.json:
probes and the outputs the deploy gate measured for THIS artifact) the first time it loads in a runtime,
and the panel shows "Proven in this browser" with the runtime, the browser and the measured error next to
the gate's verdict. A model swapped after the gate (its manifest hashes recomputed, as an attacker or a
careless copy would) fails it.

The site: the session's fast mnist_cnn deployed for the web (TF.js bundles and LiteRT.js .tflite bundles),
in headless Debian Chromium. The measured errors per runtime go to test-output/web_selftest.json (the
evidence behind the TF.js tolerance, docs/hostile-inputs.md "Self-test tolerance")."""
from __future__ import annotations

import contextlib
import json
import shutil

import numpy as np
import pytest

from .browser_util import browser_page, draw_digit, serve

pytestmark = [pytest.mark.browser, pytest.mark.stack]

MODEL = "mnist_cnn"
TFJS_RUNTIMES = ("wasm", "cpu", "webgl")


@contextlib.contextmanager
def _open(folder):
    """A fresh browser on the demo served from `folder` (no model cached), a digit drawn in the digits panel."""
    from edgeproof.train._data import load_mnist

    with serve(folder) as url, browser_page() as (page, errors):
        page.set_default_timeout(120_000)
        page.goto(f"{url}/index.html")
        page.wait_for_function("window.edgeproof !== undefined")
        page.evaluate("window.edgeproof.ready")
        draw_digit(page, page.locator(f"#panel-{MODEL} [data-role=pad]"), load_mnist()["x_test"][0])
        page.evaluate("window.edgeproof.idle()")
        yield page, errors


def _run(page, **selection) -> dict:
    """Select a bundle and runtime in the digits panel, run it once; the panel's last run (with its proof)."""
    page.evaluate("([m, s]) => window.edgeproof.panels[m].select(s)", [MODEL, selection])
    page.evaluate("(m) => window.edgeproof.panels[m].trigger()", MODEL)
    page.evaluate("window.edgeproof.idle()")
    return page.evaluate("(m) => window.edgeproof.panels[m].last", MODEL)


@pytest.fixture(scope="module")
def site(fast_verified, tmp_path_factory):
    from edgeproof.deploy._gate import deploy
    from edgeproof.deploy._site import build_site

    artifacts, _ = fast_verified
    web = tmp_path_factory.mktemp("web-selftest") / "web"
    deploy("web", artifacts=artifacts, out=web, models=[MODEL], progress=False)
    build_site(web)
    return web


def _bundles(web, target):
    index = json.loads((web / "index.json").read_text())
    return [b for b in index["bundles"] if b["model"] == MODEL and b.get("artifact_target", "tfjs") == target]


def test_every_bundle_is_proven_in_this_browser_when_it_first_loads(site, test_output):
    tfjs, tflite = _bundles(site, "tfjs"), _bundles(site, "tflite")
    assert tfjs and tflite, (tfjs, tflite)
    measured = {}
    with _open(site) as (page, errors):
        panel = page.locator(f"#panel-{MODEL}")
        runs = [(b, r) for b in tfjs for r in TFJS_RUNTIMES
                if page.evaluate("(r) => window.edgeproof.backendProblem(r)", r) is None]
        runs += [(b, "litertjs-wasm") for b in tflite]
        for b, runtime in runs:
            manifest = json.loads((site / b["bundle"] / "manifest.json").read_text())
            families = manifest["self_test"]["interpreters"]
            assert families == ["tfjs"] if runtime in TFJS_RUNTIMES else "ai_edge_litert" in families, families
            last = _run(page, framework=b["framework"], mode=b["mode"], backend=runtime)
            proof = last["proof"]
            assert proof["status"] == "pass", (b["bundle"], runtime, proof)
            assert proof["runtime"] == runtime and proof["browser"].startswith(("Headless Chrome", "Chromium", "Chrome"))
            assert 0 < proof["total"] and proof["outside"] == 0 and proof["maxErr"] <= proof["tolerance"]["atol"] + \
                proof["tolerance"]["rtol"]
            shown = panel.locator("[data-role=browser-proof]")
            assert shown.get_attribute("data-status") == "pass"
            assert shown.inner_text().startswith("PROVEN on ") and proof["browser"] in shown.inner_text()
            measured[f"{b['bundle']} on {runtime}"] = {"max_abs_error": proof["maxErr"], "elements": proof["total"],
                                                       "family": proof["family"], "tolerance": proof["tolerance"]}
        assert errors == [], errors
    (test_output / "web_selftest.json").write_text(json.dumps(measured, indent=2))
    # every runtime family proved something: TF.js on at least wasm and cpu, LiteRT.js on every .tflite
    assert {k.rsplit(" on ", 1)[1] for k in measured} >= {"wasm", "cpu", "litertjs-wasm"}, sorted(measured)


def _swap(web, bundle: str, donor: str) -> None:
    """Put `donor`'s model files into `bundle` and recompute the manifest's hashes: the manifest checks pass,
    the verdict and the self-test still claim the original model."""
    from edgeproof.runtime._manifest import sha256_of

    dest, src = web / bundle, web / donor
    manifest = json.loads((dest / "manifest.json").read_text())
    donor_manifest = json.loads((src / "manifest.json").read_text())
    for name in donor_manifest["files"]:
        if name not in ("manifest.json", "selftest.json", "preprocessing.json", "model.sig"):
            shutil.copyfile(src / name, dest / name)
    manifest["model_file"] = donor_manifest["model_file"]
    manifest["files"] = {p.name: {"sha256": sha256_of(p), "bytes": p.stat().st_size}
                         for p in sorted(dest.iterdir()) if p.name != "manifest.json"}
    (dest / "manifest.json").write_text(json.dumps(manifest, indent=2))


def test_a_swapped_model_fails_its_self_test_in_the_browser(site, tmp_path, test_output):
    """The nearest swap there is: the same network's fp16 weights in the fp32 bundle (same graph, same tensor
    names, so nothing but the numbers tells them apart; measured 2.8e-4 apart on 53 of 160 elements, against
    a genuine spread of 8.6e-7 between TF.js backends and LiteRT.js)."""
    web = tmp_path / "web"
    shutil.copytree(site, web, symlinks=False)
    _swap(web, f"{MODEL}-keras-fp32", f"{MODEL}-keras-fp16")
    _swap(web, f"{MODEL}-keras-tflite-fp32", f"{MODEL}-keras-tflite-fp16")
    with _open(web) as (page, _):
        for runtime in ("wasm", "litertjs-wasm"):
            proof = _run(page, framework="keras", mode="fp32", backend=runtime)["proof"]
            assert proof["status"] == "fail" and proof["outside"] > 0, (runtime, proof)
            assert np.isfinite(proof["maxErr"]) and proof["maxErr"] > proof["tolerance"]["atol"], proof
            shown = page.locator(f"#panel-{MODEL} [data-role=browser-proof]")
            assert shown.get_attribute("data-status") == "fail" and shown.inner_text().startswith("FAILED on ")
        page.locator(f"#panel-{MODEL}").screenshot(path=str(test_output / "web_selftest_swapped.png"))
        # the genuine fp16 bundle beside it still passes: the failure is the swap, not the page
        assert _run(page, framework="keras", mode="fp16", backend="wasm")["proof"]["status"] == "pass"
