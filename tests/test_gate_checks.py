"""The deploy gate does not trust a verdict's `status` alone: it recomputes pass/fail from the measurements and
budgets in the entry, confines recorded paths to the model's folder, refuses inconclusive verdicts unless told,
names the preferred bundle, and gives one line and exit 2 for a parity.json that is not one."""
from __future__ import annotations

import json
import shutil

import pytest

from edgeproof import cli
from edgeproof.deploy import deploy
from edgeproof.train import model_dir

pytestmark = pytest.mark.stack


@pytest.fixture
def linreg(fast_verified, tmp_path):
    """A private copy of the verified fast linreg (keras) folder."""
    artifacts, _ = fast_verified
    dest = tmp_path / "artifacts"
    shutil.copytree(model_dir(artifacts, "linreg", "keras"), model_dir(dest, "linreg", "keras"))
    return dest, model_dir(dest, "linreg", "keras") / "parity.json"


def _edit(parity, cell, **changes):
    payload = json.loads(parity.read_text())
    entry = next(e for e in payload["artifacts"] if e["target"] == cell.split("/")[0]
                 and e["mode"] == cell.split("/")[1] and not e.get("browser") and not e.get("variant"))
    entry.update(changes)
    parity.write_text(json.dumps(payload))
    return entry


def _refusals(artifacts):
    result = deploy("pi", artifacts=artifacts, out=artifacts / "pi", progress=False)
    return {r.artifact: r.reason for r in result.refused}, result


def test_a_pass_whose_own_numbers_break_a_budget_is_refused(linreg):
    artifacts, parity = linreg
    entry = _edit(parity, "tflite/fp32")
    entry_probe = dict(entry["probe"], max_abs_error=10.0)  # far above any fp32 allowance
    _edit(parity, "tflite/fp32", probe=entry_probe, details=dict(entry["details"], per_output={"y": entry_probe}))
    refused, result = _refusals(artifacts)
    reason = refused["linreg/keras/tflite/fp32"]
    assert "says pass, but its own measurements break" in reason and "max_abs_error" in reason
    assert not (artifacts / "pi" / "linreg-keras-fp32").exists()


def test_a_pass_that_still_lists_failures_is_refused(linreg):
    artifacts, parity = linreg
    _edit(parity, "tflite/fp16", failures=[{"output": "y", "measure": "cosine on probes (min)", "measured": 0.5,
                                             "limit": 0.9995}])
    refused, _ = _refusals(artifacts)
    assert "says pass" in refused["linreg/keras/tflite/fp16"]


def test_a_recorded_path_outside_the_model_folder_is_refused(linreg):
    artifacts, parity = linreg
    _edit(parity, "tflite/dynamic", path="../../../../etc/passwd")
    refused, _ = _refusals(artifacts)
    assert "cannot be checked" in refused["linreg/keras/tflite/dynamic"]


def test_inconclusive_is_refused_unless_accepted_and_then_marked(linreg):
    artifacts, parity = linreg
    _edit(parity, "tflite/int8", status="inconclusive", reason="mse drop 0.2, 95 % interval [-0.1, 0.6] contains "
                                                                "the budget 0.5 on 100 examples")
    refused, _ = _refusals(artifacts)
    assert refused["linreg/keras/tflite/int8"].startswith("inconclusive: mse drop")
    result = deploy("pi", artifacts=artifacts, out=artifacts / "pi", accept_inconclusive=True, progress=False)
    manifest = json.loads((artifacts / "pi" / "linreg-keras-int8" / "manifest.json").read_text())
    assert "accepted as inconclusive" in manifest["override"]["reason"]
    assert any(b.name == "linreg-keras-int8" for b in result.bundles)


def test_index_names_the_smallest_passing_bundle_and_why(linreg):
    artifacts, _ = linreg
    _, result = _refusals(artifacts)
    index = json.loads((result.out / "index.json").read_text())
    (choice,) = index["preferred"].values()
    sizes = {b["bundle"]: b["bytes"] for b in index["bundles"] if b["verdict"] == "pass" and not b["override"]}
    assert sizes[choice["bundle"]] == min(sizes.values()) and choice["why"].startswith("smallest passing artifact")


@pytest.mark.parametrize("content", ["[1, 2]", '{"artifacts": [{"target": "tflite"}]}', "{" * 5000, "not json"])
def test_a_parity_json_that_is_not_one_is_one_line_and_exit_2(linreg, capsys, content):
    artifacts, parity = linreg
    parity.write_text(content)
    code = cli.main(["deploy", "--target", "pi", "--artifacts", str(artifacts)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "not a parity.json" in err[0], err
