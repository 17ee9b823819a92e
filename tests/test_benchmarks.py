"""The benchmarks (benchmarks/): the pure parts (percentiles, ratios, the interleaved runner, MAC
formulas, target checks, input errors), MACs of known models counted from their .tflite, and a smoke
run of `python -m benchmarks` on one small model with few repetitions. No timing is asserted."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import BenchmarkError
from benchmarks._graph import op_macs
from benchmarks._inventory import load_inventory
from benchmarks._targets import target_int8_not_slower, target_sizes
from benchmarks._timing import Plan, Summary, interleave, percentile, ratio

REPO = Path(__file__).resolve().parents[1]


# -- pure helpers ------------------------------------------------------------------------------------------------
def test_percentile_median_and_summary():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile([3.0], 99) == 3.0
    s = Summary.of([4.0, 1.0, 3.0, 2.0])
    assert (s.n, s.p50_ms, s.min_ms, s.mean_ms) == (4, 2.5, 1.0, 2.5)
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        Summary.of([])


def test_ratio_is_peer_over_ours_and_none_when_unknown():
    assert ratio(3.0, 1.5) == 2.0
    assert ratio(None, 1.0) is None and ratio(1.0, None) is None and ratio(1.0, 0.0) is None


def test_interleave_times_every_contestant_and_keeps_going_past_a_failure():
    calls = {"a": 0, "b": 0}

    def a():
        calls["a"] += 1

    def b():
        calls["b"] += 1

    def broken():
        raise RuntimeError("no kernel for this op")

    result = interleave({"a": a, "b": b, "broken": broken}, Plan(rounds=3, batch_ms=0.5, warmup_calls=1, warmup_ms=0))
    assert set(result.times_ms) == {"a", "b"}
    assert all(len(t) >= 3 for t in result.times_ms.values())  # at least one call per round
    assert "no kernel for this op" in result.errors["broken"]
    assert result.summary("a").n == len(result.times_ms["a"]) and result.summary("broken") is None
    with pytest.raises(ValueError):
        Plan(rounds=0)


def test_mac_formulas_match_hand_counts():
    # conv 3x3, 1 -> 32 channels, 28x28 -> 26x26 (TFLite weights [out, kh, kw, in])
    assert op_macs("CONV_2D", [(1, 28, 28, 1), (32, 3, 3, 1), (32,)], [(1, 26, 26, 32)]) == 26 * 26 * 32 * 9
    assert op_macs("FULLY_CONNECTED", [(1, 576), (64, 576), (64,)], [(1, 64)]) == 576 * 64
    assert op_macs("FULLY_CONNECTED", [(32, 128), (8000, 128), (8000,)], [(32, 8000)]) == 32 * 128 * 8000
    assert op_macs("DEPTHWISE_CONV_2D", [(1, 10, 10, 8), (1, 3, 3, 8)], [(1, 8, 8, 8)]) == 8 * 8 * 8 * 9

    class Adj:
        adjX = True

    assert op_macs("BATCH_MATMUL", [(4, 32, 32), (4, 32, 16)], [(4, 32, 16)]) == 4 * 32 * 16 * 32
    assert op_macs("BATCH_MATMUL", [(4, 8, 32), (4, 8, 16)], [(4, 32, 16)], Adj()) == 4 * 32 * 16 * 8
    # fused LSTM: input [batch, time, in], gate weights [hidden, in] and recurrent [hidden, hidden]
    lstm_ins = [(1, 200, 128)] + [(128, 128)] * 4 + [(128, 128)] * 4 + [None] * 11
    assert op_macs("UNIDIRECTIONAL_SEQUENCE_LSTM", lstm_ins, [(1, 200, 128)]) == 200 * 4 * 128 * (128 + 128)
    assert op_macs("ADD", [(1, 10), (1, 10)], [(1, 10)]) == 0


def _row(model, target, mode, size, timing=None, **extra):
    return {"model": model, "framework": "keras", "target": target, "mode": mode, "key": f"{target}/{mode}",
            "status": "ok", "size_bytes": size, "gzip_bytes": size // 2, "timing": timing or {}, **extra}


def test_size_target_reports_each_miss_with_its_ratio():
    results = {"artifacts_table": [
        _row("big", "tflite", "fp32", 4000, bytes_by_kind={"float32": 3900, "graph+metadata": 100}),
        _row("big", "tflite", "int8", 1000, bytes_by_kind={"int8": 975, "graph+metadata": 25}),
        _row("big", "tflite", "dynamic", 1200, bytes_by_kind={"int8": 975, "graph+metadata": 225})]}
    t = target_sizes(results)
    assert t["status"] == "missed"
    rows = {r[2].split()[0]: r for r in t["table"]["rows"]}
    assert rows["tflite/int8"][5] == "0.250x" and rows["tflite/int8"][6] == "yes"
    assert rows["tflite/dynamic"][5] == "0.300x" and rows["tflite/dynamic"][6].startswith("no, +11")
    assert "graph+metadata 225 B" in rows["tflite/dynamic"][9]
    results["artifacts_table"].pop()
    assert target_sizes(results)["status"] == "met"


def test_int8_slower_than_fp32_is_listed_with_an_explanation():
    fp32 = _row("m", "tflite", "fp32", 4000, {"1": {"p50_ms": 1.0, "invoke_p50_ms": 0.9}},
                delegation={"ops": 5, "partitions": 1, "delegated": 5, "left": {}})
    int8 = _row("m", "tflite", "int8", 1000, {"1": {"p50_ms": 1.5, "invoke_p50_ms": 1.4}},
                delegation={"ops": 7, "partitions": 3, "delegated": 4, "left": {"SOFTMAX": 1, "BATCH_MATMUL": 2}})
    t = target_int8_not_slower({"artifacts_table": [fp32, int8], "floors": {}})
    assert t["status"] == "explained"
    (row,) = t["table"]["rows"]
    assert row[4] == "1.50x" and "BATCH_MATMUL x2" in row[7] and "3 partition(s)" in row[7]
    int8["timing"]["1"]["p50_ms"] = 0.5
    assert target_int8_not_slower({"artifacts_table": [fp32, int8], "floors": {}})["status"] == "met"


def test_a_worker_that_dies_is_restarted_after_the_model_it_died_in(tmp_path, monkeypatch):
    from benchmarks import _run
    from benchmarks._inventory import Group, Inventory

    def group(model):
        g = Group(model, "keras", tmp_path, None, None)
        g.native = [type("B", (), {"path": tmp_path / model, "mode": "fp32"})()]
        return g

    jobs = []

    def fake_spawn(job_path, log):  # a worker that segfaults on the model called "crash"
        job = json.loads(Path(job_path).read_text())
        jobs.append([g["model"] for g in job["groups"]])
        with open(job["results"], "a") as f:
            f.write(json.dumps({"kind": "start", "threads": job["threads"]}) + "\n")
            for g in job["groups"]:
                if g["model"] == "crash":
                    log.write_text("Fatal Python error: Segmentation fault\n")
                    return -11
                f.write(json.dumps({"kind": "group", "model": g["model"], "framework": "keras"}) + "\n")
            f.write(json.dumps({"kind": "floors", "threads": job["threads"]}) + "\n")
        return 0

    monkeypatch.setattr(_run, "_spawn", fake_spawn)
    inv = Inventory(tmp_path, "pi", [group("a"), group("crash"), group("b")], None)
    records, errors = _run.run_workers(inv, _run.Options(artifacts=tmp_path, threads=(1,), peers=False), lambda s: None)
    assert jobs == [["a", "crash", "b"], ["b"]]
    assert [(e["where"], e["exit_code"]) for e in errors] == [("crash/keras", -11)]
    assert "Segmentation fault" in errors[0]["stderr_tail"][0]
    assert [r["model"] for r in records if r["kind"] == "group"] == ["a", "b"]
    assert sum(r["kind"] == "floors" for r in records) == 1


def test_bad_artifacts_folders_are_typed_errors_naming_the_fix(tmp_path):
    with pytest.raises(BenchmarkError, match="edgeproof pipeline"):
        load_inventory(tmp_path / "missing")
    with pytest.raises(BenchmarkError, match="edgeproof deploy --target pi"):
        load_inventory(tmp_path)


def test_cli_help_and_bad_folder_exit_code(tmp_path):
    out = subprocess.run([sys.executable, "-m", "benchmarks", "--help"], capture_output=True, text=True, cwd=REPO,
                         timeout=120)
    assert out.returncode == 0 and "--artifacts" in out.stdout and "--skip-browser" in out.stdout
    out = subprocess.run([sys.executable, "-m", "benchmarks", "--artifacts", str(tmp_path / "nope")],
                         capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 2 and "benchmarks: error:" in out.stderr and "edgeproof pipeline" in out.stderr


# -- MACs read from real .tflite files -----------------------------------------------------------------------
@pytest.mark.stack
def test_macs_of_a_known_conv_dense_model_equal_the_hand_count(tmp_path):
    from benchmarks._graph import buffer_bytes, count_macs
    from edgeproof._frameworks import import_tensorflow, import_tf_keras

    tf, keras = import_tensorflow(), import_tf_keras()
    inputs = keras.Input((8, 8, 1), batch_size=1)
    # non-zero biases: the converter drops an all-zero one
    x = keras.layers.Conv2D(4, 3, activation="relu", bias_initializer="ones")(inputs)  # 6x6x4 outputs, 9 MACs each
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(10, bias_initializer="ones")(x)  # 144 -> 10
    model = keras.Model(inputs, outputs)
    path = tmp_path / "known.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    count = count_macs(path)
    assert count.macs == 6 * 6 * 4 * 9 + 144 * 10 == 2736
    assert count.by_op == {"CONV_2D": 1296, "FULLY_CONNECTED": 1440}
    params = model.count_params()  # weights + biases, all float32 in the file
    assert buffer_bytes(path)["float32"] == 4 * params


# -- the command on one small model --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_artifacts(fast_verified, tmp_path_factory):
    """linreg (both frameworks) from the verified fast artifacts, deployed to pi and web."""
    from edgeproof.train import model_dir
    from edgeproof.deploy import deploy

    artifacts, _ = fast_verified
    dest = tmp_path_factory.mktemp("bench") / "artifacts"
    for fw in ("keras", "torch"):
        shutil.copytree(model_dir(artifacts, "linreg", fw), model_dir(dest, "linreg", fw))
    for target in ("pi", "web"):
        deploy(target, artifacts=dest, models=["linreg"], progress=False)
    (dest / "pipeline_timing.json").write_text(json.dumps({"profile": "fast", "stages": {"train": 1.0, "convert": 2.0},
                                                           "total_seconds": 3.0}))
    return dest


@pytest.mark.stack
def test_benchmark_command_writes_complete_results(small_artifacts, tmp_path):
    out = tmp_path / "results"
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--artifacts", str(small_artifacts), "--out", str(out),
                           "--models", "linreg", "--runs", "2", "--batch-ms", "2", "--threads", "1",
                           "--no-compile", "--skip-browser"], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "linreg/keras tflite fp32" in proc.stdout  # one progress line per measurement

    results = json.loads((out / "results.json").read_text())
    for key in ("command", "machine", "limits", "artifacts_table", "groups", "peers", "floors", "limit_rows", "macs",
                "browser", "conversion", "targets"):
        assert key in results, key
    assert results["limits"]["sgemm_gflops"]["1"] > 0 and results["limits"]["copy_gbps"] > 0
    tflite = [r for r in results["artifacts_table"] if r["target"] == "tflite" and r.get("bundle")]
    assert tflite and all(r["timing"]["1"]["p50_ms"] > 0 and r["macs"] == 1 for r in tflite)
    assert all(r.get("gzip_bytes") and r.get("verdict") for r in results["artifacts_table"] if r["status"] == "ok")
    peers = {p["peer"] for p in results["peers"]}
    assert {"keras tf.function", "torch eager", "onnxruntime fp32"} <= peers
    assert all(p["ratio"] > 0 for p in results["peers"] if p["peer"] != "torch.compile")
    assert {"empty tflite (runtime)", "empty tflite invoke", "empty onnxruntime"} <= set(results["floors"]["1"])
    assert {t["id"] for t in results["targets"]} == {"cnn_int8_vs_peers", "int8_size", "int8_not_slower",
                                                     "tfjs_wasm_vs_native", "browser_best_vs_native"}
    assert results["conversion"]["pipeline"]["total_seconds"] == 3.0

    md = (out / "RESULTS.md").read_text()
    assert "python -m benchmarks --artifacts" in md.splitlines()[4]  # the command that regenerates it, at the top
    for section in ("## Targets", "## Every artifact", "## Side by side", "## In the browser", "## The physical limit",
                    "## Conversion wall time", "## Charts"):
        assert section in md, section
    assert "Not measured in this run (--skip-browser)" in md and "torch.compile" in md
    for png in ("latency_vs_size.png", "peer_ratios.png", "fraction_of_peak.png"):
        assert (out / png).stat().st_size > 1000 and f"]({png})" in md


@pytest.mark.stack
@pytest.mark.browser
def test_browser_runtimes_time_the_web_bundles(small_artifacts):
    from benchmarks._browser import run_browser

    inventory = load_inventory(small_artifacts)
    lines: list[str] = []
    result = run_browser(inventory.groups, ["linreg"], [1], runs=5, budget_ms=50, rounds=2, batch_ms=2,
                         say=lines.append)
    rows = result["rows"]
    labels = {r["runtime_label"] for r in rows}
    assert {"tfjs wasm", "tfjs cpu", "onnxruntime-web wasm"} <= labels
    assert any(label.startswith("tfjs webgl") for label in labels)  # measured, or unavailable with its reason
    for r in rows:
        assert r.get("steady") or r["error"].startswith("unavailable"), r
    wasm = [r for r in rows if r["runtime_label"] == "tfjs wasm"]
    assert len(wasm) == 6 and all(r["interleaved"] and r["steady"]["n"] >= 2 and r["first_ms"] > 0 for r in wasm)
    assert result["isolated_1"] is True  # COOP/COEP: wasm threads and fine-grained timers
    assert len([line for line in lines if line.startswith("  [browser ")]) == len(rows)
    # LiteRT.js and TF.js wasm against native TFLite, interleaved: every .tflite bundle has a native row
    # and a LiteRT.js row with its ratio (or LiteRT.js's reason), every TF.js bundle a TF.js wasm row
    vs = result["vs_native"]["rows"]
    native = [r for r in vs if r["runtime"].startswith("native")]
    assert native and all(r["steady"]["n"] >= 2 and r["threads"] == 1 for r in native)
    lite = [r for r in vs if r["runtime"] == "LiteRT.js wasm"]
    assert len(lite) == len(native)
    assert all(r.get("vs_native", 0) > 0 or r["error"].startswith("unsupported:") for r in lite), lite
    assert len([r for r in vs if r["runtime"] == "TF.js wasm"]) == len(wasm)  # one per TF.js bundle and thread count


def test_browser_report_says_what_a_second_thread_buys_natively_and_in_litertjs():
    from benchmarks._browser_report import _scaling

    def row(threads, p50, native):
        return {"framework": "keras", "mode": "int8", "runtime": "LiteRT.js wasm", "threads_requested": threads,
                "steady": {"p50_ms": p50}, "native_p50_ms": native}

    text = _scaling([row(1, 0.215, 0.129), row(2, 0.175, 0.072)])
    assert "keras: natively 1.79x, in LiteRT.js wasm 1.23x" in text  # 0.129/0.072, 0.215/0.175
    assert _scaling([row(1, 0.215, 0.129)]) == ""  # one thread count: nothing to compare


def test_lstm_forms_refuses_bad_arguments_in_one_line(tmp_path, capsys):
    from benchmarks.lstm_forms import main

    assert main(["--onnx", str(tmp_path / "missing.onnx")]) == 2
    assert "missing.onnx is not a file" in capsys.readouterr().err
    onnx_file = tmp_path / "m.onnx"
    onnx_file.write_bytes(b"\0")
    assert main(["--onnx", str(onnx_file), "--tflite", "litert-torch"]) == 2  # no NAME=FILE
    assert main(["--onnx", str(onnx_file), "--tflite", f"litert-torch={tmp_path / 'nope.tflite'}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all("give NAME=FILE with an existing .tflite" in line for line in err), err
